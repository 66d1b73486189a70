//! The Numenta Anomaly Benchmark's own score (Lavin & Ahmad 2015; NAB's `nab/sweeper.py`,
//! `nab/scorer.py`, `nab/runner.py` and `config/profiles.json`), written afresh for the `nab`
//! bench.
//!
//! Per row `i` of a file (rows before the probationary length `min(floor(0.15 n), 750)` are
//! dropped: neither detections nor windows there count):
//! - inside a window `[s, e]` (width `w = e - s + 1` rows): a detection is worth
//!   `A_tp · σ(-(e - i + 1) / w) / σ(-1)`, where `σ(x) = 2 / (1 + e^{5x}) - 1` is NAB's scaled
//!   sigmoid; a detection on the first row of a window is worth exactly `A_tp`, one on its
//!   last row about `0.05 A_tp`. Only the best (= earliest) detection in a window counts; a
//!   window without one costs `A_fn`.
//! - after a window: a false positive costs `A_fp · σ((i - e) / (w - 1))` (negative), using the
//!   last window that ended before `i`: mild right after the window, `-A_fp` from three window
//!   widths on (`σ(x) = -1` for `x ≥ 3`).
//! - before any window: a false positive costs `A_fp`.
//!
//! A row is a detection when its anomaly score is at least the threshold. The threshold is
//! NAB's sweeper's: one for the whole corpus, the distinct anomaly score (or "none": above every
//! score) that maximises the corpus's raw score, the highest such on ties. Per-file raw scores
//! at that threshold sum to the corpus's. Normalised:
//! `100 · (raw - null) / (perfect - null)`, with `null = -A_fn · windows` (a detector that never
//! fires; NAB's null detector, a constant score, optimises to that) and
//! `perfect = A_tp · windows` (every window caught on its first row).

/// NAB cost matrix: true-positive reward, false-positive and false-negative costs (positive
/// numbers, as in NAB's `profiles.json`).
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const STANDARD: Profile = Profile {
    name: "standard",
    tp: 1.0,
    fp: 0.11,
    fn_: 1.0,
};
pub const LOW_FP: Profile = Profile {
    name: "reward_low_FP_rate",
    tp: 1.0,
    fp: 0.22,
    fn_: 1.0,
};
pub const LOW_FN: Profile = Profile {
    name: "reward_low_FN_rate",
    tp: 1.0,
    fp: 0.11,
    fn_: 2.0,
};

/// NAB's scaled sigmoid of a position relative to a window end (-1 = window start, 0 = window
/// end, > 0 = after it): `2 · sigmoid(-5x) - 1`, and exactly -1 from 3 on.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Rows at the start of a file where NAB ignores detections: 15 % of the rows, at most 750.
pub fn probation_length(rows: usize) -> usize {
    ((0.15 * rows as f64).floor() as usize).min(750)
}

/// `YYYY-MM-DD HH:MM:SS` prefix: NAB's windows carry microseconds, the files do not.
pub fn ts(s: &str) -> &str {
    &s[..s.len().min(19)]
}

/// Row-index ranges `[first, last]` of `windows` (timestamp strings, ends included) in a file
/// with the given (ascending) timestamps, sorted by start; windows matching no row are dropped.
/// Also returns how many windows did not start and end exactly on a row (NAB's sweeper assumes
/// they all do; 0 on NAB's data).
pub fn window_ranges(
    timestamps: &[String],
    windows: &[(String, String)],
) -> (Vec<(usize, usize)>, usize) {
    let mut ranges = Vec::new();
    let mut inexact = 0;
    for (start, end) in windows {
        let (start, end) = (ts(start), ts(end));
        let first = timestamps.partition_point(|t| ts(t) < start);
        let past = timestamps.partition_point(|t| ts(t) <= end);
        if first >= past {
            inexact += 1;
            continue;
        }
        if ts(&timestamps[first]) != start || ts(&timestamps[past - 1]) != end {
            inexact += 1;
        }
        ranges.push((first, past - 1));
    }
    ranges.sort_unstable();
    (ranges, inexact)
}

/// One scorable row: the detector's score, what a detection there is worth, and the window
/// (index into the file's ranges) it lies in.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub score: f64,
    pub weight: f64,
    pub window: Option<usize>,
}

/// The scorable rows of one file (probationary rows dropped) with NAB's per-row weights.
pub fn sweep_rows(scores: &[f64], ranges: &[(usize, usize)], profile: &Profile) -> Vec<Row> {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probation_length(scores.len());
    let mut rows = Vec::with_capacity(scores.len().saturating_sub(probation));
    // Index of the first window that does not end before the current row.
    let mut next = 0;
    for (i, &score) in scores.iter().enumerate() {
        while next < ranges.len() && ranges[next].1 < i {
            next += 1;
        }
        let (weight, window) = match ranges.get(next) {
            Some(&(s, e)) if s <= i => {
                let width = (e - s + 1) as f64;
                let position = -((e - i + 1) as f64) / width;
                (scaled_sigmoid(position) * profile.tp / max_tp, Some(next))
            }
            _ if next == 0 => (-profile.fp, None),
            _ => {
                let (s, e) = ranges[next - 1];
                // NAB divides by width - 1 (a one-row window would divide by zero there).
                let span = ((e - s) as f64).max(1.0);
                let position = (i - e) as f64 / span;
                (scaled_sigmoid(position) * profile.fp, None)
            }
        };
        if i >= probation {
            rows.push(Row {
                score,
                weight,
                window,
            });
        }
    }
    rows
}

/// Raw score of a file's rows at a threshold (detection: score >= threshold), with the windows
/// detected and the false-positive rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FileScore {
    pub raw: f64,
    /// Windows with a scorable row.
    pub windows: usize,
    pub detected: usize,
    pub false_positives: usize,
}

pub fn score_file(rows: &[Row], threshold: f64, profile: &Profile) -> FileScore {
    let n = rows
        .iter()
        .filter_map(|r| r.window)
        .max()
        .map_or(0, |w| w + 1);
    let mut best: Vec<Option<f64>> = vec![None; n];
    let mut present = vec![false; n];
    let mut fp = 0.0;
    let mut false_positives = 0;
    for r in rows {
        if let Some(w) = r.window {
            present[w] = true;
        }
        if r.score < threshold {
            continue;
        }
        match r.window {
            Some(w) => best[w] = Some(best[w].map_or(r.weight, |b: f64| b.max(r.weight))),
            None => {
                fp += r.weight;
                false_positives += 1;
            }
        }
    }
    let windows = present.iter().filter(|&&p| p).count();
    let detected = best.iter().filter(|b| b.is_some()).count();
    let tp: f64 = best.iter().flatten().sum();
    FileScore {
        raw: tp + fp - profile.fn_ * (windows - detected) as f64,
        windows,
        detected,
        false_positives,
    }
}

/// NAB's sweep over a whole corpus (each file's rows from [`sweep_rows`]): the threshold (a
/// distinct score, or +∞ for "never fire") with the highest total raw score, and that score.
pub fn best_threshold(files: &[Vec<Row>], profile: &Profile) -> (f64, f64) {
    // Global window ids: file offset + local index.
    let mut offsets = Vec::with_capacity(files.len());
    let mut total_windows = 0;
    for rows in files {
        offsets.push(total_windows);
        total_windows += rows
            .iter()
            .filter_map(|r| r.window)
            .max()
            .map_or(0, |w| w + 1);
    }
    let mut all: Vec<(f64, f64, Option<usize>)> = Vec::new();
    let mut present = vec![false; total_windows];
    for (rows, &off) in files.iter().zip(&offsets) {
        for r in rows {
            let w = r.window.map(|w| w + off);
            if let Some(w) = w {
                present[w] = true;
            }
            all.push((r.score, r.weight, w));
        }
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Every window missed, no false positive: the "never fire" threshold.
    let scorable = present.iter().filter(|&&p| p).count();
    let mut part = vec![-profile.fn_; total_windows];
    let mut total = -profile.fn_ * scorable as f64;
    let mut best = (f64::INFINITY, total);
    let mut i = 0;
    while i < all.len() {
        let threshold = all[i].0;
        while i < all.len() && all[i].0 == threshold {
            let (_, weight, window) = all[i];
            match window {
                Some(w) if weight > part[w] => {
                    total += weight - part[w];
                    part[w] = weight;
                }
                Some(_) => {}
                None => total += weight,
            }
            i += 1;
        }
        if total > best.1 {
            best = (threshold, total);
        }
    }
    best
}

/// A corpus scored under one profile: NAB's normalised score, the swept threshold, the raw
/// total and each file's share.
#[derive(Debug, Clone)]
pub struct CorpusScore {
    pub score: f64,
    pub threshold: f64,
    pub raw: f64,
    pub files: Vec<FileScore>,
}

/// NAB's score of a corpus: each file's anomaly scores and window row ranges, `windows`
/// labelled windows in all. Checks that the per-file scores add up to the sweep's total.
pub fn score_corpus(
    scores: &[Vec<f64>],
    ranges: &[Vec<(usize, usize)>],
    windows: usize,
    profile: &Profile,
) -> CorpusScore {
    let rows: Vec<Vec<Row>> = scores
        .iter()
        .zip(ranges)
        .map(|(s, r)| sweep_rows(s, r, profile))
        .collect();
    let (threshold, raw) = best_threshold(&rows, profile);
    let files: Vec<FileScore> = rows
        .iter()
        .map(|r| score_file(r, threshold, profile))
        .collect();
    let sum: f64 = files.iter().map(|f| f.raw).sum();
    assert!(
        (sum - raw).abs() < 1e-6 * (1.0 + raw.abs()),
        "per-file NAB scores sum to {sum}, the sweep found {raw}"
    );
    CorpusScore {
        score: normalized(raw, windows, profile),
        threshold,
        raw,
        files,
    }
}

/// `100 · (raw - null) / (perfect - null)` over `windows` labelled windows.
pub fn normalized(raw: f64, windows: usize, profile: &Profile) -> f64 {
    let null = -profile.fn_ * windows as f64;
    let perfect = profile.tp * windows as f64;
    100.0 * (raw - null) / (perfect - null)
}

/// Sanity checks on a synthetic corpus, run at bench start; panics on a failure.
pub fn self_check() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // NAB's documented values of the scaled sigmoid.
    assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
    assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
    assert!(close(scaled_sigmoid(0.0), 0.0));
    assert!(close(scaled_sigmoid(3.0), -1.0));
    assert_eq!(probation_length(1000), 150);
    assert_eq!(probation_length(10_000), 750);
    // 1000 rows, windows on rows 300..=349 and 600..=649, probation 150 rows.
    let timestamps: Vec<String> = (0..1000)
        .map(|i| format!("2020-01-01 {:02}:{:02}:00", i / 60, i % 60))
        .collect();
    let w = |a: usize, b: usize| (format!("{}.000000", timestamps[a]), timestamps[b].clone());
    let (ranges, inexact) = window_ranges(&timestamps, &[w(600, 649), w(300, 349)]);
    assert_eq!((ranges.clone(), inexact), (vec![(300, 349), (600, 649)], 0));
    let score = |scores: &[f64], p: &Profile| {
        let files = vec![sweep_rows(scores, &ranges, p)];
        let (threshold, raw) = best_threshold(&files, p);
        let file = score_file(&files[0], threshold, p);
        assert!(close(file.raw, raw), "per-file {} vs sweep {raw}", file.raw);
        (threshold, raw, normalized(raw, 2, p))
    };
    for p in [STANDARD, LOW_FP, LOW_FN] {
        // Perfect: both windows caught on their first row.
        let mut perfect = vec![0.0; 1000];
        perfect[300] = 1.0;
        perfect[600] = 1.0;
        let (t, raw, norm) = score(&perfect, &p);
        assert!(
            t == 1.0 && close(raw, 2.0) && close(norm, 100.0),
            "perfect: {norm}"
        );
        // Null: a constant score never pays, so the sweep does not fire.
        let (t, raw, norm) = score(&[0.5; 1000], &p);
        assert!(t.is_infinite() && close(raw, -2.0 * p.fn_) && close(norm, 0.0));
        // Only the first detection in a window counts; later ones are free.
        let mut twice = perfect.clone();
        twice[310] = 1.0;
        twice[349] = 1.0;
        assert!(close(score(&twice, &p).1, 2.0));
        // Probationary rows are ignored: a detection on row 100 costs nothing.
        let mut early = perfect.clone();
        early[100] = 1.0;
        assert!(close(score(&early, &p).1, 2.0));
        // A false positive after probation, before any window, costs A_fp; one just after a
        // window costs almost nothing; three window widths on, A_fp again.
        let mut fps = perfect.clone();
        fps[200] = 1.0;
        assert!(close(score(&fps, &p).1, 2.0 - p.fp));
        let mut after = perfect.clone();
        after[350] = 1.0;
        let cost = 2.0 - score(&after, &p).1;
        assert!(cost > 0.0 && cost < 0.1 * p.fp, "{cost}");
        let mut far = perfect.clone();
        far[349 + 3 * 49] = 1.0;
        assert!(close(score(&far, &p).1, 2.0 - p.fp));
    }
    // A detection on a window's last row is worth σ(-1/50)/σ(-1) of a first-row one.
    let mut late = vec![0.0; 1000];
    late[349] = 1.0;
    late[600] = 1.0;
    let (_, raw, _) = score(&late, &STANDARD);
    assert!(close(
        raw,
        1.0 + scaled_sigmoid(-1.0 / 50.0) / scaled_sigmoid(-1.0)
    ));
    // A detector worse than null (one far-away false positive per row) picks "never fire".
    let (t, _, norm) = score(&[1.0; 1000], &STANDARD);
    assert!(t.is_infinite() && close(norm, 0.0));
}

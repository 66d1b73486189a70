//! Streaming quality on the 58 series of the Numenta Anomaly Benchmark (issues 3 and 17).
//!
//! Data: `../shared/datasets/timeseries/CATEGORY/FILE.csv` (`timestamp,value,label`) and NAB's
//! labelled anomaly windows `combined_windows.json` (README there). The scorer's sanity checks
//! (`nab_score.rs`, NAB's scorer re-implemented: a perfect detector scores 100, one that never
//! fires 0, ...) run at start.
//!
//! 1. **Raw RCF**, seed `SEEDS[0]`: for every file, in order, score-then-update with
//!    `rcfops::stream::score_stream` (what `rcfops stream FILE --detector raw --normalized`
//!    prints) under NAB's RCF settings: 100 trees, 256 samples, time decay 1e-5, score /
//!    log2(256) = 8 clipped to [0, 1]; shingle 1 (NAB's setting) and 48 (one day of half-hour
//!    points, for comparison). Per file: the points in the top 1 % of scores (the `ceil(n /
//!    100)` highest, ties broken by arrival order), the windows detected (one of those points
//!    inside, ends included) and the flagged points outside every window; then NAB's own score
//!    per shingle (the corpus-wide threshold NAB's sweeper picks; standard, low-FP and low-FN
//!    profiles) and a per-file table of standard-profile raw scores.
//! 2. **Raw vs the alert detector** (`rcfops::stream::alert`, what `rcfops stream FILE`
//!    prints), shingle 1, mean and range over `SEEDS`: NAB's three profiles for raw RCF, for the
//!    detector strictly streaming, for the detector told each file's min and max in advance
//!    (NAB's `inputMin`/`inputMax`, which NAB hands every detector), for one told NAB's
//!    probationary period only (which NAB also hands every detector; HTM's NAB detector learns
//!    for the first half of it, estimates over the second, and keeps a running range), and
//!    for one told both.
//! 3. **Sensitivity**: each detector setting at ½× and 2× its default, strictly streaming,
//!    mean over `SEEDS`.
//! 4. **Throughput**: raw score-then-update and `alert_stream` (score-then-update plus the
//!    detector) over the corpus in the same run, file by file, alternating which goes first.
//! 5. An example: rows of `EXAMPLE` (a file-name substring) around its first alerts.
//!
//! Run: `cargo bench --bench nab`. Options: `SHINGLES=1,48` (section 1, default), `SEEDS=0,1,2`
//! (default), `EXAMPLE=nyc_taxi` (default), `NAB=dir` (default `../shared/datasets/timeseries`
//! beside the crate); file-name substrings as arguments to run a subset.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rcfops::stream::{
    alert_stream, nab_normalize, read_series, score_stream, AlertConfig, AlertDetector, AlertPoint,
    Series, StreamConfig,
};

#[path = "nab_score.rs"]
mod nab_score;
use nab_score::{score_corpus, ts, CorpusScore, Profile, LOW_FN, LOW_FP, STANDARD};

const PROFILES: [Profile; 3] = [STANDARD, LOW_FP, LOW_FN];

struct FileResult {
    windows: usize,
    detected: usize,
    flagged: usize,
    outside: usize,
}

fn evaluate(timestamps: &[String], scores: &[f64], windows: &[(String, String)]) -> FileResult {
    let n = scores.len();
    let k = n.div_ceil(100).max(1);
    // The k highest scores; ties broken by arrival order (earlier first), so every file flags
    // exactly k points (a flat series scores every point alike).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let flagged = &order[..k.min(n)];
    let inside = |i: usize, w: &(String, String)| {
        let t = ts(&timestamps[i]);
        t >= ts(&w.0) && t <= ts(&w.1)
    };
    let detected = windows
        .iter()
        .filter(|w| flagged.iter().any(|&i| inside(i, w)))
        .count();
    let outside = flagged
        .iter()
        .filter(|&&i| !windows.iter().any(|w| inside(i, w)))
        .count();
    FileResult {
        windows: windows.len(),
        detected,
        flagged: flagged.len(),
        outside,
    }
}

fn env_list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: comma-separated integers, e.g. {default}"))
        })
        .collect()
}

/// One NAB file: its name, labelled windows, series and window row ranges.
struct NabFile {
    name: String,
    windows: Vec<(String, String)>,
    series: Series,
    ranges: Vec<(usize, usize)>,
}

fn load(dir: &Path, filters: &[&String]) -> (Vec<NabFile>, usize) {
    let windows_path = dir.join("combined_windows.json");
    let text = std::fs::read_to_string(&windows_path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (NAB's series live in ../shared/datasets/timeseries beside \
             the crate; set NAB=dir to point elsewhere)",
            windows_path.display()
        )
    });
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("combined_windows.json is a JSON object");
    let mut files = Vec::new();
    let mut inexact_windows = 0;
    for (name, w) in &all {
        if !(filters.is_empty() || filters.iter().any(|s| name.contains(s.as_str()))) {
            continue;
        }
        let windows: Vec<(String, String)> = w
            .as_array()
            .expect("windows are arrays")
            .iter()
            .map(|p| {
                let p = p.as_array().expect("a window is [start, end]");
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let path = dir.join(name);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let series = read_series(&bytes, name, Some("value")).unwrap_or_else(|e| panic!("{e}"));
        let (ranges, inexact) = nab_score::window_ranges(&series.timestamps, &windows);
        inexact_windows += inexact;
        files.push(NabFile {
            name: name.clone(),
            windows,
            series,
            ranges,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    (files, inexact_windows)
}

fn raw_scores(values: &[f64], shingle: usize, seed: u64, file: &str) -> Vec<f64> {
    let config = StreamConfig {
        shingle,
        seed,
        ..StreamConfig::default()
    };
    score_stream(values, &config)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .into_iter()
        .map(|s| nab_normalize(s, config.num_samples_per_tree))
        .collect()
}

/// What the detector is told about a file before its first point.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Info {
    /// Nothing: strictly streaming (what `rcfops stream` does).
    Streaming,
    /// The file's min and max (NAB's `inputMin`/`inputMax`).
    MinMax,
    /// NAB's probationary period `p` (15 % of the rows, at most 750) only: learning period
    /// `p / 2`, estimation samples the rest, the range learned as it goes. HTM's NAB detector
    /// exactly: it uses the min and max only for its encoder, and its out-of-range rule
    /// keeps a running min/max.
    Probation,
    /// The min and max and NAB's probationary period.
    MinMaxProbation,
}

/// The detector's outputs for each file, from the raw (normalised) scores: what
/// `alert_stream` gives (checked in the throughput section).
fn detect(
    files: &[NabFile],
    raw: &[Vec<f64>],
    config: &AlertConfig,
    info: Info,
) -> Vec<Vec<AlertPoint>> {
    files
        .iter()
        .zip(raw)
        .map(|(f, scores)| {
            let v = &f.series.values;
            let mut config = config.clone();
            if matches!(info, Info::Probation | Info::MinMaxProbation) {
                let p = nab_score::probation_length(v.len());
                config.learning_period = p / 2;
                config.estimation_samples = (p - p / 2).max(1);
            }
            let mut det = if matches!(info, Info::Streaming | Info::Probation) {
                AlertDetector::new(config)
            } else {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                AlertDetector::with_input_range(config, lo, hi)
            }
            .expect("valid settings");
            v.iter()
                .zip(scores)
                .map(|(&x, &s)| det.push(x, s))
                .collect()
        })
        .collect()
}

fn outputs(points: &[Vec<AlertPoint>]) -> Vec<Vec<f64>> {
    points
        .iter()
        .map(|p| p.iter().map(|p| p.output).collect())
        .collect()
}

/// Mean, min and max.
fn summary(xs: &[f64]) -> (f64, f64, f64) {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, lo, hi)
}

fn cell(xs: &[f64]) -> String {
    let (mean, lo, hi) = summary(xs);
    if xs.len() == 1 {
        format!("{mean:.1}")
    } else {
        format!("{mean:.1} ({lo:.1}–{hi:.1})")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = std::env::var_os("NAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/timeseries")
        });
    let shingles: Vec<usize> = env_list("SHINGLES", "1,48");
    let seeds: Vec<u64> = env_list("SEEDS", "0,1,2");
    assert!(!seeds.is_empty(), "SEEDS: give at least one seed");
    let example = std::env::var("EXAMPLE").unwrap_or_else(|_| "nyc_taxi".into());
    nab_score::self_check();
    let started = Instant::now();
    let (files, inexact_windows) = load(&dir, &filters);
    assert!(!files.is_empty(), "no NAB file matches {filters:?}");
    let windows: usize = files.iter().map(|f| f.windows.len()).sum();
    let ranges: Vec<Vec<(usize, usize)>> = files.iter().map(|f| f.ranges.clone()).collect();
    let alert = AlertConfig::default();

    // Raw scores at shingle 1 for every seed; the first seed's are timed against the alert
    // stream, file by file, alternating which runs first.
    let mut raw_by_seed: Vec<Vec<Vec<f64>>> = Vec::with_capacity(seeds.len());
    let (mut raw_secs, mut alert_secs) = (0.0, 0.0);
    let mut timed_alert: Vec<Vec<AlertPoint>> = Vec::with_capacity(files.len());
    let mut first = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let config = StreamConfig {
            seed: seeds[0],
            ..StreamConfig::default()
        };
        let time_raw = || {
            let t = Instant::now();
            let s = raw_scores(&f.series.values, 1, seeds[0], &f.name);
            (s, t.elapsed().as_secs_f64())
        };
        let time_alert = || {
            let t = Instant::now();
            let p = alert_stream(&f.series.values, &config, &alert, None)
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            (p, t.elapsed().as_secs_f64())
        };
        let ((s, rs), (p, als)) = if i % 2 == 0 {
            let r = time_raw();
            (r, time_alert())
        } else {
            let a = time_alert();
            (time_raw(), a)
        };
        raw_secs += rs;
        alert_secs += als;
        first.push(s);
        timed_alert.push(p);
    }
    raw_by_seed.push(first);
    for &seed in &seeds[1..] {
        raw_by_seed.push(
            files
                .iter()
                .map(|f| raw_scores(&f.series.values, 1, seed, &f.name))
                .collect(),
        );
    }
    // The detector run on precomputed scores is the alert stream.
    let streaming0 = detect(&files, &raw_by_seed[0], &alert, Info::Streaming);
    assert!(
        streaming0 == timed_alert,
        "alert_stream differs from the detector run on the raw scores"
    );

    section_raw(
        &files,
        &shingles,
        seeds[0],
        &raw_by_seed[0],
        &ranges,
        windows,
        inexact_windows,
    );

    // 2. Raw vs the detector.
    println!(
        "\n## Raw RCF vs the alert detector (shingle 1, NAB's scorer, mean and range over seeds \
         {seeds:?})\n"
    );
    println!(
        "| detector | standard | reward low FP | reward low FN | thresholds (seed {}) |",
        seeds[0]
    );
    println!("|---|--:|--:|--:|---|");
    let variants: [(&str, Option<Info>); 5] = [
        ("raw RCF (score/8)", None),
        ("alert, strictly streaming (default)", Some(Info::Streaming)),
        ("alert, min/max in advance", Some(Info::MinMax)),
        (
            "alert, probation in advance (HTM's NAB setup)",
            Some(Info::Probation),
        ),
        (
            "alert, min/max and probation in advance",
            Some(Info::MinMaxProbation),
        ),
    ];
    let mut per_file_std: Vec<Vec<nab_score::FileScore>> = Vec::new();
    for (label, mode) in variants {
        let mut by_profile = vec![Vec::new(); PROFILES.len()];
        let mut thresholds = Vec::new();
        for (si, raw) in raw_by_seed.iter().enumerate() {
            let scores = match mode {
                None => raw.clone(),
                Some(Info::Streaming) if si == 0 => outputs(&streaming0),
                Some(info) => outputs(&detect(&files, raw, &alert, info)),
            };
            for (pi, p) in PROFILES.iter().enumerate() {
                let c = score_corpus(&scores, &ranges, windows, p);
                by_profile[pi].push(c.score);
                if si == 0 {
                    thresholds.push(format!("{:.3}", c.threshold));
                    if p.name == STANDARD.name {
                        per_file_std.push(c.files);
                    }
                }
            }
        }
        println!(
            "| {label} | {} | {} | {} | {} |",
            cell(&by_profile[0]),
            cell(&by_profile[1]),
            cell(&by_profile[2]),
            thresholds.join(" / ")
        );
    }
    println!(
        "(NAB scoreboard: Numenta HTM 70.5 / 62.6 / 75.2, AWS streaming RCF 51.7 / 38.4 / 59.7)"
    );
    let detected = |fs: &[nab_score::FileScore]| fs.iter().map(|f| f.detected).sum::<usize>();
    let fps = |fs: &[nab_score::FileScore]| fs.iter().map(|f| f.false_positives).sum::<usize>();
    println!(
        "standard profile, seed {}, in the rows above: windows detected {} of {windows}, \
         false-positive rows {}",
        seeds[0],
        per_file_std
            .iter()
            .map(|f| detected(f).to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        per_file_std
            .iter()
            .map(|f| fps(f).to_string())
            .collect::<Vec<_>>()
            .join(" / "),
    );

    section_sensitivity(&files, &raw_by_seed, &ranges, windows, &alert);

    // 4. Throughput.
    let points: usize = files.iter().map(|f| f.series.values.len()).sum();
    println!(
        "\n## Throughput (seed {}, same run, {points} points)\n",
        seeds[0]
    );
    println!(
        "raw score-then-update {:.0} points/s ({raw_secs:.2} s); alert stream {:.0} points/s \
         ({alert_secs:.2} s); ratio alert/raw **{:.3}**",
        points as f64 / raw_secs,
        points as f64 / alert_secs,
        raw_secs / alert_secs
    );

    section_example(&files, &streaming0, &example);
    section_per_file(&files, &per_file_std);
    eprintln!("({:.1} s)", started.elapsed().as_secs_f64());
}

/// Section 1: the top-1 % table and NAB's score of raw RCF per shingle.
fn section_raw(
    files: &[NabFile],
    shingles: &[usize],
    seed: u64,
    shingle1: &[Vec<f64>],
    ranges: &[Vec<(usize, usize)>],
    windows: usize,
    inexact_windows: usize,
) {
    println!(
        "## Raw RCF: score-then-update, 100 trees, 256 samples, time decay 1e-5, score/8 \
         clipped to [0,1], seed {seed}; top 1 % of scores per file\n"
    );
    print!("| file | rows | windows |");
    for s in shingles {
        print!(" detected (sh {s}) | flagged | outside windows |");
    }
    println!();
    print!("|---|--:|--:|");
    for _ in shingles {
        print!("--:|--:|--:|");
    }
    println!();
    let mut totals = vec![(0usize, 0usize, 0usize, 0usize); shingles.len()];
    let mut rows_total = 0;
    let mut scores_by_shingle: Vec<Vec<Vec<f64>>> = vec![Vec::new(); shingles.len()];
    for (fi, f) in files.iter().enumerate() {
        let s = &f.series;
        rows_total += s.values.len();
        print!("| {} | {} | {} |", f.name, s.values.len(), f.windows.len());
        for (si, &shingle) in shingles.iter().enumerate() {
            let scores = if shingle == 1 {
                shingle1[fi].clone()
            } else {
                raw_scores(&s.values, shingle, seed, &f.name)
            };
            let r = evaluate(&s.timestamps, &scores, &f.windows);
            print!(" {} | {} | {} |", r.detected, r.flagged, r.outside);
            let t = &mut totals[si];
            t.0 += r.windows;
            t.1 += r.detected;
            t.2 += r.flagged;
            t.3 += r.outside;
            scores_by_shingle[si].push(scores);
        }
        println!();
    }
    print!(
        "| **total ({} files)** | {rows_total} | {windows} |",
        files.len()
    );
    for t in &totals {
        print!(" **{}** | {} | {} |", t.1, t.2, t.3);
    }
    println!("\n");
    for (s, t) in shingles.iter().zip(&totals) {
        println!(
            "shingle {s}: {} of {} windows detected ({:.1} %), {} of {} top-1 % points outside \
             every window ({:.1} %)",
            t.1,
            t.0,
            100.0 * t.1 as f64 / t.0.max(1) as f64,
            t.3,
            t.2,
            100.0 * t.3 as f64 / t.2.max(1) as f64
        );
    }
    println!(
        "\nNAB score (NAB's scorer: scaled-sigmoid window scoring, first detection per window, \
         probation min(15 %, 750 rows), one corpus-wide threshold swept over the distinct \
         scores; normalised 100 (raw - null) / (perfect - null), null = never fires = -A_fn \
         per window, perfect = A_tp per window; {windows} windows)"
    );
    if inexact_windows > 0 {
        println!("({inexact_windows} windows do not start and end on a row of their file)");
    }
    let mut per_file: Vec<Vec<nab_score::FileScore>> = Vec::new();
    for (si, &shingle) in shingles.iter().enumerate() {
        let mut line = format!("shingle {shingle}:");
        for profile in PROFILES {
            let CorpusScore {
                score,
                threshold,
                raw,
                files: scored,
            } = score_corpus(&scores_by_shingle[si], ranges, windows, &profile);
            if profile.name == STANDARD.name {
                let detected: usize = scored.iter().map(|f| f.detected).sum();
                let fps: usize = scored.iter().map(|f| f.false_positives).sum();
                line += &format!(
                    " NAB standard **{score:.1}** (threshold {threshold:.4}, raw {raw:.2}, \
                     null {:.0}, perfect {:.0}; {detected} of {windows} windows detected, \
                     {fps} false-positive rows);",
                    -profile.fn_ * windows as f64,
                    profile.tp * windows as f64
                );
                per_file.push(scored);
            } else {
                line += &format!(" {} {score:.1} (threshold {threshold:.4});", profile.name);
            }
        }
        println!("{}", line.trim_end_matches(';'));
    }
    println!("(NAB scoreboard, standard profile: AWS streaming RCF 51.7, Numenta HTM 70.5; the");
    println!(
        " reference RCF library with these settings 53.0 at shingle 1, about 24 at shingle 48)"
    );
    println!("\nNAB standard profile per file, at each shingle's corpus threshold:\n");
    print!("| file | windows |");
    for s in shingles {
        print!(" raw (sh {s}) | detected | FP rows |");
    }
    println!();
    print!("|---|--:|");
    for _ in shingles {
        print!("--:|--:|--:|");
    }
    println!();
    for (fi, f) in files.iter().enumerate() {
        print!("| {} | {} |", f.name, f.windows.len());
        for scored in &per_file {
            let s = &scored[fi];
            print!(" {:.2} | {} | {} |", s.raw, s.detected, s.false_positives);
        }
        println!();
    }
}

/// Section 3: each detector setting at ½× and 2× its default (strictly streaming).
fn section_sensitivity(
    files: &[NabFile],
    raw_by_seed: &[Vec<Vec<f64>>],
    ranges: &[Vec<(usize, usize)>],
    windows: usize,
    base: &AlertConfig,
) {
    type Knob = (&'static str, fn(&mut AlertConfig, f64));
    let knobs: [Knob; 9] = [
        ("historic_window", |c, m| {
            c.historic_window = scale(c.historic_window, m)
        }),
        ("averaging_window", |c, m| {
            c.averaging_window = scale(c.averaging_window, m)
        }),
        ("reestimation_period", |c, m| {
            c.reestimation_period = scale(c.reestimation_period, m)
        }),
        ("learning_period", |c, m| {
            c.learning_period = scale(c.learning_period, m)
        }),
        ("estimation_samples", |c, m| {
            c.estimation_samples = scale(c.estimation_samples, m)
        }),
        ("min_variance", |c, m| c.min_variance *= m),
        ("out_of_range_tolerance", |c, m| {
            c.out_of_range_tolerance *= m
        }),
        ("alert_threshold", |c, m| {
            c.alert_threshold = (c.alert_threshold * m).min(1.0)
        }),
        ("refractory_period", |c, m| {
            c.refractory_period = scale(c.refractory_period, m)
        }),
    ];
    let mean_scores = |c: &AlertConfig| -> Vec<f64> {
        let mut acc = vec![0.0; PROFILES.len()];
        for raw in raw_by_seed {
            let out = outputs(&detect(files, raw, c, Info::Streaming));
            for (pi, p) in PROFILES.iter().enumerate() {
                acc[pi] += score_corpus(&out, ranges, windows, p).score;
            }
        }
        acc.iter().map(|a| a / raw_by_seed.len() as f64).collect()
    };
    println!(
        "\n## Sensitivity (alert detector, strictly streaming; NAB standard / low FP / low FN, \
         mean over {} seeds)\n",
        raw_by_seed.len()
    );
    let d = mean_scores(base);
    println!("defaults: {:.1} / {:.1} / {:.1}\n", d[0], d[1], d[2]);
    println!("| setting | default | ½× | standard at ½× | 2× | standard at 2× |");
    println!("|---|--:|--:|--:|--:|--:|");
    for (name, set) in knobs {
        let mut row = format!("| {name} | {} |", knob_value(base, name));
        for m in [0.5, 2.0] {
            let mut c = base.clone();
            set(&mut c, m);
            let s = mean_scores(&c);
            row += &format!(
                " {} | {:.1} ({:.1} / {:.1}) |",
                knob_value(&c, name),
                s[0],
                s[1],
                s[2]
            );
        }
        println!("{row}");
    }
    println!("(standard at ½× and 2× is followed by low FP / low FN in brackets)");
}

fn scale(v: usize, m: f64) -> usize {
    ((v as f64 * m).round() as usize).max(1)
}

fn knob_value(c: &AlertConfig, name: &str) -> String {
    match name {
        "historic_window" => c.historic_window.to_string(),
        "averaging_window" => c.averaging_window.to_string(),
        "reestimation_period" => c.reestimation_period.to_string(),
        "learning_period" => c.learning_period.to_string(),
        "estimation_samples" => c.estimation_samples.to_string(),
        "min_variance" => format!("{}", c.min_variance),
        "out_of_range_tolerance" => format!("{}", c.out_of_range_tolerance),
        "alert_threshold" => format!("{}", c.alert_threshold),
        "refractory_period" => c.refractory_period.to_string(),
        _ => unreachable!("{name}"),
    }
}

/// Section 5: rows of one file around its first alerts.
fn section_example(files: &[NabFile], points: &[Vec<AlertPoint>], example: &str) {
    let Some((fi, f)) = files
        .iter()
        .enumerate()
        .find(|(_, f)| f.name.contains(example))
    else {
        return;
    };
    let p = &points[fi];
    println!(
        "\n## Example: {} (alert detector, strictly streaming, first seed)\n",
        f.name
    );
    println!("windows (rows): {:?}\n", f.ranges);
    println!(
        "| row | timestamp | value | raw score | 10-pt average | likelihood | output | alert | \
         in a window |"
    );
    println!("|--:|---|--:|--:|--:|--:|--:|---|---|");
    let alerts: Vec<usize> = (0..p.len()).filter(|&i| p[i].alert).collect();
    let mut shown = std::collections::BTreeSet::new();
    for &i in alerts.iter().take(8) {
        for j in i.saturating_sub(2)..(i + 2).min(p.len()) {
            shown.insert(j);
        }
    }
    let mut last = None;
    for i in shown {
        if last.is_some_and(|l| l + 1 != i) {
            println!("| … | | | | | | | | |");
        }
        last = Some(i);
        let a = &p[i];
        let what = if a.alert && a.out_of_range {
            "**alert** (out of range)"
        } else if a.alert {
            "**alert**"
        } else if a.suppressed {
            "suppressed (refractory)"
        } else {
            ""
        };
        let window = if f.ranges.iter().any(|&(s, e)| s <= i && i <= e) {
            "yes"
        } else {
            ""
        };
        println!(
            "| {i} | {} | {} | {:.3} | {:.3} | {:.6} | {:.3} | {what} | {window} |",
            f.series.timestamps[i], f.series.values[i], a.raw, a.average, a.likelihood, a.output
        );
    }
    println!(
        "({} alerts, {} suppressed, in {} rows)",
        p.iter().filter(|a| a.alert).count(),
        p.iter().filter(|a| a.suppressed).count(),
        p.len()
    );
}

/// Per-file NAB standard raw scores: raw RCF vs the detector (first seed).
fn section_per_file(files: &[NabFile], per_file: &[Vec<nab_score::FileScore>]) {
    println!(
        "\n## NAB standard per file, first seed: raw RCF / alert streaming / min-max in \
         advance / min-max and probation in advance (raw score, windows detected, FP rows)\n"
    );
    println!(
        "| file | windows | raw RCF | det | FP | streaming | det | FP | min/max | det | FP | \
         +probation | det | FP |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (fi, f) in files.iter().enumerate() {
        let mut row = format!("| {} | {} |", f.name, f.windows.len());
        for scored in per_file {
            let s = &scored[fi];
            row += &format!(" {:.2} | {} | {} |", s.raw, s.detected, s.false_positives);
        }
        println!("{row}");
    }
}

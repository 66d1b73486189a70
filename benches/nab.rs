//! Streaming quality on the 58 series of the Numenta Anomaly Benchmark (issue 3).
//!
//! Data: `../shared/datasets/timeseries/CATEGORY/FILE.csv` (`timestamp,value,label`) and NAB's
//! labelled anomaly windows `combined_windows.json` (README there). For every file, in order,
//! score-then-update with `rcfops::stream::score_stream` (what `rcfops stream FILE --column
//! value --normalized` prints) under NAB's RCF settings: 100 trees, 256 samples, time decay
//! 1e-5, score / log2(256) = 8 clipped to [0, 1]; shingle 1 (NAB's setting) and 48 (one day of
//! half-hour points, for comparison). Then per file: the points in the top 1 % of scores
//! (the `ceil(n / 100)` highest, ties broken by arrival order), the windows detected
//! (a window is detected when one of those points lies inside it, ends included) and the
//! flagged points outside every window. Prints per-file rows and totals.
//!
//! Then NAB's own score (`nab_score.rs`, NAB's scorer re-implemented): per shingle, the
//! corpus-wide threshold NAB's sweeper picks and the normalised score for the standard profile
//! (beside NAB's scoreboard: AWS streaming RCF 51.7; the reference RCF library with these
//! settings 53.0 at shingle 1, about 24 at shingle 48) and for the low-FP and low-FN profiles,
//! and a per-file table of standard-profile raw scores. The scorer's sanity checks (a perfect
//! detector scores 100, one that never fires 0, ...) run at start.
//!
//! Run: `cargo bench --bench nab`. Options: `SHINGLES=1,48` (default), `SEED=n` (default 0),
//! `NAB=dir` (default `../shared/datasets/timeseries` beside the crate); file-name
//! substrings as arguments to run a subset.

use std::path::{Path, PathBuf};

use rcfops::stream::{nab_normalize, read_series, score_stream, StreamConfig};

#[path = "nab_score.rs"]
mod nab_score;
use nab_score::ts;

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
    let shingles: Vec<usize> = std::env::var("SHINGLES")
        .unwrap_or_else(|_| "1,48".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("SHINGLES: comma-separated integers")
        })
        .collect();
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
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
    let mut files: Vec<(&String, Vec<(String, String)>)> = all
        .iter()
        .filter(|(f, _)| filters.is_empty() || filters.iter().any(|s| f.contains(s.as_str())))
        .map(|(f, w)| {
            let w = w
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
            (f, w)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(b.0));

    nab_score::self_check();
    println!(
        "NAB streaming check: score-then-update, 100 trees, 256 samples, time decay 1e-5, \
         score/8 clipped to [0,1], seed {seed}; top 1 % of scores per file\n"
    );
    print!("| file | rows | windows |");
    for s in &shingles {
        print!(" detected (sh {s}) | flagged | outside windows |");
    }
    println!();
    print!("|---|--:|--:|");
    for _ in &shingles {
        print!("--:|--:|--:|");
    }
    println!();
    let mut totals = vec![(0usize, 0usize, 0usize, 0usize); shingles.len()];
    let mut rows_total = 0;
    // For NAB's score, after the loop: each file's window row ranges, and its normalised
    // scores per shingle.
    let mut ranges_by_file = Vec::with_capacity(files.len());
    let mut scores_by_shingle: Vec<Vec<Vec<f64>>> = vec![Vec::new(); shingles.len()];
    let mut inexact_windows = 0;
    let started = std::time::Instant::now();
    for (file, windows) in &files {
        let path = dir.join(file.as_str());
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let series = read_series(&bytes, file, Some("value")).unwrap_or_else(|e| panic!("{e}"));
        rows_total += series.values.len();
        print!("| {file} | {} | {} |", series.values.len(), windows.len());
        let (ranges, inexact) = nab_score::window_ranges(&series.timestamps, windows);
        ranges_by_file.push(ranges);
        inexact_windows += inexact;
        for (si, &shingle) in shingles.iter().enumerate() {
            let config = StreamConfig {
                shingle,
                seed,
                ..StreamConfig::default()
            };
            let scores: Vec<f64> = score_stream(&series.values, &config)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .into_iter()
                .map(|s| nab_normalize(s, config.num_samples_per_tree))
                .collect();
            let r = evaluate(&series.timestamps, &scores, windows);
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
        "| **total ({} files)** | {rows_total} | {} |",
        files.len(),
        totals[0].0
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
    print_nab_scores(
        &files,
        &shingles,
        &ranges_by_file,
        &scores_by_shingle,
        inexact_windows,
    );
    eprintln!("({:.1} s)", started.elapsed().as_secs_f64());
}

/// NAB's own score (module `nab_score`): one corpus-wide threshold per shingle and profile
/// from NAB's sweep, per-file raw scores at the standard profile's threshold, and the
/// normalised totals.
fn print_nab_scores(
    files: &[(&String, Vec<(String, String)>)],
    shingles: &[usize],
    ranges_by_file: &[Vec<(usize, usize)>],
    scores_by_shingle: &[Vec<Vec<f64>>],
    inexact_windows: usize,
) {
    use nab_score::{best_threshold, normalized, score_file, sweep_rows, LOW_FN, LOW_FP, STANDARD};
    let windows: usize = files.iter().map(|(_, w)| w.len()).sum();
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
        for profile in [STANDARD, LOW_FP, LOW_FN] {
            let rows: Vec<Vec<nab_score::Row>> = scores_by_shingle[si]
                .iter()
                .zip(ranges_by_file)
                .map(|(scores, ranges)| sweep_rows(scores, ranges, &profile))
                .collect();
            let (threshold, raw) = best_threshold(&rows, &profile);
            let scored: Vec<nab_score::FileScore> = rows
                .iter()
                .map(|r| score_file(r, threshold, &profile))
                .collect();
            let sum: f64 = scored.iter().map(|f| f.raw).sum();
            assert!(
                (sum - raw).abs() < 1e-6 * (1.0 + raw.abs()),
                "per-file NAB scores sum to {sum}, the sweep found {raw}"
            );
            let score = normalized(raw, windows, &profile);
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
    for (fi, (file, w)) in files.iter().enumerate() {
        print!("| {file} | {} |", w.len());
        for scored in &per_file {
            let f = &scored[fi];
            print!(" {:.2} | {} | {} |", f.raw, f.detected, f.false_positives);
        }
        println!();
    }
}

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
//! Run: `cargo bench --bench nab`. Options: `SHINGLES=1,48` (default), `SEED=n` (default 0),
//! `NAB=dir` (default `../shared/datasets/timeseries` beside the crate); file-name
//! substrings as arguments to run a subset.

use std::path::{Path, PathBuf};

use rcfops::stream::{nab_normalize, read_series, score_stream, StreamConfig};

struct FileResult {
    windows: usize,
    detected: usize,
    flagged: usize,
    outside: usize,
}

/// `YYYY-MM-DD HH:MM:SS` prefix: NAB's windows carry microseconds, the files do not.
fn ts(s: &str) -> &str {
    &s[..s.len().min(19)]
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
    let started = std::time::Instant::now();
    for (file, windows) in &files {
        let path = dir.join(file.as_str());
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let series = read_series(&bytes, file, Some("value")).unwrap_or_else(|e| panic!("{e}"));
        rows_total += series.values.len();
        print!("| {file} | {} | {} |", series.values.len(), windows.len());
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
    eprintln!("({:.1} s)", started.elapsed().as_secs_f64());
}

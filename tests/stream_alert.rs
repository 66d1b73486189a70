//! `rcfops stream --detector alert|raw` on a real NAB series (`../shared/datasets/timeseries`,
//! beside the clone): the real binary, its lines checked against the library and the labels.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcfops::stream::{
    alert_stream, nab_normalize, read_series, score_stream, AlertConfig, StreamConfig,
};

const BIN: &str = env!("CARGO_BIN_EXE_rcfops");
const FILE: &str = "realKnownCause/ec2_request_latency_system_failure.csv";

fn nab_file() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/timeseries")
        .join(FILE);
    assert!(
        path.is_file(),
        "the NAB series are missing: expected {} (the `shared` folder beside the clone, \
         holding datasets/timeseries/CATEGORY/FILE.csv); this test needs them",
        path.display()
    );
    path
}

fn stream(args: &[&str]) -> Output {
    let path = nab_file();
    Command::new(BIN)
        .arg("stream")
        .arg(&path)
        .args(args)
        .output()
        .expect("run rcfops")
}

fn lines(out: &Output) -> Vec<f64> {
    assert!(
        out.status.success(),
        "rcfops stream failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            l.parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number: {l:?}"))
        })
        .collect()
}

/// The series' values and labels, read independently of the binary.
fn series() -> (Vec<f64>, Vec<bool>) {
    let bytes = std::fs::read(nab_file()).unwrap();
    let values = read_series(&bytes, FILE, Some("value")).unwrap().values;
    let labels = read_series(&bytes, FILE, Some("label"))
        .unwrap()
        .values
        .iter()
        .map(|&l| l == 1.0)
        .collect();
    (values, labels)
}

#[test]
fn alert_lines_are_in_unit_range_one_per_row_and_catch_the_failure() {
    let (values, labels) = series();
    let alert = lines(&stream(&["--column", "value", "--detector", "alert"]));
    assert_eq!(alert.len(), values.len(), "one line per row");
    assert!(
        alert.iter().all(|x| (0.0..=1.0).contains(x)),
        "outside [0, 1]: {:?}",
        alert.iter().find(|x| !(0.0..=1.0).contains(*x))
    );
    // The default is the alert detector, and it is the library's alert stream.
    assert_eq!(lines(&stream(&["--column", "value"])), alert);
    let lib: Vec<f64> = alert_stream(
        &values,
        &StreamConfig::default(),
        &AlertConfig::default(),
        None,
    )
    .unwrap()
    .iter()
    .map(|p| p.output)
    .collect();
    assert_eq!(alert, lib);
    // Alerts are rare and at least one falls inside a labelled failure window.
    let alerts: Vec<usize> = (0..alert.len()).filter(|&i| alert[i] >= 0.5).collect();
    assert!(
        !alerts.is_empty() && alerts.len() * 100 <= alert.len(),
        "{} alerts in {} rows",
        alerts.len(),
        alert.len()
    );
    assert!(
        alerts.iter().any(|&i| labels[i]),
        "no alert inside a labelled window (alerts at rows {alerts:?})"
    );
}

#[test]
fn raw_detector_prints_the_rcf_scores_as_before() {
    let (values, _) = series();
    let scores = score_stream(&values, &StreamConfig::default()).unwrap();
    let raw = lines(&stream(&["--column", "value", "--detector", "raw"]));
    assert_eq!(raw, scores);
    assert!(raw.iter().any(|&s| s > 1.0), "the reference RCF scale");
    let normalized = lines(&stream(&[
        "--column",
        "value",
        "--detector",
        "raw",
        "--normalized",
    ]));
    let expected: Vec<f64> = scores.iter().map(|&s| nab_normalize(s, 256)).collect();
    assert_eq!(normalized, expected);
    let alert = lines(&stream(&["--column", "value"]));
    assert_ne!(alert, normalized, "the detector changes the output");
}

#[test]
fn a_bad_detector_or_flag_combination_says_what_to_use() {
    let out = stream(&["--detector", "htm"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'htm'") && err.contains("--detector") && err.contains("alert, raw"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = stream(&["--normalized"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--detector raw --normalized"), "{err}");
}

//! Live quality, pure: captured scores joined with their ground truth, per version and day,
//! and the judgement against the version's evaluation PR-AUC.

use serde::Serialize;

use crate::domain::{Stage, Verdict};
use crate::pipeline::metrics::{at_threshold, average_precision, roc_auc};

/// One labelled captured record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    pub version: i64,
    pub stage: Stage,
    pub at_ts: f64,
    pub score: f64,
    pub threshold: f64,
    pub fraud: bool,
}

/// A version's live quality on one (UTC) day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayQuality {
    pub stage: Stage,
    pub version: i64,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub records: usize,
    pub frauds: usize,
    /// `None` when the day's labels are all one class.
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub precision: f64,
    pub recall: f64,
}

fn day_of(ts: f64) -> String {
    crate::domain::format_ts(ts)[..10].to_string()
}

/// Groups `rows` by stage, version and day (in that order) and measures each group.
pub fn live_quality(rows: &[Labelled]) -> Vec<DayQuality> {
    let mut groups: std::collections::BTreeMap<(Stage, i64, String), Vec<&Labelled>> =
        Default::default();
    for r in rows {
        groups
            .entry((r.stage, r.version, day_of(r.at_ts)))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((stage, version, day), g)| {
            let scores: Vec<f64> = g.iter().map(|r| r.score).collect();
            let labels: Vec<bool> = g.iter().map(|r| r.fraud).collect();
            // Every record of a version carries that version's threshold.
            let threshold = g[0].threshold;
            let (precision, recall, _) = at_threshold(&scores, &labels, threshold);
            DayQuality {
                stage,
                version,
                day,
                records: g.len(),
                frauds: labels.iter().filter(|l| **l).count(),
                roc_auc: roc_auc(&scores, &labels),
                pr_auc: average_precision(&scores, &labels),
                precision,
                recall,
            }
        })
        .collect()
}

/// The quality verdict of one stage and version from its days (oldest first): its newest day
/// with at least `min_frauds` labelled frauds is compared with the evaluation PR-AUC.
/// `None`: no day has enough labels yet.
pub fn judge(
    days: &[&DayQuality],
    eval_pr_auc: f64,
    margin: f64,
    min_frauds: usize,
) -> Option<(Verdict, String)> {
    let day = days
        .iter()
        .rev()
        .find(|d| d.frauds >= min_frauds.max(1) && d.pr_auc.is_some())?;
    let live = day.pr_auc?;
    let why = format!(
        "live PR-AUC {live:.3} on {} ({} records, {} frauds) vs {eval_pr_auc:.3} in evaluation",
        day.day, day.records, day.frauds
    );
    Some(if live < eval_pr_auc - margin {
        (Verdict::Alert, why)
    } else {
        (Verdict::Ok, why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: i64, at_ts: f64, score: f64, fraud: bool) -> Labelled {
        Labelled {
            version,
            stage: Stage::Production,
            at_ts,
            score,
            threshold: 2.0,
            fraud,
        }
    }

    #[test]
    fn groups_by_version_and_day_and_measures_each() {
        let day1 = 1_796_169_600.0; // 2026-12-02T00:00:00Z
        let rows = vec![
            rec(1, day1 + 10.0, 3.0, true),
            rec(1, day1 + 20.0, 1.0, false),
            rec(1, day1 + 30.0, 2.5, false),
            rec(1, day1 + 86_400.0, 1.0, true),
            rec(2, day1 + 40.0, 1.0, false),
        ];
        let q = live_quality(&rows);
        assert_eq!(q.len(), 3);
        assert_eq!((q[0].version, q[0].day.as_str()), (1, "2026-12-02"));
        assert_eq!((q[0].records, q[0].frauds), (3, 1));
        assert_eq!(q[0].roc_auc, Some(1.0));
        assert_eq!(q[0].pr_auc, Some(1.0));
        assert_eq!((q[0].precision, q[0].recall), (0.5, 1.0));
        assert_eq!(q[1].day, "2026-12-03");
        assert_eq!(q[1].roc_auc, None);
        assert_eq!(q[2].version, 2);
    }

    #[test]
    fn a_fall_below_the_margin_is_an_alert() {
        let day = |frauds, pr| DayQuality {
            stage: Stage::Production,
            version: 1,
            day: "2026-12-02".into(),
            records: 100,
            frauds,
            roc_auc: Some(0.9),
            pr_auc: Some(pr),
            precision: 0.5,
            recall: 0.5,
        };
        let (good, bad, few) = (day(20, 0.75), day(20, 0.55), day(3, 0.1));
        assert_eq!(judge(&[&good], 0.8, 0.1, 10).unwrap().0, Verdict::Ok);
        let (v, why) = judge(&[&good, &bad], 0.8, 0.1, 10).unwrap();
        assert_eq!(v, Verdict::Alert);
        assert!(why.contains("live PR-AUC 0.550"), "{why}");
        // A day with too few frauds is not judged; the newest judged day counts.
        assert_eq!(
            judge(&[&bad, &few], 0.8, 0.1, 10).unwrap().0,
            Verdict::Alert
        );
        assert_eq!(judge(&[&few], 0.8, 0.1, 10), None);
    }
}

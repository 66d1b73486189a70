//! Detection-quality check on the labelled CSV sets (batch protocol of the reference figures:
//! train on all rows with a uniform reservoir, score all rows against the frozen forest,
//! median ROC-AUC / PR-AUC over seeds 0..5).
//!
//! `cargo run --profile bench -p rcf-core --example quality -- /work/shared/datasets [names..]`

use ndarray::Array2;
use rcf_core::{Forest, ForestConfig};

fn load(path: &str) -> (Array2<f32>, Vec<u8>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let cols = header.split(',').count();
    let mut vals = Vec::new();
    let mut labels = Vec::new();
    let mut n = 0;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let mut it = line.split(',');
        for _ in 0..cols - 1 {
            vals.push(it.next().unwrap().parse::<f64>().unwrap() as f32);
        }
        labels.push(it.next().unwrap().trim().parse::<f64>().unwrap() as u8);
        n += 1;
    }
    (Array2::from_shape_vec((n, cols - 1), vals).unwrap(), labels)
}

fn roc_auc(scores: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].partial_cmp(&scores[b]).unwrap());
    // average ranks for ties
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let neg = labels.len() as f64 - pos;
    let sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == 1)
        .map(|(r, _)| r)
        .sum();
    (sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn average_precision(scores: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
    let pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            j += 1;
        }
        let recall = tp / pos;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
        i = j;
    }
    ap
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .cloned()
        .unwrap_or("/work/shared/datasets".into());
    let names: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        [
            "breastw",
            "ionosphere",
            "cardio",
            "musk",
            "thyroid",
            "annthyroid",
            "mammography",
            "pendigits",
            "satellite",
            "satimage-2",
            "shuttle",
            "smtp",
            "creditcard_subset",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    println!(
        "{:<18} {:>7} {:>7} {:>6} {:>6} {:>8}",
        "data set", "ROC", "PR", "rows", "dims", "secs"
    );
    for name in names {
        let (x, y) = load(&format!("{dir}/{name}.csv"));
        let t = std::time::Instant::now();
        let mut rocs = Vec::new();
        let mut prs = Vec::new();
        let nseeds: u64 = std::env::var("SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        for seed in 0..nseeds {
            let cfg = ForestConfig {
                seed,
                ..Default::default()
            };
            let f = if std::env::var("STREAM").is_ok() {
                // the reference protocol: shuffle with the seed, stream every row through update
                let mut order: Vec<usize> = (0..x.nrows()).collect();
                let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for i in (1..order.len()).rev() {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    order.swap(i, (s % (i as u64 + 1)) as usize);
                }
                let mut f = Forest::new(x.ncols(), cfg).unwrap();
                for &i in &order {
                    f.update(x.row(i).as_slice().unwrap());
                }
                f
            } else {
                Forest::fit(x.view(), cfg).unwrap()
            };
            let s = f.score_batch_parallel(x.view(), 2);
            rocs.push(roc_auc(&s, &y));
            prs.push(average_precision(&s, &y));
        }
        if std::env::var("VERBOSE").is_ok() {
            let m = rocs.iter().sum::<f64>() / rocs.len() as f64;
            let sd =
                (rocs.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / rocs.len() as f64).sqrt();
            println!("  per-seed ROC mean {m:.4} sd {sd:.4}");
        }
        println!(
            "{:<18} {:>7.3} {:>7.3} {:>6} {:>6} {:>8.2}",
            name,
            median(rocs),
            median(prs),
            x.nrows(),
            x.ncols(),
            t.elapsed().as_secs_f64()
        );
    }
}

//! rcf-core against the AWS reference Random Cut Forest, measured in the same run on the same
//! points: 100 trees, 256 samples, d = 8 and d = 30, single thread. Both forests are trained by
//! streaming the same 20,000 points; then both score the same 20,000 new points (score-only),
//! and both run score-then-update over another 20,000 (streaming). Prints points/s and ratios.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rcflib::rcf::{RCFBuilder, RCFOptionsBuilder};

/// Two workloads: `clusters` (four Gaussian-ish clusters and 1 % uniform noise, the data of
/// rcf-core's criterion bench) and `skewed` (one correlated, widening cloud with 1 % outliers
/// per coordinate: deeper trees).
fn points(kind: &str, n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..d).map(|_| rng.random_range(-5.0..5.0)).collect())
        .collect();
    let tri = |rng: &mut rand_pcg::Pcg64Mcg| (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0;
    (0..n)
        .map(|_| match kind {
            "clusters" if rng.random_bool(0.01) => {
                (0..d).map(|_| rng.random_range(-10.0f32..10.0)).collect()
            }
            "clusters" => {
                let c = centers[rng.random_range(0..4)].clone();
                c.iter().map(|m| m + tri(&mut rng)).collect()
            }
            _ => (0..d)
                .map(|j| {
                    let outlier = if rng.random::<f32>() < 0.01 { 8.0 } else { 0.0 };
                    tri(&mut rng) * (1.0 + j as f32 * 0.1) + outlier
                })
                .collect(),
        })
        .collect()
}

fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (trees, samples, n) = (100usize, 256usize, 20_000usize);
    println!("same-run comparison, single thread, {trees} trees × {samples} samples, {n} points per phase");
    println!(
        "{:<9} {:<4} {:<22} {:>14} {:>14} {:>8}",
        "data", "d", "phase", "reference p/s", "rcf-core p/s", "ratio"
    );
    for (kind, d) in [
        ("clusters", 8usize),
        ("clusters", 30),
        ("skewed", 8),
        ("skewed", 30),
    ] {
        let train = points(kind, n, d, 1);
        let probe = points(kind, n, d, 2);
        let stream = points(kind, n, d, 3);

        let mut reference = RCFBuilder::new(d, 1)
            .tree_capacity(samples)
            .number_of_trees(trees)
            .random_seed(7)
            .store_attributes(false)
            .parallel_enabled(false)
            .internal_shingling(false)
            .initial_accept_fraction(1.0)
            .build::<u64, u64>()
            .expect("reference forest");
        let mut ours = rcf_core::Forest::new(
            d,
            rcf_core::ForestConfig {
                num_trees: trees,
                num_samples_per_tree: samples,
                seed: 7,
                time_decay: 0.0,
            },
        )
        .expect("forest");
        for p in &train {
            reference.update(p, 0).expect("update");
            ours.update(p);
        }

        let t = Instant::now();
        let mut sink = 0.0;
        for p in &probe {
            sink += reference.score(p).expect("score");
        }
        let ref_score = rate(n, t.elapsed().as_secs_f64());
        let t = Instant::now();
        for p in &probe {
            sink += ours.score(p);
        }
        let our_point = rate(n, t.elapsed().as_secs_f64());
        let flat: Vec<f32> = probe.iter().flatten().copied().collect();
        let batch = ndarray::ArrayView2::from_shape((n, d), &flat).expect("shape");
        let t = Instant::now();
        sink += ours.score_batch(batch).iter().sum::<f64>();
        let our_batch = rate(n, t.elapsed().as_secs_f64());

        // The same points, batch-fitted: isolates the cost of a stream-built tree layout.
        let tflat: Vec<f32> = train.iter().flatten().copied().collect();
        let fitted = rcf_core::Forest::fit(
            ndarray::ArrayView2::from_shape((n, d), &tflat).expect("shape"),
            ours.config().clone(),
        )
        .expect("fit");
        let t = Instant::now();
        sink += fitted.score_batch(batch).iter().sum::<f64>();
        let fit_batch = rate(n, t.elapsed().as_secs_f64());

        let t = Instant::now();
        for p in &stream {
            sink += reference.score(p).expect("score");
            reference.update(p, 0).expect("update");
        }
        let ref_stream = rate(n, t.elapsed().as_secs_f64());
        let t = Instant::now();
        for p in &stream {
            sink += ours.score(p);
            ours.update(p);
        }
        let our_stream = rate(n, t.elapsed().as_secs_f64());

        for (phase, r, o) in [
            ("score, point by point", ref_score, our_point),
            ("score, batch", ref_score, our_batch),
            ("score, batch (fitted)", ref_score, fit_batch),
            ("update + score", ref_stream, our_stream),
        ] {
            println!(
                "{kind:<9} {d:<4} {phase:<22} {r:>14.0} {o:>14.0} {:>7.1}×",
                o / r
            );
        }
        assert!(sink.is_finite());
    }
}

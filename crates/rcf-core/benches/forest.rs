//! Throughput benchmarks (points/s): score-only, update+score, batch fit; prints model sizes.
//! Run with `cargo bench -p rcf-core --bench forest`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rcf_core::{Forest, ForestConfig};
use std::time::Duration;

/// A few Gaussian-ish clusters plus a sprinkle of uniform noise.
fn data(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..d).map(|_| rng.random_range(-5.0..5.0)).collect())
        .collect();
    let mut out = Array2::zeros((n, d));
    for mut row in out.outer_iter_mut() {
        if rng.random_bool(0.01) {
            row.iter_mut()
                .for_each(|v| *v = rng.random_range(-10.0f32..10.0));
        } else {
            let c = &centers[rng.random_range(0..4)];
            for (v, &m) in row.iter_mut().zip(c) {
                let g: f32 = (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0;
                *v = m + g;
            }
        }
    }
    out
}

fn cfg() -> ForestConfig {
    ForestConfig {
        num_trees: 100,
        num_samples_per_tree: 256,
        seed: 42,
        time_decay: 0.0,
    }
}

fn bench_score(c: &mut Criterion) {
    let mut g = c.benchmark_group("score");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for d in [8usize, 30] {
        let train = data(20_000, d, 1);
        let forest = Forest::fit(train.view(), cfg()).unwrap();
        println!(
            "model d={d}: memory_bytes = {} B, to_bytes().len() = {} B",
            forest.memory_bytes(),
            forest.to_bytes().len()
        );
        let test = data(8192, d, 2);
        g.throughput(Throughput::Elements(test.nrows() as u64));
        g.bench_with_input(BenchmarkId::new("batch_1thread", d), &d, |b, _| {
            b.iter(|| black_box(forest.score_batch(test.view())))
        });
        g.bench_with_input(BenchmarkId::new("batch_2threads", d), &d, |b, _| {
            b.iter(|| black_box(forest.score_batch_parallel(test.view(), 2)))
        });
        g.bench_with_input(BenchmarkId::new("point_by_point", d), &d, |b, _| {
            b.iter(|| {
                let mut s = 0.0;
                for row in test.outer_iter() {
                    s += forest.score(row.as_slice().unwrap());
                }
                black_box(s)
            })
        });
    }
    g.finish();
}

fn bench_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("update_and_score");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for d in [8usize, 30] {
        let warm = data(5_000, d, 3);
        let mut forest = Forest::new(d, cfg()).unwrap();
        for row in warm.outer_iter() {
            forest.update(row.as_slice().unwrap());
        }
        let stream = data(4096, d, 4);
        g.throughput(Throughput::Elements(stream.nrows() as u64));
        g.bench_with_input(BenchmarkId::new("1thread", d), &d, |b, _| {
            b.iter(|| {
                let mut s = 0.0;
                for row in stream.outer_iter() {
                    let p = row.as_slice().unwrap();
                    s += forest.score(p);
                    forest.update(p);
                }
                black_box(s)
            })
        });
    }
    g.finish();
}

fn bench_fit(c: &mut Criterion) {
    let mut g = c.benchmark_group("fit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(5));
    let rows = data(1_000_000, 8, 5);
    g.throughput(Throughput::Elements(rows.nrows() as u64));
    g.bench_function("1M_rows_d8", |b| {
        b.iter(|| black_box(Forest::fit(rows.view(), cfg()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_score, bench_update, bench_fit);
criterion_main!(benches);

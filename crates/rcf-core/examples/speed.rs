//! Quick throughput check (best of several runs, robust to a busy machine).
//! `cargo run --profile bench -p rcf-core --example speed`

use ndarray::Array2;
use rcf_core::{Forest, ForestConfig};
use std::time::Instant;

fn data(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let centers: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..d).map(|_| (next() * 10.0 - 5.0) as f32).collect())
        .collect();
    let mut out = Array2::zeros((n, d));
    for mut row in out.outer_iter_mut() {
        let c = &centers[(next() * 4.0) as usize % 4];
        for (v, &m) in row.iter_mut().zip(c) {
            let g: f64 = (0..4).map(|_| next()).sum::<f64>() - 2.0;
            *v = m + g as f32;
        }
    }
    out
}

fn best<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).collect();
    let want = |s: &str| which.is_empty() || which.iter().any(|w| s.contains(w.as_str()));
    let cfg = ForestConfig {
        num_trees: 100,
        num_samples_per_tree: 256,
        seed: 42,
        time_decay: 0.0,
    };
    for d in [8usize, 30] {
        let train = data(20_000, d, 1);
        let f = Forest::fit(train.view(), cfg.clone()).unwrap();
        let test = data(8192, d, 2);
        let n = test.nrows() as f64;
        if want("batch") {
            let t = best(7, || {
                std::hint::black_box(f.score_batch(test.view()));
            });
            println!("d={d} score_batch      {:>10.0} points/s", n / t);
        }
        if want("par") {
            let t = best(7, || {
                std::hint::black_box(f.score_batch_parallel(test.view(), 2));
            });
            println!("d={d} score_parallel2  {:>10.0} points/s", n / t);
        }
        if want("point") {
            let t = best(7, || {
                let mut s = 0.0;
                for r in test.outer_iter() {
                    s += f.score(r.as_slice().unwrap());
                }
                std::hint::black_box(s);
            });
            println!("d={d} score(point)     {:>10.0} points/s", n / t);
        }
        for (name, decay) in [("update", 0.0), ("decay", 1e-5)] {
            if !want(name) {
                continue;
            }
            let mut g = Forest::new(
                d,
                ForestConfig {
                    time_decay: decay,
                    ..cfg.clone()
                },
            )
            .unwrap();
            for r in data(3000, d, 3).outer_iter() {
                g.update(r.as_slice().unwrap());
            }
            let stream = data(4096, d, 4);
            let t = best(5, || {
                let mut s = 0.0;
                for r in stream.outer_iter() {
                    let p = r.as_slice().unwrap();
                    s += g.score(p);
                    g.update(p);
                }
                std::hint::black_box(s);
            });
            println!(
                "d={d} update+score (time_decay {decay}) {:>10.0} points/s",
                stream.nrows() as f64 / t
            );
        }
    }
    if want("fit") {
        let rows = data(1_000_000, 8, 5);
        let t = best(3, || {
            std::hint::black_box(Forest::fit(rows.view(), cfg.clone()).unwrap());
        });
        println!("fit 1M x 8         {:>10.3} s", t);
    }
}

use super::*;
use ndarray::Array2;

fn lcg_data(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg::new(seed, 99);
    Array2::from_shape_fn((n, d), |_| (rng.next_f64() * 2.0 - 1.0) as f32)
}

fn cfg(trees: usize, samples: usize, seed: u64) -> ForestConfig {
    ForestConfig {
        num_trees: trees,
        num_samples_per_tree: samples,
        seed,
        time_decay: 0.0,
    }
}

#[test]
fn fit_scores_and_outlier() {
    let data = lcg_data(2000, 5, 1);
    let f = Forest::fit(data.view(), cfg(50, 64, 3)).unwrap();
    for ts in &f.trees {
        ts.tree.check().unwrap();
        assert_eq!(ts.tree.mass, 64);
    }
    let s = f.score_batch(data.view());
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    assert!(mean > 0.5 && mean < 2.0, "mean {mean}");
    let out = f.score(&[10.0; 5]);
    assert!(out > 5.0, "outlier {out}");
}

#[test]
fn streaming_keeps_trees_valid() {
    let data = lcg_data(600, 3, 2);
    let mut f = Forest::new(3, cfg(50, 32, 4)).unwrap();
    assert_eq!(f.score(&[0.0; 3]), 0.0);
    for row in data.outer_iter() {
        f.update(row.as_slice().unwrap());
    }
    for ts in &f.trees {
        ts.tree.check().unwrap();
        assert_eq!(ts.heap.len(), 32);
        assert_eq!(ts.tree.mass, 32);
    }
}

//! Public-API tests: validation errors, outliers, determinism, serialisation robustness.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rcf_core::{DiVector, Forest, ForestConfig, RcfError, Shingle};

fn blob(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        (0..3).map(|_| rng.random::<f32>()).sum::<f32>() - 1.5
    })
}

fn cfg(seed: u64) -> ForestConfig {
    ForestConfig {
        num_trees: 50,
        num_samples_per_tree: 64,
        seed,
        time_decay: 0.0,
    }
}

#[test]
fn defaults_and_validation_messages() {
    let c = ForestConfig::default();
    assert_eq!(
        (c.num_trees, c.num_samples_per_tree, c.time_decay),
        (100, 256, 0.0)
    );
    assert!(c.validate().is_ok());
    let e = ForestConfig {
        num_trees: 49,
        ..c.clone()
    }
    .validate()
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("num_trees") && m.contains("50") && m.contains("1000") && m.contains("49"),
        "{m}"
    );
    let e = ForestConfig {
        num_samples_per_tree: 4096,
        ..c.clone()
    }
    .validate()
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("num_samples_per_tree") && m.contains("2048") && m.contains("4096"),
        "{m}"
    );
    let e = ForestConfig {
        time_decay: -1.0,
        ..c.clone()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("time_decay"));
    assert!(ForestConfig {
        num_trees: 1000,
        num_samples_per_tree: 1,
        ..c
    }
    .validate()
    .is_ok());
}

#[test]
fn fit_rejects_bad_data() {
    let empty = Array2::<f32>::zeros((0, 3));
    assert!(matches!(
        Forest::fit(empty.view(), cfg(0)),
        Err(RcfError::NoRows)
    ));
    let nodim = Array2::<f32>::zeros((5, 0));
    assert!(matches!(
        Forest::fit(nodim.view(), cfg(0)),
        Err(RcfError::NoDimensions)
    ));
    let mut bad = blob(10, 2, 0);
    bad[[7, 1]] = f32::NAN;
    let e = Forest::fit(bad.view(), cfg(0)).unwrap_err();
    assert!(
        matches!(
            e,
            RcfError::NonFinite {
                row: 7,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("row 7"));
    assert!(Forest::new(0, cfg(0)).is_err());
    let f = Forest::new(2, cfg(0)).unwrap();
    assert!(matches!(
        f.try_score(&[1.0]),
        Err(RcfError::DimensionMismatch {
            expected: 2,
            got: 1
        })
    ));
    let mut f = f;
    assert!(f.try_update(&[1.0, f32::INFINITY]).is_err());
    assert_eq!(f.points_seen(), 0);
}

#[test]
fn empty_forest_scores_zero() {
    let f = Forest::new(4, cfg(1)).unwrap();
    assert_eq!(f.score(&[0.0; 4]), 0.0);
    assert_eq!(f.attribution(&[0.0; 4]), DiVector::zeros(4));
    assert_eq!(f.score_batch(Array2::zeros((3, 4)).view()), vec![0.0; 3]);
}

#[test]
fn obvious_outlier_outscores_every_inlier() {
    let data = blob(1000, 4, 3);
    let f = Forest::fit(data.view(), cfg(5)).unwrap();
    let scores = f.score_batch(data.view());
    let worst = scores.iter().cloned().fold(0.0, f64::max);
    let out = f.score(&[8.0, -8.0, 8.0, 8.0]);
    assert!(out > worst, "outlier {out} vs max inlier {worst}");
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!((0.5..2.0).contains(&mean), "mean inlier score {mean}");
    // attribution points at the displaced dimension and direction
    let a = f.attribution(&[0.0, 0.0, 9.0, 0.0]);
    let per = a.per_dim();
    assert!(per[2] > 0.8 * a.total(), "{per:?}");
    assert!(a.high[2] > a.low[2]);
    let b = f.attribution(&[-9.0, 0.0, 0.0, 0.0]);
    assert!(b.low[0] > 0.8 * b.total());
}

#[test]
fn deterministic_across_runs_and_threads() {
    let data = blob(700, 3, 8);
    let a = Forest::fit(data.view(), cfg(11)).unwrap();
    let b = Forest::fit(data.view(), cfg(11)).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    let c = Forest::fit(data.view(), cfg(12)).unwrap();
    assert_ne!(a.to_bytes(), c.to_bytes());
    let queries = blob(300, 3, 9);
    let single = a.score_batch(queries.view());
    for (i, row) in queries.outer_iter().enumerate() {
        assert_eq!(
            single[i].to_bits(),
            a.score(row.as_slice().unwrap()).to_bits()
        );
    }
    for t in [0, 1, 2, 3, 7, 64] {
        let par = a.score_batch_parallel(queries.view(), t);
        assert!(
            single
                .iter()
                .zip(&par)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "threads {t}"
        );
    }
    // non-contiguous views score the same
    let t = queries.t().to_owned();
    let tt = t.t();
    assert_eq!(a.score_batch(tt), single);
    // streaming is deterministic too
    let mut s1 = Forest::new(3, cfg(4)).unwrap();
    let mut s2 = Forest::new(3, cfg(4)).unwrap();
    for row in data.outer_iter() {
        s1.update(row.as_slice().unwrap());
        s2.update(row.as_slice().unwrap());
    }
    assert_eq!(s1.to_bytes(), s2.to_bytes());
}

#[test]
fn serialisation_detects_damage() {
    let data = blob(200, 3, 1);
    let f = Forest::fit(
        data.view(),
        ForestConfig {
            num_samples_per_tree: 16,
            ..cfg(2)
        },
    )
    .unwrap();
    let bytes = f.to_bytes();
    let g = Forest::from_bytes(&bytes).unwrap();
    for row in data.outer_iter().take(20) {
        let p = row.as_slice().unwrap();
        assert_eq!(f.score(p).to_bits(), g.score(p).to_bits());
        assert_eq!(f.attribution(p), g.attribution(p));
    }
    // every truncation is an error
    let step = (bytes.len() / 300).max(1);
    for len in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        assert!(
            Forest::from_bytes(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    // any flipped byte is an error (magic, version, length, checksum or payload)
    for pos in (0..bytes.len())
        .step_by(step)
        .chain([8, 12, bytes.len() - 1])
    {
        let mut b = bytes.clone();
        b[pos] ^= 0x5a;
        assert!(Forest::from_bytes(&b).is_err(), "flip at {pos}");
    }
    let mut v = bytes.clone();
    v[8] = 99;
    assert!(matches!(
        Forest::from_bytes(&v),
        Err(RcfError::UnsupportedVersion { found: 99, .. })
    ));
    assert!(matches!(
        Forest::from_bytes(b"hello world, not a model"),
        Err(RcfError::BadMagic)
    ));
    assert!(matches!(
        Forest::from_bytes(&bytes[..bytes.len() - 3]),
        Err(RcfError::Truncated { .. })
    ));
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(Forest::from_bytes(&extra).is_err());
    let mut c = bytes.clone();
    let mid = c.len() / 2;
    c[mid] ^= 1;
    let e = Forest::from_bytes(&c).unwrap_err();
    assert!(matches!(e, RcfError::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains("corrupt"));
}

#[test]
fn forest_is_send_sync_clone_debug() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Forest>();
    let f = Forest::new(2, cfg(0)).unwrap();
    let s = format!("{f:?}");
    assert!(s.contains("Forest") && s.len() < 500);
    assert!(f.memory_bytes() > 0);
}

#[test]
fn shingled_stream_flags_a_level_shift() {
    let mut sh = Shingle::new(1, 4);
    let mut f = Forest::new(
        4,
        ForestConfig {
            num_samples_per_tree: 64,
            ..cfg(3)
        },
    )
    .unwrap();
    let mut last = 0.0;
    let mut normal_max: f64 = 0.0;
    for t in 0..600 {
        let v = ((t as f32) * 0.3).sin() + if t == 590 { 6.0 } else { 0.0 };
        if let Some(x) = sh.push(&[v]) {
            let x = x.to_vec();
            let s = f.score(&x);
            if t > 200 && t < 590 {
                normal_max = normal_max.max(s);
            }
            if t == 590 {
                last = s;
            }
            f.update(&x);
        }
    }
    assert!(last > normal_max, "spike {last} vs normal max {normal_max}");
}

/// FNV-1a 64, as documented for the model format's checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[test]
fn forged_checksums_never_panic() {
    // damage the payload and then fix the checksum: the structural validation must reject
    // (or, for harmless changes such as a weight, accept) without ever panicking
    let data = blob(120, 2, 4);
    let f = Forest::fit(
        data.view(),
        ForestConfig {
            num_samples_per_tree: 8,
            ..cfg(1)
        },
    )
    .unwrap();
    let bytes = f.to_bytes();
    let n = bytes.len();
    let mut rng = Pcg64Mcg::seed_from_u64(9);
    let mut rejected = 0;
    for _ in 0..3000 {
        let mut b = bytes.clone();
        let pos = rng.random_range(20..n - 8);
        b[pos] = rng.random();
        let h = fnv1a64(&b[..n - 8]);
        b[n - 8..].copy_from_slice(&h.to_le_bytes());
        match Forest::from_bytes(&b) {
            Err(e) => {
                assert!(!e.to_string().is_empty());
                rejected += 1;
            }
            Ok(mut g) => {
                for row in data.outer_iter().take(5) {
                    let p = row.as_slice().unwrap();
                    let s = g.score(p);
                    assert!(s.is_finite() || s.is_nan());
                    g.attribution(p);
                    g.update(p);
                }
            }
        }
    }
    assert!(rejected > 1000, "only {rejected} rejected");
}

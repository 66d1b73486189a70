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

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Points on a coarse grid (so duplicates happen) in `d` dimensions.
    fn points(d: usize, max: usize) -> impl Strategy<Value = Vec<Vec<f32>>> {
        prop::collection::vec(prop::collection::vec(-4i32..4, d), 1..max).prop_map(|v| {
            v.into_iter()
                .map(|p| p.into_iter().map(|x| x as f32 * 0.5).collect())
                .collect()
        })
    }

    fn to_array(pts: &[Vec<f32>]) -> Array2<f32> {
        let d = pts[0].len();
        Array2::from_shape_vec((pts.len(), d), pts.concat()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Boxes equal the union of their children (so contain every point below), masses add
        /// up, leaf masses match the sampler, after fit and after every streaming update.
        #[test]
        fn boxes_and_masses_stay_consistent(pts in points(3, 60), seed in 0u64..1000, decay in prop::sample::select(vec![0.0, 0.05])) {
            let mut f = Forest::new(3, ForestConfig { num_trees: 50, num_samples_per_tree: 8, seed, time_decay: decay }).unwrap();
            for p in &pts {
                f.update(p);
                for ts in &f.trees {
                    prop_assert!(ts.tree.check().is_ok(), "{:?}", ts.tree.check());
                    prop_assert_eq!(ts.heap.len() as u32, ts.tree.mass);
                }
            }
            let g = Forest::fit(to_array(&pts).view(), ForestConfig { num_trees: 50, num_samples_per_tree: 8, seed, time_decay: decay }).unwrap();
            for ts in &g.trees {
                prop_assert!(ts.tree.check().is_ok(), "{:?}", ts.tree.check());
                prop_assert_eq!(ts.tree.mass as usize, pts.len().min(8));
            }
        }

        /// Inserting a point then deleting it restores the same structure and boxes.
        #[test]
        fn insert_then_delete_restores(pts in points(2, 40), extra in prop::collection::vec(-5i32..5, 2), seed in 0u64..1000) {
            let data = to_array(&pts);
            let mut tree = Tree::new(2);
            let mut rng = Pcg::new(seed, 0);
            tree.build(data.as_slice().unwrap(), &mut rng);
            let before = tree.canonical();
            let x: Vec<f32> = extra.iter().map(|&v| v as f32 * 0.5).collect();
            let leaf = tree.insert(&x, &mut rng);
            prop_assert!(tree.check().is_ok());
            tree.delete(leaf);
            prop_assert!(tree.check().is_ok());
            prop_assert_eq!(before, tree.canonical());
        }

        /// Scores are finite and non-negative; attribution sums to the score.
        #[test]
        fn scores_finite_and_attribution_sums(pts in points(3, 50), q in prop::collection::vec(-8.0f32..8.0, 3), seed in 0u64..1000) {
            let f = Forest::fit(to_array(&pts).view(), ForestConfig { num_trees: 50, num_samples_per_tree: 16, seed, time_decay: 0.0 }).unwrap();
            let mut queries = pts.clone();
            queries.push(q);
            for p in &queries {
                let s = f.score(p);
                prop_assert!(s.is_finite() && s >= 0.0, "score {}", s);
                let a = f.attribution(p);
                prop_assert!(a.high.iter().chain(&a.low).all(|v| v.is_finite() && *v >= 0.0));
                prop_assert!((a.total() - s).abs() <= 1e-9 * s.max(1e-12), "{} vs {}", a.total(), s);
            }
        }

        /// Serialisation round trip keeps scores and the continuation of the stream identical.
        #[test]
        fn round_trip_identical(pts in points(2, 40), seed in 0u64..1000) {
            let mut f = Forest::new(2, ForestConfig { num_trees: 50, num_samples_per_tree: 8, seed, time_decay: 0.01 }).unwrap();
            let half = pts.len() / 2;
            for p in &pts[..half] { f.update(p); }
            let bytes = f.to_bytes();
            let mut g = Forest::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&g.to_bytes(), &bytes);
            for p in &pts[half..] {
                prop_assert_eq!(f.score(p).to_bits(), g.score(p).to_bits());
                f.update(p);
                g.update(p);
            }
            prop_assert_eq!(f.to_bytes(), g.to_bytes());
        }
    }
}

#[test]
fn uniform_reservoir_is_uniform() {
    // each of 40 positions should be sampled by about 8/40 of the trees
    let n = 40;
    let data = Array2::from_shape_fn((n, 1), |(i, _)| i as f32);
    let mut counts = vec![0usize; n];
    let mut total = 0;
    for seed in 0..20 {
        let f = Forest::fit(data.view(), cfg(50, 8, seed)).unwrap();
        for ts in &f.trees {
            for l in 0..ts.tree.leaf_mass.len() {
                if ts.tree.leaf_mass[l] > 0 {
                    counts[ts.tree.leaf_point(l)[0] as usize] += 1;
                    total += 1;
                }
            }
        }
    }
    let expect = total as f64 / n as f64;
    for (i, &c) in counts.iter().enumerate() {
        assert!(
            (c as f64 - expect).abs() < 5.0 * expect.sqrt(),
            "row {i}: {c} vs {expect}"
        );
    }
}

#[test]
fn time_decay_favours_recent_points() {
    let n = 2000;
    let mut f = Forest::new(
        1,
        ForestConfig {
            num_trees: 50,
            num_samples_per_tree: 16,
            seed: 1,
            time_decay: 0.01,
        },
    )
    .unwrap();
    for i in 0..n {
        f.update(&[i as f32]);
    }
    let mut mean = 0.0;
    let mut k = 0.0;
    for ts in &f.trees {
        for l in 0..ts.tree.leaf_mass.len() {
            if ts.tree.leaf_mass[l] > 0 {
                mean += ts.tree.leaf_point(l)[0] as f64;
                k += 1.0;
            }
        }
    }
    mean /= k;
    // with λ = 0.01 the sample concentrates on the last few hundred points
    assert!(mean > (n - 400) as f64, "mean sampled index {mean}");
}

#[test]
fn single_point_and_duplicate_trees() {
    let data = Array2::from_elem((10, 2), 1.5f32);
    let f = Forest::fit(data.view(), cfg(50, 4, 0)).unwrap();
    for ts in &f.trees {
        ts.tree.check().unwrap();
        assert_eq!(ts.tree.nodes.len(), 0);
    }
    let s_seen = f.score(&[1.5, 1.5]);
    let s_new = f.score(&[3.0, 1.5]);
    assert!(s_seen.is_finite() && s_new > s_seen);
    assert!((f.attribution(&[1.5, 1.5]).total() - s_seen).abs() < 1e-12);
    assert!((f.attribution(&[3.0, 1.5]).total() - s_new).abs() < 1e-12);
    // streaming deletes down to empty and back
    let mut g = Forest::new(2, cfg(50, 1, 0)).unwrap();
    for i in 0..20 {
        g.update(&[i as f32, 0.0]);
        for ts in &g.trees {
            ts.tree.check().unwrap();
            assert_eq!(ts.tree.mass, 1);
        }
    }
}

#[test]
fn duplicate_attribution_points_at_the_odd_dimension() {
    // a cluster around 0 plus a repeated far point in dimension 1: scoring the far point
    // itself (it is in the sample) should still be explained by dimension 1
    let mut rows = Vec::new();
    let mut rng = Pcg::new(5, 5);
    for _ in 0..300 {
        rows.extend([
            rng.next_f64() as f32,
            rng.next_f64() as f32,
            rng.next_f64() as f32,
        ]);
    }
    rows.extend([0.5, 9.0, 0.5]);
    let data = Array2::from_shape_vec((301, 3), rows).unwrap();
    let f = Forest::fit(data.view(), cfg(50, 400, 1)).unwrap();
    let p = [0.5f32, 9.0, 0.5];
    let a = f.attribution(&p);
    let s = f.score(&p);
    assert!((a.total() - s).abs() < 1e-9 * s);
    assert!(a.high[1] > 0.9 * s, "{a:?} score {s}");
}

#[test]
fn simd_kernel_is_bit_identical() {
    let mut rng = Pcg::new(77, 1);
    for d in 1..=40 {
        for _ in 0..50 {
            let mut v = || ((rng.next_f64() - 0.5) * 8.0).round() as f32 * 0.25;
            let lo: Vec<f32> = (0..d).map(|_| v()).collect();
            let hi: Vec<f32> = lo.iter().map(|&a| a + v().abs()).collect();
            let x: Vec<f32> = (0..d).map(|_| v() * 1.5).collect();
            let a = tree::outside(&lo, &hi, &x);
            let b = tree::outside_k::<false>(&lo, &hi, &x);
            assert_eq!(a.to_bits(), b.to_bits());
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let c = tree::outside_k::<true>(&lo, &hi, &x);
                assert_eq!(a.to_bits(), c.to_bits(), "d={d}");
            }
        }
    }
    // A cherry's box, given as its two points, against the same box written down.
    for d in 1..=40 {
        for _ in 0..50 {
            let mut v = || ((rng.next_f64() - 0.5) * 8.0).round() as f32 * 0.25;
            let a: Vec<f32> = (0..d).map(|_| v()).collect();
            let b: Vec<f32> = (0..d).map(|_| v()).collect();
            let x: Vec<f32> = (0..d).map(|_| v() * 1.5).collect();
            let lo: Vec<f32> = a.iter().zip(&b).map(|(p, q)| p.min(*q)).collect();
            let hi: Vec<f32> = a.iter().zip(&b).map(|(p, q)| p.max(*q)).collect();
            let want = tree::outside(&lo, &hi, &x);
            assert_eq!(
                want.to_bits(),
                tree::outside_pair_k::<false>(&a, &b, &x).to_bits()
            );
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let got = tree::outside_pair_k::<true>(&a, &b, &x);
                assert_eq!(want.to_bits(), got.to_bits(), "d={d}");
            }
        }
    }
    // The leaf comparison: equal points, one coordinate changed at every position (the
    // vector blocks and the scalar tail), and -0 against 0 (equal, as f32 `==` says).
    for d in 1..=40 {
        let a: Vec<f32> = (0..d).map(|i| i as f32 * 0.5 - 3.0).collect();
        let mut b = a.clone();
        assert!(tree::same_point::<false>(&a, &b));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            assert!(tree::same_point::<true>(&a, &b), "d={d}");
            for i in 0..d {
                b[i] += 0.25;
                assert!(!tree::same_point::<true>(&a, &b), "d={d} i={i}");
                b[i] = a[i];
            }
            let zeros = vec![0.0f32; d];
            let negs = vec![-0.0f32; d];
            assert!(tree::same_point::<true>(&zeros, &negs), "d={d}");
        }
    }
    let data = lcg_data(500, 13, 3);
    let f = Forest::fit(data.view(), cfg(50, 64, 2)).unwrap();
    for row in data.outer_iter().take(50) {
        let p = row.as_slice().unwrap();
        let g = f.score_generic::<false>(p);
        assert_eq!(g.to_bits(), f.score(p).to_bits());
    }
}

/// The reference visitor, written the reference's way: descend to the leaf, then update the
/// score bottom-up with the separation probability of each box, stopping once inside.
fn reference_tree_score(t: &Tree, x: &[f32]) -> f64 {
    use tree::{LEAF, NIL};
    let mut path = Vec::new();
    let mut cur = t.root;
    while cur & LEAF == 0 {
        path.push(cur as usize);
        let n = t.nodes[cur as usize];
        cur = if x[n.cut_dim as usize] <= n.cut_val {
            n.child[0]
        } else {
            n.child[1]
        };
    }
    assert_ne!(cur, NIL);
    let l = (cur & !LEAF) as usize;
    let depth = path.len() as f64;
    let tree_mass = t.mass as f64;
    let mut score;
    let mut converged = false;
    if t.leaf_point(l) == x {
        let m = t.leaf_mass[l] as f64;
        score = (1.0 - m / (2.0 * tree_mass)) * (1.0 / (depth + (1.0 + m).log2()));
        converged = true;
    } else {
        score = 1.0 / (depth + 1.0);
    }
    for (k, &n) in path.iter().enumerate().rev() {
        if converged {
            break;
        }
        let bx = t.node_box(n);
        let mut new_range = 0.0f64;
        let mut diff = 0.0f64;
        for (i, &xi) in x.iter().enumerate() {
            let (a, b) = (bx.lo(i) as f64, bx.hi(i) as f64);
            let (na, nb) = (a.min(xi as f64), b.max(xi as f64));
            new_range += nb - na;
            diff += (nb - na) - (b - a);
        }
        let p = diff / new_range;
        if p == 0.0 {
            converged = true;
        } else {
            score = p * (1.0 / (k as f64 + 1.0)) + (1.0 - p) * score;
        }
    }
    score * (1.0 + tree_mass).log2()
}

#[test]
fn matches_a_bottom_up_reference_visitor() {
    let data = lcg_data(800, 4, 12);
    let mut f = Forest::fit(data.view(), cfg(50, 128, 8)).unwrap();
    let queries = lcg_data(100, 4, 13).mapv(|v| v * 1.7);
    let check = |f: &Forest| {
        for row in queries.outer_iter().chain(data.outer_iter().take(100)) {
            let x = row.as_slice().unwrap();
            let want: f64 = f
                .trees
                .iter()
                .map(|t| reference_tree_score(&t.tree, x))
                .sum::<f64>()
                / f.trees.len() as f64;
            let got = f.score(x);
            assert!((want - got).abs() <= 1e-6 * want, "{want} vs {got}");
        }
        // Batch scoring walks a block of points a level at a time: the same values, to the bit.
        let point_by_point: Vec<f64> = queries
            .outer_iter()
            .map(|r| f.score(r.as_slice().unwrap()))
            .collect();
        assert_eq!(f.score_batch(queries.view()), point_by_point);
        // A few rows take the point-by-point path: still the same values.
        let few = queries.slice(ndarray::s![..5, ..]);
        assert_eq!(f.score_batch(few), point_by_point[..5]);
    };
    check(&f);
    for row in lcg_data(300, 4, 14).outer_iter() {
        f.update(row.as_slice().unwrap());
    }
    check(&f);
}

/// A node whose children are both leaves (a cherry) stores no box: about a third of a random
/// tree's nodes, so the box array is about two thirds of one box per node, and stays exact
/// (no slot unused) after fit.
#[test]
fn cherries_store_no_box() {
    let data = lcg_data(5000, 6, 9);
    let f = Forest::fit(data.view(), cfg(50, 256, 3)).unwrap();
    for ts in &f.trees {
        let t = &ts.tree;
        let cherries = (0..t.nodes.len()).filter(|&n| t.is_cherry(n)).count();
        let boxes = t.bounds.len() / (2 * t.dim);
        assert_eq!(boxes + cherries, t.nodes.len());
        assert!(t.free_slots.is_empty() && t.bounds.capacity() == t.bounds.len());
        assert!(
            (60..=110).contains(&cherries),
            "{cherries} cherries of {}",
            t.nodes.len()
        );
    }
}

#[test]
fn walk_stats_count_the_descent_and_the_climb() {
    // Every row is in every tree's sample: each lands on its own leaf and climbs no box.
    let data = lcg_data(200, 4, 5);
    let f = Forest::fit(data.view(), cfg(50, 256, 1)).unwrap();
    let seen = f.walk_stats(data.view());
    assert_eq!(seen.boxes_compared, 0.0);
    // 200 leaves need a depth of at least log2(200) on average.
    assert!(seen.nodes_descended >= 200f64.log2(), "{seen:?}");
    // A point outside all data is outside every box on its path.
    let far = Array2::from_elem((1, 4), 50.0f32);
    let out = f.walk_stats(far.view());
    assert_eq!(out.boxes_compared, out.nodes_descended);
    // The first box above a leaf is a cherry's in some trees (read as the sibling's point, 16
    // bytes and its range), never one above it.
    assert!(out.pair_boxes > 0.0 && out.pair_boxes < 1.0, "{out:?}");
    assert_eq!(
        out.bytes_per_tree,
        out.nodes_descended * 10.0
            + (out.boxes_compared - out.pair_boxes) * (2.0 * 4.0 * 4.0 + 8.0)
            + out.pair_boxes * (4.0 * 4.0 + 8.0)
            + 16.0
    );
    // A point between the data (not a sample) stops climbing before the root.
    let mid = Array2::from_elem((1, 4), 0.01f32);
    let m = f.walk_stats(mid.view());
    assert!(
        m.boxes_compared > 0.0 && m.boxes_compared < m.nodes_descended,
        "{m:?}"
    );
}

#[test]
fn benchmark_parts_measure_the_same_work_as_the_score() {
    let data = lcg_data(400, 5, 8);
    let f = Forest::fit(data.view(), cfg(50, 64, 2)).unwrap();
    // The descent alone reaches the depths the walk counts (400 rows: whole lane groups).
    let stats = f.walk_stats(data.view());
    let total = f.descend_batch(data.view()) as f64;
    assert_eq!(total, (stats.nodes_descended * 400.0 * 50.0).round());
    // The box step is the distance outside each box, summed.
    let boxes = [0.0f32, 0.0, 1.0, 1.0, -1.0, 2.0, 0.5, 3.0];
    let points = [2.0f32, 0.5, -3.0, -3.0];
    let want = 1.0 + (1.5 + 1.5) + (3.0 + 3.0) + (2.0 + 5.0);
    assert_eq!(box_distance_sum(&boxes, &points, 2), want);
}

/// `bytes` with the little-endian `u32` at `at` replaced and the checksum recomputed, so only
/// the decoder's own checks can refuse it.
fn patched(bytes: &[u8], at: usize, v: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let end = b.len() - 8;
    let h = crate::format::fnv1a64(&b[..end]);
    b[end..].copy_from_slice(&h.to_le_bytes());
    b
}

#[test]
fn a_stored_reference_beyond_sixteen_bits_is_refused() {
    let f = Forest::fit(lcg_data(100, 3, 8).view(), cfg(50, 64, 3)).unwrap();
    let bytes = f.to_bytes();
    // The first tree's root: header (20), seven 8-byte settings, the generator state (16).
    let at = 20 + 7 * 8 + 16;
    let root = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(
        Forest::from_bytes(&patched(&bytes, at, root))
            .unwrap()
            .to_bytes(),
        bytes
    );
    for bad in [40_000u32, (1 << 31) | 40_000, 1 << 20] {
        let err = Forest::from_bytes(&patched(&bytes, at, bad)).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{bad}: {err}");
    }
}

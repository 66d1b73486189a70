//! # rcf-core: a Random Cut Forest engine
//!
//! Batch and streaming Random Cut Forests (Guha, Mishra, Roy, Schrijvers, "Robust Random Cut
//! Forest Based Anomaly Detection on Streams", ICML 2016) with the anomaly score of AWS's
//! open-source library (`random-cut-forest-by-aws`, the implementation behind SageMaker's
//! built-in RCF), per-dimension attribution, time-decayed reservoir sampling, shingling and a
//! versioned, checksummed binary format. Pure computation: no I/O, no logging, no global state.
//!
//! ## Trees
//!
//! Each tree keeps its own sample of the data. A tree is built by random cuts: on a bounding
//! box, the cut dimension `i` is chosen with probability `(max_i - min_i) / Σ_j (max_j - min_j)`
//! and the cut value uniformly in `[min_i, max_i)`; points with `x_i <= cut` go left. Streaming
//! insertion follows Guha et al. (a random cut on the box extended by the new point; if it
//! separates the point from the subtree a new node is created there, otherwise the box is
//! extended and the insertion descends); deletion removes the leaf (or lowers its mass: equal
//! points share a leaf with a mass count, as in the reference) and shrinks ancestor boxes.
//!
//! ## Sampling
//!
//! A point arriving at sequence index `t` gets, in each tree, the weight
//! `w = -λ·t + ln(-ln u)` with `u` uniform in (0, 1) drawn from the tree's own generator and
//! `λ = time_decay`; each tree keeps the `num_samples_per_tree` points of smallest weight (the
//! reference `CompactSampler` rule). With `λ = 0` this is a uniform reservoir; `λ > 0` favours
//! recent points. Batch [`Forest::fit`] makes one pass over the rows with this rule, then builds
//! every tree from its sample by recursive random cuts.
//!
//! ## Anomaly score (the formula implemented)
//!
//! The reference `AnomalyScoreVisitor` (Java `com.amazon.randomcutforest.anomalydetection`,
//! Rust `visitor/scalarscorevisitor.rs`) with the default functions of `CommonUtils`:
//!
//! * `scoreSeen(depth, mass) = 1 / (depth + log2(mass + 1))`
//! * `scoreUnseen(depth, mass) = 1 / (depth + 1)`
//! * `damp(leafMass, treeMass) = 1 - leafMass / (2 · treeMass)`
//! * `normalizer(score, treeMass) = score · log2(treeMass + 1)`
//!
//! For a point `x` the visitor descends to the leaf `x` would reach (root at depth 0). At the
//! leaf (depth `h`, mass `m`): `S_h = damp(m, M) · scoreSeen(h, m)` if the leaf's point equals
//! `x`, otherwise `S_h = scoreUnseen(h)`. Going back up, each internal node `k` at depth `k`
//! with box `B_k` contributes through the probability that a random cut of `B_k ∪ {x}`
//! separates `x` from `B_k`,
//!
//! `p_k = Σ_i (max(0, min_i - x_i) + max(0, x_i - max_i)) / Σ_i (max(max_i, x_i) - min(min_i, x_i))`,
//!
//! as `S_k = p_k · scoreUnseen(k) + (1 - p_k) · S_{k+1}`. The tree score is
//! `normalizer(S_0, M)` with `M` the tree's mass, and the forest score is the average over the
//! non-empty trees (0 for an empty forest). This crate evaluates the recurrence as written:
//! a descent that reads only the cuts, then the climb from the leaf, which stops at the first
//! box that contains `x` (every ancestor's box contains that one, so `p = 0` from there up),
//! carrying `S` as a fraction so that a level costs multiplications and the climb one
//! division. The point is not inserted. A point inside every box on its path that is not in the
//! sample scores `log2(M + 1) / (h + 1)`, about 1 for typical points at 256 samples; a point
//! far from all data scores close to `log2(M + 1)` (8.0 at 256 samples).
//!
//! ## Attribution
//!
//! [`Forest::attribution`] splits the same sum into directions (the reference
//! `AnomalyAttributionVisitor`): at node `k` the term `p_k / (k + 1)` is shared among the
//! dimensions in proportion to how far `x` lies outside the box in each, into `high[i]` when
//! `x_i > max_i` and `low[i]` when `x_i < min_i`; the leaf term is shared in proportion to
//! `|x_i - leaf_i|`. When `x` equals the leaf point (it is in the sample) the tree's score
//! is the "seen" score; its direction comes, as in the reference, from "shadow boxes" (going
//! up from the leaf, the union of the sibling subtrees' boxes, i.e. the tree without `x`),
//! rescaled to sum to that score (spread evenly over the `2·d` entries when `x` lies inside
//! every shadow box). So `Σ_i high[i] + low[i] == score(x)` up to rounding.
//!
//! ## Model format
//!
//! [`Forest::to_bytes`] writes `"RCFOREST"`, the format version ([`MODEL_FORMAT_VERSION`],
//! u32), the payload length (u64), the payload (configuration, stream position, and per tree
//! its generator state, nodes, boxes, leaves and sampler) and an FNV-1a 64-bit checksum of
//! everything before it, all little endian. [`Forest::from_bytes`] checks the signature,
//! version, length, checksum, then every structural invariant (links, masses, boxes equal to
//! the union of their children, cuts between their children, sampler entries matching leaf
//! masses), so a damaged model is an error, never a panic or a silently wrong score. A
//! round trip is exact: scores, attribution and the continuation of a stream are
//! bit-identical.
//!
//! ## Speed
//!
//! Nodes are 24-byte records in a flat array (the descent reads 12 bytes of each: the cut and
//! both children, indexed by the comparison, so a level has no branch) with each box stored
//! as contiguous `[min.., max..]` f32 values, read only on the climb. A tree holds at most
//! 2048 samples, so node and leaf references and masses are 16-bit in memory (the file keeps
//! 32-bit fields, and the loader refuses a reference beyond 16 bits). Walks move a level at a
//! time: a pass takes every walk still inside its tree one step down, and the walks that
//! reached a leaf leave the front by compaction, without a branch, so the steps of a pass
//! are independent and their memory reads overlap (all points of a block down one tree in
//! [`Forest::score_batch`], one point down every tree in [`Forest::score`]). Each walk then
//! climbs from its leaf, unless the point is the leaf's own point (a vector compare, asked
//! first: a training row scored against a tree that sampled it reads no box), and stops at
//! the first box that holds the point. Scoring allocates a few words per walk per call, never
//! per point and tree, and uses an AVX2 kernel for the box distance when the CPU has it
//! (with the same operation order as the portable code, so results do not depend on the
//! CPU).
//! [`Forest::walk_stats`] reports the work per point and tree: nodes descended, boxes
//! compared and bytes read.
//!
//! ## Determinism
//!
//! Tree `t` draws from its own PCG generator seeded from `(seed, t)` by SplitMix64; nothing
//! uses a global or thread-local generator. Scores are sums over trees in tree order, so
//! batch and parallel scoring return bit-identical values whatever the thread count.

mod error;
mod format;
mod rng;
mod shingle;
mod tree;

pub use error::RcfError;

/// Version of the binary model format written by [`Forest::to_bytes`].
pub const MODEL_FORMAT_VERSION: u32 = format::FORMAT_VERSION;
pub use shingle::Shingle;

use ndarray::ArrayView2;
use rng::Pcg;
use tree::{Tree, Walks, NIL};

// A tree's references are 16-bit: its leaves and nodes (one more than the sample while a point
// is inserted before the eviction) must fit.
const _: () = assert!(ForestConfig::MAX_SAMPLES + 2 < tree::MAX_REFS);

/// Benchmark support: the climb's step alone. For each box `i` of `boxes` (`2·d` values each,
/// `[min.., max..]` as a tree stores them) and each point of `points` (`d` values each), how
/// far the point lies outside the box, summed; compiled like the scoring loops (the AVX2
/// kernel inlined when the CPU has it).
#[doc(hidden)]
pub fn box_distance_sum(boxes: &[f32], points: &[f32], d: usize) -> f64 {
    #[inline(always)]
    fn run<const AVX: bool>(boxes: &[f32], points: &[f32], d: usize) -> f64 {
        let mut total = 0.0f64;
        for x in points.chunks_exact(d) {
            for b in boxes.chunks_exact(2 * d) {
                total += tree::outside_k::<AVX>(&b[..d], &b[d..], x) as f64;
            }
        }
        total
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(boxes: &[f32], points: &[f32], d: usize) -> f64 {
            run::<true>(boxes, points, d)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(boxes, points, d) };
        }
    }
    run::<false>(boxes, points, d)
}

/// Hyperparameters (SageMaker's names).
#[derive(Clone, Debug, PartialEq)]
pub struct ForestConfig {
    /// `num_trees`: 50..=1000, default 100.
    pub num_trees: usize,
    /// `num_samples_per_tree`: 1..=2048, default 256.
    pub num_samples_per_tree: usize,
    /// Seed of every random choice (sampling and cuts).
    pub seed: u64,
    /// Time decay λ of the sampler: 0 = uniform reservoir (default); must be finite and ≥ 0.
    pub time_decay: f64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            num_trees: 100,
            num_samples_per_tree: 256,
            seed: 0,
            time_decay: 0.0,
        }
    }
}

impl ForestConfig {
    pub const MIN_TREES: usize = 50;
    pub const MAX_TREES: usize = 1000;
    pub const MIN_SAMPLES: usize = 1;
    pub const MAX_SAMPLES: usize = 2048;

    /// Check every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), RcfError> {
        if !(Self::MIN_TREES..=Self::MAX_TREES).contains(&self.num_trees) {
            return Err(RcfError::InvalidHyperparameter {
                name: "num_trees",
                allowed: format!(
                    "an integer between {} and {} (inclusive)",
                    Self::MIN_TREES,
                    Self::MAX_TREES
                ),
                value: self.num_trees.to_string(),
            });
        }
        if !(Self::MIN_SAMPLES..=Self::MAX_SAMPLES).contains(&self.num_samples_per_tree) {
            return Err(RcfError::InvalidHyperparameter {
                name: "num_samples_per_tree",
                allowed: format!(
                    "an integer between {} and {} (inclusive)",
                    Self::MIN_SAMPLES,
                    Self::MAX_SAMPLES
                ),
                value: self.num_samples_per_tree.to_string(),
            });
        }
        if !(self.time_decay.is_finite() && self.time_decay >= 0.0) {
            return Err(RcfError::InvalidHyperparameter {
                name: "time_decay",
                allowed: "a finite number >= 0 (0 means a uniform reservoir)".into(),
                value: self.time_decay.to_string(),
            });
        }
        Ok(())
    }
}

/// Per-dimension contributions to a score: `high[i]` when the point lies above the data in
/// dimension `i`, `low[i]` when below.
#[derive(Clone, Debug, PartialEq)]
pub struct DiVector {
    pub high: Vec<f64>,
    pub low: Vec<f64>,
}

impl DiVector {
    pub fn zeros(dim: usize) -> Self {
        DiVector {
            high: vec![0.0; dim],
            low: vec![0.0; dim],
        }
    }

    /// Sum of all contributions (equals the score).
    pub fn total(&self) -> f64 {
        self.high.iter().sum::<f64>() + self.low.iter().sum::<f64>()
    }

    /// `high[i] + low[i]` per dimension.
    pub fn per_dim(&self) -> Vec<f64> {
        self.high
            .iter()
            .zip(&self.low)
            .map(|(h, l)| h + l)
            .collect()
    }
}

/// The work of scoring, per point and tree, from [`Forest::walk_stats`].
#[derive(Clone, Debug, PartialEq)]
pub struct WalkStats {
    /// Internal nodes on the way down (the depth of the leaf reached).
    pub nodes_descended: f64,
    /// Bounding boxes compared on the way back up, which stops at the first box holding the
    /// point.
    pub boxes_compared: f64,
    /// Of those, cherries' boxes (a node whose children are both leaves stores no box): read
    /// as the sibling leaf's point, `d` values instead of `2·d`.
    pub pair_boxes: f64,
    /// Bytes read: the descent's part of each node, each compared box (`2·d` f32 values) and
    /// its stored range, and the leaf's point.
    pub bytes_per_tree: f64,
}

/// One tree with its sampler state and generator.
#[derive(Clone)]
pub(crate) struct TreeState {
    pub(crate) tree: Tree,
    pub(crate) rng: Pcg,
    /// (weight, leaf index) of every sampled point.
    pub(crate) heap: Reservoir<tree::Ref>,
}

#[inline]
fn weight(u: f64, lambda: f64, seq: u64) -> f64 {
    -lambda * seq as f64 + (-u.ln()).ln()
}

/// A weighted reservoir: keeps the `cap` items of smallest weight in a max-heap, weights and
/// items in two arrays (a `(f64, u32)` pair would take 16 bytes, these take 12).
#[derive(Clone, Debug)]
pub(crate) struct Reservoir<T> {
    weights: Vec<f64>,
    items: Vec<T>,
    /// With λ = 0 and a full heap: `exp(-exp(max weight))`, the acceptance threshold on `u`.
    thr: f64,
}

impl<T: Copy> Reservoir<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Reservoir {
            weights: Vec::with_capacity(cap),
            items: Vec::with_capacity(cap),
            thr: 0.0,
        }
    }

    /// From `(weight, item)` entries already in heap order.
    pub(crate) fn from_heap(heap: impl ExactSizeIterator<Item = (f64, T)>) -> Self {
        let (weights, items) = heap.unzip();
        let mut r = Reservoir {
            weights,
            items,
            thr: 0.0,
        };
        r.refresh();
        r
    }

    /// The `(weight, item)` entries in heap order.
    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = (f64, T)> + '_ {
        self.weights.iter().copied().zip(self.items.iter().copied())
    }

    pub(crate) fn len(&self) -> usize {
        self.weights.len()
    }

    /// Heap bytes held (capacity, not length).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.weights.capacity() * 8 + self.items.capacity() * std::mem::size_of::<T>()
    }

    fn refresh(&mut self) {
        self.thr = match self.weights.first() {
            Some(&w) => (-w.exp()).exp(),
            None => 0.0,
        };
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.weights.swap(a, b);
        self.items.swap(a, b);
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let h = &self.weights;
            let c = if r < n && h[r] > h[l] { r } else { l };
            if h[c] > h[i] {
                self.swap(c, i);
                i = c;
            } else {
                break;
            }
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if self.weights[i] > self.weights[p] {
                self.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    /// Decide whether the item offered at sequence index `seq` is kept; returns its weight
    /// when it is (the caller then evicts the top when full, see [`Reservoir::put`]).
    #[inline]
    pub(crate) fn decide(&self, cap: usize, rng: &mut Pcg, lambda: f64, seq: u64) -> Option<f64> {
        let u = rng.next_open01();
        if self.len() < cap {
            return Some(weight(u, lambda, seq));
        }
        // w < wmax  <=>  u > exp(-exp(wmax + λ t)): rejection without logarithms
        let thr = if lambda == 0.0 {
            self.thr
        } else {
            (-(self.weights[0] + lambda * seq as f64).exp()).exp()
        };
        if u <= thr {
            return None;
        }
        let w = weight(u, lambda, seq);
        (w < self.weights[0]).then_some(w)
    }

    /// The item evicted by the next [`Reservoir::put`] when full.
    pub(crate) fn top(&self) -> T {
        self.items[0]
    }

    /// Put an accepted item: replaces the top (largest weight) when full, else pushes.
    #[inline]
    pub(crate) fn put(&mut self, cap: usize, w: f64, item: T) {
        if self.len() < cap {
            self.weights.push(w);
            self.items.push(item);
            self.sift_up(self.len() - 1);
        } else {
            self.weights[0] = w;
            self.items[0] = item;
            self.sift_down(0);
        }
        if self.len() == cap {
            self.refresh();
        }
    }
}

#[inline(always)]
fn score_block_generic<const AVX: bool>(
    trees: &[&Tree],
    xs: &[f32],
    acc: &mut [f64],
    walks: &mut Walks,
) {
    for t in trees {
        t.score_block_into::<AVX>(xs, acc, walks);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn score_block_avx2(trees: &[&Tree], xs: &[f32], acc: &mut [f64], walks: &mut Walks) {
    score_block_generic::<true>(trees, xs, acc, walks)
}

fn score_block_dispatch(trees: &[&Tree], xs: &[f32], acc: &mut [f64], walks: &mut Walks) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { score_block_avx2(trees, xs, acc, walks) };
        }
    }
    score_block_generic::<false>(trees, xs, acc, walks)
}

/// Below this many rows, batch scoring sends each point down every tree at once: a block's
/// walks down one tree would be too few to overlap (single-record endpoint calls).
const FEW_ROWS: usize = 16;

/// A Random Cut Forest. `Clone + Debug + Send + Sync`.
#[derive(Clone)]
pub struct Forest {
    dim: usize,
    config: ForestConfig,
    trees: Vec<TreeState>,
    /// Number of points offered so far (rows of `fit` plus `update` calls).
    seq: u64,
}

impl std::fmt::Debug for Forest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forest")
            .field("dim", &self.dim)
            .field("config", &self.config)
            .field("points_seen", &self.seq)
            .field("sampled_points", &self.total_mass())
            .finish()
    }
}

impl Forest {
    /// An empty streaming forest for `dim`-dimensional points.
    pub fn new(dim: usize, config: ForestConfig) -> Result<Forest, RcfError> {
        config.validate()?;
        if dim == 0 {
            return Err(RcfError::NoDimensions);
        }
        if dim > tree::MAX_DIM {
            return Err(RcfError::TooManyDimensions {
                got: dim,
                max: tree::MAX_DIM,
            });
        }
        let trees = (0..config.num_trees)
            .map(|t| TreeState {
                tree: Tree::new(dim),
                rng: Pcg::new(config.seed, t as u64),
                heap: Reservoir::new(config.num_samples_per_tree),
            })
            .collect();
        Ok(Forest {
            dim,
            config,
            trees,
            seq: 0,
        })
    }

    /// Batch training: one pass over the rows, each tree keeping its own reservoir sample
    /// (uniform when `time_decay == 0`), then every tree built by recursive random cuts.
    pub fn fit(data: ArrayView2<f32>, config: ForestConfig) -> Result<Forest, RcfError> {
        config.validate()?;
        let (n, d) = data.dim();
        if d == 0 {
            return Err(RcfError::NoDimensions);
        }
        if n == 0 {
            return Err(RcfError::NoRows);
        }
        if d > tree::MAX_DIM {
            return Err(RcfError::TooManyDimensions {
                got: d,
                max: tree::MAX_DIM,
            });
        }
        for (r, row) in data.outer_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(RcfError::NonFinite {
                        row: r,
                        column: c,
                        value: v,
                    });
                }
            }
        }
        let mut forest = Forest::new(d, config)?;
        let cap = forest.config.num_samples_per_tree;
        let lambda = forest.config.time_decay;
        let mut samples: Vec<Reservoir<usize>> = (0..forest.trees.len())
            .map(|_| Reservoir::new(cap))
            .collect();
        for i in 0..n {
            for (ts, heap) in forest.trees.iter_mut().zip(samples.iter_mut()) {
                if let Some(w) = heap.decide(cap, &mut ts.rng, lambda, i as u64) {
                    heap.put(cap, w, i);
                }
            }
        }
        let mut buf = Vec::with_capacity(cap * d);
        for (ts, heap) in forest.trees.iter_mut().zip(samples) {
            buf.clear();
            for (_, row) in heap.entries() {
                buf.extend(data.row(row).iter());
            }
            let leaves = ts.tree.build(&buf, &mut ts.rng);
            ts.heap = Reservoir::from_heap(heap.entries().zip(leaves).map(|((w, _), l)| (w, l)));
        }
        forest.seq = n as u64;
        Ok(forest)
    }

    /// Number of dimensions of the points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The hyperparameters.
    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// Number of points offered to the forest so far (training rows plus updates).
    pub fn points_seen(&self) -> u64 {
        self.seq
    }

    /// Total number of points held in the tree samples.
    pub fn total_mass(&self) -> u64 {
        self.trees.iter().map(|t| t.tree.mass as u64).sum()
    }

    fn check_point(&self, point: &[f32]) -> Result<(), RcfError> {
        if point.len() != self.dim {
            return Err(RcfError::DimensionMismatch {
                expected: self.dim,
                got: point.len(),
            });
        }
        if let Some((c, &v)) = point.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(RcfError::NonFinite {
                row: 0,
                column: c,
                value: v,
            });
        }
        Ok(())
    }

    /// Anomaly score of `point` (see the crate docs for the formula), averaged over trees.
    /// 0.0 for an empty forest.
    ///
    /// # Panics
    /// When `point.len() != self.dim()` (use [`Forest::try_score`] to get an error instead).
    pub fn score(&self, point: &[f32]) -> f64 {
        assert_eq!(
            point.len(),
            self.dim,
            "point has {} values but the forest has dimension {}",
            point.len(),
            self.dim
        );
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { self.score_avx2(point) };
            }
        }
        self.score_generic::<false>(point)
    }

    #[inline(always)]
    fn score_generic<const AVX: bool>(&self, point: &[f32]) -> f64 {
        // Every tree's walk at once, a level at a time; the sum in tree order.
        let trees = &self.trees;
        if trees.iter().all(|t| t.tree.root != NIL) {
            let mut s = 0.0;
            // Trees mostly share one mass: its normaliser is computed once per run of equals.
            let mut norm = (u32::MAX, 0.0);
            tree::walk_many::<AVX>(
                trees.len(),
                |i| &trees[i].tree,
                point,
                0,
                self.dim,
                &mut Walks::default(),
                |i, r| {
                    let mass = trees[i].tree.mass;
                    if mass != norm.0 {
                        norm = (mass, tree::normalizer(mass as f64));
                    }
                    s += r * norm.1
                },
            );
            return s / trees.len() as f64;
        }
        // A streaming forest whose first points have not reached every tree yet.
        let mut s = 0.0;
        let mut k = 0usize;
        for ts in trees.iter().filter(|t| t.tree.root != NIL) {
            s += ts.tree.score::<AVX>(point);
            k += 1;
        }
        if k == 0 {
            0.0
        } else {
            s / k as f64
        }
    }

    /// The same code compiled for AVX2 (identical results: the summation order is fixed and
    /// no fused multiply-add is used).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn score_avx2(&self, point: &[f32]) -> f64 {
        self.score_generic::<true>(point)
    }

    /// [`Forest::score`] with the point checked first (dimension, finite values).
    pub fn try_score(&self, point: &[f32]) -> Result<f64, RcfError> {
        self.check_point(point)?;
        Ok(self.score(point))
    }

    /// Scores of every row, single thread; the same values as [`Forest::score`].
    /// Walks one tree over a block of points at a time for cache reuse.
    ///
    /// # Panics
    /// When `points.ncols() != self.dim()`.
    pub fn score_batch(&self, points: ArrayView2<f32>) -> Vec<f64> {
        let mut out = vec![0.0; points.nrows()];
        self.score_rows_into(points, &mut out);
        out
    }

    /// Scores of every row on `threads` threads (contiguous chunks of rows); the values are
    /// identical to [`Forest::score_batch`] whatever `threads`.
    pub fn score_batch_parallel(&self, points: ArrayView2<f32>, threads: usize) -> Vec<f64> {
        let n = points.nrows();
        let mut out = vec![0.0; n];
        let threads = threads.max(1).min(n.div_ceil(64).max(1));
        if threads <= 1 {
            self.score_rows_into(points, &mut out);
            return out;
        }
        let chunk = n.div_ceil(threads);
        std::thread::scope(|s| {
            for (c, slice) in out.chunks_mut(chunk).enumerate() {
                let start = c * chunk;
                let view = points.slice(ndarray::s![start..start + slice.len(), ..]);
                s.spawn(move || self.score_rows_into(view, slice));
            }
        });
        out
    }

    /// Rows per block of batch scoring, for `n` rows: each tree is walked by a whole block
    /// of points while it is in the core's caches; the block itself takes about 256 KiB,
    /// well inside L2.
    fn block_rows(&self, n: usize) -> usize {
        (256 * 1024 / (4 * self.dim)).clamp(64, 4096).min(n.max(1))
    }

    fn score_rows_into(&self, points: ArrayView2<f32>, out: &mut [f64]) {
        let d = self.dim;
        assert_eq!(
            points.ncols(),
            d,
            "points have {} columns but the forest has dimension {}",
            points.ncols(),
            d
        );
        if points.nrows() < FEW_ROWS {
            // Too few points for a block's walks to overlap: each point goes down every tree
            // at once instead (the same values, see `Forest::score`).
            let mut row = vec![0.0f32; d];
            for (o, p) in out.iter_mut().zip(points.outer_iter()) {
                row.iter_mut().zip(p.iter()).for_each(|(a, &b)| *a = b);
                *o = self.score(&row);
            }
            return;
        }
        let block = self.block_rows(points.nrows());
        let active: Vec<&Tree> = self
            .trees
            .iter()
            .map(|t| &t.tree)
            .filter(|t| t.root != NIL)
            .collect();
        if active.is_empty() {
            out.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        let k = active.len() as f64;
        let mut buf = vec![0.0f32; block * d];
        let mut walks = Walks::default();
        let n = points.nrows();
        let mut start = 0;
        while start < n {
            let m = block.min(n - start);
            for j in 0..m {
                let row = points.row(start + j);
                let dst = &mut buf[j * d..(j + 1) * d];
                match row.as_slice() {
                    Some(s) => dst.copy_from_slice(s),
                    None => dst.iter_mut().zip(row.iter()).for_each(|(a, &b)| *a = b),
                }
            }
            let acc = &mut out[start..start + m];
            acc.iter_mut().for_each(|v| *v = 0.0);
            score_block_dispatch(&active, &buf[..m * d], acc, &mut walks);
            acc.iter_mut().for_each(|v| *v /= k);
            start += m;
        }
    }

    /// What scoring `points` reads, averaged per point and tree: the physical work behind
    /// [`Forest::score`] (see [`WalkStats`]).
    ///
    /// # Panics
    /// When `points.ncols() != self.dim()`.
    pub fn walk_stats(&self, points: ArrayView2<f32>) -> WalkStats {
        assert_eq!(
            points.ncols(),
            self.dim,
            "points have the wrong number of columns"
        );
        let (mut walks, mut nodes, mut boxes, mut pairs) = (0u64, 0u64, 0u64, 0u64);
        let mut row = vec![0.0f32; self.dim];
        for p in points.outer_iter() {
            row.iter_mut().zip(p.iter()).for_each(|(a, &b)| *a = b);
            for ts in self.trees.iter().filter(|t| t.tree.root != NIL) {
                let (n, b, p) = ts.tree.walk(&row);
                walks += 1;
                nodes += n as u64;
                boxes += b as u64;
                pairs += p as u64;
            }
        }
        let w = walks.max(1) as f64;
        let (nodes, boxes, pairs) = (nodes as f64 / w, boxes as f64 / w, pairs as f64 / w);
        let (point_bytes, box_bytes) = ((self.dim * 4) as f64, (2 * self.dim * 4) as f64);
        WalkStats {
            nodes_descended: nodes,
            boxes_compared: boxes,
            pair_boxes: pairs,
            // A cherry's box is read as the sibling leaf's point.
            bytes_per_tree: nodes * tree::DESCENT_BYTES as f64
                + (boxes - pairs) * (box_bytes + 8.0)
                + pairs * (point_bytes + 8.0)
                + point_bytes,
        }
    }

    /// Benchmark support: the descent alone (cuts only, no box, no score) of every row down
    /// every tree, blocks of points a tree at a time as in [`Forest::score_batch`]. Returns
    /// the sum of the depths reached, so the work cannot be optimised away.
    #[doc(hidden)]
    pub fn descend_batch(&self, points: ArrayView2<f32>) -> u64 {
        let d = self.dim;
        let rows: Vec<f32> = points.iter().copied().collect();
        let n = rows.len() / d.max(1);
        let block = self.block_rows(n);
        let mut total = 0u64;
        let mut walks = Walks::default();
        for xs in rows.chunks(block * d) {
            for ts in self.trees.iter().filter(|t| t.tree.root != NIL) {
                let t = &ts.tree;
                total += tree::descend_only(xs.len() / d, |_| t, xs, d, d, &mut walks);
            }
        }
        total
    }

    /// Per-dimension attribution of [`Forest::score`]: `high[i] + low[i]` summed over `i`
    /// equals the score (up to rounding).
    ///
    /// # Panics
    /// When `point.len() != self.dim()`.
    pub fn attribution(&self, point: &[f32]) -> DiVector {
        assert_eq!(
            point.len(),
            self.dim,
            "point has {} values but the forest has dimension {}",
            point.len(),
            self.dim
        );
        let mut dv = DiVector::zeros(self.dim);
        let k = self.trees.iter().filter(|t| t.tree.root != NIL).count();
        if k == 0 {
            return dv;
        }
        let scale = 1.0 / k as f64;
        for ts in &self.trees {
            if ts.tree.root != NIL {
                ts.tree.attribution(point, scale, &mut dv.high, &mut dv.low);
            }
        }
        dv
    }

    /// Streaming update: offer `point` to every tree's time-decayed reservoir; a tree that
    /// accepts it evicts its largest-weight point (deleted from the tree) and inserts this one.
    ///
    /// # Panics
    /// When the point has the wrong dimension or a non-finite value (see [`Forest::try_update`]).
    pub fn update(&mut self, point: &[f32]) {
        if let Err(e) = self.try_update(point) {
            panic!("{e}");
        }
    }

    /// [`Forest::update`] returning an error for a wrong dimension or non-finite values.
    pub fn try_update(&mut self, point: &[f32]) -> Result<(), RcfError> {
        self.check_point(point)?;
        let seq = self.seq;
        self.seq += 1;
        let cap = self.config.num_samples_per_tree;
        let lambda = self.config.time_decay;
        for ts in &mut self.trees {
            let TreeState { tree, rng, heap } = ts;
            if let Some(w) = heap.decide(cap, rng, lambda, seq) {
                if heap.len() >= cap {
                    tree.delete(heap.top());
                }
                let leaf = tree.insert(point, rng);
                heap.put(cap, w, leaf);
            }
        }
        Ok(())
    }

    /// Approximate heap size of the model in bytes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Forest>()
            + self.trees.capacity() * std::mem::size_of::<TreeState>()
            + self
                .trees
                .iter()
                .map(|t| t.tree.heap_bytes() + t.heap.heap_bytes())
                .sum::<usize>()
    }

    /// Serialise to the versioned, checksummed binary format.
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Load a forest written by [`Forest::to_bytes`]. Truncated, corrupted or
    /// wrong-version input is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Forest, RcfError> {
        format::decode(bytes)
    }
}

#[cfg(test)]
mod tests;

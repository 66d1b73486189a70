//! One random cut tree: flat arrays of internal nodes (compact 24-byte structs plus a
//! contiguous `[min.., max..]` bounding box per node) and a slab of leaves (point + mass).
//!
//! Child and parent references are a [`Ref`]: an internal node index, or a leaf index with
//! [`LEAF`] set. A tree holds at most `ForestConfig::MAX_SAMPLES` (2048) leaves, so 16 bits hold
//! every reference, and a node is 24 bytes.

use crate::rng::Pcg;

/// A node or leaf reference (a leaf index in the leaf arrays when it stands alone).
pub(crate) type Ref = u16;
/// A leaf's or node's mass: at most the tree's sample size.
pub(crate) type Mass = u16;
pub(crate) const NIL: Ref = Ref::MAX;
pub(crate) const LEAF: Ref = 1 << 15;
/// The most leaves or nodes a tree can hold: every index is below it, so no reference
/// (`LEAF | index` included) equals [`NIL`].
pub(crate) const MAX_REFS: usize = (LEAF - 1) as usize;

/// Bytes of a node the descent reads: the cut value and dimension and both children.
pub(crate) const DESCENT_BYTES: usize = 10;

/// The most dimensions a tree can cut on: a cut dimension is 16 bits.
pub(crate) const MAX_DIM: usize = u16::MAX as usize;

/// The box slot of a node that stores no box: a free node, or a *cherry* (both children are
/// leaves), whose box is the two leaf points' and is computed where it is needed.
pub(crate) const NO_BOX: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct Node {
    /// Sum over dimensions of (max - min) of the node's bounding box, in f64.
    pub range: f64,
    pub cut_val: f32,
    pub cut_dim: u16,
    /// Where the node's box sits in `Tree::bounds` (in boxes of `2 * dim` floats), or
    /// [`NO_BOX`].
    pub slot: u16,
    /// Left (`x[cut_dim] <= cut_val`) then right child, indexable by the comparison.
    pub child: [Ref; 2],
    pub parent: Ref,
    pub mass: Mass,
}

const _: () = assert!(std::mem::size_of::<Node>() == 24);

#[derive(Clone)]
pub(crate) struct Tree {
    pub dim: usize,
    pub root: Ref,
    pub nodes: Vec<Node>,
    /// `2 * dim` floats per box slot (the box minimum then the box maximum): one slot per
    /// internal node that has an internal child. A cherry's box is its two leaf points', so it
    /// stores none (a third of the nodes of a random tree, and a third of the box memory).
    pub bounds: Vec<f32>,
    pub free_slots: Vec<u16>,
    pub free_nodes: Vec<Ref>,
    /// `dim` floats per leaf.
    pub leaf_points: Vec<f32>,
    /// 0 marks a free leaf slot.
    pub leaf_mass: Vec<Mass>,
    pub leaf_parent: Vec<Ref>,
    pub free_leaves: Vec<Ref>,
    /// Total number of points (sum of leaf masses).
    pub mass: u32,
}

/// Previous representable f32 below `b` (b finite).
#[inline]
pub(crate) fn prev_f32(b: f32) -> f32 {
    if b == 0.0 {
        -f32::from_bits(1)
    } else if b > 0.0 {
        f32::from_bits(b.to_bits() - 1)
    } else {
        f32::from_bits(b.to_bits() + 1)
    }
}

/// Random cut on a box given per dimension by `get(i) -> (min, max)`: dimension with
/// probability proportional to its range, value uniform within it (`r` uniform in [0,1)).
/// Returns `None` when the box has zero volume in every dimension.
/// The cut value `c` satisfies `min <= c < max`; points go left when `x <= c`.
#[inline]
pub(crate) fn choose_cut<F: Fn(usize) -> (f32, f32)>(
    d: usize,
    get: F,
    r: f64,
) -> Option<(usize, f32)> {
    let mut total = 0.0f64;
    for i in 0..d {
        let (a, b) = get(i);
        total += b as f64 - a as f64;
    }
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let mut t = r * total;
    let mut last = None;
    for i in 0..d {
        let (a, b) = get(i);
        let w = b as f64 - a as f64;
        if w > 0.0 {
            if t < w {
                return Some((i, finish_cut(a, b, t)));
            }
            t -= w;
            last = Some((i, a, b, w));
        }
    }
    // rounding pushed t past the last positive range: cut in the last positive dimension
    last.map(|(i, a, b, w)| (i, finish_cut(a, b, w * 0.5)))
}

#[inline]
fn finish_cut(a: f32, b: f32, off: f64) -> f32 {
    let c = (a as f64 + off) as f32;
    if c >= b {
        prev_f32(b).max(a)
    } else if c < a {
        a
    } else {
        c
    }
}

/// Sum over dimensions of how far `x` lies outside the box `[lo, hi]` (0 when inside).
/// Fixed summation order (8 lanes, then pairwise), so the value is the same wherever it is
/// computed (scores and attribution share it).
#[inline(always)]
pub(crate) fn outside(lo: &[f32], hi: &[f32], x: &[f32]) -> f32 {
    let d = x.len();
    let lo = &lo[..d];
    let hi = &hi[..d];
    let mut acc = [0.0f32; 8];
    let mut lc = lo.chunks_exact(8);
    let mut hc = hi.chunks_exact(8);
    let mut xc = x.chunks_exact(8);
    for ((l, h), p) in (&mut lc).zip(&mut hc).zip(&mut xc) {
        for j in 0..8 {
            let below = l[j] - p[j];
            let above = p[j] - h[j];
            let below = if below > 0.0 { below } else { 0.0 };
            let above = if above > 0.0 { above } else { 0.0 };
            acc[j] += below + above;
        }
    }
    outside_finish(acc, lc.remainder(), hc.remainder(), xc.remainder())
}

/// Remainder (fewer than 8 dimensions) and the fixed-order reduction shared by the kernels.
#[inline(always)]
fn outside_finish(acc: [f32; 8], lr: &[f32], hr: &[f32], xr: &[f32]) -> f32 {
    let mut acc4 = [0.0f32; 4];
    let mut tail = 0.0f32;
    let mut i = 0;
    if lr.len() >= 4 {
        for j in 0..4 {
            let below = lr[j] - xr[j];
            let above = xr[j] - hr[j];
            let below = if below > 0.0 { below } else { 0.0 };
            let above = if above > 0.0 { above } else { 0.0 };
            acc4[j] = below + above;
        }
        i = 4;
    }
    for ((l, h), p) in lr[i..].iter().zip(&hr[i..]).zip(&xr[i..]) {
        let below = l - p;
        let above = p - h;
        let below = if below > 0.0 { below } else { 0.0 };
        let above = if above > 0.0 { above } else { 0.0 };
        tail += below + above;
    }
    let tail = ((acc4[0] + acc4[2]) + (acc4[1] + acc4[3])) + tail;
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail
}

/// [`outside`] with 256-bit vectors: the same operations in the same order per lane
/// (`max(v, 0)` as `maxps(v, 0)` returns 0 for NaN and -0, like the scalar code), so the
/// result is bit-identical.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn outside_avx2(lo: &[f32], hi: &[f32], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let d = x.len();
    let lo = &lo[..d];
    let hi = &hi[..d];
    let chunks = d / 8;
    let zero = _mm256_setzero_ps();
    let mut acc = zero;
    for c in 0..chunks {
        // SAFETY: c * 8 + 8 <= d and all three slices have length d.
        let (l, h, p) = unsafe {
            (
                _mm256_loadu_ps(lo.as_ptr().add(c * 8)),
                _mm256_loadu_ps(hi.as_ptr().add(c * 8)),
                _mm256_loadu_ps(x.as_ptr().add(c * 8)),
            )
        };
        let below = _mm256_max_ps(_mm256_sub_ps(l, p), zero);
        let above = _mm256_max_ps(_mm256_sub_ps(p, h), zero);
        acc = _mm256_add_ps(acc, _mm256_add_ps(below, above));
    }
    let mut a = [0.0f32; 8];
    // SAFETY: `a` holds 8 floats.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc) };
    let k = chunks * 8;
    outside_finish(a, &lo[k..], &hi[k..], &x[k..])
}

/// [`outside`], through the AVX2 kernel when `AVX` (only ever set after runtime detection).
#[inline(always)]
pub(crate) fn outside_k<const AVX: bool>(lo: &[f32], hi: &[f32], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX {
            // SAFETY: AVX = true is only instantiated behind `is_x86_feature_detected!("avx2")`.
            return unsafe { outside_avx2(lo, hi, x) };
        }
    }
    outside(lo, hi, x)
}

/// [`outside`] for the box of two points `a` and `b` (`[min(a, b), max(a, b)]` per
/// coordinate), without writing the box down: the same operations in the same order, so the
/// result is bit-identical to [`outside`] on that box.
#[inline(always)]
pub(crate) fn outside_pair(a: &[f32], b: &[f32], x: &[f32]) -> f32 {
    let d = x.len();
    let (a, b) = (&a[..d], &b[..d]);
    let mut acc = [0.0f32; 8];
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    let mut xc = x.chunks_exact(8);
    for ((u, v), p) in (&mut ac).zip(&mut bc).zip(&mut xc) {
        for j in 0..8 {
            let below = u[j].min(v[j]) - p[j];
            let above = p[j] - u[j].max(v[j]);
            let below = if below > 0.0 { below } else { 0.0 };
            let above = if above > 0.0 { above } else { 0.0 };
            acc[j] += below + above;
        }
    }
    pair_finish(acc, ac.remainder(), bc.remainder(), xc.remainder())
}

/// The remainder of [`outside_pair`]: the pair's box of at most 7 coordinates, written down,
/// then [`outside_finish`].
#[inline(always)]
fn pair_finish(acc: [f32; 8], ar: &[f32], br: &[f32], xr: &[f32]) -> f32 {
    let (mut lo, mut hi) = ([0.0f32; 8], [0.0f32; 8]);
    let r = xr.len();
    for j in 0..r {
        lo[j] = ar[j].min(br[j]);
        hi[j] = ar[j].max(br[j]);
    }
    outside_finish(acc, &lo[..r], &hi[..r], xr)
}

/// [`outside_pair`] with 256-bit vectors (`minps`/`maxps` give the same box as `f32::min`
/// and `f32::max` on finite points, up to the sign of a zero, which no sum here can see).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn outside_pair_avx2(a: &[f32], b: &[f32], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let d = x.len();
    let (a, b) = (&a[..d], &b[..d]);
    let chunks = d / 8;
    let zero = _mm256_setzero_ps();
    let mut acc = zero;
    for c in 0..chunks {
        // SAFETY: c * 8 + 8 <= d and all three slices have length d.
        let (u, v, p) = unsafe {
            (
                _mm256_loadu_ps(a.as_ptr().add(c * 8)),
                _mm256_loadu_ps(b.as_ptr().add(c * 8)),
                _mm256_loadu_ps(x.as_ptr().add(c * 8)),
            )
        };
        let below = _mm256_max_ps(_mm256_sub_ps(_mm256_min_ps(u, v), p), zero);
        let above = _mm256_max_ps(_mm256_sub_ps(p, _mm256_max_ps(u, v)), zero);
        acc = _mm256_add_ps(acc, _mm256_add_ps(below, above));
    }
    let mut s = [0.0f32; 8];
    // SAFETY: `s` holds 8 floats.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), acc) };
    let k = chunks * 8;
    pair_finish(s, &a[k..], &b[k..], &x[k..])
}

/// [`outside_pair`], through the AVX2 kernel when `AVX` (only ever set after runtime
/// detection).
#[inline(always)]
pub(crate) fn outside_pair_k<const AVX: bool>(a: &[f32], b: &[f32], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX {
            // SAFETY: AVX = true is only instantiated behind `is_x86_feature_detected!("avx2")`.
            return unsafe { outside_pair_avx2(a, b, x) };
        }
    }
    outside_pair(a, b, x)
}

/// A bounding box as the tree holds it: stored (a leaf's box is its point, `lo == hi`), or
/// the box of a cherry's two leaf points.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BoxView<'a> {
    Span(&'a [f32], &'a [f32]),
    Pair(&'a [f32], &'a [f32]),
}

impl BoxView<'_> {
    #[inline(always)]
    pub(crate) fn lo(&self, i: usize) -> f32 {
        match *self {
            BoxView::Span(lo, _) => lo[i],
            BoxView::Pair(a, b) => a[i].min(b[i]),
        }
    }

    #[inline(always)]
    pub(crate) fn hi(&self, i: usize) -> f32 {
        match *self {
            BoxView::Span(_, hi) => hi[i],
            BoxView::Pair(a, b) => a[i].max(b[i]),
        }
    }

    /// How far `x` lies outside the box ([`outside`]; bit-identical for both kinds).
    #[inline(always)]
    pub(crate) fn outside<const AVX: bool>(&self, x: &[f32]) -> f32 {
        match *self {
            BoxView::Span(lo, hi) => outside_k::<AVX>(lo, hi, x),
            BoxView::Pair(a, b) => outside_pair_k::<AVX>(a, b, x),
        }
    }

    /// Sum over dimensions of (max - min), in f64, in dimension order.
    pub(crate) fn range(&self, d: usize) -> f64 {
        (0..d).map(|i| self.hi(i) as f64 - self.lo(i) as f64).sum()
    }
}

/// `a == b` elementwise (f32 `==`: `-0 == 0`, NaN never equal), through an AVX2 kernel when
/// `AVX` (only ever set after runtime detection). A point that is its leaf's point compares
/// every coordinate, so the check is vectorised rather than a scalar loop of two branches each.
#[inline(always)]
pub(crate) fn same_point<const AVX: bool>(a: &[f32], b: &[f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX {
            // SAFETY: AVX = true is only instantiated behind `is_x86_feature_detected!("avx2")`.
            return unsafe { same_point_avx2(a, b) };
        }
    }
    a == b
}

/// [`same_point`] with 256-bit vectors (`_CMP_EQ_OQ` is f32 `==`, lane by lane).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn same_point_avx2(a: &[f32], b: &[f32]) -> bool {
    use std::arch::x86_64::*;
    let d = a.len();
    if b.len() != d {
        return false;
    }
    let chunks = d / 8;
    for c in 0..chunks {
        // SAFETY: c * 8 + 8 <= d and both slices have length d.
        let (u, v) = unsafe {
            (
                _mm256_loadu_ps(a.as_ptr().add(c * 8)),
                _mm256_loadu_ps(b.as_ptr().add(c * 8)),
            )
        };
        if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(u, v)) != 0xff {
            return false;
        }
    }
    let k = chunks * 8;
    a[k..] == b[k..]
}

#[inline]
fn range_of(lo: &[f32], hi: &[f32]) -> f64 {
    lo.iter().zip(hi).map(|(&a, &b)| b as f64 - a as f64).sum()
}

/// Reusable buffers for [`walk_many`]: a few words per walk, allocated once per call.
#[derive(Default)]
pub(crate) struct Walks {
    /// Walks still moving: walk id (high 32 bits) and the node it is at (low 32 bits).
    front: Vec<u64>,
    /// Per walk: the leaf reference (low 32 bits) and its depth (high 32 bits).
    ends: Vec<u64>,
}

/// The descent alone of `n` walks (see [`walk_many`]); returns the sum of their depths.
#[inline(always)]
pub(crate) fn descend_only<'a>(
    n: usize,
    tree: impl Fn(usize) -> &'a Tree,
    points: &[f32],
    stride: usize,
    d: usize,
    s: &mut Walks,
) -> u64 {
    descend(n, &tree, points, stride, d, s);
    s.ends[..n].iter().map(|e| e >> 32).sum()
}

/// One level of the climb: `S_k = p_k / (k + 1) + (1 - p_k) · S_{k+1}` with
/// `p_k = e / (r + e)`, on `S` carried as `num / den`, rescaled when `den` leaves
/// `[1e-100, 1e100]`. The single definition every scoring path uses, so they agree to the bit.
#[inline(always)]
pub(crate) fn climb_step(num: f64, den: f64, e: f64, k: usize, range: f64) -> (f64, f64) {
    let num = e * inv_depth(k) * den + range * num;
    let den = den * (range + e);
    if (1e-100..=1e100).contains(&den) {
        (num, den)
    } else {
        (num / den, 1.0)
    }
}

/// The raw scores of `n` walks, reported through `done(w, score)` in walk order: walk `w`
/// takes the point at `points[w * stride..w * stride + d]` down the non-empty tree `tree(w)`
/// of dimension `d` (`stride` is `d` for a block of points, 0 for one point down many
/// trees). Each score is bit-identical to [`Tree::raw_score`].
///
/// The descent moves a level at a time: one pass takes every walk still inside its tree one
/// step down, and the walks that reach a leaf drop out of the front without a branch
/// (compaction), so a pass is a loop of independent steps whose memory reads overlap
/// (2.6–4.0 ns a level with eight walks in flight and a branch per level; 1.6–2.0 ns
/// this way). Then each walk climbs from its leaf ([`Tree::score_from_leaf`]); a climb
/// run a level at a time for all walks, its state carried in the front, measured 5–15 %
/// slower, its bookkeeping costing more than the mispredicted exits it saves.
///
/// # Panics
/// When `points` is too short, or a tree is empty or of another dimension.
#[inline(always)]
pub(crate) fn walk_many<'a, const AVX: bool>(
    n: usize,
    tree: impl Fn(usize) -> &'a Tree,
    points: &[f32],
    stride: usize,
    d: usize,
    s: &mut Walks,
    mut done: impl FnMut(usize, f64),
) {
    descend(n, &tree, points, stride, d, s);
    climb_many::<AVX>(n, &tree, points, stride, d, s, &mut done);
}

/// The descent of [`walk_many`] and [`descend_only`]: leaves `s.ends[..n]` set. It first
/// makes the checks [`descend_many`]'s unchecked reads rely on and puts every walk at its
/// tree's root.
#[inline(always)]
fn descend<'a>(
    n: usize,
    tree: &impl Fn(usize) -> &'a Tree,
    points: &[f32],
    stride: usize,
    d: usize,
    s: &mut Walks,
) {
    if n == 0 {
        s.ends.clear();
        return;
    }
    assert!(n < 1 << 31 && points.len() >= (n - 1) * stride + d);
    s.front.clear();
    s.ends.clear();
    s.ends.resize(n, 0);
    for w in 0..n {
        let t = tree(w);
        assert!(
            t.root != NIL && t.dim == d,
            "walk_many: an empty tree or another dimension"
        );
        if t.root & LEAF != 0 {
            s.ends[w] = t.root as u64;
        } else {
            s.front.push(((w as u64) << 32) | t.root as u64);
        }
    }
    descend_many(tree, points, stride, s);
}

/// The descent of [`walk_many`], after [`descend`]'s checks (which its reads rely on): leaves
/// `s.ends[w]` set for every walk.
#[inline(always)]
fn descend_many<'a>(
    tree: &impl Fn(usize) -> &'a Tree,
    points: &[f32],
    stride: usize,
    s: &mut Walks,
) {
    if stride != 0 {
        // A block of points down one tree: its nodes stay in registers.
        let nodes = &tree(0).nodes[..];
        descend_levels(|_| nodes, points, stride, s)
    } else {
        descend_levels(|w| &tree(w).nodes[..], points, stride, s)
    }
}

#[inline(always)]
fn descend_levels<'a>(
    nodes_of: impl Fn(usize) -> &'a [Node],
    points: &[f32],
    stride: usize,
    s: &mut Walks,
) {
    let mut live = s.front.len();
    let mut level = 1u64;
    while live > 0 {
        let front = &mut s.front[..live];
        let ends = &mut s.ends[..];
        let mut out = 0usize;
        for i in 0..live {
            // SAFETY: `out <= i < live == front.len()`; `w < n == ends.len()`; the node
            // reference is an internal node of `tree(w)` (a tree's child references are
            // valid, and `front` only keeps internal ones); its cut dimension is below `d`
            // (a tree invariant), and `w * stride + d <= points.len()` ([`descend`]).
            unsafe {
                let f = *front.get_unchecked(i);
                let w = (f >> 32) as usize;
                let node = nodes_of(w).get_unchecked(f as Ref as usize);
                let x = *points.get_unchecked(w * stride + node.cut_dim as usize);
                let right = x > node.cut_val;
                let next = node.child[right as usize];
                *front.get_unchecked_mut(out) = (f & !0xffff_ffff) | next as u64;
                *ends.get_unchecked_mut(w) = (level << 32) | next as u64;
                out += (next & LEAF == 0) as usize;
            }
        }
        live = out;
        level += 1;
    }
}

/// The climb of [`walk_many`], from the leaves the descent left in `s.ends`.
#[inline(always)]
fn climb_many<'a, const AVX: bool>(
    n: usize,
    tree: &impl Fn(usize) -> &'a Tree,
    points: &[f32],
    stride: usize,
    d: usize,
    s: &mut Walks,
    done: &mut impl FnMut(usize, f64),
) {
    for (w, &end) in s.ends[..n].iter().enumerate() {
        let (l, h) = ((end as Ref & !LEAF) as usize, (end >> 32) as usize);
        done(
            w,
            tree(w).score_from_leaf::<AVX>(l, &points[w * stride..w * stride + d], h),
        );
    }
}
/// The reference scoring functions (AWS random-cut-forest-by-aws `CommonUtils`).
#[inline]
pub(crate) fn score_seen(depth: f64, mass: f64) -> f64 {
    // log2(2) is exactly 1: most leaves hold one point, and skip the logarithm.
    let lg = if mass == 1.0 {
        1.0
    } else {
        (mass + 1.0).log2()
    };
    1.0 / (depth + lg)
}
#[inline]
pub(crate) fn score_unseen(depth: f64) -> f64 {
    1.0 / (depth + 1.0)
}

const INV_LEN: usize = 128;
const INV_DEPTH: [f64; INV_LEN] = {
    let mut t = [0.0f64; INV_LEN];
    let mut i = 0;
    while i < INV_LEN {
        t[i] = 1.0 / (i as f64 + 1.0);
        i += 1;
    }
    t
};

/// `score_unseen(depth)` from a table (identical values: the same division, done once).
#[inline(always)]
pub(crate) fn inv_depth(depth: usize) -> f64 {
    if depth < INV_LEN {
        INV_DEPTH[depth]
    } else {
        1.0 / (depth as f64 + 1.0)
    }
}
#[inline]
pub(crate) fn damp(leaf_mass: f64, tree_mass: f64) -> f64 {
    1.0 - leaf_mass / (2.0 * tree_mass)
}
#[inline]
pub(crate) fn normalizer(tree_mass: f64) -> f64 {
    (tree_mass + 1.0).log2()
}

impl Tree {
    pub(crate) fn new(dim: usize) -> Self {
        Tree {
            dim,
            root: NIL,
            nodes: Vec::new(),
            bounds: Vec::new(),
            free_slots: Vec::new(),
            free_nodes: Vec::new(),
            leaf_points: Vec::new(),
            leaf_mass: Vec::new(),
            leaf_parent: Vec::new(),
            free_leaves: Vec::new(),
            mass: 0,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.nodes.capacity() * size_of::<Node>()
            + (self.bounds.capacity() + self.leaf_points.capacity()) * size_of::<f32>()
            + self.leaf_mass.capacity() * size_of::<Mass>()
            + self.free_slots.capacity() * size_of::<u16>()
            + (self.free_nodes.capacity()
                + self.leaf_parent.capacity()
                + self.free_leaves.capacity())
                * size_of::<Ref>()
    }

    #[inline]
    pub(crate) fn leaf_point(&self, l: usize) -> &[f32] {
        &self.leaf_points[l * self.dim..(l + 1) * self.dim]
    }

    /// The stored box in slot `s`.
    #[inline]
    pub(crate) fn slot_box(&self, s: u16) -> (&[f32], &[f32]) {
        let d = self.dim;
        let s = s as usize;
        self.bounds[s * 2 * d..(s + 1) * 2 * d].split_at(d)
    }

    /// Box of internal node `n` (in use): its stored box, or a cherry's two points.
    #[inline]
    pub(crate) fn node_box(&self, n: usize) -> BoxView<'_> {
        let node = &self.nodes[n];
        if node.slot == NO_BOX {
            let (a, b) = (node.child[0], node.child[1]);
            debug_assert!(a & b & LEAF != 0, "only a cherry stores no box");
            BoxView::Pair(
                self.leaf_point((a & !LEAF) as usize),
                self.leaf_point((b & !LEAF) as usize),
            )
        } else {
            let (lo, hi) = self.slot_box(node.slot);
            BoxView::Span(lo, hi)
        }
    }

    /// Box of a child reference (a leaf's box is its point).
    #[inline]
    pub(crate) fn ref_box(&self, r: Ref) -> BoxView<'_> {
        if r & LEAF != 0 {
            let p = self.leaf_point((r & !LEAF) as usize);
            BoxView::Span(p, p)
        } else {
            self.node_box(r as usize)
        }
    }

    /// Whether both children of node `n` are leaves (its box is then not stored).
    #[inline]
    pub(crate) fn is_cherry(&self, n: usize) -> bool {
        let c = self.nodes[n].child;
        c[0] != NIL && c[1] != NIL && c[0] & c[1] & LEAF != 0
    }

    /// A box slot for node `n`, filled with the union of its children's boxes, and the node's
    /// range set from it.
    fn store_box(&mut self, n: usize) {
        let d = self.dim;
        let s = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                let s = self.bounds.len() / (2 * d);
                assert!(s < NO_BOX as usize, "a tree holds at most {NO_BOX} boxes");
                self.bounds.resize((s + 1) * 2 * d, 0.0);
                s as u16
            }
        };
        self.nodes[n].slot = s;
        let c = self.nodes[n].child;
        let base = s as usize * 2 * d;
        for i in 0..d {
            let (a, b) = {
                let (l, r) = (self.ref_box(c[0]), self.ref_box(c[1]));
                (l.lo(i).min(r.lo(i)), l.hi(i).max(r.hi(i)))
            };
            self.bounds[base + i] = a;
            self.bounds[base + d + i] = b;
        }
        let (lo, hi) = self.slot_box(s);
        self.nodes[n].range = range_of(lo, hi);
    }

    /// Give node `n`'s box slot back (the last slot is dropped, any other is listed free).
    fn drop_box(&mut self, n: usize) {
        let d = self.dim;
        let s = std::mem::replace(&mut self.nodes[n].slot, NO_BOX);
        if s == NO_BOX {
            return;
        }
        if (s as usize + 1) * 2 * d == self.bounds.len() {
            self.bounds.truncate(s as usize * 2 * d);
        } else {
            self.free_slots.push(s);
        }
    }

    #[inline]
    pub(crate) fn ref_mass(&self, r: Ref) -> Mass {
        if r & LEAF != 0 {
            self.leaf_mass[(r & !LEAF) as usize]
        } else {
            self.nodes[r as usize].mass
        }
    }

    fn set_parent(&mut self, r: Ref, p: Ref) {
        if r & LEAF != 0 {
            self.leaf_parent[(r & !LEAF) as usize] = p;
        } else {
            self.nodes[r as usize].parent = p;
        }
    }

    fn ref_parent(&self, r: Ref) -> Ref {
        if r & LEAF != 0 {
            self.leaf_parent[(r & !LEAF) as usize]
        } else {
            self.nodes[r as usize].parent
        }
    }

    /// Replace child `old` of internal node `p` (or the root when `p == NIL`) by `new`.
    fn replace_child(&mut self, p: Ref, old: Ref, new: Ref) {
        if p == NIL {
            self.root = new;
        } else {
            let n = &mut self.nodes[p as usize];
            if n.child[0] == old {
                n.child[0] = new;
            } else {
                debug_assert_eq!(n.child[1], old);
                n.child[1] = new;
            }
        }
    }

    fn alloc_leaf(&mut self, x: &[f32], mass: Mass, parent: Ref) -> Ref {
        let d = self.dim;
        if let Some(l) = self.free_leaves.pop() {
            let l = l as usize;
            self.leaf_points[l * d..(l + 1) * d].copy_from_slice(x);
            self.leaf_mass[l] = mass;
            self.leaf_parent[l] = parent;
            l as Ref
        } else {
            let l = self.leaf_mass.len();
            assert!(l < MAX_REFS, "a tree holds at most {MAX_REFS} leaves");
            self.leaf_points.extend_from_slice(x);
            self.leaf_mass.push(mass);
            self.leaf_parent.push(parent);
            l as Ref
        }
    }

    fn alloc_node(&mut self, node: Node) -> Ref {
        if let Some(n) = self.free_nodes.pop() {
            self.nodes[n as usize] = node;
            n
        } else {
            let n = self.nodes.len();
            assert!(n < MAX_REFS, "a tree holds at most {MAX_REFS} nodes");
            self.nodes.push(node);
            n as Ref
        }
    }

    /// Insert a point (Guha et al. 2016, Algorithm "InsertPoint"), returning its leaf index.
    pub(crate) fn insert(&mut self, x: &[f32], rng: &mut Pcg) -> Ref {
        let d = self.dim;
        self.mass += 1;
        if self.root == NIL {
            let l = self.alloc_leaf(x, 1, NIL);
            self.root = l | LEAF;
            return l;
        }
        let mut cur = self.root;
        let mut parent = NIL;
        loop {
            if cur & LEAF != 0 {
                let l = (cur & !LEAF) as usize;
                let lp = self.leaf_point(l);
                if lp == x {
                    self.leaf_mass[l] += 1;
                    return l as Ref;
                }
                let r = rng.next_f64();
                let cut = choose_cut(d, |i| (lp[i].min(x[i]), lp[i].max(x[i])), r);
                let (dim, c) = cut.expect("distinct points have a positive range");
                return self.split(cur, parent, x, dim, c);
            }
            let n = cur as usize;
            let b = self.node_box(n);
            let r = rng.next_f64();
            let cut = choose_cut(d, |i| (b.lo(i).min(x[i]), b.hi(i).max(x[i])), r);
            let (dim, c) = cut.expect("internal node has a positive range");
            let xv = x[dim];
            if (xv <= c && c < b.lo(dim)) || (b.hi(dim) <= c && c < xv) {
                return self.split(cur, parent, x, dim, c);
            }
            // No separation: extend the box (if needed) and descend. A cherry's box is its
            // points': `x` joins it as a leaf below, and `split` then stores its box.
            let slot = self.nodes[n].slot;
            if slot != NO_BOX {
                let base = slot as usize * 2 * d;
                let mut changed = false;
                for (i, &xi) in x.iter().enumerate() {
                    if xi < self.bounds[base + i] {
                        self.bounds[base + i] = xi;
                        changed = true;
                    }
                    if xi > self.bounds[base + d + i] {
                        self.bounds[base + d + i] = xi;
                        changed = true;
                    }
                }
                if changed {
                    let (lo, hi) = self.slot_box(slot);
                    self.nodes[n].range = range_of(lo, hi);
                }
            }
            let node = &mut self.nodes[n];
            node.mass += 1;
            parent = n as Ref;
            cur = if x[node.cut_dim as usize] <= node.cut_val {
                node.child[0]
            } else {
                node.child[1]
            };
        }
    }

    /// New internal node above `cur` separating the new point `x` from `cur`'s subtree.
    fn split(&mut self, cur: Ref, parent: Ref, x: &[f32], dim: usize, c: f32) -> Ref {
        let d = self.dim;
        let mass = self.ref_mass(cur) + 1;
        let n = self.alloc_node(Node {
            range: 0.0,
            cut_val: c,
            cut_dim: dim as u16,
            slot: NO_BOX,
            child: [NIL, NIL],
            parent,
            mass,
        });
        let l = self.alloc_leaf(x, 1, n);
        let node = &mut self.nodes[n as usize];
        if x[dim] <= c {
            node.child[0] = l | LEAF;
            node.child[1] = cur;
        } else {
            node.child[0] = cur;
            node.child[1] = l | LEAF;
        }
        // box = box(cur) U x: stored unless `cur` is a leaf (then `n` is a cherry)
        if cur & LEAF != 0 {
            self.nodes[n as usize].range = self.node_box(n as usize).range(d);
        } else {
            self.store_box(n as usize);
        }
        self.set_parent(cur, n);
        self.replace_child(parent, cur, n);
        // A cherry above `cur` now has an internal child: its box, `x` included, is stored.
        if parent != NIL && self.nodes[parent as usize].slot == NO_BOX {
            self.store_box(parent as usize);
        }
        l
    }

    /// Remove one unit of mass from leaf `l`; when it reaches 0 the leaf and its parent go,
    /// the sibling takes the parent's place and ancestor boxes shrink back.
    pub(crate) fn delete(&mut self, l: Ref) {
        let li = l as usize;
        self.mass -= 1;
        self.leaf_mass[li] -= 1;
        let p = self.leaf_parent[li];
        let mut q = p;
        while q != NIL {
            let n = &mut self.nodes[q as usize];
            n.mass -= 1;
            q = n.parent;
        }
        if self.leaf_mass[li] > 0 {
            return;
        }
        self.free_leaves.push(l);
        self.leaf_parent[li] = NIL;
        if p == NIL {
            self.root = NIL;
            return;
        }
        let node = self.nodes[p as usize];
        let sib = if node.child[0] == l | LEAF {
            node.child[1]
        } else {
            node.child[0]
        };
        let gp = node.parent;
        self.set_parent(sib, gp);
        self.replace_child(gp, p, sib);
        self.drop_box(p as usize);
        self.free_nodes.push(p);
        let pn = &mut self.nodes[p as usize];
        pn.child[0] = NIL;
        pn.child[1] = NIL;
        pn.parent = NIL;
        pn.mass = 0;
        let mut q = gp;
        while q != NIL {
            if !self.recompute_box(q as usize) {
                break;
            }
            q = self.nodes[q as usize].parent;
        }
    }

    /// Recompute a node's box as the union of its children's; returns whether it changed. A
    /// node whose children are now both leaves becomes a cherry and gives its slot back.
    fn recompute_box(&mut self, n: usize) -> bool {
        let d = self.dim;
        let node = self.nodes[n];
        debug_assert_ne!(
            node.slot, NO_BOX,
            "a node above a deleted one has a stored box"
        );
        if self.is_cherry(n) {
            let (lo, hi) = self.slot_box(node.slot);
            let pair = match self.node_box_of_pair(n) {
                BoxView::Pair(a, b) => (a, b),
                BoxView::Span(..) => unreachable!("a cherry's box is a pair"),
            };
            let changed = (0..d)
                .any(|i| lo[i] != pair.0[i].min(pair.1[i]) || hi[i] != pair.0[i].max(pair.1[i]));
            self.drop_box(n);
            self.nodes[n].range = self.node_box(n).range(d);
            return changed;
        }
        let base = node.slot as usize * 2 * d;
        let mut changed = false;
        for i in 0..d {
            let (a, b) = {
                let (l, r) = (self.ref_box(node.child[0]), self.ref_box(node.child[1]));
                (l.lo(i).min(r.lo(i)), l.hi(i).max(r.hi(i)))
            };
            if self.bounds[base + i] != a {
                self.bounds[base + i] = a;
                changed = true;
            }
            if self.bounds[base + d + i] != b {
                self.bounds[base + d + i] = b;
                changed = true;
            }
        }
        if changed {
            let (lo, hi) = self.slot_box(node.slot);
            self.nodes[n].range = range_of(lo, hi);
        }
        changed
    }

    /// The box of cherry `n`'s two points (whether or not a slot is still held).
    fn node_box_of_pair(&self, n: usize) -> BoxView<'_> {
        let c = self.nodes[n].child;
        BoxView::Pair(
            self.leaf_point((c[0] & !LEAF) as usize),
            self.leaf_point((c[1] & !LEAF) as usize),
        )
    }

    /// Build an empty tree from `n` points (`points` is `n * dim` floats) by recursive random
    /// cuts. Returns the leaf index of every point (duplicates share a leaf and its mass).
    pub(crate) fn build(&mut self, points: &[f32], rng: &mut Pcg) -> Vec<Ref> {
        debug_assert_eq!(self.root, NIL);
        let d = self.dim;
        let n = points.len() / d;
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let mut leaf_of = vec![NIL; n];
        self.nodes.reserve(n.saturating_sub(1));
        self.leaf_mass.reserve(n);
        self.leaf_parent.reserve(n);
        self.leaf_points.reserve(n * d);
        let mut lo = vec![0.0f32; d];
        let mut hi = vec![0.0f32; d];
        if n > 0 {
            self.root = self.build_rec(points, &mut idx, NIL, rng, &mut leaf_of, &mut lo, &mut hi);
            self.mass = n as u32;
        }
        // The boxes grew by doubling; cherries gave theirs back as they were built.
        self.bounds.shrink_to_fit();
        leaf_of
    }

    #[allow(clippy::too_many_arguments)]
    fn build_rec(
        &mut self,
        points: &[f32],
        idx: &mut [u32],
        parent: Ref,
        rng: &mut Pcg,
        leaf_of: &mut [Ref],
        lo: &mut [f32],
        hi: &mut [f32],
    ) -> Ref {
        let d = self.dim;
        let pt = |k: u32| &points[k as usize * d..(k as usize + 1) * d];
        lo.copy_from_slice(pt(idx[0]));
        hi.copy_from_slice(pt(idx[0]));
        for &k in idx[1..].iter() {
            for (i, &v) in pt(k).iter().enumerate() {
                if v < lo[i] {
                    lo[i] = v;
                }
                if v > hi[i] {
                    hi[i] = v;
                }
            }
        }
        let r = rng.next_f64();
        let cut = choose_cut(d, |i| (lo[i], hi[i]), r);
        let Some((dim, c)) = cut else {
            // all points identical: one leaf carrying the mass
            let l = self.alloc_leaf(pt(idx[0]), idx.len() as Mass, parent);
            for &k in idx.iter() {
                leaf_of[k as usize] = l;
            }
            return l | LEAF;
        };
        // The box is kept in a slot until the children show whether the node is a cherry
        // (`lo` and `hi` are reused below).
        let slot = self.bounds.len() / (2 * d);
        assert!(
            slot < NO_BOX as usize,
            "a tree holds at most {NO_BOX} boxes"
        );
        self.bounds.extend_from_slice(lo);
        self.bounds.extend_from_slice(hi);
        let n = self.alloc_node(Node {
            range: range_of(lo, hi),
            cut_val: c,
            cut_dim: dim as u16,
            slot: slot as u16,
            child: [NIL, NIL],
            parent,
            mass: idx.len() as Mass,
        });
        // partition: x[dim] <= c to the left
        let mut split = 0;
        for j in 0..idx.len() {
            if pt(idx[j])[dim] <= c {
                idx.swap(split, j);
                split += 1;
            }
        }
        debug_assert!(split > 0 && split < idx.len());
        let (l, r) = idx.split_at_mut(split);
        let left = self.build_rec(points, l, n, rng, leaf_of, lo, hi);
        let right = self.build_rec(points, r, n, rng, leaf_of, lo, hi);
        let node = &mut self.nodes[n as usize];
        node.child[0] = left;
        node.child[1] = right;
        if left & right & LEAF != 0 {
            // A cherry: nothing was allocated since its slot, the last one, which goes.
            self.drop_box(n as usize);
        }
        n
    }

    /// Unnormalised reference score of `x` (see the crate docs): a descent that reads only
    /// the cuts, then the climb from the leaf that stops at the first box containing `x`
    /// (every ancestor's box contains that box, so the rest of the path adds nothing).
    #[inline(always)]
    pub(crate) fn raw_score<const AVX: bool>(&self, x: &[f32]) -> f64 {
        let mut cur = self.root;
        let mut depth = 0usize;
        while cur & LEAF == 0 {
            let node = &self.nodes[cur as usize];
            let go_right = x[node.cut_dim as usize] > node.cut_val;
            cur = node.child[go_right as usize];
            depth += 1;
        }
        self.score_from_leaf::<AVX>((cur & !LEAF) as usize, x, depth)
    }

    /// What [`Tree::raw_score`] reads for `x`: (internal nodes descended, boxes compared on
    /// the climb, of which cherries' boxes, read as the sibling leaf's point).
    pub(crate) fn walk(&self, x: &[f32]) -> (usize, usize, usize) {
        let mut cur = self.root;
        let mut depth = 0usize;
        while cur & LEAF == 0 {
            let node = &self.nodes[cur as usize];
            cur = node.child[(x[node.cut_dim as usize] > node.cut_val) as usize];
            depth += 1;
        }
        let l = (cur & !LEAF) as usize;
        let mut up = if self.leaf_point(l) == x {
            NIL
        } else {
            self.leaf_parent[l]
        };
        let (mut boxes, mut pairs) = (0, 0);
        while up != NIL {
            boxes += 1;
            let b = self.node_box(up as usize);
            pairs += matches!(b, BoxView::Pair(..)) as usize;
            if b.outside::<false>(x) == 0.0 {
                break;
            }
            up = self.nodes[up as usize].parent;
        }
        (depth, boxes, pairs)
    }

    /// The score of `x` from leaf `l`, reached at depth `depth`: the leaf's term `S_h`, then
    /// the climb `S_k = p_k / (k + 1) + (1 - p_k) · S_{k+1}` with `p_k = e / (r + e)` (`e` how
    /// far `x` lies outside node `k`'s box, `r` the box's range) until `x` lies inside a box
    /// (`p = 0` there and above). `S` is carried as a fraction `num / den`,
    /// `S_k = (e / (k + 1) · den + r · num) / ((r + e) · den)`, so a level costs
    /// multiplications and the climb one division. Whether `x` is the leaf's point (the
    /// "seen" term) is asked first, with one vector compare per 8 coordinates: an unseen
    /// point usually differs in the first 8, and a seen one (a training row scored against
    /// the trees that sampled it) then reads no box.
    #[inline(always)]
    pub(crate) fn score_from_leaf<const AVX: bool>(
        &self,
        l: usize,
        x: &[f32],
        depth: usize,
    ) -> f64 {
        let d = self.dim;
        // `x` equal to the leaf's point lies inside every box above it: the leaf term is the
        // score, and no box is read.
        if same_point::<AVX>(self.leaf_point(l), x) {
            return self.seen_score(l, depth);
        }
        let mut up = self.leaf_parent[l];
        let (mut num, mut den) = (inv_depth(depth), 1.0f64);
        let mut k = depth;
        if up != NIL {
            // The parent may be a cherry, the only node of the climb that can be one: its box
            // is the leaf's point (read above) and the sibling leaf's.
            let node = &self.nodes[up as usize];
            if node.slot == NO_BOX {
                let sib = node.child[0] ^ node.child[1] ^ (l as Ref | LEAF);
                let e = outside_pair_k::<AVX>(
                    self.leaf_point(l),
                    self.leaf_point((sib & !LEAF) as usize),
                    x,
                );
                if e == 0.0 {
                    return num / den;
                }
                k -= 1;
                (num, den) = climb_step(num, den, e as f64, k, node.range);
                up = node.parent;
            }
        }
        while up != NIL {
            let node = &self.nodes[up as usize];
            let s = node.slot as usize;
            let b = &self.bounds[s * 2 * d..(s + 1) * 2 * d];
            let e = outside_k::<AVX>(&b[..d], &b[d..], x);
            if e == 0.0 {
                break;
            }
            k -= 1;
            (num, den) = climb_step(num, den, e as f64, k, node.range);
            up = node.parent;
        }
        num / den
    }

    /// The leaf term of a point equal to leaf `l`'s point, reached at depth `depth`.
    #[inline(always)]
    pub(crate) fn seen_score(&self, l: usize, depth: usize) -> f64 {
        let m = self.leaf_mass[l] as f64;
        damp(m, self.mass as f64) * score_seen(depth as f64, m)
    }

    /// Add this tree's normalised score of each of the `acc.len()` points in `xs`
    /// (`acc.len() * dim` floats, contiguous) into `acc`, the walks moving a level at a time
    /// ([`walk_many`]); every value is bit-identical to [`Tree::score`].
    #[inline(always)]
    pub(crate) fn score_block_into<const AVX: bool>(
        &self,
        xs: &[f32],
        acc: &mut [f64],
        walks: &mut Walks,
    ) {
        let d = self.dim;
        let norm = normalizer(self.mass as f64);
        let m = acc.len();
        walk_many::<AVX>(m, |_| self, xs, d, d, walks, |j, r| acc[j] += r * norm);
    }

    /// Normalised score of `x` against this (non-empty) tree.
    #[inline(always)]
    pub(crate) fn score<const AVX: bool>(&self, x: &[f32]) -> f64 {
        self.raw_score::<AVX>(x) * normalizer(self.mass as f64)
    }

    /// Add this tree's normalised attribution of `x`, multiplied by `scale`, into high/low.
    pub(crate) fn attribution(&self, x: &[f32], scale: f64, high: &mut [f64], low: &mut [f64]) {
        let d = self.dim;
        let norm = normalizer(self.mass as f64) * scale;
        let mut cur = self.root;
        let mut depth = 0.0f64;
        let mut rem = 1.0f64;
        while cur & LEAF == 0 {
            let n = cur as usize;
            let node = &self.nodes[n];
            let b = self.node_box(n);
            let e = b.outside::<false>(x) as f64;
            if e > 0.0 {
                let p = e / (node.range + e);
                let contrib = rem * p * score_unseen(depth) * norm;
                let mut sum = 0.0f64;
                for (i, &xi) in x.iter().enumerate() {
                    sum += (b.lo(i) - xi).max(0.0) as f64 + (xi - b.hi(i)).max(0.0) as f64;
                }
                let f = contrib / sum;
                for i in 0..d {
                    let below = (b.lo(i) - x[i]).max(0.0) as f64;
                    let above = (x[i] - b.hi(i)).max(0.0) as f64;
                    low[i] += f * below;
                    high[i] += f * above;
                }
                rem *= 1.0 - p;
            }
            cur = if x[node.cut_dim as usize] <= node.cut_val {
                node.child[0]
            } else {
                node.child[1]
            };
            depth += 1.0;
        }
        let l = (cur & !LEAF) as usize;
        let q = self.leaf_point(l);
        if q == x {
            // The point is in the sample (a duplicate). As in the reference
            // AnomalyAttributionVisitor, the score stays the "seen" score while its direction
            // comes from "shadow boxes": going up from the leaf, the union of the sibling
            // subtrees' boxes (the tree without this point), until the point falls inside.
            // The directions are then rescaled to sum to the score; if no direction exists
            // (the point is inside the first shadow box) the score is spread evenly.
            let m = self.leaf_mass[l] as f64;
            let s = rem * damp(m, self.mass as f64) * score_seen(depth, m) * norm;
            let mut dh = vec![0.0f64; d];
            let mut dl = vec![0.0f64; d];
            let mut slo = vec![f32::INFINITY; d];
            let mut shi = vec![f32::NEG_INFINITY; d];
            let mut child = l as Ref | LEAF;
            let mut node = self.leaf_parent[l];
            let mut dep = depth;
            while node != NIL {
                dep -= 1.0;
                let nd = &self.nodes[node as usize];
                let sib = if nd.child[0] == child {
                    nd.child[1]
                } else {
                    nd.child[0]
                };
                let b = self.ref_box(sib);
                for i in 0..d {
                    slo[i] = slo[i].min(b.lo(i));
                    shi[i] = shi[i].max(b.hi(i));
                }
                let mut range = 0.0f64;
                let mut ext = 0.0f64;
                for i in 0..d {
                    range += shi[i] as f64 - slo[i] as f64;
                    ext += (slo[i] - x[i]).max(0.0) as f64 + (x[i] - shi[i]).max(0.0) as f64;
                }
                if ext <= 0.0 {
                    break;
                }
                let p = ext / (range + ext);
                let u = score_unseen(dep) / (range + ext);
                for i in 0..d {
                    dh[i] = dh[i] * (1.0 - p) + (x[i] - shi[i]).max(0.0) as f64 * u;
                    dl[i] = dl[i] * (1.0 - p) + (slo[i] - x[i]).max(0.0) as f64 * u;
                }
                child = node;
                node = nd.parent;
            }
            let total: f64 = dh.iter().sum::<f64>() + dl.iter().sum::<f64>();
            if total > 0.0 {
                let f = s / total;
                for i in 0..d {
                    high[i] += dh[i] * f;
                    low[i] += dl[i] * f;
                }
            } else {
                let each = s / (2 * d) as f64;
                for i in 0..d {
                    high[i] += each;
                    low[i] += each;
                }
            }
        } else {
            let s = rem * score_unseen(depth) * norm;
            let sum: f64 = (0..d).map(|i| (x[i] as f64 - q[i] as f64).abs()).sum();
            let f = s / sum;
            for i in 0..d {
                let diff = x[i] as f64 - q[i] as f64;
                if diff > 0.0 {
                    high[i] += f * diff;
                } else {
                    low[i] -= f * diff;
                }
            }
        }
    }

    /// Structural check (used after deserialisation and in tests). Returns a reason on failure.
    pub(crate) fn check(&self) -> Result<(), String> {
        let d = self.dim;
        if !self.bounds.len().is_multiple_of(2 * d)
            || self.bounds.len() / (2 * d) >= NO_BOX as usize
        {
            return Err("bounding-box array length is not a whole number of boxes".into());
        }
        let slots = self.bounds.len() / (2 * d);
        let mut slot_used = vec![false; slots];
        if self.leaf_points.len() != self.leaf_mass.len() * d
            || self.leaf_parent.len() != self.leaf_mass.len()
        {
            return Err("leaf arrays have inconsistent lengths".into());
        }
        if self.nodes.len() >= LEAF as usize || self.leaf_mass.len() >= LEAF as usize {
            return Err("too many nodes".into());
        }
        let mut seen_node = vec![false; self.nodes.len()];
        let mut seen_leaf = vec![false; self.leaf_mass.len()];
        let mut total = 0u64;
        if self.root != NIL {
            let mut stack = vec![(self.root, NIL)];
            while let Some((r, parent)) = stack.pop() {
                if r & LEAF != 0 {
                    let l = (r & !LEAF) as usize;
                    if l >= self.leaf_mass.len() || seen_leaf[l] {
                        return Err("leaf reference out of range or shared".into());
                    }
                    seen_leaf[l] = true;
                    if self.leaf_mass[l] == 0 || self.leaf_parent[l] != parent {
                        return Err("leaf mass or parent link is inconsistent".into());
                    }
                    if self.leaf_point(l).iter().any(|v| !v.is_finite()) {
                        return Err("leaf point is not finite".into());
                    }
                    total += self.leaf_mass[l] as u64;
                } else {
                    let n = r as usize;
                    if n >= self.nodes.len() || seen_node[n] {
                        return Err("node reference out of range or shared".into());
                    }
                    seen_node[n] = true;
                    let node = self.nodes[n];
                    if node.parent != parent || node.cut_dim as usize >= d {
                        return Err("node parent link or cut dimension is invalid".into());
                    }
                    if node.child[0] == NIL || node.child[1] == NIL {
                        return Err("internal node is missing a child".into());
                    }
                    if self.is_cherry(n) != (node.slot == NO_BOX) {
                        return Err(
                            "a node stores a box exactly when it has an internal child".into()
                        );
                    }
                    if node.slot != NO_BOX {
                        let s = node.slot as usize;
                        if s >= slots || slot_used[s] {
                            return Err("box slot out of range or shared".into());
                        }
                        slot_used[s] = true;
                    }
                    stack.push((node.child[0], r));
                    stack.push((node.child[1], r));
                }
            }
            // second pass over reachable nodes: masses and boxes
            for (n, node) in self.nodes.iter().enumerate() {
                if !seen_node[n] {
                    continue;
                }
                let m = self.ref_mass(node.child[0]) as u64 + self.ref_mass(node.child[1]) as u64;
                if m != node.mass as u64 {
                    return Err("node mass differs from the sum of its children".into());
                }
                let b = self.node_box(n);
                let (l, r) = (self.ref_box(node.child[0]), self.ref_box(node.child[1]));
                for i in 0..d {
                    if b.lo(i) != l.lo(i).min(r.lo(i)) || b.hi(i) != l.hi(i).max(r.hi(i)) {
                        return Err("bounding box differs from the union of its children".into());
                    }
                }
                let cd = node.cut_dim as usize;
                if !(l.hi(cd) <= node.cut_val && node.cut_val < r.lo(cd)) {
                    return Err("a cut does not separate its children".into());
                }
                let range = b.range(d);
                if range != node.range || range <= 0.0 || !range.is_finite() {
                    return Err("stored box range is inconsistent".into());
                }
            }
        }
        if total != self.mass as u64 {
            return Err("tree mass differs from the sum of leaf masses".into());
        }
        let mut free_node = vec![false; self.nodes.len()];
        for &f in &self.free_nodes {
            let f = f as usize;
            if f >= self.nodes.len() || seen_node[f] || free_node[f] {
                return Err("free node list is invalid".into());
            }
            if self.nodes[f].slot != NO_BOX {
                return Err("a free node holds a box slot".into());
            }
            free_node[f] = true;
        }
        for &s in &self.free_slots {
            let s = s as usize;
            if s >= slots || slot_used[s] {
                return Err("free box slot list is invalid".into());
            }
            slot_used[s] = true;
        }
        if slot_used.iter().any(|u| !u) {
            return Err("a box slot is neither used nor free".into());
        }
        let mut free_leaf = vec![false; self.leaf_mass.len()];
        for &f in &self.free_leaves {
            let f = f as usize;
            if f >= self.leaf_mass.len() || seen_leaf[f] || free_leaf[f] {
                return Err("free leaf list is invalid".into());
            }
            free_leaf[f] = true;
        }
        if free_node.iter().zip(&seen_node).any(|(a, b)| !a && !b)
            || free_leaf.iter().zip(&seen_leaf).any(|(a, b)| !a && !b)
        {
            return Err("unreachable slot missing from the free lists".into());
        }
        Ok(())
    }

    /// Canonical description of the tree shape (for tests: structure independent of slot ids).
    #[cfg(test)]
    pub(crate) fn canonical(&self) -> String {
        fn rec(t: &Tree, r: Ref, out: &mut String) {
            use std::fmt::Write;
            if r & LEAF != 0 {
                let l = (r & !LEAF) as usize;
                let _ = write!(out, "L{:?}x{}", t.leaf_point(l), t.leaf_mass[l]);
            } else {
                let n = t.nodes[r as usize];
                let b = t.node_box(r as usize);
                let lo: Vec<f32> = (0..t.dim).map(|i| b.lo(i)).collect();
                let hi: Vec<f32> = (0..t.dim).map(|i| b.hi(i)).collect();
                let _ = write!(
                    out,
                    "N({} {} m{} {:?} {:?} ",
                    n.cut_dim, n.cut_val, n.mass, lo, hi
                );
                rec(t, n.child[0], out);
                out.push(' ');
                rec(t, n.child[1], out);
                out.push(')');
            }
        }
        let mut s = String::new();
        if self.root != NIL {
            rec(self, self.root, &mut s);
        }
        s
    }

    #[allow(dead_code)]
    pub(crate) fn parent_of(&self, r: Ref) -> Ref {
        self.ref_parent(r)
    }
}

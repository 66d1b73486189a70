//! Binary model format (little endian).
//!
//! ```text
//! magic     8 bytes  "RCFOREST"
//! version   u32      FORMAT_VERSION
//! length    u64      payload length in bytes
//! payload   ...      header + trees (see `encode`)
//! checksum  u64      FNV-1a 64 over everything before it
//! ```
//!
//! Loading checks, in order: magic, version, length (truncation), checksum, then parses the
//! payload with bounds checks and validates every tree's structure, so a damaged file is an
//! error, never a panic or a wrong score.

use crate::error::RcfError;
use crate::rng::Pcg;
use crate::tree::{Mass, Node, Ref, Tree, LEAF, MAX_DIM, MAX_REFS, NIL, NO_BOX};
use crate::{Forest, ForestConfig, Reservoir, TreeState};

pub(crate) const MAGIC: &[u8; 8] = b"RCFOREST";
pub(crate) const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8;

/// FNV-1a, 64 bit. Any single changed byte changes the hash (each step is a bijection).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct W(Vec<u8>);

impl W {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Gives every node of a decoded tree that has an internal child a box slot, filled from the
/// file's per-node `boxes`; returns the cherries, whose stored boxes are left to be compared
/// with their points once the tree is known to be sound. Free nodes (as listed) get none.
fn take_boxes(t: &mut Tree, boxes: &[f32]) -> Vec<usize> {
    let w = 2 * t.dim;
    let mut free = vec![false; t.nodes.len()];
    for &f in &t.free_nodes {
        if let Some(x) = free.get_mut(f as usize) {
            *x = true;
        }
    }
    let mut cherries = Vec::new();
    let stored = (0..t.nodes.len())
        .filter(|&n| !free[n] && !t.is_cherry(n))
        .count();
    t.bounds = Vec::with_capacity(stored * w);
    for n in 0..t.nodes.len() {
        if free[n] {
            continue;
        }
        if t.is_cherry(n) {
            cherries.push(n);
        } else {
            // At most `nn <= cap <= 2048` slots: the `u16` holds them (and stays below NO_BOX).
            t.nodes[n].slot = (t.bounds.len() / w) as u16;
            t.bounds.extend_from_slice(&boxes[n * w..(n + 1) * w]);
        }
    }
    cherries
}

pub(crate) fn encode(f: &Forest) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(f.memory_bytes() + 64));
    w.0.extend_from_slice(MAGIC);
    w.u32(FORMAT_VERSION);
    w.u64(0); // payload length, patched below
    w.u64(f.dim as u64);
    w.u64(f.config.num_trees as u64);
    w.u64(f.config.num_samples_per_tree as u64);
    w.u64(f.config.seed);
    w.f64(f.config.time_decay);
    w.u64(f.seq);
    w.u64(f.trees.len() as u64);
    for ts in &f.trees {
        let t = &ts.tree;
        w.u64(ts.rng.state as u64);
        w.u64((ts.rng.state >> 64) as u64);
        w.u32(ref_out(t.root));
        w.u32(t.mass);
        w.u64(t.nodes.len() as u64);
        for n in &t.nodes {
            w.f64(n.range);
            w.0.extend_from_slice(&n.cut_val.to_le_bytes());
            w.u32(n.cut_dim as u32);
            w.u32(ref_out(n.child[0]));
            w.u32(ref_out(n.child[1]));
            w.u32(ref_out(n.parent));
            w.u32(n.mass as u32);
        }
        // Every node's box, as before boxes were shared out to slots: a cherry's is its two
        // points', a free node's is zeros.
        let d = t.dim;
        let zeros = vec![0.0f32; d];
        for (i, n) in t.nodes.iter().enumerate() {
            if n.slot != NO_BOX {
                let (lo, hi) = t.slot_box(n.slot);
                w.f32s(lo);
                w.f32s(hi);
            } else if t.is_cherry(i) {
                let b = t.node_box(i);
                for k in 0..d {
                    w.f32(b.lo(k));
                }
                for k in 0..d {
                    w.f32(b.hi(k));
                }
            } else {
                w.f32s(&zeros);
                w.f32s(&zeros);
            }
        }
        w.u32s(&widen(&t.free_nodes));
        w.u64(t.leaf_mass.len() as u64);
        w.f32s(&t.leaf_points);
        for &m in &t.leaf_mass {
            w.u32(m as u32);
        }
        for &p in &t.leaf_parent {
            w.u32(ref_out(p));
        }
        w.u32s(&widen(&t.free_leaves));
        w.u64(ts.heap.len() as u64);
        for (wt, l) in ts.heap.entries() {
            w.f64(wt);
            w.u32(l as u32);
        }
    }
    let len = (w.0.len() - HEADER) as u64;
    w.0[12..20].copy_from_slice(&len.to_le_bytes());
    let h = fnv1a64(&w.0);
    w.u64(h);
    w.0
}

struct R<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RcfError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(e) => {
                let s = &self.b[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(RcfError::Corrupt(format!(
                "a field at payload offset {} runs past the end of the payload",
                self.pos
            ))),
        }
    }
    fn u32(&mut self) -> Result<u32, RcfError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn f32(&mut self) -> Result<f32, RcfError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, RcfError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn f64(&mut self) -> Result<f64, RcfError> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count whose items take `item_bytes` each; rejects counts that cannot fit.
    fn count(&mut self, item_bytes: usize, what: &str) -> Result<usize, RcfError> {
        let n = self.u64()?;
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(item_bytes.max(1) as u64) > left {
            return Err(RcfError::Corrupt(format!(
                "{what} count {n} exceeds the payload"
            )));
        }
        Ok(n as usize)
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, RcfError> {
        let s = self.take(n.checked_mul(4).ok_or_else(|| corrupt("array too large"))?)?;
        Ok(s.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn u32s_n(&mut self, n: usize) -> Result<Vec<u32>, RcfError> {
        let s = self.take(n.checked_mul(4).ok_or_else(|| corrupt("array too large"))?)?;
        Ok(s.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn u32s(&mut self, what: &str) -> Result<Vec<u32>, RcfError> {
        let n = self.count(4, what)?;
        self.u32s_n(n)
    }
}

/// On disk a reference is a `u32`: `u32::MAX` for none, bit 31 for a leaf (the format predates
/// the 16-bit references, and stays as it was).
fn ref_out(r: Ref) -> u32 {
    if r == NIL {
        u32::MAX
    } else if r & LEAF != 0 {
        (1 << 31) | (r & !LEAF) as u32
    } else {
        r as u32
    }
}

fn ref_in(v: u32) -> Result<Ref, RcfError> {
    if v == u32::MAX {
        return Ok(NIL);
    }
    let i = (v & !(1 << 31)) as usize;
    if i >= MAX_REFS {
        return Err(corrupt("a node or leaf reference is out of range"));
    }
    Ok(if v & (1 << 31) != 0 {
        i as Ref | LEAF
    } else {
        i as Ref
    })
}

fn index_in(v: Vec<u32>) -> Result<Vec<Ref>, RcfError> {
    v.into_iter()
        .map(|i| {
            if (i as usize) < MAX_REFS {
                Ok(i as Ref)
            } else {
                Err(corrupt("a free-list index is out of range"))
            }
        })
        .collect()
}

fn mass_in(m: u32) -> Result<Mass, RcfError> {
    Mass::try_from(m).map_err(|_| corrupt("a mass is larger than any sample size"))
}

fn widen(v: &[Ref]) -> Vec<u32> {
    v.iter().map(|&i| i as u32).collect()
}

fn corrupt(s: &str) -> RcfError {
    RcfError::Corrupt(s.to_string())
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Forest, RcfError> {
    if bytes.len() < MAGIC.len() {
        if MAGIC.starts_with(bytes) {
            return Err(RcfError::Truncated {
                needed: HEADER + 8,
                available: bytes.len(),
            });
        }
        return Err(RcfError::BadMagic);
    }
    if &bytes[..8] != MAGIC {
        return Err(RcfError::BadMagic);
    }
    if bytes.len() < 12 {
        return Err(RcfError::Truncated {
            needed: HEADER + 8,
            available: bytes.len(),
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(RcfError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if bytes.len() < HEADER {
        return Err(RcfError::Truncated {
            needed: HEADER + 8,
            available: bytes.len(),
        });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    let total = (len as u128) + (HEADER as u128) + 8;
    if total > bytes.len() as u128 {
        return Err(RcfError::Truncated {
            needed: usize::try_from(total).unwrap_or(usize::MAX),
            available: bytes.len(),
        });
    }
    let total = total as usize;
    if total < bytes.len() {
        return Err(RcfError::Corrupt(format!(
            "{} unexpected trailing bytes after the model",
            bytes.len() - total
        )));
    }
    let body_end = total - 8;
    let stored = u64::from_le_bytes(bytes[body_end..total].try_into().unwrap());
    let computed = fnv1a64(&bytes[..body_end]);
    if stored != computed {
        return Err(RcfError::ChecksumMismatch { stored, computed });
    }
    let mut r = R {
        b: &bytes[..body_end],
        pos: HEADER,
    };
    let dim = r.u64()?;
    let num_trees = r.u64()?;
    let samples = r.u64()?;
    let seed = r.u64()?;
    let time_decay = r.f64()?;
    let seq = r.u64()?;
    let config = ForestConfig {
        num_trees: usize::try_from(num_trees).unwrap_or(usize::MAX),
        num_samples_per_tree: usize::try_from(samples).unwrap_or(usize::MAX),
        seed,
        time_decay,
    };
    config
        .validate()
        .map_err(|e| RcfError::Corrupt(format!("stored configuration is invalid: {e}")))?;
    if dim == 0 || dim > MAX_DIM as u64 {
        return Err(corrupt("stored dimension is out of range"));
    }
    let dim = dim as usize;
    let ntrees = r.count(1, "tree")?;
    if ntrees != config.num_trees {
        return Err(corrupt("tree count differs from num_trees"));
    }
    let cap = config.num_samples_per_tree;
    let mut trees = Vec::with_capacity(ntrees);
    for _ in 0..ntrees {
        let lo = r.u64()?;
        let hi = r.u64()?;
        let rng = Pcg::from_state(((hi as u128) << 64) | lo as u128);
        let mut t = Tree::new(dim);
        t.root = ref_in(r.u32()?)?;
        t.mass = r.u32()?;
        let nn = r.count(32, "node")?;
        if nn > cap {
            return Err(corrupt("more nodes than the sample size allows"));
        }
        t.nodes.reserve(nn);
        for _ in 0..nn {
            t.nodes.push(Node {
                range: r.f64()?,
                cut_val: r.f32()?,
                cut_dim: u16::try_from(r.u32()?)
                    .map_err(|_| corrupt("a cut dimension is out of range"))?,
                slot: NO_BOX,
                child: [ref_in(r.u32()?)?, ref_in(r.u32()?)?],
                parent: ref_in(r.u32()?)?,
                mass: mass_in(r.u32()?)?,
            });
        }
        let boxes = r.f32s(nn * 2 * dim)?;
        t.free_nodes = index_in(r.u32s("free node")?)?;
        let nl = r.count(4 * dim + 8, "leaf")?;
        if nl > cap {
            return Err(corrupt("more leaves than the sample size allows"));
        }
        t.leaf_points = r.f32s(nl * dim)?;
        t.leaf_mass = r
            .u32s_n(nl)?
            .into_iter()
            .map(mass_in)
            .collect::<Result<_, _>>()?;
        t.leaf_parent = r
            .u32s_n(nl)?
            .into_iter()
            .map(ref_in)
            .collect::<Result<_, _>>()?;
        t.free_leaves = index_in(r.u32s("free leaf")?)?;
        let cherries = take_boxes(&mut t, &boxes);
        t.check().map_err(RcfError::Corrupt)?;
        // A cherry's stored box must be its two points' (the check saw only the points).
        for n in cherries {
            let b = t.node_box(n);
            let (lo, hi) = boxes[n * 2 * dim..(n + 1) * 2 * dim].split_at(dim);
            if (0..dim).any(|i| lo[i] != b.lo(i) || hi[i] != b.hi(i)) {
                return Err(corrupt(
                    "bounding box differs from the union of its children",
                ));
            }
        }
        let nh = r.count(12, "sample")?;
        if nh > cap {
            return Err(corrupt("more sampled points than num_samples_per_tree"));
        }
        let mut heap: Vec<(f64, Ref)> = Vec::with_capacity(nh);
        let mut per_leaf: Vec<Mass> = vec![0; t.leaf_mass.len()];
        for i in 0..nh {
            let w = r.f64()?;
            let l = r.u32()?;
            if w.is_nan() || l as usize >= per_leaf.len() || t.leaf_mass[l as usize] == 0 {
                return Err(corrupt("sampler entry is invalid"));
            }
            if i > 0 && w > heap[(i - 1) / 2].0 {
                return Err(corrupt("sampler heap order is broken"));
            }
            per_leaf[l as usize] += 1;
            heap.push((w, l as Ref));
        }
        if per_leaf != t.leaf_mass || nh as u64 != t.mass as u64 {
            return Err(corrupt(
                "sampler entries do not match the tree's leaf masses",
            ));
        }
        trees.push(TreeState {
            tree: t,
            rng,
            heap: Reservoir::from_heap(heap.into_iter()),
        });
    }
    if r.pos != r.b.len() {
        return Err(corrupt("unexpected bytes after the last tree"));
    }
    Ok(Forest {
        dim,
        config,
        trees,
        seq,
    })
}

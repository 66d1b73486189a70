//! rcf-core against the AWS reference Random Cut Forest (`krcflib`), measured in the same run on
//! the same points: 100 trees × 256 samples, single thread.
//!
//! `cargo bench -p rcf-reference-bench -- [FILE.csv ...]`. Without files it runs every labelled
//! set (`*.csv`) in `../shared/datasets` (or `DATASETS=dir`) and Gaussian clouds N(0, I) of 50,000 rows at
//! d = 8 and d = 30. A CSV has a header row; a column named `label` is dropped, every other
//! column is a feature, read as f32 without scaling.
//!
//! Per data set:
//!
//! * the reference is trained by streaming every row in (`initial_accept_fraction` 1.0), ours by
//!   `Forest::fit` on the same rows;
//! * **score**: both score every row (ours point by point, the endpoint's call, and in batch,
//!   the pipeline's call), repeated until each side has run for a while;
//! * **update + score**: both run score-then-update over the rows again, the same number of
//!   points;
//! * **memory**: bytes allocated and still live once the trained model exists, counted by a
//!   global allocator wrapper (the reference's model and ours).
//!
//! `--ours-only` skips the reference (its columns print NaN): for iterating on the engine.
//!
//! Each phase alternates the two sides three times and keeps each side's best rate. Prints one
//! row per set with the reference's rate, ours and the ratio, and a summary line with the
//! smallest ratio of each column.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand_distr_free::gaussian;
use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFOptionsBuilder};

/// Live heap bytes, for the memory column.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A standard normal sampler (Box–Muller) without another dependency.
mod rand_distr_free {
    use rand::Rng;
    pub fn gaussian<R: Rng>(rng: &mut R) -> f32 {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

const TREES: usize = 100;
const SAMPLES: usize = 256;
/// Every labelled set in `dir`: its `*.csv` files, in name order.
fn labelled_sets(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "cannot list {}: {e} (the labelled sets live in ../shared/datasets beside the \
             workspace; set DATASETS=dir)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    files
}
/// Each timed side scores at least this many points per round (small sets are repeated).
const MIN_POINTS: usize = 20_000;

struct Data {
    name: String,
    d: usize,
    rows: Vec<Vec<f32>>,
}

fn read_csv(path: &Path) -> Data {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (the labelled sets live in ../shared/datasets beside the \
             workspace; set DATASETS=dir or pass files)",
            path.display()
        )
    });
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header row").split(',').collect();
    let keep: Vec<bool> = header.iter().map(|h| h.trim() != "label").collect();
    let rows: Vec<Vec<f32>> = lines
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            l.split(',')
                .zip(&keep)
                .filter(|(_, &k)| k)
                .map(|(v, _)| {
                    v.trim().parse::<f32>().unwrap_or_else(|e| {
                        panic!(
                            "{}: row {}: {v:?} is not a number: {e}",
                            path.display(),
                            i + 2
                        )
                    })
                })
                .collect()
        })
        .collect();
    let d = keep.iter().filter(|&&k| k).count();
    Data {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        d,
        rows,
    }
}

fn gaussian_cloud(n: usize, d: usize) -> Data {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(d as u64);
    Data {
        name: format!("gaussian d={d}"),
        d,
        rows: (0..n)
            .map(|_| (0..d).map(|_| gaussian(&mut rng)).collect())
            .collect(),
    }
}

fn reference(d: usize) -> Box<dyn AugmentedRCF<u64, u64> + Sync + Send> {
    RCFBuilder::new(d, 1)
        .tree_capacity(SAMPLES)
        .number_of_trees(TREES)
        .random_seed(7)
        .store_attributes(false)
        .parallel_enabled(false)
        .internal_shingling(false)
        .initial_accept_fraction(1.0)
        .build::<u64, u64>()
        .expect("reference forest")
}

fn config() -> rcf_core::ForestConfig {
    rcf_core::ForestConfig {
        num_trees: TREES,
        num_samples_per_tree: SAMPLES,
        seed: 7,
        time_decay: 0.0,
    }
}

/// Points per second of `f` called `passes` times over `n` rows; best of `rounds`, each round
/// interleaved by the caller.
fn rate<F: FnMut()>(n: usize, passes: usize, mut f: F) -> f64 {
    let t = Instant::now();
    for _ in 0..passes {
        f();
    }
    (n * passes) as f64 / t.elapsed().as_secs_f64()
}

struct Row {
    name: String,
    n: usize,
    d: usize,
    score: (f64, f64, f64),
    stream: (f64, f64),
    memory: (isize, isize),
    walk: rcf_core::WalkStats,
    /// ns per (point, tree) of the descent alone, and ns per box step of the climb.
    descent_ns: f64,
    box_ns: f64,
}

/// ns per box step at dimension `d`: 64 boxes (about the climb's share of a tree, warm in
/// L1) against 2,048 points, best of 5.
fn box_step_ns(data: &Data) -> f64 {
    let d = data.d;
    let rows = &data.rows;
    let boxes: Vec<f32> = (0..64)
        .flat_map(|i| {
            let (a, b) = (&rows[i % rows.len()], &rows[(i * 7 + 3) % rows.len()]);
            let lo: Vec<f32> = a.iter().zip(b).map(|(x, y)| x.min(*y)).collect();
            let hi: Vec<f32> = a.iter().zip(b).map(|(x, y)| x.max(*y)).collect();
            lo.into_iter().chain(hi)
        })
        .collect();
    let points: Vec<f32> = (0..2048)
        .flat_map(|i| rows[(i * 13) % rows.len()].clone())
        .collect();
    let mut best = f64::INFINITY;
    let mut sink = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        sink += rcf_core::box_distance_sum(&boxes, &points, d);
        best = best.min(t.elapsed().as_secs_f64());
    }
    assert!(sink.is_finite());
    best * 1e9 / (64.0 * 2048.0)
}

fn measure(data: &Data, with_reference: bool) -> Row {
    let (n, d) = (data.rows.len(), data.d);
    let passes = MIN_POINTS.div_ceil(n).max(1);
    let flat: Vec<f32> = data.rows.iter().flatten().copied().collect();
    let view = ndarray::ArrayView2::from_shape((n, d), &flat).expect("shape");

    let before = live();
    let mut theirs = reference(d);
    for p in data.rows.iter().filter(|_| with_reference) {
        theirs.update(p, 0).expect("update");
    }
    let their_bytes = live() - before;
    let before = live();
    let mut ours = rcf_core::Forest::fit(view, config()).expect("fit");
    let our_bytes = live() - before;
    let walk = ours.walk_stats(view);
    let mut descent = f64::INFINITY;
    let mut depth_sum = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..passes {
            depth_sum += ours.descend_batch(view);
        }
        descent = descent.min(t.elapsed().as_secs_f64());
    }
    assert!(depth_sum > 0);
    let descent_ns = descent * 1e9 / (n * passes * TREES) as f64;
    let box_ns = box_step_ns(data);

    let mut sink = 0.0f64;
    let (mut r_score, mut o_point, mut o_batch) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..3 {
        r_score = r_score.max(rate(n, passes, || {
            for p in data.rows.iter().filter(|_| with_reference) {
                sink += theirs.score(p).expect("score");
            }
        }));
        o_point = o_point.max(rate(n, passes, || {
            for p in &data.rows {
                sink += ours.score(p);
            }
        }));
        o_batch = o_batch.max(rate(n, passes, || {
            sink += ours.score_batch(view).iter().sum::<f64>();
        }));
    }
    let (mut r_stream, mut o_stream) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        r_stream = r_stream.max(rate(n, passes, || {
            for p in data.rows.iter().filter(|_| with_reference) {
                sink += theirs.score(p).expect("score");
                theirs.update(p, 0).expect("update");
            }
        }));
        o_stream = o_stream.max(rate(n, passes, || {
            for p in &data.rows {
                sink += ours.score(p);
                ours.update(p);
            }
        }));
    }
    assert!(sink.is_finite());
    if !with_reference {
        // Not measured: printed as NaN, never as a ratio against an empty loop.
        (r_score, r_stream) = (f64::NAN, f64::NAN);
    }
    Row {
        name: data.name.clone(),
        n,
        d,
        score: (r_score, o_point, o_batch),
        stream: (r_stream, o_stream),
        memory: (their_bytes, our_bytes),
        walk,
        descent_ns,
        box_ns,
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let with_reference = !args.iter().any(|a| a == "--ours-only");
    args.retain(|a| a != "--ours-only");
    let sets: Vec<Data> = if args.is_empty() {
        let dir = std::env::var_os("DATASETS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
            });
        let mut v: Vec<Data> = labelled_sets(&dir).iter().map(|p| read_csv(p)).collect();
        v.push(gaussian_cloud(50_000, 8));
        v.push(gaussian_cloud(50_000, 30));
        v
    } else {
        args.iter().map(|a| read_csv(Path::new(a))).collect()
    };
    println!(
        "rcf-core ÷ reference (krcflib), same run, single thread, {TREES} trees × {SAMPLES} \
         samples; points/s, best of 3 alternating rounds"
    );
    println!(
        "{:<18} {:>6} {:>3} | {:>9} {:>9} {:>6} {:>9} {:>6} | {:>9} {:>9} {:>6} | {:>8} {:>8} {:>5}",
        "data",
        "rows",
        "d",
        "ref",
        "point",
        "ratio",
        "batch",
        "ratio",
        "ref u+s",
        "ours u+s",
        "ratio",
        "ref KiB",
        "our KiB",
        "ratio"
    );
    let mut worst = [f64::INFINITY; 4];
    let mut rows = Vec::new();
    for data in &sets {
        let r = measure(data, with_reference);
        let ratios = [
            r.score.1 / r.score.0,
            r.score.2 / r.score.0,
            r.stream.1 / r.stream.0,
            r.memory.1 as f64 / r.memory.0 as f64,
        ];
        worst[0] = worst[0].min(ratios[0]);
        worst[1] = worst[1].min(ratios[1]);
        worst[2] = worst[2].min(ratios[2]);
        worst[3] = if worst[3].is_finite() {
            worst[3].max(ratios[3])
        } else {
            ratios[3]
        };
        println!(
            "{:<18} {:>6} {:>3} | {:>9.0} {:>9.0} {:>5.1}× {:>9.0} {:>5.1}× | {:>9.0} {:>9.0} {:>5.1}× | {:>8} {:>8} {:>5.2}",
            r.name,
            r.n,
            r.d,
            r.score.0,
            r.score.1,
            ratios[0],
            r.score.2,
            ratios[1],
            r.stream.0,
            r.stream.1,
            ratios[2],
            r.memory.0 / 1024,
            r.memory.1 / 1024,
            ratios[3],
        );
        rows.push(r);
    }
    println!(
        "smallest ratio: score point by point {:.1}×, score batch {:.1}×, update + score {:.1}×; \
         largest memory ratio (ours ÷ reference) {:.2}",
        worst[0], worst[1], worst[2], worst[3]
    );
    println!();
    println!(
        "the work behind one score, per point and tree (ours, batch): nodes descended, boxes \
         compared on the climb, bytes read; the descent alone and one box step, timed alone; \
         the floor = descent + boxes × box step"
    );
    println!(
        "{:<18} {:>3} | {:>6} {:>6} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8}",
        "data", "d", "nodes", "boxes", "bytes", "descent", "box ns", "floor", "measured", "÷ floor"
    );
    for r in &rows {
        let ns = 1e9 / r.score.2 / TREES as f64;
        let floor = r.descent_ns + r.walk.boxes_compared * r.box_ns;
        println!(
            "{:<18} {:>3} | {:>6.1} {:>6.2} {:>6.0} | {:>8.1} {:>8.2} {:>8.1} | {:>8.1} {:>7.2}×",
            r.name,
            r.d,
            r.walk.nodes_descended,
            r.walk.boxes_compared,
            r.walk.bytes_per_tree,
            r.descent_ns,
            r.box_ns,
            floor,
            ns,
            ns / floor,
        );
    }
}

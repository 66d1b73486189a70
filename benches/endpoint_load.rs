//! Endpoint load benchmark: an in-process stage endpoint serving the sample model (trained as
//! the pipeline trains it), driven over loopback by a Rust HTTP/1.1 load generator (hyper,
//! keep-alive, N concurrent connections) — single-record CSV requests, then 1,000-record
//! batches. Prints req/s, records/s, p50/p99 latency, the model's raw in-process scoring rate
//! and the ratio endpoint records/s ÷ raw records/s (the HTTP overhead).
//!
//! Run: `cargo bench --bench endpoint_load`. Client and server share the machine's cores.
//! Settings (env): RCFOPS_BENCH_SECS (5), RCFOPS_BENCH_SERVER_THREADS (2),
//! RCFOPS_BENCH_CLIENT_THREADS (1), RCFOPS_BENCH_SINGLE_CONNS (32), RCFOPS_BENCH_BATCH_CONNS (4),
//! RCFOPS_BENCH_ONLY (`single`, `shadow`, `batch`, `sigv4` or `capture`: run one workload).
//!
//! The `capture` rows are the single-record workload against an endpoint with data capture
//! off and one capturing 100 % of its requests, alternating, twice each; the line after the
//! table gives the req/s ratio, the writer's drops and the bytes a captured request takes.
//!
//! The line after the table also gives single-record `/invocations` req/s as a ratio of the
//! same server's `GET /ping` req/s (run right after it).
//!
//! The `SigV4` rows are the single-record workload against an endpoint with SigV4 off and one
//! with it on, alternating, twice each; the line after the table gives the req/s ratio.
//!
//! The `shadow` row is the single-record workload against a production endpoint that mirrors
//! 100 % of its requests to a staging model (shadow traffic); the line after the table gives
//! its p99 as a ratio of the plain single-record run's, measured in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use rcfops::domain::Stage;
use rcfops::model::Model;
use rcfops::serve::{Access, Deployed, Endpoint, Limits};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sample model and the sample records (features only, raw units, row-major).
fn sample() -> (Model, Vec<f64>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-repo");
    let spec = rcfops::pipeline::spec::PipelineSpec::parse(
        &std::fs::read_to_string(root.join("pipeline.toml")).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(root.join(&spec.data.path)).unwrap();
    let table = rcfops::pipeline::data::Table::parse_csv(&bytes, "transactions.csv").unwrap();
    let data = rcfops::pipeline::select(&table, &spec.data, "transactions.csv").unwrap();
    let model = rcfops::pipeline::train_and_evaluate(
        &data,
        &spec.preprocess,
        spec.forest_config(),
        spec.evaluation.test_fraction,
        spec.evaluation.split_seed,
        0,
    )
    .unwrap()
    .model;
    let dim = data.x.ncols();
    let flat: Vec<f64> = data.x.iter().copied().collect();
    (model, flat, dim)
}

fn csv(rows: &[f64], dim: usize) -> String {
    let mut s = String::new();
    for r in rows.chunks(dim) {
        let line: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

struct Run {
    requests: u64,
    records: u64,
    secs: f64,
    /// Sorted latencies, nanoseconds.
    lat: Vec<u64>,
}

impl Run {
    /// A workload that was not run.
    fn empty(secs: f64) -> Run {
        Run {
            requests: 0,
            records: 0,
            secs,
            lat: Vec::new(),
        }
    }

    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i] as f64 / 1e6
    }
}

/// Drives `conns` keep-alive connections, each sending `body` back to back (or, with `pace`,
/// one request every `pace` per connection), for `secs` (after a 1 s warm-up). Every answer
/// must be a 200.
async fn drive(
    addr: std::net::SocketAddr,
    body: Bytes,
    records: u64,
    conns: usize,
    secs: f64,
    pace: Option<Duration>,
) -> Run {
    drive_with(addr, body, records, conns, secs, pace, Arc::new(Vec::new())).await
}

/// [`drive`] with `extra` headers on every request (a SigV4 signature).
async fn drive_with(
    addr: std::net::SocketAddr,
    body: Bytes,
    records: u64,
    conns: usize,
    secs: f64,
    pace: Option<Duration>,
    extra: Arc<Vec<(&'static str, String)>>,
) -> Run {
    let warm = Instant::now() + Duration::from_secs(1);
    let end = warm + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let body = body.clone();
        let extra = Arc::clone(&extra);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let mut lat = Vec::with_capacity(1 << 16);
            let mut n = 0u64;
            let start = tokio::time::Instant::now();
            let mut k = 0u32;
            loop {
                if let Some(iv) = pace {
                    k += 1;
                    tokio::time::sleep_until(start + iv * k).await;
                }
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                // An empty body with no records is a `GET /ping` (the server's HTTP floor).
                let mut req = if records == 0 {
                    hyper::Request::get("/ping").header("host", "bench")
                } else {
                    hyper::Request::post("/invocations")
                        .header("host", "bench")
                        .header("content-type", "text/csv")
                };
                for (n, v) in extra.iter() {
                    req = req.header(*n, v.as_str());
                }
                let req = req.body(Full::new(body.clone())).unwrap();
                send.ready().await.unwrap();
                let res = send.send_request(req).await.unwrap();
                assert_eq!(res.status(), 200);
                let _ = res.into_body().collect().await.unwrap();
                if t0 >= warm {
                    lat.push(t0.elapsed().as_nanos() as u64);
                    n += 1;
                }
            }
            (n, lat)
        }));
    }
    let mut run = Run::empty(secs);
    for t in tasks {
        let (n, lat) = t.await.unwrap();
        run.requests += n;
        run.lat.extend(lat);
    }
    run.records = run.requests * records.max(1);
    run.lat.sort_unstable();
    run
}

/// Serves `ep` on a fresh loopback port; returns the address, the stop switch and the task.
fn spawn_server(
    rt: &tokio::runtime::Runtime,
    ep: Arc<Endpoint>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    spawn_server_with(rt, ep, Access::default())
}

fn spawn_server_with(
    rt: &tokio::runtime::Runtime,
    ep: Arc<Endpoint>,
    access: Access,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = Limits::default();
    let app = rcfops::serve::router_for(ep, limits.clone(), access);
    let task = rt.spawn(async move {
        rcfops::serve::serve_app(listener, app, &limits, None, async {
            let _ = stopped.await;
        })
        .await
    });
    (addr, stop, task)
}

/// Raw in-process scoring rate of `model` on `batch`-record calls (one thread), records/s.
fn raw_rate(model: &Model, flat: &[f64], dim: usize, batch: usize, secs: f64) -> f64 {
    let rows = flat.len() / dim;
    let t0 = Instant::now();
    let mut scored = 0usize;
    let mut start = 0usize;
    while t0.elapsed().as_secs_f64() < secs {
        if start + batch > rows {
            start = 0;
        }
        let s = model.score_rows(&flat[start * dim..(start + batch) * dim], batch);
        std::hint::black_box(s);
        scored += batch;
        start += batch;
    }
    scored as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = env_or("RCFOPS_BENCH_SECS", 5) as f64;
    let server_threads = env_or("RCFOPS_BENCH_SERVER_THREADS", 2) as usize;
    let client_threads = env_or("RCFOPS_BENCH_CLIENT_THREADS", 1) as usize;
    let single_conns = env_or("RCFOPS_BENCH_SINGLE_CONNS", 32) as usize;
    let batch_conns = env_or("RCFOPS_BENCH_BATCH_CONNS", 4) as usize;

    let (model, flat, dim) = sample();
    let single_body = Bytes::from(csv(&flat[..dim], dim));
    let batch_body = Bytes::from(csv(&flat[..1000 * dim], dim));

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads)
        .thread_name("server")
        .enable_all()
        .build()
        .unwrap();
    let serving = |stage: Stage, version: i64| {
        let ep = Endpoint::new(stage, stage.endpoint_name("card-fraud"));
        ep.swap(Some(Deployed {
            version,
            model: model.clone(),
        }));
        ep
    };
    let ep = serving(Stage::Staging, 1);
    let (addr, stop, server) = spawn_server(&server_rt, Arc::clone(&ep));
    // Production with shadow traffic to a staging endpoint serving another version.
    let staging = serving(Stage::Staging, 2);
    let production = serving(Stage::Production, 1);
    let percent = env_or("RCFOPS_BENCH_SHADOW_PERCENT", 100) as f64;
    let shadow = rcfops::serve::shadow::Shadow::start(Arc::clone(&staging), percent);
    production.set_shadow(Arc::clone(&shadow));
    let (shadow_addr, stop_shadow, shadow_server) =
        spawn_server(&server_rt, Arc::clone(&production));

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("RCFOPS_BENCH_ONLY").unwrap_or_default();
    let skip = Run::empty(secs);
    let single = if only.is_empty() || only == "single" {
        client_rt.block_on(drive(
            addr,
            single_body.clone(),
            1,
            single_conns,
            secs,
            None,
        ))
    } else {
        skip
    };
    // The same server's `GET /ping` rate: what HTTP alone costs, beside the single-record run.
    let ping = if only.is_empty() || only == "single" {
        client_rt.block_on(drive(addr, Bytes::new(), 0, single_conns, secs, None))
    } else {
        Run::empty(secs)
    };
    let shadowed = if only.is_empty() || only == "shadow" {
        client_rt.block_on(drive(
            shadow_addr,
            single_body.clone(),
            1,
            single_conns,
            secs,
            None,
        ))
    } else {
        Run::empty(secs)
    };
    let batch = if only.is_empty() || only == "batch" {
        client_rt.block_on(drive(addr, batch_body, 1000, batch_conns, secs, None))
    } else {
        Run::empty(secs)
    };
    // Below saturation, as production runs: the same offered load with and without shadow.
    let paced_rps = env_or("RCFOPS_BENCH_PACED_RPS", 6000) as f64;
    let pace = Some(Duration::from_secs_f64(single_conns as f64 / paced_rps));
    let (paced_plain, paced_shadow) = if only.is_empty() || only == "shadow" {
        (
            client_rt.block_on(drive(
                addr,
                single_body.clone(),
                1,
                single_conns,
                secs,
                pace,
            )),
            client_rt.block_on(drive(
                shadow_addr,
                single_body.clone(),
                1,
                single_conns,
                secs,
                pace,
            )),
        )
    } else {
        (Run::empty(secs), Run::empty(secs))
    };
    // SigV4 on vs off, same endpoint model, alternating twice: the client replays one signed
    // request (valid for 5 minutes, as any SigV4 request is), so every request costs the
    // server a full verification and the client nothing extra.
    let (sigv4_plain, sigv4_on) = if only.is_empty() || only == "sigv4" {
        let creds = rcfops::auth::Credentials::parse(
            "[default]\naws_access_key_id = AKIDBENCH\naws_secret_access_key = bench-secret\n",
        )
        .unwrap();
        let verifier = rcfops::auth::Verifier::new(
            Arc::new(creds),
            rcfops::auth::Scope {
                region: "eu-west-1".into(),
                service: "sagemaker".into(),
            },
        );
        let signed = Arc::new(verifier.signer().sign(
            &rcfops::auth::sigv4::Outgoing {
                method: "POST",
                host: "bench",
                path: "/invocations",
                query: None,
                headers: &[("content-type", "text/csv")],
                body: &single_body,
            },
            std::time::SystemTime::now(),
        ));
        let authed = serving(Stage::Production, 1);
        let (auth_addr, stop_auth, auth_server) = spawn_server_with(
            &server_rt,
            authed,
            Access {
                sigv4: Some(verifier),
                metrics: true,
            },
        );
        let mut off = Run::empty(0.0);
        let mut on = Run::empty(0.0);
        for _ in 0..2 {
            let a = client_rt.block_on(drive(
                addr,
                single_body.clone(),
                1,
                single_conns,
                secs,
                None,
            ));
            let b = client_rt.block_on(drive_with(
                auth_addr,
                single_body.clone(),
                1,
                single_conns,
                secs,
                None,
                Arc::clone(&signed),
            ));
            for (acc, r) in [(&mut off, a), (&mut on, b)] {
                acc.requests += r.requests;
                acc.records += r.records;
                acc.secs += r.secs;
                acc.lat.extend(r.lat);
                acc.lat.sort_unstable();
            }
        }
        let _ = stop_auth.send(());
        server_rt.block_on(auth_server).unwrap().unwrap();
        (off, on)
    } else {
        (Run::empty(secs), Run::empty(secs))
    };
    // Data capture on vs off (100 % of requests to JSON-lines files), alternating twice, and
    // the bytes a captured request takes on disk.
    let (capture_plain, capture_on, capture_status, capture_bytes) =
        if only.is_empty() || only == "capture" {
            let dir = tempfile::tempdir().unwrap();
            let captured = serving(Stage::Production, 1);
            let capture = rcfops::serve::capture::Capture::start(
                &captured,
                rcfops::serve::capture::CaptureSettings {
                    root: dir.path().to_path_buf(),
                    sampling_percent: 100.0,
                    queue: 8192,
                    max_age: Duration::from_secs(3600),
                    max_bytes: u64::MAX,
                },
            );
            let (cap_addr, stop_cap, cap_server) = spawn_server(&server_rt, captured);
            let mut off = Run::empty(0.0);
            let mut on = Run::empty(0.0);
            for _ in 0..2 {
                let a = client_rt.block_on(drive(
                    addr,
                    single_body.clone(),
                    1,
                    single_conns,
                    secs,
                    None,
                ));
                let b = client_rt.block_on(drive(
                    cap_addr,
                    single_body.clone(),
                    1,
                    single_conns,
                    secs,
                    None,
                ));
                for (acc, r) in [(&mut off, a), (&mut on, b)] {
                    acc.requests += r.requests;
                    acc.records += r.records;
                    acc.secs += r.secs;
                    acc.lat.extend(r.lat);
                    acc.lat.sort_unstable();
                }
            }
            let _ = stop_cap.send(());
            server_rt.block_on(cap_server).unwrap().unwrap();
            capture.close();
            let mut files = Vec::new();
            rcfops::monitor::format::capture_files(dir.path(), &mut files);
            let bytes: u64 = files.iter().map(|f| f.2).sum();
            (off, on, Some(capture.status()), bytes)
        } else {
            (Run::empty(secs), Run::empty(secs), None, 0)
        };
    let _ = stop.send(());
    server_rt.block_on(server).unwrap().unwrap();
    let _ = stop_shadow.send(());
    server_rt.block_on(shadow_server).unwrap().unwrap();
    let shadow_records: u64 = shadow.stats().values().map(|s| s.records).sum();
    drop((server_rt, client_rt));
    let raw_single = raw_rate(&model, &flat, dim, 1, 2.0);
    let raw_batch = raw_rate(&model, &flat, dim, 1000, 2.0);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "endpoint load: {cores} cores shared by server ({server_threads} worker threads) and \
         client ({client_threads} threads), loopback HTTP/1.1 keep-alive, {secs} s per row \
         after 1 s warm-up"
    );
    println!(
        "{:<26} {:>6} {:>12} {:>14} {:>9} {:>9} {:>9} {:>14} {:>10}",
        "workload",
        "conns",
        "req/s",
        "records/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "raw rec/s",
        "endpoint÷raw"
    );
    for (name, conns, run, raw) in [
        ("single-record CSV", single_conns, &single, raw_single),
        (
            "capture off (alternating)",
            single_conns,
            &capture_plain,
            raw_single,
        ),
        (
            "capture 100 % (alternating)",
            single_conns,
            &capture_on,
            raw_single,
        ),
        ("single, 100 % shadow", single_conns, &shadowed, raw_single),
        ("single, paced", single_conns, &paced_plain, raw_single),
        (
            "single, paced, 100 % shadow",
            single_conns,
            &paced_shadow,
            raw_single,
        ),
        ("1,000-record CSV batches", batch_conns, &batch, raw_batch),
        (
            "single, SigV4 off (2 runs)",
            single_conns,
            &sigv4_plain,
            raw_single,
        ),
        (
            "single, SigV4 on (2 runs)",
            single_conns,
            &sigv4_on,
            raw_single,
        ),
    ] {
        let rps = run.requests as f64 / run.secs;
        let recs = run.records as f64 / run.secs;
        println!(
            "{:<26} {:>6} {:>12.0} {:>14.0} {:>9.3} {:>9.3} {:>9.3} {:>14.0} {:>10.2}",
            name,
            conns,
            rps,
            recs,
            run.pct(0.50),
            run.pct(0.99),
            run.pct(0.999),
            raw,
            recs / raw
        );
    }
    println!(
        "raw rec/s: Model::score_rows on one thread, 1 record a call (single) or 1,000 (batch)"
    );
    if let Some(st) = &capture_status {
        let rate = |r: &Run| r.requests as f64 / r.secs;
        let per_request = capture_bytes as f64 / st.written.max(1) as f64;
        println!(
            "data capture: single-record req/s with 100 % capture ÷ without = {:.3} (alternating runs, same process); p99 on ÷ off = {:.2}; {} requests written, {} dropped; {:.0} bytes a captured request on disk, so a day at 1,000 req/s is {:.1} GiB",
            rate(&capture_on) / rate(&capture_plain),
            capture_on.pct(0.99) / capture_plain.pct(0.99),
            st.written,
            st.dropped,
            per_request,
            per_request * 1000.0 * 86_400.0 / (1u64 << 30) as f64
        );
    }
    if single.requests > 0 && ping.requests > 0 {
        println!(
            "single-record POST /invocations ÷ GET /ping on the same server: {:.2} of the req/s ({:.0} vs {:.0}); ping p99 {:.3} ms",
            (single.requests as f64 / single.secs) / (ping.requests as f64 / ping.secs),
            single.requests as f64 / single.secs,
            ping.requests as f64 / ping.secs,
            ping.pct(0.99)
        );
    }
    if sigv4_plain.requests > 0 && sigv4_on.requests > 0 {
        println!(
            "SigV4: single-record req/s with verification on ÷ off = {:.3} (alternating runs, same process); p99 on ÷ off = {:.2}",
            (sigv4_on.requests as f64 / sigv4_on.secs)
                / (sigv4_plain.requests as f64 / sigv4_plain.secs),
            sigv4_on.pct(0.99) / sigv4_plain.pct(0.99)
        );
    }
    if single.requests > 0 && shadowed.requests > 0 {
        println!(
            "shadow at {paced_rps:.0} req/s offered: p99 with 100 % shadow ÷ without = {:.2}; at saturation: p99 ratio {:.2}, req/s ratio {:.2}; {} records shadowed, {} requests dropped by the full shadow queue",
            paced_shadow.pct(0.99) / paced_plain.pct(0.99),
            shadowed.pct(0.99) / single.pct(0.99),
            shadowed.requests as f64 / single.requests as f64,
            shadow_records,
            shadow.dropped()
        );
    }
}

//! Per-endpoint Prometheus metrics, served by each stage endpoint at `GET /metrics`.
//!
//! Owns what the endpoints count: invocation requests by status and request content type,
//! records scored, request latency, the served model version, and the distribution of served
//! scores. Encoded by `prometheus-client` in the OpenMetrics text format (which Prometheus
//! scrapes natively). The hot path touches only atomics: the common (status, content type)
//! counters are resolved once at construction, and the histograms are lock-free (a batch's
//! scores are bucketed locally, then added with one atomic add per touched bucket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// Content type of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request latency bucket bounds, seconds.
const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Score bucket bounds: scores are about 1 for ordinary records and approach log2(n+1) ≈ 8
/// for records far from all training data.
const SCORE_BOUNDS: &[f64] = &[
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0,
];

/// Request content types as counted (anything else is `other`, a missing one `none`).
pub const CONTENT_TYPES: [&str; 5] = [
    "text/csv",
    "application/json",
    "application/jsonlines",
    "other",
    "none",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
    content_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    code: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    endpoint: String,
    version: String,
}

/// A lock-free histogram with fixed bounds that can add a whole batch of observations at once.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last one is the +Inf bucket.
    counts: Box<[AtomicU64]>,
    /// f64 bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> AtomicHistogram {
        assert!(bounds.len() < 32, "bounds fit the local bucket array");
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    fn bucket(&self, v: f64) -> usize {
        self.bounds.partition_point(|b| *b < v)
    }

    fn add_sum(&self, x: f64) {
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + x).to_bits())
            });
    }

    pub fn observe(&self, v: f64) {
        self.counts[self.bucket(v)].fetch_add(1, Ordering::Relaxed);
        self.add_sum(v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observes every value in `values` with one atomic add per touched bucket.
    pub fn observe_all(&self, values: impl IntoIterator<Item = f64>) {
        let mut local = [0u64; 32];
        let mut sum = 0.0;
        let mut n = 0u64;
        for v in values {
            local[self.bucket(v)] += 1;
            sum += v;
            n += 1;
        }
        if n == 0 {
            return;
        }
        for (i, c) in local[..self.counts.len()].iter().enumerate() {
            if *c > 0 {
                self.counts[i].fetch_add(*c, Ordering::Relaxed);
            }
        }
        self.add_sum(sum);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile, interpolated linearly inside its bucket (`None`: no observation;
    /// the top bound when it falls in the +Inf bucket).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, c) in counts.iter().enumerate() {
            if (below + c) as f64 >= rank && *c > 0 {
                let lo = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                let Some(hi) = self.bounds.get(i) else {
                    return self.bounds.last().copied();
                };
                return Some(lo + (hi - lo) * (rank - below as f64) / *c as f64);
            }
            below += c;
        }
        self.bounds.last().copied()
    }
}

/// An endpoint's request totals and latency quantiles (the dashboard's endpoint panel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub requests: u64,
    /// Answers with a 4xx or 5xx status.
    pub errors: u64,
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total so a scrape is self-consistent.
        let count = buckets.iter().map(|b| b.1).sum();
        encoder.encode_histogram::<NoLabelSet>(
            f64::from_bits(self.sum.load(Ordering::Relaxed)),
            count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One endpoint's metrics.
pub struct EndpointMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// `requests` for status 200 by content type index, resolved once.
    ok: [Counter; 3],
    records: Counter,
    latency: std::sync::Arc<AtomicHistogram>,
    scores: std::sync::Arc<AtomicHistogram>,
    version: Gauge,
    model: Family<ModelLabels, Gauge>,
    swaps: Counter,
    refusals: Family<RefusalLabels, Counter>,
    capture_written: Counter,
    capture_dropped: Counter,
    total: AtomicU64,
    errors: AtomicU64,
    /// The label set currently set to 1 in `model`.
    current: Mutex<Option<ModelLabels>>,
}

/// Index of a request content type in [`CONTENT_TYPES`].
pub fn content_type_index(media_type: Option<&str>) -> usize {
    match media_type.map(|m| {
        (
            super::codec::media_type(m),
            super::codec::Format::of_media_type(m),
        )
    }) {
        None => 4,
        Some(("", _)) => 4,
        Some((_, Some(super::codec::Format::Csv))) => 0,
        Some((_, Some(super::codec::Format::Json))) => 1,
        Some((_, Some(super::codec::Format::JsonLines))) => 2,
        Some((_, None)) => 3,
    }
}

impl EndpointMetrics {
    pub fn new(stage: crate::domain::Stage) -> EndpointMetrics {
        let stage = stage.as_str();
        let mut registry = Registry::with_prefix_and_labels(
            "rcfops_endpoint",
            [(
                std::borrow::Cow::Borrowed("stage"),
                std::borrow::Cow::Borrowed(stage),
            )]
            .into_iter(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let ok = [0, 1, 2].map(|i| {
            requests
                .get_or_create(&RequestLabels {
                    status: 200,
                    content_type: CONTENT_TYPES[i],
                })
                .clone()
        });
        let records = Counter::default();
        let latency = std::sync::Arc::new(AtomicHistogram::new(LATENCY_BOUNDS));
        let scores = std::sync::Arc::new(AtomicHistogram::new(SCORE_BOUNDS));
        let version = Gauge::default();
        let model = Family::<ModelLabels, Gauge>::default();
        let swaps = Counter::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "auth_refusals",
            "Invocations refused by SigV4 authentication, by AWS error code and reason",
            refusals.clone(),
        );
        registry.register(
            "invocations",
            "Invocation requests by HTTP status and request content type",
            requests.clone(),
        );
        registry.register(
            "records_scored",
            "Records scored and answered",
            records.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Invocation latency from request start to response, body read and scoring included",
            Unit::Seconds,
            ArcMetric(latency.clone()),
        );
        registry.register(
            "score",
            "Distribution of the scores served",
            ArcMetric(scores.clone()),
        );
        registry.register(
            "model_version",
            "Registry version number of the served model (0 when none)",
            version.clone(),
        );
        registry.register(
            "model",
            "The served model: 1 for the endpoint name and version in service",
            model.clone(),
        );
        let capture_written = Counter::default();
        let capture_dropped = Counter::default();
        registry.register(
            "capture_written",
            "Requests written to data-capture files",
            capture_written.clone(),
        );
        registry.register(
            "capture_dropped",
            "Sampled requests not captured: the capture queue was full, or capture had stopped",
            capture_dropped.clone(),
        );
        registry.register(
            "model_swaps",
            "Times the served model changed (deploys, promotions, rollbacks)",
            swaps.clone(),
        );
        EndpointMetrics {
            registry,
            requests,
            ok,
            records,
            latency,
            scores,
            version,
            model,
            swaps,
            refusals,
            capture_written,
            capture_dropped,
            total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            current: Mutex::new(None),
        }
    }

    /// Requests, errors and latency quantiles so far.
    pub fn totals(&self) -> Totals {
        Totals {
            requests: self.total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            p50_s: self.latency.quantile(0.5),
            p99_s: self.latency.quantile(0.99),
        }
    }

    /// The data-capture counters (written, dropped), shared with the capture writer.
    pub fn capture_counters(&self) -> (Counter, Counter) {
        (self.capture_written.clone(), self.capture_dropped.clone())
    }

    /// Counts one invocation answered with `status`.
    pub fn request(&self, status: u16, content_type: usize, seconds: f64) {
        if status == 200 && content_type < 3 {
            self.ok[content_type].inc();
        } else {
            self.requests
                .get_or_create(&RequestLabels {
                    status,
                    content_type: CONTENT_TYPES[content_type.min(4)],
                })
                .inc();
        }
        self.latency.observe(seconds);
        self.total.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an invocation refused by authentication.
    pub fn refused(&self, code: &'static str, reason: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { code, reason })
            .inc();
    }

    /// Counts the records of a successful answer and their scores.
    pub fn scored(&self, scores: impl ExactSizeIterator<Item = f64>) {
        self.records.inc_by(scores.len() as u64);
        self.scores.observe_all(scores);
    }

    /// Records the model now in service under the endpoint's current name.
    pub fn set_model(&self, endpoint: &str, version: Option<i64>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = cur.take() {
            self.model.remove(&old);
        }
        if let Some(v) = version {
            let labels = ModelLabels {
                endpoint: endpoint.to_string(),
                version: v.to_string(),
            };
            self.model.get_or_create(&labels).set(1);
            *cur = Some(labels);
        }
        self.version.set(version.unwrap_or(0));
    }

    /// Counts a change of the served model.
    pub fn swapped(&self) {
        self.swaps.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Registers a shared metric.
#[derive(Debug)]
struct ArcMetric<M>(std::sync::Arc<M>);

impl<M: EncodeMetric> EncodeMetric for ArcMetric<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_batches_match_single_observations() {
        let a = AtomicHistogram::new(SCORE_BOUNDS);
        let b = AtomicHistogram::new(SCORE_BOUNDS);
        let xs = [0.1, 0.25, 0.3, 1.0, 1.01, 7.9, 8.0, 9.0, 100.0];
        for x in xs {
            a.observe(x);
        }
        b.observe_all(xs);
        let load = |h: &AtomicHistogram| -> Vec<u64> {
            h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
        };
        assert_eq!(load(&a), load(&b));
        assert_eq!(a.count(), 9);
        // le-inclusive: 0.25 falls in the 0.25 bucket, 9 and 100 in +Inf.
        assert_eq!(load(&a)[0], 2);
        assert_eq!(*load(&a).last().unwrap(), 2);
    }

    #[test]
    fn exposition_names_the_metrics() {
        let m = EndpointMetrics::new(crate::domain::Stage::Staging);
        m.request(200, 0, 0.0004);
        m.request(406, 1, 0.0001);
        m.scored([0.5, 1.0, 3.0].into_iter());
        m.set_model("card-fraud-staging", Some(2));
        m.set_model("card-fraud-staging", Some(3));
        let text = m.encode();
        for needle in [
            "rcfops_endpoint_invocations_total{stage=\"staging\",status=\"200\",content_type=\"text/csv\"} 1",
            "rcfops_endpoint_invocations_total{stage=\"staging\",status=\"406\",content_type=\"application/json\"} 1",
            "rcfops_endpoint_records_scored_total{stage=\"staging\"} 3",
            "rcfops_endpoint_request_duration_seconds_bucket{stage=\"staging\",le=\"0.0005\"} 2",
            "rcfops_endpoint_score_count{stage=\"staging\"} 3",
            "rcfops_endpoint_model_version{stage=\"staging\"} 3",
            "rcfops_endpoint_model{stage=\"staging\",endpoint=\"card-fraud-staging\",version=\"3\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("version=\"2\""), "{text}");
    }
}

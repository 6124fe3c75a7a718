//! The collector's metrics, served at `GET /metrics` in the Prometheus / OpenMetrics
//! text format by `prometheus-client`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use cdp_bucket::{BucketWriter, SyncReport};
use cdp_calls::{CallType, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    r#type: &'static str,
    reason: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every series the collector exports.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    accepted: Family<TypeLabels, Counter>,
    rejected: Family<RejectedLabels, Counter>,
    rejected_unwritten: Counter,
    connections: Gauge,
    spool_bytes: Gauge,
    spool_records: Gauge,
    encoding_backlog: Gauge,
    window_age: Gauge<f64, AtomicU64>,
    last_publish: Gauge<f64, AtomicU64>,
    last_publish_duration: Gauge<f64, AtomicU64>,
    positions: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cdp_collector");
        let metrics = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            accepted: Family::default(),
            rejected: Family::default(),
            rejected_unwritten: Counter::default(),
            connections: Gauge::default(),
            spool_bytes: Gauge::default(),
            spool_records: Gauge::default(),
            encoding_backlog: Gauge::default(),
            window_age: Gauge::default(),
            last_publish: Gauge::default(),
            last_publish_duration: Gauge::default(),
            positions: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer, by route",
            Unit::Seconds,
            metrics.latency.clone(),
        );
        registry.register("calls_accepted", "Calls spooled, by type", metrics.accepted.clone());
        registry.register(
            "calls_rejected",
            "Calls dropped as invalid (permissive mode) or refusing their request (strict mode), by type \
             and reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "rejected_calls_unwritten",
            "Dropped calls that could not be written to the rejected-calls file (they were logged)",
            metrics.rejected_unwritten.clone(),
        );
        registry.register("open_connections", "Client connections open now", metrics.connections.clone());
        registry.register_with_unit(
            "spool",
            "Bytes of the spool: the open window's segment and sealed ones not published yet",
            Unit::Bytes,
            metrics.spool_bytes.clone(),
        );
        registry.register(
            "spool_records",
            "Records of calls in the spool (one per group of requests appended)",
            metrics.spool_records.clone(),
        );
        registry.register(
            "encoding_backlog_calls",
            "Calls spooled and acknowledged but not encoded into the open window's files yet",
            metrics.encoding_backlog.clone(),
        );
        registry.register_with_unit(
            "open_window_age",
            "Time since the open window started, 0 when it holds no calls",
            Unit::Seconds,
            metrics.window_age.clone(),
        );
        registry.register_with_unit(
            "last_publish_timestamp",
            "When a sync was last published, in seconds since the Unix epoch (0: not yet)",
            Unit::Seconds,
            metrics.last_publish.clone(),
        );
        registry.register_with_unit(
            "last_publish_duration",
            "How long the writer call that last published took",
            Unit::Seconds,
            metrics.last_publish_duration.clone(),
        );
        registry.register(
            "positions_published",
            "Syncs published (positions used)",
            metrics.positions.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// A request answered.
    pub(crate) fn request(&self, route: &'static str, status: u16, took: Duration) {
        self.requests.get_or_create(&RequestLabels { route, status }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(took.as_secs_f64());
    }

    pub(crate) fn accepted(&self, call_type: CallType) {
        self.accepted.get_or_create(&TypeLabels { r#type: call_type.as_str() }).inc();
    }

    pub(crate) fn rejected(&self, call_type: Option<CallType>, reason: &'static str) {
        let r#type = call_type.map_or("unknown", CallType::as_str);
        self.rejected.get_or_create(&RejectedLabels { r#type, reason }).inc();
    }

    pub(crate) fn rejected_unwritten(&self, calls: u64) {
        self.rejected_unwritten.inc_by(calls);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    /// The writer's state after it did something: what its spool holds, the age
    /// of its window, and what it published (in `took`).
    pub(crate) fn writer(
        &self,
        writer: &BucketWriter,
        now: Timestamp,
        published: &[SyncReport],
        took: Duration,
    ) {
        let usage = writer.spool_usage();
        self.spool_bytes.set(i64::try_from(usage.bytes).unwrap_or(i64::MAX));
        self.spool_records.set(i64::try_from(usage.records).unwrap_or(i64::MAX));
        self.encoding_backlog.set(i64::try_from(writer.encoding_backlog()).unwrap_or(i64::MAX));
        let age = if writer.open_calls() == 0 {
            0.0
        } else {
            (now.as_micros() - writer.window().start.as_micros()).max(0) as f64 / 1e6
        };
        self.window_age.set(age);
        if !published.is_empty() {
            self.positions.inc_by(published.len() as u64);
            self.last_publish.set(now.as_micros() as f64 / 1e6);
            self.last_publish_duration.set(took.as_secs_f64());
        }
    }

    /// The text exposition (OpenMetrics, which Prometheus's text parser reads too).
    pub(crate) fn encode(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

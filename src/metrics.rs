//! Prometheus metrics of one server: connections, rooms, traffic by party, outcomes of changes,
//! close codes, HTTP statuses, flushes and room loads. Served as text at `/metrics`.

use std::sync::Arc;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric partyd exports.
pub struct Metrics {
    registry: Registry,
    /// Open websockets.
    pub connections: IntGauge,
    /// Rooms in memory (set when scraped).
    pub live_rooms: IntGauge,
    /// Rooms with stored data (set when scraped).
    pub stored_rooms: IntGauge,
    messages_in: IntCounterVec,
    bytes_in: IntCounterVec,
    messages_out: IntCounterVec,
    bytes_out: IntCounterVec,
    changes: IntCounterVec,
    closes: IntCounterVec,
    http_requests: IntCounterVec,
    /// Seconds each group-commit flush took.
    pub flush_seconds: Histogram,
    /// Waiters (room rounds) answered by each flush.
    pub flush_batch: Histogram,
    /// Seconds it took to load a room from storage.
    pub room_load_seconds: Histogram,
}

/// The counters of one party, resolved once so the hot path does no label lookups.
#[derive(Clone)]
pub struct PartyCounters {
    /// Text frames received.
    pub messages_in: IntCounter,
    /// Bytes of text frames received.
    pub bytes_in: IntCounter,
    /// Frames queued to sockets.
    pub messages_out: IntCounter,
    /// Bytes of frames queued to sockets.
    pub bytes_out: IntCounter,
    /// Changes applied and broadcast.
    pub accepted: IntCounter,
    /// Valid changes ignored because the room has no store.
    pub ignored_no_store: IntCounter,
    /// Valid changes with nothing in them.
    pub ignored_empty: IntCounter,
    /// Frames ignored because they are not valid changes.
    pub ignored_invalid: IntCounter,
    /// Changes dropped because the connection may only read.
    pub refused_read_only: IntCounter,
    /// Changes refused because the room would grow over `max_room_bytes`.
    pub refused_room_full: IntCounter,
    /// Changes with parts refused by the party's permissions or schema.
    pub refused_permission: IntCounter,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("unique metric");
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(gauge.clone())).expect("unique metric");
    gauge
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let histogram =
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
    registry.register(Box::new(histogram.clone())).expect("unique metric");
    histogram
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let seconds = prometheus::exponential_buckets(0.000_05, 2.0, 16).expect("valid buckets");
        let batch = prometheus::exponential_buckets(1.0, 2.0, 12).expect("valid buckets");
        Arc::new(Self {
            connections: gauge(&registry, "partyd_connections", "Open websocket connections."),
            live_rooms: gauge(&registry, "partyd_live_rooms", "Rooms in memory."),
            stored_rooms: gauge(&registry, "partyd_stored_rooms", "Rooms with stored data."),
            messages_in: counter_vec(
                &registry,
                "partyd_messages_in_total",
                "Websocket text frames received.",
                &["party"],
            ),
            bytes_in: counter_vec(
                &registry,
                "partyd_bytes_in_total",
                "Bytes of websocket text frames received.",
                &["party"],
            ),
            messages_out: counter_vec(
                &registry,
                "partyd_messages_out_total",
                "Websocket frames queued to sockets.",
                &["party"],
            ),
            bytes_out: counter_vec(
                &registry,
                "partyd_bytes_out_total",
                "Bytes of websocket frames queued to sockets.",
                &["party"],
            ),
            changes: counter_vec(
                &registry,
                "partyd_changes_total",
                "Changes by outcome and reason.",
                &["party", "outcome", "reason"],
            ),
            closes: counter_vec(
                &registry,
                "partyd_closes_total",
                "Websocket close codes sent by the server.",
                &["code"],
            ),
            http_requests: counter_vec(
                &registry,
                "partyd_http_requests_total",
                "HTTP requests by status.",
                &["status"],
            ),
            flush_seconds: histogram(
                &registry,
                "partyd_flush_seconds",
                "Duration of group-commit flushes.",
                seconds.clone(),
            ),
            flush_batch: histogram(
                &registry,
                "partyd_flush_batch_size",
                "Room rounds made durable by one flush.",
                batch,
            ),
            room_load_seconds: histogram(
                &registry,
                "partyd_room_load_seconds",
                "Duration of loading a room from storage.",
                seconds,
            ),
            registry,
        })
    }

    /// The counters of `party`.
    pub fn party(&self, party: &str) -> PartyCounters {
        let outcome = |outcome: &str, reason: &str| self.changes.with_label_values(&[party, outcome, reason]);
        PartyCounters {
            messages_in: self.messages_in.with_label_values(&[party]),
            bytes_in: self.bytes_in.with_label_values(&[party]),
            messages_out: self.messages_out.with_label_values(&[party]),
            bytes_out: self.bytes_out.with_label_values(&[party]),
            accepted: outcome("accepted", ""),
            ignored_no_store: outcome("ignored", "no_store"),
            ignored_empty: outcome("ignored", "empty"),
            ignored_invalid: outcome("ignored", "invalid"),
            refused_read_only: outcome("refused", "read_only"),
            refused_room_full: outcome("refused", "room_full"),
            refused_permission: outcome("refused", "permission"),
        }
    }

    /// Counts a close code sent by the server.
    pub fn close_sent(&self, code: u16) {
        self.closes.with_label_values(&[&code.to_string()]).inc();
    }

    /// Counts an HTTP answer.
    pub fn http_answered(&self, status: u16) {
        self.http_requests.with_label_values(&[&status.to_string()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let families = self.registry.gather();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

//! The fan-out scenario: R rooms x C sockets, S senders per room each sending changes at a rate
//! for D seconds. Every change carries its send time, so every receiving socket records a
//! delivery latency; at the end every room's store must hold each sender's last change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::http;
use crate::proc;

/// One fan-out run.
#[derive(Clone, Debug)]
pub struct Fanout {
    pub host: String,
    pub party: String,
    pub room_prefix: String,
    pub rooms: usize,
    pub conns: usize,
    pub senders: usize,
    /// Changes per second per sender.
    pub rate: f64,
    pub secs: f64,
    pub server_pid: Option<u32>,
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Microseconds since `start`, the generator's shared clock.
fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// The `"t":<micros>` a change carries.
fn sent_at(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits: &str =
        &text[at..at + text[at..].find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len() - at)];
    digits.parse().ok()
}

pub async fn run(config: &Fanout) -> Result<Value, String> {
    let start = Instant::now();
    for room in 0..config.rooms {
        let path = format!("/parties/{}/{}-{room}/store", config.party, config.room_prefix);
        let (status, body) = http::request(&config.host, "PUT", &path, "[{},{}]").await?;
        if status != 201 && status != 205 {
            return Err(format!("PUT {path}: {status} {body}"));
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    let mut sender_sinks = Vec::new();
    for room in 0..config.rooms {
        for conn in 0..config.conns {
            let url = format!(
                "ws://{}/parties/{}/{}-{room}?_pk=c{room}-{conn}",
                config.host, config.party, config.room_prefix
            );
            let socket = http::connect_websocket(&url).await?;
            let (sink, mut stream) = socket.split();
            if conn < config.senders {
                sender_sinks.push((room, conn, sink));
            } else {
                drop(sink);
            }
            let mut stop = stop_rx.clone();
            let delivered = delivered.clone();
            receivers.push(tokio::spawn(async move {
                let mut histogram = latency_histogram();
                loop {
                    tokio::select! {
                        message = stream.next() => match message {
                            Some(Ok(Message::Text(text))) => {
                                if let Some(sent) = sent_at(&text) {
                                    let _ = histogram.record(micros(start).saturating_sub(sent).max(1));
                                    delivered.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        _ = stop.changed() => break,
                    }
                }
                histogram
            }));
        }
    }
    let commits_before = group_commits(&config.host).await;
    let server_cpu_before = config.server_pid.map(proc::tree_cpu_seconds);
    let generator_cpu_before = proc::cpu_seconds(std::process::id());
    let sending_started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let deadline = sending_started + Duration::from_secs_f64(config.secs);
    let mut senders = Vec::new();
    // Senders are spread evenly over one interval, as independent clients would be; started
    // together they would send in bursts (40 changes, 360 deliveries every 50 ms at the
    // comfortable rate) and the latencies would measure the bursts' queueing, not the server.
    // A room's senders are spread apart too (room 0's first, room 1's first, ..., then room 0's
    // second): side by side, they fell on the same tick of tokio's 1 ms timer in about half the
    // runs, and a server that batches a room's changes got two for the price of one there.
    let sender_count = sender_sinks.len();
    let senders_per_room = config.senders.min(config.conns).max(1);
    for (index, (room, conn, mut sink)) in sender_sinks.into_iter().enumerate() {
        let slot = (index % senders_per_room) * config.rooms + index / senders_per_room;
        let first_tick =
            tokio::time::Instant::now() + interval.mul_f64(slot as f64 / sender_count.max(1) as f64);
        senders.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(first_tick, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sent = 0u64;
            while Instant::now() < deadline {
                ticker.tick().await;
                let change = format!("s[{{\"bench\":{{\"s{room}-{conn}\":{{\"n\":{sent},\"t\":{},\"p\":\"0123456789\"}}}}}},{{}},1]", micros(start));
                if sink.send(Message::Text(change)).await.is_err() {
                    break;
                }
                sent += 1;
            }
            (room, conn, sent, sink)
        }));
    }
    let mut sends = 0u64;
    let mut last_sent = Vec::new();
    let mut sinks = Vec::new();
    for sender in senders {
        let (room, conn, sent, sink) = sender.await.map_err(|e| e.to_string())?;
        sends += sent;
        if sent > 0 {
            last_sent.push((room, conn, sent - 1));
        }
        sinks.push(sink);
    }
    let sending_secs = sending_started.elapsed().as_secs_f64();
    let expected = sends * (config.conns as u64 - 1);
    // Let deliveries drain (at most 10 s), then stop the receivers.
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut histogram = latency_histogram();
    for receiver in receivers {
        histogram.add(receiver.await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let server_cpu =
        config.server_pid.zip(server_cpu_before).map(|(pid, before)| proc::tree_cpu_seconds(pid) - before);
    let generator_cpu = proc::cpu_seconds(std::process::id()) - generator_cpu_before;
    // partyd's group commit over the run (other servers have no such metrics).
    let commits = commits_before
        .zip(group_commits(&config.host).await)
        .map(|(before, after)| (after.0 - before.0, after.1 - before.1));
    drop(sinks);
    // Nothing lost: every room's store holds each sender's last change.
    let mut lost = Vec::new();
    for (room, conn, n) in last_sent {
        let path = format!("/parties/{}/{}-{room}/store", config.party, config.room_prefix);
        let (_, body) = http::request(&config.host, "GET", &path, "").await?;
        let stored: Value = serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}"))?;
        if stored[0]["bench"][format!("s{room}-{conn}")]["n"] != json!(n) {
            lost.push(format!("s{room}-{conn}"));
        }
    }
    let received = histogram.len();
    let deliveries = received as f64;
    Ok(json!({
        "mode": "fanout",
        "rooms": config.rooms, "conns": config.conns, "senders": config.senders, "rate_per_sender": config.rate, "secs": config.secs,
        "sends": sends, "expected": expected, "received": received,
        "deliveries_per_s": deliveries / sending_secs,
        "p50_ms": histogram.value_at_quantile(0.5) as f64 / 1000.0,
        "p90_ms": histogram.value_at_quantile(0.9) as f64 / 1000.0,
        "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": histogram.max() as f64 / 1000.0,
        "last_values_stored": lost.is_empty(),
        "lost": lost,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_delivery": server_cpu.map(|cpu| cpu * 1e6 / deliveries.max(1.0)),
        "group_commits": commits.map(|(flushes, _)| flushes),
        "group_commits_per_s": commits.map(|(flushes, _)| flushes / sending_secs),
        "changes_per_group_commit": commits.map(|(flushes, _)| sends as f64 / flushes.max(1.0)),
        "room_rounds_per_group_commit": commits.map(|(flushes, rounds)| rounds / flushes.max(1.0)),
        "generator_cpu_s": generator_cpu,
        "generator_cpu_us_per_delivery": generator_cpu * 1e6 / deliveries.max(1.0),
    }))
}

/// partyd's group-commit counters from its /metrics: (commits, room rounds they carried), or
/// `None` for a server without them.
async fn group_commits(host: &str) -> Option<(f64, f64)> {
    let (status, text) = http::request(host, "GET", "/metrics", "").await.ok()?;
    let counter =
        |name: &str| text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok());
    (status == 200).then_some(())?;
    Some((counter("partyd_flush_seconds_count ")?, counter("partyd_flush_batch_size_sum ")?))
}

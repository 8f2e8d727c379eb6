//! The scenarios without senders: idle connections and the server's memory, GET throughput,
//! and the cold load of a big stored room.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::http;
use crate::proc;

/// Opens `sockets` idle websockets over `rooms` rooms and reports the server's RSS per socket.
pub async fn connect(
    host: &str,
    party: &str,
    prefix: &str,
    sockets: usize,
    rooms: usize,
    pid: Option<u32>,
) -> Result<Value, String> {
    // Touch one room first so that what is measured is the sockets, not the first room.
    http::request(host, "GET", &format!("/parties/{party}/{prefix}-warm/store"), "").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = pid.map(proc::tree_rss_kib);
    let started = Instant::now();
    let mut open = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let url = format!("ws://{host}/parties/{party}/{prefix}-{}?_pk=idle{i}", i % rooms);
        let socket = http::connect_websocket(&url).await.map_err(|e| format!("socket {i}: {e}"))?;
        open.push(socket);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pid.map(proc::tree_rss_kib);
    let per_socket =
        before.zip(after).map(|(before, after)| (after.saturating_sub(before)) as f64 / sockets as f64);
    drop(open);
    Ok(json!({
        "mode": "connect", "sockets": sockets, "rooms": rooms, "open_secs": elapsed,
        "server_rss_before_kib": before, "server_rss_after_kib": after, "server_kib_per_socket": per_socket,
    }))
}

/// GET store throughput and latency with `clients` keep-alive connections over `rooms` rooms.
pub async fn get(
    host: &str,
    party: &str,
    prefix: &str,
    rooms: usize,
    clients: usize,
    secs: f64,
    pid: Option<u32>,
) -> Result<Value, String> {
    for room in 0..rooms {
        let path = format!("/parties/{party}/{prefix}-{room}/store");
        http::request(host, "PUT", &path, r#"[{"pets":{"fido":{"species":"dog","legs":4}}},{"open":true}]"#)
            .await?;
    }
    let cpu_before = pid.map(proc::tree_cpu_seconds);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (host, path) = (host.to_owned(), format!("/parties/{party}/{prefix}-{}/store", client % rooms));
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let mut connection = http::KeepAlive::connect(&host).await?;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let status = connection.get(&path).await?;
                if status != 200 {
                    return Err(format!("GET {path}: {status}"));
                }
                let _ = histogram.record(sent.elapsed().as_micros().max(1) as u64);
            }
            Ok::<_, String>(histogram)
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    for task in tasks {
        histogram.add(task.await.map_err(|e| e.to_string())??).map_err(|e| e.to_string())?;
    }
    let cpu = pid.zip(cpu_before).map(|(pid, before)| proc::tree_cpu_seconds(pid) - before);
    let requests = histogram.len() as f64;
    Ok(json!({
        "mode": "get", "rooms": rooms, "clients": clients, "secs": secs,
        "requests": histogram.len(), "requests_per_s": requests / secs,
        "p50_ms": histogram.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        "server_cpu_s": cpu, "server_cpu_us_per_request": cpu.map(|cpu| cpu * 1e6 / requests.max(1.0)),
    }))
}

fn coldload_path(party: &str, prefix: &str) -> String {
    format!("/parties/{party}/{prefix}-cold/store")
}

/// Stores one room of `rows` rows of three cells.
pub async fn coldload_put(host: &str, party: &str, prefix: &str, rows: usize) -> Result<Value, String> {
    let rows: Vec<String> = (0..rows)
        .map(|i| format!("\"row{i}\":{{\"text\":\"text of row {i}\",\"n\":{i},\"done\":{}}}", i % 2 == 0))
        .collect();
    let body = format!("[{{\"t\":{{{}}}}},{{}}]", rows.join(","));
    let (status, answer) = http::request(host, "PUT", &coldload_path(party, prefix), &body).await?;
    if status != 201 && status != 205 {
        return Err(format!("PUT: {status} {answer}"));
    }
    Ok(json!({"mode": "coldload-put", "rows": rows.len(), "bytes": body.len()}))
}

/// Times the first GET of the stored room (the server was restarted in between).
pub async fn coldload_get(host: &str, party: &str, prefix: &str) -> Result<Value, String> {
    let started = Instant::now();
    let (status, body) = http::request(host, "GET", &coldload_path(party, prefix), "").await?;
    let first = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    http::request(host, "GET", &coldload_path(party, prefix), "").await?;
    let second = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 || body.len() < 100 {
        return Err(format!("GET: {status}, {} bytes", body.len()));
    }
    Ok(json!({"mode": "coldload-get", "first_get_ms": first, "second_get_ms": second, "bytes": body.len()}))
}

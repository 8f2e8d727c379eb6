//! A writer faster than a room's readers is slowed down to them (backpressure), not its readers
//! cut off: a reader that keeps reading gets every change of a flood, one that stops reading is
//! still closed 1013, the paused writer stays connected (its idle timeout does not run while it
//! is not read), and another room keeps its pace meanwhile.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

#[actix_web::test]
async fn a_reader_slower_than_a_flooding_writer_gets_every_change_and_the_writer_is_slowed_not_closed() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.outbound_buffer_bytes = 1024 * 1024;
        // Short enough that the writer would be closed while it is paused, if the timeout ran.
        limits.idle_timeout = Duration::from_secs(2);
        limits.ping_interval = Duration::from_secs(1);
        // `stopped` reads its close frame only at the end of the test.
        limits.close_grace = Duration::from_secs(120);
    });
    let server = start_with(config);
    let addr = server.addr;
    for room in ["flood", "calm"] {
        assert_eq!(put(addr, &format!("/parties/main/{room}/store"), "[{},{}]").await, StatusCode::CREATED);
    }
    let mut stopped = connect(addr, "main", "flood", "stopped").await;
    let mut steady = connect(addr, "main", "flood", "steady").await;
    let mut writer = connect(addr, "main", "flood", "writer").await;
    let (mut calm_a, mut calm_b) =
        (connect(addr, "main", "calm", "a").await, connect(addr, "main", "calm", "b").await);

    // 25 MiB, far more than the outbound buffer and every socket buffer between.
    const CHANGES: usize = 400;
    let pad = "y".repeat(64 * 1024);
    let started = Instant::now();
    let writing = actix_web::rt::spawn(async move {
        for n in 0..CHANGES {
            writer.send(&format!("s[{{}},{{\"n\":{n},\"pad\":\"{pad}\"}},1]")).await;
        }
        writer.send("s[{},{\"last\":1},1]").await;
        writer
    });
    let flooding = Rc::new(Cell::new(true));
    let calm = actix_web::rt::spawn({
        let flooding = flooding.clone();
        async move {
            let mut slowest = Duration::ZERO;
            for round in 0.. {
                if !flooding.get() {
                    break;
                }
                let sent = Instant::now();
                calm_a.send(&format!("s[{{}},{{\"round\":{round}}},1]")).await;
                calm_b.next_text().await;
                slowest = slowest.max(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            slowest
        }
    });

    for n in 0..CHANGES {
        // Long enough to wait out the pause `stopped` causes until it is found stalled.
        match steady.next_event_within(Duration::from_secs(30)).await {
            Ok(text) => assert!(text.starts_with(&format!("s[{{}},{{\"n\":{n},")), "change {n} in order"),
            Err(ended) => panic!("the steady reader was cut off ({ended:?}) after {n} of {CHANGES} changes"),
        }
        // A reader that keeps reading, slower than the writer.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(steady.next_text().await, "s[{},{\"last\":1},1]", "the paused writer is still connected");
    let elapsed = started.elapsed();
    flooding.set(false);
    let _writer = writing.await.unwrap();
    let slowest_calm = calm.await.unwrap();
    println!(
        "{CHANGES} x 64 KiB to a reader sleeping 10 ms a change: all in {elapsed:?}; \
         the calm room's slowest round trip {slowest_calm:?}"
    );
    assert!(slowest_calm < Duration::from_secs(2), "another room kept its pace: {slowest_calm:?}");
    assert_eq!(
        stopped.closed().await,
        Ended::Closed(Some(1013)),
        "the reader that stopped is a slow consumer"
    );
    assert!(stopped.inbox.len() < CHANGES);
    server.server.shutdown().await.unwrap();
}

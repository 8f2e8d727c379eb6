//! Group commit under load: a round waiting for its commit takes in the changes that arrive
//! meanwhile, so they share its commit and leave with it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;
use partyd::storage::Pacing;

/// Group commits so far, from `/metrics`.
async fn flushes(addr: SocketAddr) -> u64 {
    let metrics = request(addr, "GET", "/metrics", "").await.body;
    let line =
        metrics.lines().find(|line| line.starts_with("partyd_flush_seconds_count")).expect("the flush count");
    line.rsplit(' ').next().unwrap().parse().expect("a count")
}

#[actix_web::test]
async fn changes_that_arrive_while_a_round_waits_for_its_commit_join_it() {
    let dir = data_dir();
    let mut config = Config::conformance(dir.path().to_path_buf());
    // A long fixed window: after one commit the flusher counts as busy and the next waits ~0.5 s.
    config.group_commit = Pacing::fixed(Duration::from_millis(500));
    let server = start_with(config);
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/room/store", "[{},{}]").await, StatusCode::CREATED);
    let mut sender = connect(addr, "main", "room", "a").await;
    let mut receiver = connect(addr, "main", "room", "b").await;
    sender.send("s[{},{\"v\":0},1]").await;
    assert_eq!(receiver.next_text().await, "s[{},{\"v\":0},1]");
    let before = flushes(addr).await;

    // Apart enough to reach the room one by one: the first starts a round, which waits for
    // its commit; the others come while it waits.
    for n in 1..=3 {
        sender.send(&format!("s[{{}},{{\"v\":{n}}},1]")).await;
        actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    }
    for n in 1..=3 {
        assert_eq!(receiver.next_text().await, format!("s[{{}},{{\"v\":{n}}},1]"));
    }
    assert_eq!(flushes(addr).await, before + 1, "the second and third change joined the first one's commit");
    assert_eq!(get_body(addr, "/parties/main/room/store").await, "[{},{\"v\":3}]");
    server.server.shutdown().await.unwrap();
}

//! Idle rooms leave memory and come back from storage on next use; a room with a connection
//! stays.

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

#[actix_web::test]
async fn idle_rooms_leave_memory_and_their_data_stays() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.idle_unload = Duration::from_millis(100);
    });
    let server = start_with(config);
    let addr = server.addr;
    const ROOMS: usize = 50;
    for i in 0..ROOMS {
        assert_eq!(
            put(addr, &format!("/parties/main/idle-{i}/store"), &format!("[{{}},{{\"i\":{i}}}]")).await,
            StatusCode::CREATED
        );
    }
    let mut kept = connect(addr, "main", "kept", "k").await;
    assert_eq!(put(addr, "/parties/main/kept/store", "[{},{}]").await, StatusCode::CREATED);
    until("every room without a connection has left memory", || async { server.server.live_rooms() == 1 })
        .await;

    for i in 0..ROOMS {
        assert_eq!(
            get_body(addr, &format!("/parties/main/idle-{i}/store")).await,
            format!("[{{}},{{\"i\":{i}}}]")
        );
    }
    assert_eq!(
        put(addr, "/parties/main/idle-0/store", "[{},{}]").await,
        StatusCode::RESET_CONTENT,
        "the store flag came back too"
    );
    assert!(server.server.live_rooms() > 1, "reading brought rooms back");

    // The room with a connection stayed live all along: its socket still gets broadcasts.
    let mut other = connect(addr, "main", "kept", "o").await;
    other.send("s[{},{\"still\":\"live\"},1]").await;
    assert_eq!(kept.next_text().await, "s[{},{\"still\":\"live\"},1]");
    drop((kept, other));
    until("the last room leaves memory once its sockets are gone", || async {
        server.server.live_rooms() == 0
    })
    .await;
    assert_eq!(get_body(addr, "/parties/main/kept/store").await, "[{},{\"still\":\"live\"}]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_big_room_unloads_to_its_image_and_comes_back_with_every_later_change() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.idle_unload = Duration::from_millis(100);
    });
    let server = start_with(config);
    let addr = server.addr;
    // Big enough (~60 KiB stored) for the room to leave an image when it unloads.
    let rows: Vec<String> =
        (0..2000).map(|i| format!("\"r{i}\":{{\"text\":\"row number {i}\",\"n\":{i}}}")).collect();
    assert_eq!(
        put(addr, "/parties/main/big/store", &format!("[{{\"t\":{{{}}}}},{{}}]", rows.join(","))).await,
        StatusCode::CREATED
    );
    let first = get_body(addr, "/parties/main/big/store").await;
    for round in 0..3 {
        until("the room has left memory", || async { server.server.live_rooms() == 0 }).await;
        let mut a = connect(addr, "main", "big", "a").await;
        let mut b = connect(addr, "main", "big", "b").await;
        let change = format!("s[{{\"t\":{{\"r5\":{{\"n\":\"round {round}\"}}}}}},{{}},1]");
        a.send(&change).await;
        assert_eq!(b.next_text().await, change);
        drop((a, b));
    }
    until("the room has left memory", || async { server.server.live_rooms() == 0 }).await;
    let last = get_body(addr, "/parties/main/big/store").await;
    assert_eq!(last, first.replace("\"r5\":{\"n\":5,", "\"r5\":{\"n\":\"round 2\","));
    server.server.shutdown().await.unwrap();
}

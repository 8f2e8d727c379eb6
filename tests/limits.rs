//! Limits, each with its hostile input and the expected status or close code; a refused request
//! leaves stored data untouched and other clients unaffected.

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::{Config, Limits};

fn server_with(dir: &std::path::Path, change: impl Fn(&mut Limits)) -> TestServer {
    start_with(Config::conformance(dir.to_path_buf()).with_limits(change))
}

async fn upgrade(url: &str) -> Result<(), StatusCode> {
    connect_or_status(url).await.map(drop)
}

/// A socket, or the status that refused the upgrade.
async fn connect_or_status(url: &str) -> Result<Socket, StatusCode> {
    match try_connect_url(url).await {
        Ok(socket) => Ok(socket),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status),
        Err(other) => panic!("{other}"),
    }
}

#[actix_web::test]
async fn a_room_never_grows_over_max_room_bytes_and_the_sender_is_restored() {
    let dir = data_dir();
    let server = server_with(dir.path(), |limits| limits.max_room_bytes = 200);
    let addr = server.addr;
    let big = format!("[{{}},{{\"v\":\"{}\"}}]", "x".repeat(300));
    assert_eq!(
        request(addr, "PUT", "/parties/main/r/store", big).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        put(addr, "/parties/main/r/store", "[{\"t\":{\"r\":{\"c\":\"small\"}}},{\"v\":1}]").await,
        StatusCode::CREATED
    );
    let mut sender = connect(addr, "main", "r", "sender").await;
    let mut other = connect(addr, "main", "r", "other").await;
    sender
        .send(&format!(
            "s[{{\"t\":{{\"r\":{{\"c\":\"{}\",\"d\":1}}}}}},{{\"v\":2,\"w\":3}},1]",
            "y".repeat(300)
        ))
        .await;
    assert_eq!(
        sender.next_text().await,
        "s[{\"t\":{\"r\":{\"c\":\"small\",\"d\":\"\u{FFFC}\"}}},{\"v\":1,\"w\":\"\u{FFFC}\"},1]",
        "the sender is put back"
    );
    sender.barrier(&mut other).await;
    assert_eq!(other.inbox.len(), 1, "nothing was broadcast: {:?}", other.inbox);
    assert_eq!(
        get_body(addr, "/parties/main/r/store").await,
        "[{\"t\":{\"r\":{\"c\":\"small\"}}},{\"v\":1}]"
    );
    sender.send("s[{\"t\":\"\u{FFFC}\"},{\"v\":2},1]").await;
    assert_eq!(
        other.next_text().await,
        "s[{\"t\":\"\u{FFFC}\"},{\"v\":2},1]",
        "changes within the limit pass"
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_full_room_answers_upgrades_503() {
    let dir = data_dir();
    let server = server_with(dir.path(), |limits| limits.max_connections_per_room = 2);
    let addr = server.addr;
    let url = |id: &str| format!("ws://{addr}/parties/main/full?_pk={id}");
    let first = connect_url(&url("a")).await;
    let mut second = connect_url(&url("b")).await;
    assert_eq!(upgrade(&url("c")).await, Err(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        upgrade(&format!("ws://{addr}/parties/main/other?_pk=c")).await,
        Ok(()),
        "other rooms are unaffected"
    );
    drop(first);
    // The socket that gets the freed place is kept: one opened and dropped to probe would hold
    // the place until the server sees it go.
    let freed = url("c");
    let mut third = until_some("a place frees up", || async {
        match connect_or_status(&freed).await {
            Ok(socket) => Some(socket),
            Err(StatusCode::SERVICE_UNAVAILABLE) => None,
            Err(other) => panic!("connect: {other}"),
        }
    })
    .await;
    assert_eq!(put(addr, "/parties/main/full/store", "[{},{}]").await, StatusCode::CREATED);
    third.barrier(&mut second).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn too_many_sockets_from_one_address_are_answered_429() {
    let dir = data_dir();
    let server = server_with(dir.path(), |limits| limits.max_connections_per_ip = 2);
    let addr = server.addr;
    let _a = connect(addr, "main", "r1", "a").await;
    let b = connect(addr, "main", "r2", "b").await;
    assert_eq!(
        upgrade(&format!("ws://{addr}/parties/main/r3?_pk=c")).await,
        Err(StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(upgrade(&format!("ws://{addr}/parties/custom/r3?_pk=c")).await, Ok(()), "counted per party");
    drop(b);
    until("the address gets a place back", || async {
        upgrade(&format!("ws://{addr}/parties/main/r3?_pk=c")).await.is_ok()
    })
    .await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_connection_over_its_message_rate_is_closed_with_1008() {
    let dir = data_dir();
    let server = server_with(dir.path(), |limits| limits.messages_per_second = 5);
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/rate/store", "[{},{}]").await, StatusCode::CREATED);
    let mut flood = connect(addr, "main", "rate", "flood").await;
    let mut calm = connect(addr, "main", "rate", "calm").await;
    let mut watcher = connect(addr, "main", "rate", "watcher").await;
    for n in 0..50 {
        flood.send(&format!("s[{{}},{{\"n\":{n}}},1]")).await;
    }
    assert_eq!(flood.closed().await, Ended::Closed(Some(1008)));
    // The burst (twice the rate) went through before the cut; nothing after it did.
    calm.barrier(&mut watcher).await;
    let flood_frames = watcher.inbox.len() - 1;
    assert!((10..50).contains(&flood_frames), "{flood_frames} of the flood's changes were broadcast");
    calm.send("s[{},{\"calm\":1},1]").await;
    assert_eq!(watcher.next_text().await, "s[{},{\"calm\":1},1]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn new_rooms_over_max_live_rooms_are_answered_503_until_rooms_unload() {
    let dir = data_dir();
    let server = server_with(dir.path(), |limits| {
        limits.max_live_rooms = 3;
        limits.idle_unload = Duration::from_millis(200);
    });
    let addr = server.addr;
    // Sockets keep the three rooms live, so the limit holds however slow this machine is.
    let _held = connect(addr, "main", "held", "x").await;
    let _r2 = connect(addr, "main", "r2", "x").await;
    let r1 = connect(addr, "main", "r1", "x").await;
    assert_eq!(put(addr, "/parties/main/r1/store", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/main/r4/store", "[{},{}]").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        request(addr, "GET", "/parties/main/r4/store", "").await.status,
        StatusCode::OK,
        "a read of a room that does not exist needs no room"
    );
    assert_eq!(
        upgrade(&format!("ws://{addr}/parties/main/r5?_pk=y")).await,
        Err(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(get_body(addr, "/parties/main/r1/store").await, "[{},{}]", "live rooms keep working");
    drop(r1);
    until("idle rooms leave and make room", || async {
        put(addr, "/parties/main/r4/store", "[{},{}]").await == StatusCode::CREATED
    })
    .await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn rooms_nobody_holds_make_way_for_new_ones_at_max_live_rooms() {
    let dir = data_dir();
    // Rooms would stay an hour if they only left by themselves.
    let server = server_with(dir.path(), |limits| {
        limits.max_live_rooms = 3;
        limits.idle_unload = Duration::from_secs(3600);
    });
    let addr = server.addr;
    for i in 0..20 {
        let content = format!("[{{}},{{\"i\":{i}}}]");
        assert_eq!(
            put(addr, &format!("/parties/main/put-{i}/store"), &content).await,
            StatusCode::CREATED,
            "room {i}"
        );
    }
    for i in 0..20 {
        assert_eq!(
            get_body(addr, &format!("/parties/main/put-{i}/store")).await,
            format!("[{{}},{{\"i\":{i}}}]")
        );
    }
    assert!(server.server.live_rooms() <= 3);

    // Sockets that joined fresh rooms and left leave nothing that holds the limit either.
    for i in 0..3 {
        let mut socket = connect(addr, "main", &format!("joined-{i}"), "x").await;
        socket.send("s[{},{},1]").await;
    }
    until("rooms whose sockets left make way", || async {
        put(addr, "/parties/main/after-sockets/store", "[{},{}]").await == StatusCode::CREATED
    })
    .await;

    // Rooms with a socket stay: with all three held, a new room is refused, and the held
    // rooms keep working.
    assert_eq!(put(addr, "/parties/main/held-1/store", "[{},{}]").await, StatusCode::CREATED);
    let mut a = connect(addr, "main", "held-1", "a").await;
    let mut b = connect(addr, "main", "held-1", "b").await;
    let _c = connect(addr, "main", "held-2", "c").await;
    let _d = connect(addr, "main", "held-3", "d").await;
    assert_eq!(put(addr, "/parties/main/one-more/store", "[{},{}]").await, StatusCode::SERVICE_UNAVAILABLE);
    a.barrier(&mut b).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn each_channel_of_a_multiplexed_socket_counts_as_a_connection_from_its_address() {
    let dir = data_dir();
    let text = "[parties.sync]\nkind = \"tinybase-sync\"\nmax_connections_per_ip = 3\n";
    let mut config = Config::from_toml_str(text, std::path::Path::new("multiplexed test")).unwrap();
    config.listen = ([127, 0, 0, 1], 0).into();
    config.data_dir = dir.path().to_path_buf();
    let server = start_with(config);
    let addr = server.addr;
    let mut socket = connect_multiplexed(addr, "sync").await;
    socket.send("S\n[\"hello\",-1,[0,1]]").await;
    assert_eq!(socket.next_text().await, "S\n[\"hello\",-1,[0,1]]");
    // The socket is one connection and each channel (a room it holds live) one more.
    for n in 0..5 {
        socket.send(&format!("S\n[\"s{n}\",-1,[1,\"room-{n}\"]]")).await;
    }
    assert_eq!(socket.closed().await, Ended::Closed(Some(1013)));
    assert!(server.server.live_rooms() <= 2, "{} rooms live", server.server.live_rooms());
    until("the address has its places back", || async {
        upgrade(&format!("ws://{addr}/parties/sync/room-9")).await.is_ok()
    })
    .await;
    server.server.shutdown().await.unwrap();
}

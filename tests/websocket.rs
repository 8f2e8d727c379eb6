//! Websocket rooms over real sockets: broadcast rules, connection ids, isolation, limits (oversize
//! messages, slow consumers), garbage, and shutdown.

mod common;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

const MARKER: &str = "\u{FFFC}";

#[actix_web::test]
async fn changes_are_saved_then_broadcast_to_everyone_but_the_senders_id() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/room/store", "[{},{}]").await, StatusCode::CREATED);
    let mut a1 = connect(addr, "main", "room", "a").await;
    let mut a2 = connect(addr, "main", "room", "a").await;
    let mut b = connect(addr, "main", "room", "b").await;
    a1.send("s[{\"t\":{\"r\":{\"c\":1}}},{},1]").await;
    assert_eq!(b.next_text().await, "s[{\"t\":{\"r\":{\"c\":1}}},{},1]");
    assert_eq!(get_body(addr, "/parties/main/room/store").await, "[{\"t\":{\"r\":{\"c\":1}}},{}]");
    // a2 shares a's id: it gets b's barrier and nothing of a's.
    b.barrier(&mut a2).await;
    assert_eq!(a2.inbox.len(), 1, "a2 got only the barrier: {:?}", a2.inbox);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn each_socket_sharing_an_id_keeps_its_membership_until_it_closes() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/room/store", "[{},{}]").await, StatusCode::CREATED);
    let old = connect(addr, "main", "room", "same").await;
    let mut newer = connect(addr, "main", "room", "same").await;
    let mut other = connect(addr, "main", "room", "other").await;
    drop(old);
    other.send("s[{},{\"after\":1},1]").await;
    assert_eq!(
        newer.next_text().await,
        "s[{},{\"after\":1},1]",
        "the newer socket still receives after the older one went"
    );
    let older_again = connect(addr, "main", "room", "same").await;
    drop(newer);
    let mut older_again = older_again;
    other.send("s[{},{\"after\":2},1]").await;
    assert_eq!(older_again.next_text().await, "s[{},{\"after\":2},1]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn changes_before_a_store_exists_are_ignored_and_rooms_are_isolated() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let mut a = connect(addr, "main", "one", "a").await;
    let mut b = connect(addr, "main", "one", "b").await;
    let mut elsewhere = connect(addr, "main", "two", "c").await;
    let mut other_party = connect(addr, "custom", "one", "d").await;
    a.send("s[{},{\"early\":1},1]").await;
    // The websocket and the PUT are separate connections: wait until the room has seen (and
    // ignored) the early change, or the PUT could overtake it.
    until("the early change is ignored", || async {
        let metrics = request(addr, "GET", "/metrics", "").await.body;
        metrics.lines().any(|line| {
            line == "partyd_changes_total{outcome=\"ignored\",party=\"main\",reason=\"no_store\"} 1"
        })
    })
    .await;
    assert_eq!(put(addr, "/parties/main/one/store", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/main/two/store", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/custom/one/my_tinybase", "[{},{}]").await, StatusCode::CREATED);
    a.barrier(&mut b).await;
    assert_eq!(b.inbox.len(), 1, "the early change was not broadcast: {:?}", b.inbox);
    assert_eq!(get_body(addr, "/parties/main/one/store").await, "[{},{}]");
    a.send("s[{},{\"late\":1},1]").await;
    assert_eq!(b.next_text().await, "s[{},{\"late\":1},1]");
    let mut c2 = connect(addr, "main", "two", "c2").await;
    c2.barrier(&mut elsewhere).await;
    assert_eq!(elsewhere.inbox.len(), 1, "nothing crossed rooms: {:?}", elsewhere.inbox);
    let mut d2 = connect(addr, "custom", "one", "d2").await;
    d2.send("tb:s[{},{\"x\":1},1]").await;
    assert_eq!(other_party.next_text().await, "tb:s[{},{\"x\":1},1]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn garbage_is_ignored_and_the_socket_stays_usable() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(
        put(addr, "/parties/main/g/store", "[{\"t\":{\"r\":{\"c\":0}}},{}]").await,
        StatusCode::CREATED
    );
    let mut a = connect(addr, "main", "g", "a").await;
    let mut b = connect(addr, "main", "g", "b").await;
    for frame in ["", "s", "x", "snull", "s[{},{\"v\":1},2]", "s[{\"t\":[1]},{},1]", "s[{},{\"v\":1e400},1]"]
    {
        a.send(frame).await;
    }
    a.send_binary(b"s[{},{\"v\":\"binary\"},1]").await;
    a.barrier(&mut b).await;
    assert_eq!(b.inbox.len(), 1, "{:?}", b.inbox);
    assert_eq!(get_body(addr, "/parties/main/g/store").await, "[{\"t\":{\"r\":{\"c\":0}}},{}]");
    a.send(&format!("s[{{\"t\":\"{MARKER}\"}},{{\"v\":[\"{MARKER}\",1e400]}},1]")).await;
    assert_eq!(b.next_text().await, format!("s[{{\"t\":\"{MARKER}\"}},{{\"v\":[\"{MARKER}\",null]}},1]"));
    assert_eq!(get_body(addr, "/parties/main/g/store").await, "[{},{\"v\":[null,null]}]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn an_oversize_message_closes_only_that_socket_with_1009() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.max_message_bytes = 4096;
    });
    let server = start_with(config);
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/big/store", "[{},{}]").await, StatusCode::CREATED);
    let mut big = connect(addr, "main", "big", "big").await;
    let mut a = connect(addr, "main", "big", "a").await;
    let mut b = connect(addr, "main", "big", "b").await;
    big.send(&format!("s[{{}},{{\"v\":\"{}\"}},1]", "x".repeat(5000))).await;
    assert_eq!(big.closed().await, Ended::Closed(Some(1009)));
    a.send("s[{},{\"small\":1},1]").await;
    assert_eq!(b.next_text().await, "s[{},{\"small\":1},1]");
    assert_eq!(get_body(addr, "/parties/main/big/store").await, "[{},{\"small\":1}]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_closed_with_1013_and_the_room_goes_on() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.outbound_buffer_bytes = 256 * 1024;
        // Over half its buffer, `slow` holds the sender back until it is found stalled.
        limits.slow_consumer_timeout_seconds = 1;
        // `slow` reads only after every change is sent, long after it was cut off: with the
        // default 2 s, a loaded machine drops it before it reads its way to the close frame.
        limits.close_grace = std::time::Duration::from_secs(120);
    });
    let server = start_with(config);
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/slow/store", "[{},{}]").await, StatusCode::CREATED);
    let mut slow = connect(addr, "main", "slow", "slow").await;
    let mut sender = connect(addr, "main", "slow", "sender").await;
    let mut fast = connect(addr, "main", "slow", "fast").await;
    let payload = "y".repeat(64 * 1024);
    // Far more than the outbound limit plus every socket buffer between the server and `slow`.
    let changes = 400;
    for n in 0..changes {
        sender.send(&format!("s[{{}},{{\"n\":{n},\"pad\":\"{payload}\"}},1]")).await;
        fast.next_text().await;
    }
    assert_eq!(fast.inbox.len(), changes, "the reading client got every change");
    // Now `slow` reads: some frames, then the server's close.
    assert_eq!(slow.closed().await, Ended::Closed(Some(1013)));
    assert!(slow.inbox.len() < changes, "the slow client was cut off before it got everything");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn shutdown_closes_every_socket_with_1001() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let mut a = connect(addr, "main", "s1", "a").await;
    let mut b = connect(addr, "custom", "s2", "b").await;
    server.server.shutdown().await.unwrap();
    assert_eq!(a.closed().await, Ended::Closed(Some(1001)));
    assert_eq!(b.closed().await, Ended::Closed(Some(1001)));
}

#[actix_web::test]
async fn sub_paths_and_extra_query_parameters_join_the_room() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/q%41/store", "[{},{}]").await, StatusCode::CREATED);
    let mut deep =
        connect_url(&format!("ws://{addr}/parties/main/q%41/sub/path?_pk=deep&token=abc&x=1")).await;
    let mut no_id = connect_url(&format!("ws://{addr}/parties/main/q%41")).await;
    let mut plain_a = connect(addr, "main", "qA", "a").await;
    no_id.send("s[{},{\"v\":1},1]").await;
    assert_eq!(deep.next_text().await, "s[{},{\"v\":1},1]");
    assert_eq!(put(addr, "/parties/main/qA/store", "[{},{}]").await, StatusCode::CREATED);
    deep.barrier(&mut no_id).await;
    let mut other_a = connect(addr, "main", "qA", "b").await;
    other_a.barrier(&mut plain_a).await;
    assert_eq!(plain_a.inbox.len(), 1, "q%41 and qA are different rooms: {:?}", plain_a.inbox);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn bursts_from_two_senders_reach_every_other_socket_whole_and_in_order() {
    // Changes sent without waiting pile up while a commit runs, so rounds carry several: their
    // frames leave together (held back, then one write a socket) and must keep their order.
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/room/store", "[{},{}]").await, StatusCode::CREATED);
    let mut senders = [connect(addr, "main", "room", "a").await, connect(addr, "main", "room", "b").await];
    let mut receivers = Vec::new();
    for id in ["r1", "r2", "r3"] {
        receivers.push(connect(addr, "main", "room", id).await);
    }
    const EACH: usize = 150;
    for n in 0..EACH {
        for (sender, name) in senders.iter_mut().zip(["a", "b"]) {
            sender.send(&format!("s[{{\"t\":{{\"{name}\":{{\"n\":{n}}}}}}},{{}},1]")).await;
        }
    }
    for receiver in &mut receivers {
        let mut next = [0usize; 2];
        for _ in 0..2 * EACH {
            let text = receiver.next_text().await;
            let sender = usize::from(text.starts_with("s[{\"t\":{\"b\""));
            let name = ["a", "b"][sender];
            assert_eq!(
                text,
                format!("s[{{\"t\":{{\"{name}\":{{\"n\":{}}}}}}},{{}},1]", next[sender]),
                "in order, whole"
            );
            next[sender] += 1;
        }
    }
    let stored = get_body(addr, "/parties/main/room/store").await;
    assert_eq!(
        stored,
        format!("[{{\"t\":{{\"a\":{{\"n\":{last}}},\"b\":{{\"n\":{last}}}}}}},{{}}]", last = EACH - 1)
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn an_upgrade_over_http_1_0_is_refused_with_400() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = data_dir();
    let server = start(dir.path());
    // RFC 6455 §4.2.1: the opening handshake is an HTTP/1.1 GET; the same request in HTTP/1.1
    // is accepted.
    for (version, answer) in [("HTTP/1.0", "HTTP/1.1 400"), ("HTTP/1.1", "HTTP/1.1 101")] {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET /parties/main/room?_pk=a {version}\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0; 12];
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut head)).await.unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&head), answer, "{version}");
    }
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn an_upgrade_pipelined_after_a_request_comes_after_that_request_s_answer() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = data_dir();
    let server = start(dir.path());
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n\
                   GET /parties/main/room?_pk=a HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answers = Vec::new();
    while !String::from_utf8_lossy(&answers).contains("HTTP/1.1 101") {
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(read > 0, "the stream ended: {}", String::from_utf8_lossy(&answers));
        answers.extend_from_slice(&chunk[..read]);
    }
    let answers = String::from_utf8_lossy(&answers);
    assert!(answers.starts_with("HTTP/1.1 200"), "the first request is answered first: {answers}");
    server.server.shutdown().await.unwrap();
}

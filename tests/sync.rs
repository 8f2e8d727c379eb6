//! `tinybase-sync` rooms over real sockets at the frame level: the participant's start-up
//! exchange, relaying byte for byte to everyone or to one client, the answers of `S`, fragments,
//! close codes for bad frames, the dumps, refused PUTs, and durability across a restart.

mod common;

use std::path::Path;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

fn sync_config(dir: &Path) -> Config {
    let text = "[parties.sync]\nkind = \"tinybase-sync\"\n\n[parties.tiny]\nkind = \"tinybase-sync\"\nmax_message_bytes = 1024\n\n[parties.small]\nkind = \"tinybase-sync\"\nmax_room_bytes = 400\n";
    let mut config = Config::from_toml_str(text, Path::new("sync test")).expect("valid config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.data_dir = dir.to_path_buf();
    config
}

const CELL: &str = r#"["tx1",3,[[{"pets":[{"fido":[{"species":["dog","NjEtLV-----67WEb"]}]}]}],[{}],1]]"#;

async fn sync_socket(addr: std::net::SocketAddr, room: &str) -> Socket {
    connect_url(&format!("ws://{addr}/parties/sync/{room}")).await
}

/// The next frame relayed from another client (skipping the participant's own).
async fn next_relayed(socket: &mut Socket) -> String {
    loop {
        let frame = socket.next_text().await;
        if !frame.starts_with("S\n") {
            return frame;
        }
    }
}

/// The (request id, body) of a frame `S\n[id,kind,body]` of the given kind.
fn from_server(frame: &str, kind: u8) -> (String, String) {
    let json = frame.strip_prefix("S\n").unwrap_or_else(|| panic!("not from S: {frame}"));
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(value[1], kind, "{frame}");
    (value[0].as_str().unwrap_or("").to_owned(), value[2].to_string())
}

#[actix_web::test]
async fn the_first_client_gets_the_start_up_exchange_and_s_answers_requests() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let mut a = sync_socket(server.addr, "room").await;
    let (ask, body) = from_server(&a.next_text().await, 1);
    assert_eq!(body, "\"\"");
    assert_eq!(ask.len(), 16, "transaction id . 4 characters: {ask}");
    assert_eq!(&ask[11..12], ".");
    // Unanswered, S gives up after its request timeout and announces its (empty) hashes.
    let (transaction, hashes) = from_server(&a.next_text().await, 2);
    assert_eq!((transaction.len(), hashes.as_str()), (11, "[0,0]"));
    // S merges a ContentDiff, then answers with the new hashes and diffs.
    a.send(&format!("\n{CELL}")).await;
    a.send("S\n[\"q.1\",1,\"\"]").await;
    let (id, hashes) = from_server(&a.next_text().await, 0);
    assert_eq!(id, "q.1");
    assert_ne!(hashes, "[0,0]");
    a.send("S\n[\"q.2\",4,{}]").await;
    assert_eq!(
        a.next_text().await,
        r#"S
["q.2",0,[[{"pets":[{"fido":[{"species":["dog","NjEtLV-----67WEb"]}]}]}],{}]]"#
    );
    assert_eq!(
        get_body(server.addr, "/parties/sync/room/store").await,
        r#"[{"pets":{"fido":{"species":"dog"}}},{}]"#
    );
    let mergeable = get_body(server.addr, "/parties/sync/room/store?format=mergeable").await;
    assert!(
        mergeable.starts_with(r#"[[{"pets":[{"fido":[{"species":["dog","NjEtLV-----67WEb","#),
        "{mergeable}"
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn messages_are_relayed_byte_for_byte_to_everyone_else_or_to_the_one_addressed() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let mut a = sync_socket(server.addr, "room").await;
    from_server(&a.next_text().await, 1);
    let mut b = sync_socket(server.addr, "room").await;
    // Odd spacing survives: the remainder is never re-encoded.
    let spaced = CELL.replace(",3,", " , 3 , ");
    a.send(&format!("\n{spaced}")).await;
    let relayed = next_relayed(&mut b).await;
    let (a_id, remainder) = relayed.split_once('\n').unwrap();
    assert_eq!(remainder, spaced);
    assert_eq!(a_id.len(), 24, "the sender's Sec-WebSocket-Key: {a_id}");
    // b answers a directly; a message to nobody is dropped; a's socket stays open.
    b.send(&format!("{a_id}\n[\"direct\",1,\"\"]")).await;
    b.send("nobody\n[\"lost\",1,\"\"]").await;
    let direct = next_relayed(&mut a).await;
    assert!(direct.ends_with("\n[\"direct\",1,\"\"]"), "{direct}");
    assert!(!direct.starts_with(a_id));
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn fragments_are_reassembled_for_s_and_relayed_as_the_original_pieces() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let mut a = sync_socket(server.addr, "room").await;
    from_server(&a.next_text().await, 1);
    let mut b = sync_socket(server.addr, "room").await;
    let bytes = CELL.as_bytes();
    let pieces: Vec<&str> = bytes.chunks(30).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
    for (i, piece) in pieces.iter().enumerate() {
        a.send(&format!("\nabcdefghijklmnop\n{i}\n{}\n{piece}", pieces.len())).await;
    }
    for (i, piece) in pieces.iter().enumerate() {
        let frame = next_relayed(&mut b).await;
        assert!(frame.ends_with(&format!("\nabcdefghijklmnop\n{i}\n{}\n{piece}", pieces.len())), "{frame}");
    }
    until("S merged the reassembled message", || async {
        get_body(server.addr, "/parties/sync/room/store").await
            == r#"[{"pets":{"fido":{"species":"dog"}}},{}]"#
    })
    .await;
    // Too many pieces closes with 1013.
    a.send("\nabcdefghijklmnop\n0\n1001\nx").await;
    assert_eq!(a.closed().await, Ended::Closed(Some(1013)));
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn bad_frames_close_the_sender_with_1007_and_the_room_goes_on() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let mut keeper = sync_socket(server.addr, "room").await;
    keeper.send(&format!("\n{CELL}")).await;
    let bad: [&[u8]; 9] = [
        b"no newline",
        b"\n{",
        b"\n[null,8,\"\"]",
        b"\n[null,1,\"\",4]",
        b"\n[1,1,\"\"]",
        b"\n[null,2,[1,-1]]",
        b"\n[null,3,[[{\"t\":[{\"r\":[{\"c\":[1,\"short\"]}]}]}],[{}],1]]",
        b"\nabcdefghijklmnop\n5\n2\nx",
        b"\n\xff\xfe",
    ];
    for frame in bad {
        let mut socket = sync_socket(server.addr, "room").await;
        if std::str::from_utf8(frame).is_ok() {
            socket.send(std::str::from_utf8(frame).unwrap()).await;
        } else {
            socket.send_binary(frame).await;
        }
        assert_eq!(socket.closed().await, Ended::Closed(Some(1007)), "{}", String::from_utf8_lossy(frame));
    }
    // A binary frame of valid UTF-8 is read as text.
    let mut binary = sync_socket(server.addr, "room").await;
    binary.send_binary(b"S\n[\"bin\",1,\"\"]").await;
    loop {
        if binary.next_text().await.starts_with("S\n[\"bin\",0,") {
            break;
        }
    }
    // Over the party's max_message_bytes: 1009.
    let mut tiny = connect_url(&format!("ws://{}/parties/tiny/room", server.addr)).await;
    tiny.send(&format!("\n[\"{}\",1,\"\"]", "x".repeat(2000))).await;
    assert_eq!(tiny.closed().await, Ended::Closed(Some(1009)));
    assert_eq!(
        get_body(server.addr, "/parties/sync/room/store").await,
        r#"[{"pets":{"fido":{"species":"dog"}}},{}]"#
    );
    server.server.shutdown().await.unwrap();
}

const SYNC_TOML: &str = "[parties.sync]\nkind = \"tinybase-sync\"\n";

#[actix_web::test]
async fn put_is_refused_and_what_was_merged_survives_a_restart_and_a_kill() {
    let dir = data_dir();
    let partyd = common::process::Partyd::spawn_with(dir.path(), SYNC_TOML, &[]);
    let answer = request(partyd.addr, "PUT", "/parties/sync/room/store", "[{},{}]").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_body(partyd.addr, "/parties/sync/empty/store").await, "[{},{}]");
    let mut a = sync_socket(partyd.addr, "room").await;
    let mut b = sync_socket(partyd.addr, "room").await;
    a.send(&format!("\n{CELL}")).await;
    a.send("\n[\"v\",3,[[{}],[{\"open\":[true,\"NjEtLV-----67WEc\"],\"gone\":[\"\u{FFFC}\",\"NjEtLV-----67WEd\"]}],1]]").await;
    // Relayed only once durable: what b has seen survives a SIGKILL.
    while !b.next_text().await.contains("open") {}
    let before = get_body(partyd.addr, "/parties/sync/room/store?format=mergeable").await;
    assert!(
        before.contains("\"gone\":[\"\u{FFFC}\",\"NjEtLV-----67WEd\","),
        "the tombstone is kept: {before}"
    );
    partyd.kill();
    let partyd = common::process::Partyd::spawn_with(dir.path(), SYNC_TOML, &[]);
    // Children come back in key order (as from TinyBase's storage); stamps and hashes are equal.
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(
        json(&get_body(partyd.addr, "/parties/sync/room/store?format=mergeable").await),
        json(&before)
    );
    assert_eq!(
        get_body(partyd.addr, "/parties/sync/room/store").await,
        r#"[{"pets":{"fido":{"species":"dog"}}},{"open":true}]"#
    );
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn the_admin_api_shows_deletes_and_refuses_server_writes_for_sync_rooms() {
    let dir = data_dir();
    let mut config = sync_config(dir.path());
    config.admin_token = Some("admin-token".to_owned());
    let server = start_with(config);
    let addr = server.addr;
    let admin = |method: &'static str, path: &'static str| async move {
        let client = awc::Client::default();
        let mut response = client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://{addr}{path}"),
            )
            .insert_header(("Authorization", "Bearer admin-token"))
            .send_body("[{},{\"v\":1},1]")
            .await
            .unwrap();
        let body = response.body().await.unwrap();
        (response.status(), String::from_utf8_lossy(&body).into_owned())
    };
    let mut a = sync_socket(addr, "room").await;
    a.send(&format!("\n{CELL}")).await;
    until("merged", || async { get_body(addr, "/parties/sync/room/store").await.contains("dog") }).await;
    let (status, body) = admin("GET", "/_partyd/parties/sync/rooms/room").await;
    assert_eq!(status, StatusCode::OK);
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dump["content"], serde_json::json!([{"pets": {"fido": {"species": "dog"}}}, {}]));
    assert_eq!(dump["kind"], "tinybase-sync");
    let keys: Vec<&str> =
        dump["entries"].as_array().unwrap().iter().map(|entry| entry[0].as_str().unwrap()).collect();
    assert_eq!(keys, ["t", "t\"pets\"", "t\"pets\",\"fido\"", "t\"pets\",\"fido\",\"species\"", "v"]);
    assert_eq!(
        admin("POST", "/_partyd/parties/sync/rooms/room/changes").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(admin("DELETE", "/_partyd/parties/sync/rooms/room").await.0, StatusCode::OK);
    assert_eq!(a.closed().await, Ended::Closed(Some(4000)));
    assert_eq!(get_body(addr, "/parties/sync/room/store").await, "[{},{}]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn changes_that_would_outgrow_max_room_bytes_are_neither_merged_nor_relayed() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let mut a = connect_url(&format!("ws://{}/parties/small/room", server.addr)).await;
    from_server(&a.next_text().await, 1);
    let mut b = connect_url(&format!("ws://{}/parties/small/room", server.addr)).await;
    let big = format!(
        "[\"big\",3,[[{{\"t\":[{{\"r\":[{{\"c\":[\"{}\",\"NjEtLV-----67WEb\"]}}]}}]}}],[{{}}],1]]",
        "x".repeat(500)
    );
    a.send(&format!("\n{big}")).await;
    a.send(&format!("\n{CELL}")).await;
    // The small change after it arrives; the big one never does.
    assert_eq!(next_relayed(&mut b).await.split_once('\n').unwrap().1, CELL);
    assert_eq!(
        get_body(server.addr, "/parties/small/room/store").await,
        r#"[{"pets":{"fido":{"species":"dog"}}},{}]"#
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_read_of_a_room_that_does_not_exist_answers_as_the_empty_room_would_and_loads_nothing() {
    let dir = data_dir();
    let server = start_with(sync_config(dir.path()));
    let addr = server.addr;
    let reads = |room: &'static str| async move {
        (
            get_body(addr, &format!("/parties/sync/{room}/store")).await,
            get_body(addr, &format!("/parties/sync/{room}/store?format=mergeable")).await,
        )
    };
    let absent = reads("absent").await;
    assert_eq!(server.server.live_rooms(), 0, "reads of an absent room make no room live");
    let _socket = sync_socket(addr, "empty").await;
    assert_eq!(absent, reads("empty").await, "a live room that has nothing answers the same");
    assert_eq!(server.server.live_rooms(), 1);
    server.server.shutdown().await.unwrap();
}

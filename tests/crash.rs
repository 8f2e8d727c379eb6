//! Crash safety of the real binary: writers stream changes while a listener records every
//! broadcast; the server is killed with SIGKILL and restarted; everything the listener saw must
//! be stored (nothing is broadcast before it is durable). Repeated on one data dir.

mod common;

use actix_web::http::StatusCode;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};

use common::process::Partyd;
use common::*;

const WRITERS: usize = 3;
/// Broadcasts the listener must see before the kill, so the kill lands mid-stream.
const SEEN_BEFORE_KILL: usize = 150;
const ROUNDS: usize = 3;

#[actix_web::test]
async fn everything_a_listener_saw_survives_sigkill() {
    let dir = data_dir();
    for round in 0..ROUNDS {
        let partyd = Partyd::spawn(dir.path());
        let addr = partyd.addr;
        let room = format!("crash-{round}");
        let store = format!("/parties/main/{room}/store");
        assert_eq!(put(addr, &store, "[{},{}]").await, StatusCode::CREATED);
        let mut listener = connect(addr, "main", &room, "listener").await;
        for writer in 0..WRITERS {
            let url = format!("ws://{addr}/parties/main/{room}?_pk=writer-{writer}");
            actix_web::rt::spawn(stream_changes(url, writer));
        }
        let mut seen = Vec::new();
        while seen.len() < SEEN_BEFORE_KILL {
            seen.push(listener.next_text().await);
        }
        partyd.kill();
        // Frames already on their way to the listener were broadcast, so they count too.
        while let Ok(text) = listener.next_event().await {
            seen.push(text);
        }

        let partyd = Partyd::spawn(dir.path());
        let addr = partyd.addr;
        let stored: serde_json::Value =
            serde_json::from_str(&get_body(addr, &store).await).expect("stored JSON");
        for frame in &seen {
            let change: serde_json::Value =
                serde_json::from_str(frame.strip_prefix('s').expect("s frame")).unwrap();
            for (table, rows) in change[0].as_object().unwrap() {
                for (row, cells) in rows.as_object().unwrap() {
                    assert_eq!(
                        stored[0][table][row], *cells,
                        "round {round}: {table}/{row} was broadcast but is not stored"
                    );
                }
            }
        }
        partyd.kill();
    }
}

/// Sends changes `{"w<writer>":{"n<k>":{"k":k}}}` as fast as the server takes them, until it dies.
async fn stream_changes(url: String, writer: usize) {
    let client = awc::Client::new();
    let Ok((_, mut framed)) = client.ws(url).connect().await else { return };
    for k in 0.. {
        let frame = format!("s[{{\"w{writer}\":{{\"n{k}\":{{\"k\":{k}}}}}}},{{}},1]");
        if framed.send(Message::Text(frame.into())).await.is_err() {
            return;
        }
        // Drain whatever the server sends us (other writers' broadcasts) without blocking.
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(std::time::Duration::ZERO, framed.next()).await {
            if matches!(frame, Frame::Close(_)) {
                return;
            }
        }
    }
}

//! A stall of the server is not blamed on its clients: the real binary is stopped (SIGSTOP)
//! while eight clients keep writing within their message rate, then continued; every client
//! stays open and every change is stored. A client over its rate is still closed 1008.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use awc::ws::{Frame, Message};
use common::process::Partyd;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};

/// 150 messages a second (bursts of 300): the writers' 100 a second is well within it, and
/// what piles up in a few seconds of a stopped server is more than a burst.
const PARTY_TOML: &str =
    "[server]\nmessages_per_second = 150\n\n[parties.main]\nkind = \"tinybase-persister\"\n";

const WRITERS: usize = 8;
const CHANGES_PER_SECOND: u64 = 100;
const STOPPED: Duration = Duration::from_secs(6);

fn signal(partyd: &Partyd, signal: &str) {
    let status = Command::new("kill").args([signal, &partyd.child.id().to_string()]).status().expect("kill");
    assert!(status.success(), "kill {signal}");
}

/// Connects a writer that sends one change every 10 ms until `stop`, reading whatever the room
/// sends meanwhile; returns how many changes it sent and the close code, if it was closed.
async fn writer(addr: std::net::SocketAddr, id: usize, stop: Arc<AtomicBool>) -> (u64, Option<Option<u16>>) {
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let url = format!("ws://{addr}/parties/main/stall?_pk=writer-{id}");
    let (_, framed) = client.ws(url).connect().await.expect("connect");
    let (mut sink, mut stream) = framed.split();
    let reading = actix_web::rt::spawn(async move {
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(Frame::Close(reason)) => return Some(reason.map(|reason| u16::from(reason.code))),
                Ok(_) => {}
                Err(_) => return Some(None),
            }
        }
        None
    });
    let mut ticks = tokio::time::interval(Duration::from_millis(1000 / CHANGES_PER_SECOND));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let change = format!("s[{{\"w{id}\":{{\"n{sent}\":{{\"v\":{sent}}}}}}},{{}},1]");
        if sink.send(Message::Text(change.into())).await.is_err() {
            break;
        }
        sent += 1;
    }
    // A close the server sent after the last change still reaches the reader.
    tokio::time::sleep(Duration::from_millis(200)).await;
    reading.abort();
    (sent, reading.await.unwrap_or_default())
}

#[actix_web::test]
async fn clients_within_their_rate_stay_open_through_a_stopped_server() {
    let dir = data_dir();
    let partyd = Partyd::spawn_with(dir.path(), PARTY_TOML, &[("RUST_LOG", "info")]);
    let addr = partyd.addr;
    assert_eq!(put(addr, "/parties/main/stall/store", "[{},{}]").await, StatusCode::CREATED);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..WRITERS).map(|id| actix_web::rt::spawn(writer(addr, id, stop.clone()))).collect();
    let mut flood = connect(addr, "main", "stall", "flood").await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&partyd, "-STOP");
    tokio::time::sleep(STOPPED).await;
    signal(&partyd, "-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);

    let mut sent = Vec::new();
    let mut closed = Vec::new();
    for (id, writer) in writers.into_iter().enumerate() {
        let (count, close) = writer.await.expect("writer");
        if let Some(code) = close {
            closed.push(format!("writer {id} closed with {code:?} after {count} changes"));
        }
        sent.push(count);
    }
    let closes = || {
        let log = partyd.log.lock().unwrap();
        log.iter().filter(|line| line.contains("closing")).cloned().collect::<Vec<_>>()
    };
    assert!(closed.is_empty(), "{} of {WRITERS} closed: {closed:?}; partyd: {:?}", closed.len(), closes());
    assert!(sent.iter().all(|&count| count > 800), "changes sent: {sent:?}");
    until_some("every change is stored", || async {
        let store: serde_json::Value =
            serde_json::from_str(&get_body(addr, "/parties/main/stall/store").await).unwrap();
        let complete = sent.iter().enumerate().all(|(id, &count)| {
            store[0][format!("w{id}")].as_object().is_some_and(|rows| rows.len() as u64 == count)
        });
        complete.then_some(())
    })
    .await;

    // A client that really sends over its rate is still closed, stall or not: within a minute
    // of the stall it gains at most the stall's worth of messages (900 here) over its burst.
    for n in 0..3000 {
        flood.send(&format!("s[{{}},{{\"flood\":{n}}},1]")).await;
    }
    assert_eq!(flood.closed().await, Ended::Closed(Some(1008)));
}

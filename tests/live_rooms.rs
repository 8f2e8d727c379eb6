//! The live-room limit against one busy client, on the real binary: reads of rooms that do not
//! exist make no room live, so a flood of them leaves the limit to everyone else; refusals that
//! do happen are logged a bounded number of times, however many there are.

mod common;

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use common::process::Partyd;
use common::*;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// A small limit, so that today's one-room-per-read would fill it within the first few reads.
const PARTY_TOML: &str = "[server]\nmax_live_rooms = 16\n\n[parties.main]\nkind = \"tinybase-persister\"\n";

/// Requests a pipelined connection writes before it reads their answers.
const PIPELINE: usize = 100;

/// One request of a pipelined batch.
struct Request {
    method: &'static str,
    path: String,
    body: &'static str,
}

/// Sends `requests` over one keep-alive connection, [`PIPELINE`] at a time, and returns the
/// status and body of every answer, in order.
async fn pipelined(addr: SocketAddr, requests: Vec<Request>) -> Vec<(u16, String)> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut answers = Vec::with_capacity(requests.len());
    for batch in requests.chunks(PIPELINE) {
        let mut out = String::new();
        for Request { method, path, body } in batch {
            out.push_str(&format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        writer.write_all(out.as_bytes()).await.expect("write requests");
        for _ in batch {
            answers.push(read_answer(&mut reader).await);
        }
    }
    answers
}

/// Reads one HTTP/1.1 answer: its status and body (partyd always sends a Content-Length).
async fn read_answer(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> (u16, String) {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("status line");
    let status: u16 = line.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status code");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The lines partyd logged after the first `from`, once its log has caught up with what it
/// answered (each line is written before the answer it belongs to, and read by another thread).
async fn lines_since(partyd: &Partyd, from: usize) -> Vec<String> {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    partyd.log.lock().unwrap()[from..].to_vec()
}

#[actix_web::test]
async fn a_flood_of_reads_of_absent_rooms_leaves_new_rooms_to_everyone() {
    let dir = data_dir();
    let partyd = Partyd::spawn_with(dir.path(), PARTY_TOML, &[("RUST_LOG", "info")]);
    let addr = partyd.addr;
    assert_eq!(put(addr, "/parties/main/stored/store", "[{},{\"kept\":1}]").await, StatusCode::CREATED);
    let logged_before = partyd.log.lock().unwrap().len();

    const CONNECTIONS: usize = 4;
    const READS: usize = 100_000;
    let floods = (0..CONNECTIONS).map(|connection| {
        let requests = (0..READS / CONNECTIONS)
            .map(|i| Request {
                method: "GET",
                path: format!("/parties/main/absent-{connection}-{i}/store"),
                body: "",
            })
            .collect();
        pipelined(addr, requests)
    });
    let answers: Vec<(u16, String)> =
        futures_util::future::join_all(floods).await.into_iter().flatten().collect();

    assert_eq!(
        put(addr, "/parties/main/new-room/store", "[{},{\"new\":1}]").await,
        StatusCode::CREATED,
        "a new room after the flood"
    );
    assert_eq!(get_body(addr, "/parties/main/stored/store").await, "[{},{\"kept\":1}]");
    assert_eq!(get_body(addr, "/parties/main/new-room/store").await, "[{},{\"new\":1}]");
    assert_eq!(answers.len(), READS);
    let empty = answers.iter().filter(|(status, body)| *status == 200 && body.is_empty()).count();
    assert_eq!(empty, READS, "every read of an absent room answers 200 with no store");
    let logged = lines_since(&partyd, logged_before).await;
    assert!(
        logged.len() < 100,
        "{} lines logged during the flood, the first: {:?}",
        logged.len(),
        logged.first()
    );
}

#[actix_web::test]
async fn refusals_over_the_live_room_limit_are_logged_a_bounded_number_of_times() {
    let dir = data_dir();
    let toml = "[server]\nmax_live_rooms = 2\n\n[parties.main]\nkind = \"tinybase-persister\"\n";
    let partyd = Partyd::spawn_with(dir.path(), toml, &[("RUST_LOG", "info")]);
    let addr = partyd.addr;
    // Rooms with a socket are never made to leave: these two hold the limit.
    let _a = connect(addr, "main", "held-a", "a").await;
    let _b = connect(addr, "main", "held-b", "b").await;
    let logged_before = partyd.log.lock().unwrap().len();

    const REFUSED: usize = 10_000;
    let floods = (0..2).map(|connection| {
        let requests = (0..REFUSED / 2)
            .map(|i| Request {
                method: "PUT",
                path: format!("/parties/main/new-{connection}-{i}/store"),
                body: "[{},{}]",
            })
            .collect();
        pipelined(addr, requests)
    });
    let answers: Vec<(u16, String)> =
        futures_util::future::join_all(floods).await.into_iter().flatten().collect();

    assert!(
        answers.iter().all(|(status, _)| *status == 503),
        "every new room is refused while both are held"
    );
    let logged = lines_since(&partyd, logged_before).await;
    let warnings = logged.iter().filter(|line| line.contains("too many live rooms")).count();
    assert!(
        logged.len() < 100 && (1..=20).contains(&warnings),
        "{} lines logged for {REFUSED} refusals ({warnings} of them the refusal's warning)",
        logged.len()
    );
}

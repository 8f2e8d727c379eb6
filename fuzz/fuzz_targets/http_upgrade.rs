//! The HTTP side up to the websocket upgrade, on the real server: arbitrary bytes are sent as
//! a request (head, headers, maybe a body and frames) to a partyd running in this process, and
//! its answer is read until it closes the connection.
//!
//! The server has four parties: `main` (persister, every default), `custom` (persister, its own
//! store path and prefix, one allowed origin), `sync` (synchronizer, also multiplexed) and
//! `locked` (persister behind a JWT). Checked:
//! - it never panics, and answers or closes within 5 s of the client's end of the request;
//! - an answer is an HTTP/1.x status line, never a 5xx (the limits are set so that no room is
//!   full and no address over its share);
//! - a 101 only answers a well-formed HTTP/1.1 GET asking for websocket version 13 with a key
//!   of 16 bytes in base64, carries the `Sec-WebSocket-Accept` of that key, and names no
//!   subprotocol the client did not offer (RFC 6455 §4.2).
#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use partyd::config::Config;
use partyd::storage::SledStorage;
use sha1::Digest as _;

/// How long the server has to answer, or close, once the client has sent everything.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// An answer is read up to this size (a store holds little here).
const MAX_ANSWER: usize = 1 << 20;

const CONFIG: &str = r#"
[server]
workers = 1
idle_unload_seconds = 1
close_grace_seconds = 1
request_head_timeout_seconds = 2
request_body_timeout_seconds = 2
max_message_bytes = 65536
max_connections_per_ip = 1000000
max_http_connections_per_ip = 1000000
max_connections_per_room = 1000000
max_live_rooms = 1000000

[parties.main]
kind = "tinybase-persister"

[parties.custom]
kind = "tinybase-persister"
store_path = "/my_tinybase"
message_prefix = "tb:"
allowed_origins = ["https://app.example"]

[parties.sync]
kind = "tinybase-sync"

[parties.locked]
kind = "tinybase-persister"
[parties.locked.auth]
mode = "jwt"
secret_env = "PARTYD_FUZZ_JWT_SECRET"
"#;

/// The server, started on first use in a thread of its own (an actix System), with its data
/// in `$PARTYD_FUZZ_DATA/<pid>` (scripts/fuzz removes it) or the temporary directory.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        std::env::set_var("PARTYD_FUZZ_JWT_SECRET", "fuzz-secret-0123456789abcdef0123456789abcdef");
        let base = std::env::var_os("PARTYD_FUZZ_DATA").map_or_else(std::env::temp_dir, Into::into);
        let dir = base.join(format!("partyd-http-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config::from_toml_str(CONFIG, std::path::Path::new("fuzz.toml"))
            .expect("the fuzz config is valid");
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = dir;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let storage =
                    SledStorage::open_with_pacing(&config.data_dir, config.group_commit).expect("storage");
                let server = partyd::start(config, storage).expect("partyd starts");
                sender.send(server.addr()).expect("the fuzz target waits");
                std::future::pending::<()>().await;
            })
        });
        receiver.recv().expect("the server thread reports its address")
    })
}

/// What a request head says that decides whether it may be upgraded.
struct Asked {
    get_http11: bool,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    version_13: bool,
    key: Option<Vec<u8>>,
    subprotocols: Vec<String>,
}

fn asked(request: &[u8]) -> Option<Asked> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Request::new(&mut headers);
    if !matches!(head.parse(request), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let value = |name: &str| head.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let tokens = |name: &str| {
        head.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| h.value.split(|b| *b == b','))
            .map(|token| String::from_utf8_lossy(token.trim_ascii()).to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    Some(Asked {
        get_http11: head.method == Some("GET") && head.version == Some(1),
        upgrade_websocket: tokens("upgrade").iter().any(|token| token == "websocket"),
        connection_upgrade: tokens("connection").iter().any(|token| token == "upgrade"),
        version_13: value("sec-websocket-version").is_some_and(|v| v.trim_ascii() == b"13"),
        key: value("sec-websocket-key").map(<[u8]>::to_vec),
        subprotocols: tokens("sec-websocket-protocol"),
    })
}

fn check(request: &[u8], answer: &[u8]) {
    if answer.is_empty() {
        // Closed without a word: what a server does with a head it cannot read to the end.
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(answer);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(_))),
        "not an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    let status = response.code.expect("a status");
    // HTTP/1.0 is answered in HTTP/1.0.
    assert!(matches!(response.version, Some(0 | 1)), "an HTTP/1.x answer");
    assert!(status < 500, "answered {status}: {:?}", String::from_utf8_lossy(answer));
    if status != 101 {
        return;
    }
    let asked = asked(request).expect("a 101 answers a complete request head");
    assert!(asked.get_http11, "a 101 answers a GET over HTTP/1.1");
    assert!(asked.upgrade_websocket && asked.connection_upgrade, "a 101 answers an upgrade request");
    assert!(asked.version_13, "a 101 answers websocket version 13");
    let key = asked.key.expect("a 101 answers a request with a key");
    let nonce = base64::engine::general_purpose::STANDARD.decode(key.trim_ascii());
    assert!(nonce.is_ok_and(|nonce| nonce.len() == 16), "a 101 answers a key of 16 bytes in base64");
    let header =
        |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let mut hasher = sha1::Sha1::new();
    hasher.update(key.trim_ascii());
    hasher.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
    assert_eq!(header("sec-websocket-accept"), Some(accept.as_bytes()), "the accept of the key");
    assert!(header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")));
    if let Some(chosen) = header("sec-websocket-protocol") {
        let chosen = String::from_utf8_lossy(chosen).to_ascii_lowercase();
        assert!(asked.subprotocols.contains(&chosen), "a 101 names only a subprotocol the client offered");
    }
}

fuzz_target!(|input: &[u8]| {
    let mut stream = TcpStream::connect(server()).expect("the server accepts");
    // The server may answer and close before it has read everything (a refused upgrade): a
    // write error then is the server's right.
    let _ = stream.write_all(input);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut answer = Vec::new();
    let mut buffer = [0; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no answer and no close within {ANSWER_WITHIN:?}: {answer:?}");
        stream.set_read_timeout(Some(left)).expect("a read timeout");
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                answer.extend_from_slice(&buffer[..read]);
                if answer.len() > MAX_ANSWER {
                    break;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error)
                if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            // A reset after the answer (or instead of one) ends it.
            Err(_) => break,
        }
    }
    if std::env::var_os("PARTYD_FUZZ_SHOW").is_some() {
        // For reading a reproduced input's exchange.
        eprintln!("> {}\n< {}", String::from_utf8_lossy(input), String::from_utf8_lossy(&answer));
    }
    check(input, &answer);
});

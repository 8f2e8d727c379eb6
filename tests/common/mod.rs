//! Shared by the integration tests: a partyd serving the conformance parties on 127.0.0.1:0
//! with a temporary data dir, small HTTP and websocket clients, and polling with a deadline.
#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use awc::ws::{Codec, Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use partyd::config::Config;
use partyd::storage::SledStorage;
use partyd::RunningServer;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running in-process server and the directory holding its data.
pub struct TestServer {
    pub server: RunningServer,
    pub addr: SocketAddr,
}

/// A fresh temporary data dir.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Starts partyd with the conformance parties (`main`, and `custom` with `/my_tinybase`, `tb:`).
pub fn start(dir: &Path) -> TestServer {
    start_with(Config::conformance(dir.to_path_buf()))
}

/// Starts partyd with `config` (its data dir must exist or be creatable).
pub fn start_with(config: Config) -> TestServer {
    let storage = SledStorage::open_with_pacing(&config.data_dir, config.group_commit).expect("open storage");
    let server = partyd::start(config, storage).expect("start partyd");
    let addr = server.addr();
    TestServer { server, addr }
}

/// An HTTP answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// One HTTP request to the server.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: impl Into<Bytes>) -> Answer {
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut response =
        client.request(method, format!("http://{addr}{path}")).send_body(body.into()).await.expect("request");
    let body = response.body().limit(64 * 1024 * 1024).await.expect("body");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn put(addr: SocketAddr, path: &str, body: &str) -> StatusCode {
    request(addr, "PUT", path, body.to_owned()).await.status
}

pub async fn get_body(addr: SocketAddr, path: &str) -> String {
    let answer = request(addr, "GET", path, Bytes::new()).await;
    assert_eq!(answer.status, StatusCode::OK, "GET {path}");
    answer.body
}

/// A raw websocket to a room with an inbox of received text frames.
pub struct Socket {
    framed: actix_codec::Framed<awc::BoxedSocket, Codec>,
    pub inbox: Vec<String>,
}

/// What ended a socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

pub async fn connect(addr: SocketAddr, party: &str, room: &str, id: &str) -> Socket {
    connect_url(&format!("ws://{addr}/parties/{party}/{room}?_pk={id}")).await
}

pub async fn connect_url(url: &str) -> Socket {
    try_connect_url(url).await.unwrap_or_else(|error| panic!("connect {url}: {error}"))
}

/// A multiplexed synchronizer socket (the `tinybase` subprotocol) on `/parties/<party>`.
pub async fn connect_multiplexed(addr: SocketAddr, party: &str) -> Socket {
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let url = format!("ws://{addr}/parties/{party}");
    let (_, framed) = client.ws(url).protocols(["tinybase"]).connect().await.expect("connect multiplexed");
    Socket { framed, inbox: Vec::new() }
}

/// A socket, or why the upgrade failed.
pub async fn try_connect_url(url: &str) -> Result<Socket, awc::error::WsClientError> {
    let client = awc::Client::builder().timeout(DEADLINE).finish();
    let (_, framed) = client.ws(url).max_frame_size(64 * 1024 * 1024).connect().await?;
    Ok(Socket { framed, inbox: Vec::new() })
}

impl Socket {
    pub async fn send(&mut self, text: &str) {
        self.framed.send(Message::Text(text.to_owned().into())).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.framed.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.expect("send");
    }

    /// Waits for the next text frame (answering pings); panics after [`DEADLINE`].
    pub async fn next_text(&mut self) -> String {
        match self.next_event().await {
            Ok(text) => text,
            Err(ended) => panic!("socket ended ({ended:?}) while a frame was expected"),
        }
    }

    /// The next text frame, or how the socket ended.
    pub async fn next_event(&mut self) -> Result<String, Ended> {
        self.next_event_within(DEADLINE).await
    }

    /// The next text frame, or how the socket ended; panics after `wait`.
    pub async fn next_event_within(&mut self, wait: Duration) -> Result<String, Ended> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame =
                tokio::time::timeout(left, self.framed.next()).await.expect("timed out waiting for a frame");
            match frame {
                Some(Ok(Frame::Text(bytes))) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
                    self.inbox.push(text.clone());
                    return Ok(text);
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    let _ = self.framed.send(Message::Pong(bytes)).await;
                }
                Some(Ok(Frame::Close(reason))) => return Err(Ended::Closed(reason.map(|r| r.code.into()))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// Waits until the server closes the socket, skipping frames; returns the close code.
    pub async fn closed(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.next_event().await {
                return ended;
            }
        }
    }

    /// Sends a barrier (a deletion of a value nobody sets) and waits until `watcher` sees it:
    /// everything this socket sent before has then been handled by the room.
    pub async fn barrier(&mut self, watcher: &mut Socket) {
        let frame = format!(
            "s[{{}},{{\"zz-barrier-{}\":\"\u{FFFC}\"}},1]",
            BARRIERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.send(&frame).await;
        loop {
            if watcher.next_text().await == frame {
                return;
            }
        }
    }
}

static BARRIERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Polls `probe` until it is true; panics with `what` after [`DEADLINE`].
pub async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until_some(what, || {
        let done = probe();
        async move { done.await.then_some(()) }
    })
    .await
}

/// What `probe` first gives, probing every 10 ms until the deadline.
pub async fn until_some<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

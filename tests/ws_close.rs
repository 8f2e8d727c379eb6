//! The closing handshake seen by a raw TCP client: every close frame the client sends, valid or
//! not, is answered and the connection ends at once; a client refused while it is still sending
//! (an oversize message, broken framing, invalid UTF-8, its message rate) reads the close code
//! instead of meeting a reset.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use partyd::config::{Config, Limits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;
/// One more MiB than the default `max_message_bytes` (16 MiB).
const OVERSIZE: usize = 17 * MIB;

/// A websocket client written out byte by byte, so a test controls every frame it sends and
/// sees exactly what reaches the wire (or that a reset came instead).
struct RawClient {
    stream: TcpStream,
    /// Bytes read and not yet taken as (part of) the handshake answer or a frame.
    read: Vec<u8>,
}

impl RawClient {
    /// Opens a websocket to room `room` of the `main` party.
    async fn connect(addr: SocketAddr, room: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = Self { stream, read: Vec::new() };
        let request = format!(
            "GET /parties/main/{room}?_pk=raw HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        client.stream.write_all(request.as_bytes()).await.expect("send the handshake");
        let end = loop {
            if let Some(at) = client.read.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(client.fill().await.expect("read the handshake answer") > 0, "no handshake answer");
        };
        let head: Vec<u8> = client.read.drain(..end).collect();
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        client
    }

    /// Reads what the kernel has (waiting up to [`DEADLINE`]): how many bytes, 0 at the end of
    /// the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk)).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "nothing read before the deadline")
        })??;
        self.read.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    /// The code of the server's close frame (`None` for an empty one), skipping any frame
    /// before it; `Err` says what came instead (the end of the stream or a reset: what a
    /// websocket client reports as 1006).
    async fn close_code(&mut self) -> Result<Option<u16>, String> {
        loop {
            if let Some((opcode, payload)) = self.take_frame() {
                if opcode == 0x8 {
                    return Ok(payload.get(..2).map(|code| u16::from_be_bytes([code[0], code[1]])));
                }
                continue;
            }
            match self.fill().await {
                Ok(0) => return Err("the stream ended before a close frame".into()),
                Ok(_) => {}
                Err(error) => return Err(format!("no close frame: {error}")),
            }
        }
    }

    /// A whole (unmasked) server frame off the front of `read`: its opcode and payload.
    fn take_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let [first, second] = *self.read.get(..2)? else { return None };
        let (length, header) = match second & 0x7F {
            126 => (usize::from(u16::from_be_bytes(self.read.get(2..4)?.try_into().ok()?)), 4),
            127 => (u64::from_be_bytes(self.read.get(2..10)?.try_into().ok()?) as usize, 10),
            short => (usize::from(short), 2),
        };
        let frame = self.read.get(header..header + length)?.to_vec();
        self.read.drain(..header + length);
        Some((first & 0x0F, frame))
    }

    /// How long until the server ends the stream; panics if it keeps it open past [`DEADLINE`]
    /// or sends anything more.
    async fn ended_after(&mut self) -> Duration {
        let start = Instant::now();
        match self.fill().await {
            Ok(0) => start.elapsed(),
            // A reset ends it too: this side has unread bytes of nobody's.
            Err(error) if error.kind() != std::io::ErrorKind::TimedOut => start.elapsed(),
            other => panic!("the server kept the connection open: {other:?}"),
        }
    }
}

/// A client frame with a zero masking key (so the payload goes as is): `first` is FIN and the
/// opcode; `masked: false` breaks the protocol.
fn frame_header(first: u8, length: usize, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut header = vec![first];
    match length {
        0..=125 => header.push(mask_bit | length as u8),
        126..=0xFFFF => {
            header.push(mask_bit | 126);
            header.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            header.push(mask_bit | 127);
            header.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    if masked {
        header.extend_from_slice(&[0; 4]);
    }
    header
}

fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame_header(first, payload.len(), true);
    frame.extend_from_slice(payload);
    frame
}

fn close_frame(payload: &[u8]) -> Vec<u8> {
    frame(0x88, payload)
}

/// A server whose closing handshakes may last far longer than a test waits: one that keeps a
/// connection open waiting for a close frame that never comes shows as a timeout.
fn patient_server(dir: &std::path::Path, change: impl Fn(&mut Limits)) -> TestServer {
    start_with(Config::conformance(dir.to_path_buf()).with_limits(|limits| {
        limits.close_grace = Duration::from_secs(60);
        change(limits);
    }))
}

#[actix_web::test]
async fn every_close_frame_is_answered_and_the_connection_ends_at_once() {
    let dir = data_dir();
    let server = patient_server(dir.path(), |_| {});
    let code = |code: u16| code.to_be_bytes().to_vec();
    let mut cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        ("a one-byte payload", vec![0x03], Some(1002)),
        (
            "a reason that is not UTF-8",
            [&code(1000)[..], &[0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xF4, 0x90]].concat(),
            Some(1002),
        ),
        ("no payload", vec![], Some(1000)),
        ("a code and a reason", [&code(1000)[..], b"bye"].concat(), Some(1000)),
    ];
    for refused in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        cases.push(("a code no endpoint may send", code(refused), Some(1002)));
    }
    for valid in
        [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
    {
        cases.push(("a registered or private code", code(valid), Some(valid)));
    }
    for (what, payload, answer) in cases {
        let mut client = RawClient::connect(server.addr, "close").await;
        client.stream.write_all(&close_frame(&payload)).await.unwrap();
        assert_eq!(client.close_code().await, Ok(answer), "{what}: {payload:?}");
        let ended = client.ended_after().await;
        assert!(ended < Duration::from_secs(1), "{what}: {payload:?}: the connection lasted {ended:?}");
    }
    server.server.shutdown().await.unwrap();
}

/// Connects, sends `wire` as fast as the server takes it, and only then reads, as a client
/// that writes a whole message before it looks at the socket: the close code it reads, or what
/// went wrong. A write or a read cut short by a reset is what a client reports as 1006; a reset
/// after the close frame is one that came late enough this time (this kernel keeps what it
/// received before a reset readable; others discard it). The client never answers the close
/// frame: a refusal does not wait for one, the server's end of the stream follows at once.
async fn send_then_read_close(addr: SocketAddr, wire: &[u8]) -> Result<Option<u16>, String> {
    let mut client = RawClient::connect(addr, "flood").await;
    let written = tokio::time::timeout(DEADLINE, client.stream.write_all(wire))
        .await
        .map_err(|_| "the server neither read nor closed".to_owned())?;
    let code = client.close_code().await;
    let after = client.fill().await;
    match (written, code, after) {
        (Ok(()), Ok(code), Ok(0)) => Ok(code),
        (written, code, after) => Err(format!("write: {written:?}, read: {code:?}, then: {after:?}")),
    }
}

/// Runs `attempts` floods of `wire` and asserts that each read `expected`. Where a reset lands
/// (in the client's write, before or after its read of the close frame) changes from one
/// attempt to the next, so one attempt proves little.
async fn every_flood_reads(addr: SocketAddr, what: &str, wire: &[u8], expected: u16, attempts: usize) {
    let mut failures = Vec::new();
    for _ in 0..attempts {
        match send_then_read_close(addr, wire).await {
            Ok(Some(code)) if code == expected => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {attempts} attempts did not read {expected}: {failures:?}",
        failures.len()
    );
}

/// One frame of `length` zero bytes, its header claiming all of it.
fn one_frame(first: u8, length: usize, masked: bool) -> Vec<u8> {
    let mut wire = frame_header(first, length, masked);
    wire.resize(wire.len() + length, 0);
    wire
}

/// A binary message of `total` zero bytes in fragments of `each`.
fn fragments(total: usize, each: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(total + total / each * 14);
    for start in (0..total).step_by(each) {
        let opcode = if start == 0 { 0x2 } else { 0x0 };
        let fin = if start + each >= total { 0x80 } else { 0 };
        wire.extend(one_frame(fin | opcode, each.min(total - start), true));
    }
    wire
}

const ATTEMPTS: usize = 20;

#[actix_web::test]
async fn an_oversize_frame_is_answered_1009_while_the_client_is_still_sending_it() {
    let dir = data_dir();
    let server = patient_server(dir.path(), |_| {});
    // Refused from the frame's header, with all 17 MiB still to come.
    every_flood_reads(server.addr, "one frame", &one_frame(0x82, OVERSIZE, true), 1009, ATTEMPTS).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn an_oversize_fragmented_message_is_answered_1009_while_the_client_is_still_sending_it() {
    let dir = data_dir();
    let server = patient_server(dir.path(), |_| {});
    // Refused at the fragment that crosses 16 MiB (each is read whole first), with 15 fragments
    // still to come.
    every_flood_reads(server.addr, "fragments", &fragments(OVERSIZE, 64 * 1024), 1009, ATTEMPTS).await;
    server.server.shutdown().await.unwrap();
}

/// 17 messages of 1 MiB, within the message limit.
fn megabytes() -> Vec<u8> {
    fragments(MIB, MIB).repeat(17)
}

#[actix_web::test]
async fn broken_framing_is_answered_1002_while_the_client_is_still_sending() {
    let dir = data_dir();
    let server = patient_server(dir.path(), |_| {});
    // An unmasked frame: the framing is broken from its first bytes on.
    every_flood_reads(server.addr, "unmasked", &one_frame(0x82, OVERSIZE, false), 1002, ATTEMPTS / 4).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn invalid_utf8_is_answered_1007_while_the_client_is_still_sending() {
    let dir = data_dir();
    let server = patient_server(dir.path(), |_| {});
    let wire = [frame(0x81, &[0xFF]), megabytes()].concat();
    every_flood_reads(server.addr, "not UTF-8", &wire, 1007, ATTEMPTS / 4).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_flood_is_answered_1008_while_the_client_is_still_sending() {
    let dir = data_dir();
    // One message a second, bursts of two: the third of 17 is over the rate.
    let server = patient_server(dir.path(), |limits| limits.messages_per_second = 1);
    every_flood_reads(server.addr, "rate", &megabytes(), 1008, ATTEMPTS / 4).await;
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_client_that_sends_an_oversize_message_after_the_server_closed_reads_the_close_code() {
    let dir = data_dir();
    let server = start(dir.path());
    let mut client = RawClient::connect(server.addr, "leaving").await;
    let shutdown = actix_web::rt::spawn(server.server.shutdown());
    // The server's 1001 has arrived (unread): it now waits for the client's close frame, and
    // meets a message it refuses instead.
    tokio::time::timeout(DEADLINE, client.stream.readable()).await.unwrap().unwrap();
    let written = client.stream.write_all(&one_frame(0x82, OVERSIZE, true)).await;
    assert_eq!((written.map_err(|error| error.kind()), client.close_code().await), (Ok(()), Ok(Some(1001))));
    drop(client);
    shutdown.await.unwrap().unwrap();
}

//! The generator's clients (loopback only): a minimal HTTP/1.1 client over one TCP connection
//! per request, enough for PUT and GET of a room's store without pulling an HTTP client crate
//! into the generator, and the websocket connect every scenario uses.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request and returns (status, body). Errors are strings for the report. The answer
/// is read by its Content-Length or chunks, not to the end of the stream (some servers keep the
/// connection open despite `Connection: close`).
pub async fn request(host: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(host).await.map_err(|e| format!("connect {host}: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    stream.write_all(body.as_bytes()).await.map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(60), read_answer(&mut stream))
        .await
        .map_err(|_| format!("{method} {path}: timed out"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// Reads one whole answer: the head, then Content-Length bytes, the chunks up to the last one,
/// or (with neither) everything until the server closes.
async fn read_answer(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(answer);
        }
        answer.extend_from_slice(&chunk[..n]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let body = &answer[end + 4..];
        if let Some(length) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if body.len() >= length {
                return Ok(answer);
            }
        } else if head.contains("transfer-encoding: chunked") {
            if body.ends_with(b"0\r\n\r\n") {
                return Ok(answer);
            }
        } else if head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304") {
            return Ok(answer);
        }
    }
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// One persistent connection for many GETs (keep-alive), for the GET throughput mode.
pub struct KeepAlive {
    stream: TcpStream,
    host: String,
    buffer: Vec<u8>,
}

impl KeepAlive {
    pub async fn connect(host: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self { stream, host: host.to_owned(), buffer: Vec::with_capacity(4096) })
    }

    /// GETs `path` and returns the status; the body is read by its Content-Length.
    pub async fn get(&mut self, path: &str) -> Result<u16, String> {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        self.buffer.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if self.buffer.len() >= end + 4 + length {
                return head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| "no status".into());
            }
        }
    }
}

/// A websocket as the generator uses it.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a websocket with Nagle's algorithm off, as the real clients have it (browsers, and
/// Node's `ws`, which partysocket uses there). `connect_async` leaves it on: then a sender's
/// change waits in its kernel until the server's side acknowledges the one before, which a
/// server that answers in rounds does only with its next round, and the latency measured the
/// generator's TCP stack (p50 7.8 ms instead of 3.9 ms for partyd at ~72,000 deliveries/s).
pub async fn connect_websocket(url: &str) -> Result<Socket, String> {
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(socket)
}

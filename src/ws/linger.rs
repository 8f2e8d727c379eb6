//! Lingering close, as nginx does it: once its close frame is sent to a client that may still
//! be sending, the server stops writing (a FIN follows the close frame) and reads and drops
//! whatever the client still sends until it closes its end, then closes the connection.
//!
//! Why: a socket closed with unread bytes, or one that receives bytes after it closed, answers
//! with a reset. The reset fails the client's write in progress (most clients then report 1006)
//! and can make the close frame itself disappear before the client reads it (a segment still to
//! be resent, a client whose receive window was full, a kernel that drops received data on a
//! reset): the client never learns why it was closed. Draining lets it finish writing, read the
//! close frame and close.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The most bytes a lingering close reads and drops. A client refused mid-message is usually
/// sending the rest of that message, and an oversize message from an honest client is seldom
/// far over the limit: 64 MiB is four times the default 16 MiB limit, so the rest of a message
/// several times too big still drains. Dropping bytes costs a copy into one reused buffer, never
/// memory; the time bound (the close grace) stops a slow or endless sender sooner. Past either
/// bound the connection is dropped with a reset.
pub const MAX_LINGER_BYTES: usize = 64 * 1024 * 1024;

/// The buffer the dropped bytes are read into.
const SINK_BYTES: usize = 64 * 1024;

/// Half-closes `stream` and reads and drops what arrives until the client's end of stream, an
/// error, or `max_bytes`; returns how many bytes were dropped. The caller bounds the time.
pub async fn linger(mut stream: TcpStream, max_bytes: usize) -> usize {
    if stream.shutdown().await.is_err() {
        return 0;
    }
    let mut sink = vec![0; SINK_BYTES.min(max_bytes)];
    let mut dropped = 0;
    while dropped < max_bytes {
        let room = sink.len().min(max_bytes - dropped);
        match stream.read(&mut sink[..room]).await {
            Ok(0) | Err(_) => break,
            Ok(read) => dropped += read,
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn the_client_sees_the_end_of_stream_and_everything_it_sends_is_drained() {
        let (server, mut client) = pair().await;
        let lingering = tokio::spawn(linger(server, MAX_LINGER_BYTES));
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert!(received.is_empty(), "the server wrote nothing more and half-closed");
        client.write_all(&vec![7; 3 * SINK_BYTES + 5]).await.unwrap();
        drop(client);
        assert_eq!(lingering.await.unwrap(), 3 * SINK_BYTES + 5);
    }

    #[tokio::test]
    async fn draining_stops_at_the_byte_bound() {
        let (server, mut client) = pair().await;
        client.write_all(&[1; 100]).await.unwrap();
        assert_eq!(linger(server, 60).await, 60);
    }
}

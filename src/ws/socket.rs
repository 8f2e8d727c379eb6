//! One websocket on its TCP stream, after the handshake: whole messages in (fragments joined,
//! limits and UTF-8 checked), frames out in batches (many frames, one `send`), and the closing
//! handshake.
//!
//! Memory is what an idle socket costs, so neither direction keeps a buffer while idle: bytes
//! are read into a buffer only when the kernel says some are there, and the buffer is let go
//! once it holds no partial frame; frames to send are gathered into one buffer, written, and it
//! is let go.
//!
//! A write that waits for the client is also where a slow consumer shows: a socket whose outbox
//! holds its rooms' writers back and whose client takes no byte for the slow-consumer timeout
//! fails with `TimedOut` (see `super::backpressure`).

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::close;
use super::frame::{self, FrameError, OpCode};
use super::linger::{linger, MAX_LINGER_BYTES};
use super::outbox::SharedStream;

/// The least room a read has. Most messages are a few hundred bytes; a bigger one grows the
/// buffer geometrically, so this sets what an ordinary message allocates, not a limit.
const READ_CHUNK: usize = 1024;
/// A socket stops gathering frames for one write at about this many bytes.
pub const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// The client's close frame: its code and reason, if it gave them.
    Close(Option<(u16, String)>),
}

/// Why the client's bytes were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Broken framing (1002).
    Protocol(&'static str),
    /// A close frame the RFC forbids (1002): the client has closed all the same.
    BadClose(&'static str),
    /// A message over the limit (1009).
    TooBig,
    /// A text message that is not UTF-8 (1007).
    NotUtf8,
}

impl ReadError {
    /// The close code that answers it: 1002, 1007 or 1009.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Protocol(_) | Self::BadClose(_) => close::PROTOCOL_ERROR,
            Self::TooBig => close::MESSAGE_TOO_BIG,
            Self::NotUtf8 => close::INVALID_PAYLOAD,
        }
    }
}

impl From<FrameError> for ReadError {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Protocol(reason) => Self::Protocol(reason),
            FrameError::TooBig => Self::TooBig,
        }
    }
}

/// Reads what the kernel holds for `io` into `buffer`. A read that leaves room in the buffer
/// took everything there was, so the stream's readiness is cleared then, as tokio's own
/// `AsyncRead` does: the next wait parks without first trying a read that would only say
/// `WouldBlock` (one `recvfrom` saved per message received). The read runs inside `try_io`,
/// which clears only the readiness seen before the read: data arriving after it is not lost.
fn read_available(io: &TcpStream, buffer: &mut BytesMut) -> io::Result<usize> {
    let room = buffer.capacity() - buffer.len();
    let mut read = 0;
    let drained = io.try_io(Interest::READABLE, || {
        read = io.try_read_buf(buffer)?;
        if read > 0 && read < room {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match drained {
        Err(error) if read == 0 || error.kind() != io::ErrorKind::WouldBlock => Err(error),
        _ => Ok(read),
    }
}

/// Why the server closes, which decides what it makes of the client's bytes after its close
/// frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The client's close frame came first (valid or not): the server answers it, and both
    /// close frames have passed.
    Reply,
    /// The server ends a connection in good standing (shutdown, idle, slow consumer): it reads
    /// the client's frames until the client's close frame.
    Orderly,
    /// The server refuses what the client sent (broken framing, an oversize message, invalid
    /// UTF-8, its message rate): the client may be in the middle of sending more, which is
    /// dropped unread (see `linger`).
    Refusal,
}

/// A websocket's stream and what it holds between reads and writes.
///
/// It waits with `poll_read_ready`/`poll_write_ready`, not `readable()`/`writable()`: the
/// stream's one reader and one writer waker slot still hold the HTTP dispatcher's waker from
/// before the handshake, and that waker keeps the dispatcher's finished task (about 4 KiB)
/// allocated until something replaces it. The first wait here does.
pub struct Socket {
    /// The stream, kept in the connection's outbox: the room writes to it while the
    /// connection waits with nothing to write (see `outbox`).
    io: SharedStream,
    /// What was read and is not yet a whole message.
    reader: Reader,
    /// Frames gathered and not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// How long (ms) the client may take no byte while the outbox holds writers back.
    stall_ms: u32,
}

/// The reading half of a socket without its stream: bytes in, whole messages out (fragments
/// joined, limits and UTF-8 checked). Apart from [`Socket`] so that it can be driven with bytes
/// alone (the fuzz targets in `fuzz/` do).
pub struct Reader {
    /// Bytes read and not yet a whole frame (empty, without capacity, when idle).
    read: BytesMut,
    /// A text or binary message whose later fragments are still to come.
    partial: Option<(OpCode, BytesMut)>,
    /// The largest message (a `u32`, which no sane limit exceeds, so that it and the socket's
    /// `stall_ms` take the 8 bytes a `usize` took of every idle socket).
    max_message: u32,
}

impl Socket {
    /// A socket over `io`, with bytes the HTTP parser read past the handshake (`early`); its
    /// writes fail with `TimedOut` when the client takes no byte for `stall` while the outbox
    /// holds writers back.
    pub fn new(io: SharedStream, early: BytesMut, max_message: usize, stall: Duration) -> Self {
        Self {
            io,
            reader: Reader::new(early, max_message),
            out: Vec::new(),
            written: 0,
            stall_ms: u32::try_from(stall.as_millis()).unwrap_or(u32::MAX),
        }
    }

    fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<io::Result<()>> {
        match self.io.with(|io| Ok(if write { io.poll_write_ready(cx) } else { io.poll_read_ready(cx) })) {
            Ok(ready) => ready,
            Err(closed) => Poll::Ready(Err(closed)),
        }
    }

    /// The next whole message; `None` once the client has closed the stream (or it broke).
    /// Cancel-safe: what was read stays buffered.
    pub async fn recv(&mut self) -> Option<Result<Message, ReadError>> {
        loop {
            match self.reader.take_message() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            }
            if std::future::poll_fn(|cx| self.poll_ready(cx, false)).await.is_err() {
                return None;
            }
            let read = &mut self.reader.read;
            if read.capacity() - read.len() < READ_CHUNK {
                read.reserve(READ_CHUNK);
            }
            match self.io.with(|io| read_available(io, read)) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return None,
            }
        }
    }

    /// Adds a frame to the next write.
    pub fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        frame::encode(&mut self.out, opcode, payload);
    }

    /// Adds bytes that are already frames (or the rest of one) to the next write.
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes gathered and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes everything gathered. Cancel-safe: what is unwritten stays for the next call.
    /// Fails with `TimedOut` when the client takes no byte for the slow-consumer timeout while
    /// the outbox holds writers back.
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.io.with(|io| io.try_write(&self.out[self.written..])) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => self.written += count,
                // Boxed: the timer would make every idle connection's task bigger.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Box::pin(self.writable()).await?,
                Err(error) => return Err(error),
            }
        }
        self.out = Vec::new();
        self.written = 0;
        Ok(())
    }

    /// Waits until the kernel takes bytes again. The timer runs only here, where the client
    /// is already behind: writes the kernel takes at once cost nothing more.
    async fn writable(&self) -> io::Result<()> {
        loop {
            let ready = std::future::poll_fn(|cx| self.poll_ready(cx, true));
            match tokio::time::timeout(Duration::from_millis(self.stall_ms.into()), ready).await {
                Ok(ready) => return ready,
                Err(_) if self.io.holds_writers() => return Err(io::ErrorKind::TimedOut.into()),
                // Behind, but holding nobody up: it may take its time.
                Err(_) => {}
            }
        }
    }

    /// The server's end of the closing handshake, all within `grace`, after which the TCP
    /// connection is dropped: sends the close frame after whatever is still unwritten, then
    /// - on a [`CloseKind::Reply`], closes at once (RFC 6455 §7.1.1: the server closes the TCP
    ///   connection as soon as it has sent and received a close frame);
    /// - on a [`CloseKind::Orderly`] close, reads the client's frames until its close frame or
    ///   the end of its stream, so that the close frame is read before the connection goes (a
    ///   reset could discard it);
    /// - on a [`CloseKind::Refusal`], or bytes the socket cannot read as frames, lingers: drops
    ///   what the client still sends until it closes (see `linger`).
    pub async fn close(self, (code, reason): (u16, &str), kind: CloseKind, grace: Duration) {
        let _ = tokio::time::timeout(grace, self.closing_handshake(code, reason, kind)).await;
    }

    async fn closing_handshake(mut self, code: u16, reason: &str, kind: CloseKind) {
        self.queue(OpCode::Close, &frame::close_payload(code, reason));
        if self.flush().await.is_err() || kind == CloseKind::Reply {
            return;
        }
        if kind == CloseKind::Orderly && self.until_close_frame().await {
            return;
        }
        if let Some(stream) = self.into_stream() {
            let dropped = linger(stream, MAX_LINGER_BYTES).await;
            tracing::debug!(dropped, "lingering close: the client's last bytes were dropped");
        }
    }

    /// Reads the client's frames until its close frame or the end of its stream (`true`);
    /// `false` when it sends bytes the socket refuses, after which nothing can be read as
    /// frames.
    async fn until_close_frame(&mut self) -> bool {
        loop {
            match self.recv().await {
                // A close frame the socket refuses still ends the handshake.
                Some(Ok(Message::Close(_)) | Err(ReadError::BadClose(_))) | None => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return false,
            }
        }
    }

    /// The stream, for a lingering close; whatever was read of a message is let go here, not
    /// kept while the client drains.
    fn into_stream(self) -> Option<TcpStream> {
        self.io.into_stream()
    }
}

impl Reader {
    /// A reader holding `early` (bytes already read), refusing messages over `max_message` bytes.
    pub fn new(early: BytesMut, max_message: usize) -> Self {
        Self { read: early, partial: None, max_message: u32::try_from(max_message).unwrap_or(u32::MAX) }
    }

    /// Adds bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.read.extend_from_slice(bytes);
    }

    /// The bytes the reader holds, buffered and of a partial message, as allocated.
    pub fn capacity(&self) -> usize {
        self.read.capacity() + self.partial.as_ref().map_or(0, |(_, joined)| joined.capacity())
    }

    /// Decodes buffered frames until one completes a message; `Ok(None)` while more bytes are
    /// needed.
    pub fn take_message(&mut self) -> Result<Option<Message>, ReadError> {
        loop {
            let Some(frame) = frame::decode(&mut self.read, self.max_message as usize)? else {
                if self.read.is_empty() {
                    self.read = BytesMut::new();
                }
                return Ok(None);
            };
            let payload = frame.payload;
            let data = match frame.opcode {
                OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(Message::Pong)),
                OpCode::Close => {
                    let close = frame::parse_close(&payload).map_err(ReadError::BadClose)?;
                    return Ok(Some(Message::Close(close)));
                }
                OpCode::Continuation => {
                    let Some((_, joined)) = self.partial.as_mut() else {
                        return Err(ReadError::Protocol(
                            "a continuation frame without a message to continue",
                        ));
                    };
                    if joined.len() + payload.len() > self.max_message as usize {
                        return Err(ReadError::TooBig);
                    }
                    joined.extend_from_slice(&payload);
                    if !frame.fin {
                        continue;
                    }
                    self.partial.take()
                }
                _ if self.partial.is_some() => {
                    return Err(ReadError::Protocol("a new message before the last one's final fragment"));
                }
                opcode if !frame.fin => {
                    self.partial = Some((opcode, payload));
                    continue;
                }
                opcode => Some((opcode, payload)),
            };
            if let Some((opcode, payload)) = data {
                return Ok(Some(whole_message(opcode, payload)?));
            }
        }
    }
}

/// A text message must be UTF-8 as a whole (a character may span fragments).
fn whole_message(opcode: OpCode, payload: BytesMut) -> Result<Message, ReadError> {
    match opcode {
        OpCode::Text => {
            String::from_utf8(payload.to_vec()).map(Message::Text).map_err(|_| ReadError::NotUtf8)
        }
        _ => Ok(Message::Binary(payload.freeze())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        frame::client_frame(first, payload, [0xA1, 0xB2, 0xC3, 0xD4])
    }

    /// A socket whose buffered bytes are `wire` (its stream is a loopback pair never read).
    async fn socket_holding(wire: &[u8], max_message: usize) -> (Socket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_outbox, mut receiver) = super::super::outbox::outbox(0);
        let stall = Duration::from_secs(10);
        (Socket::new(receiver.attach(server), BytesMut::from(wire), max_message, stall), client)
    }

    fn messages(socket: &mut Socket) -> Vec<Result<Message, ReadError>> {
        let mut out = Vec::new();
        loop {
            match socket.reader.take_message() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => return out,
                Err(error) => {
                    out.push(Err(error));
                    return out;
                }
            }
        }
    }

    #[actix_web::test]
    async fn fragments_join_around_control_frames() {
        let mut wire = masked(0x01, "hé".as_bytes());
        wire.extend(masked(0x89, b"p"));
        wire.extend(masked(0x00, b"l"));
        wire.extend(masked(0x80, b"lo"));
        wire.extend(masked(0x82, &[0xFF]));
        wire.extend(masked(0x88, &[0x03, 0xE8]));
        let (mut socket, _client) = socket_holding(&wire, 100).await;
        assert_eq!(
            messages(&mut socket),
            vec![
                Ok(Message::Ping(Bytes::from_static(b"p"))),
                Ok(Message::Text("héllo".to_owned())),
                Ok(Message::Binary(Bytes::from_static(&[0xFF]))),
                Ok(Message::Close(Some((1000, String::new())))),
            ]
        );
        assert_eq!(socket.reader.read.capacity(), 0, "an empty read buffer is let go");
    }

    #[actix_web::test]
    async fn a_character_split_across_fragments_is_utf8_but_broken_text_is_not() {
        let bytes = "é".as_bytes();
        let mut wire = masked(0x01, &bytes[..1]);
        wire.extend(masked(0x80, &bytes[1..]));
        wire.extend(masked(0x81, &bytes[..1]));
        let (mut socket, _client) = socket_holding(&wire, 100).await;
        assert_eq!(messages(&mut socket), vec![Ok(Message::Text("é".to_owned())), Err(ReadError::NotUtf8)]);
    }

    #[actix_web::test]
    async fn broken_sequences_of_fragments_are_refused() {
        let orphan = masked(0x80, b"x");
        let mut interleaved = masked(0x01, b"a");
        interleaved.extend(masked(0x81, b"b"));
        let mut over = masked(0x01, &[b'a'; 6]);
        over.extend(masked(0x80, &[b'b'; 6]));
        let cases = [
            (orphan, ReadError::Protocol("a continuation frame without a message to continue")),
            (interleaved, ReadError::Protocol("a new message before the last one's final fragment")),
            (over, ReadError::TooBig),
            (masked(0x88, &[0x03]), ReadError::BadClose("a close payload of one byte")),
        ];
        for (wire, expected) in cases {
            let (mut socket, _client) = socket_holding(&wire, 10).await;
            assert_eq!(messages(&mut socket).pop(), Some(Err(expected)));
        }
    }

    /// The socket's next message; a hang (a lost wake-up) fails after 10 s.
    async fn next_message(socket: &mut Socket) -> Message {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.recv()).await;
        next.expect("the message arrives").expect("the stream is open").expect("a valid message")
    }

    #[actix_web::test]
    async fn messages_arrive_whether_a_read_fills_the_buffer_or_drains_the_stream() {
        use tokio::io::AsyncWriteExt as _;
        let (mut socket, mut client) = socket_holding(&[], 100_000).await;
        // A short read drains the stream and clears its readiness; the next message still wakes
        // the socket. A read that fills the buffer leaves the stream ready: the rest of a message
        // several reads long comes without another wake-up from the kernel.
        let big = "x".repeat(5 * READ_CHUNK);
        for text in ["one", &big, "two"] {
            client.write_all(&masked(0x81, text.as_bytes())).await.unwrap();
            assert_eq!(next_message(&mut socket).await, Message::Text(text.to_owned()));
        }
    }

    #[actix_web::test]
    async fn queued_frames_leave_in_one_write_and_the_buffer_is_let_go() {
        use tokio::io::AsyncReadExt as _;
        let (mut socket, mut client) = socket_holding(&[], 100).await;
        socket.queue(OpCode::Text, b"one");
        socket.queue(OpCode::Text, b"two");
        assert_eq!(socket.queued_bytes(), 10);
        socket.flush().await.unwrap();
        assert_eq!((socket.queued_bytes(), socket.out.capacity()), (0, 0));
        let mut received = [0; 10];
        client.read_exact(&mut received).await.unwrap();
        assert_eq!(&received, b"\x81\x03one\x81\x03two");
    }
}

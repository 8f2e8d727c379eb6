//! The outbound queue of one websocket connection, bounded by pending bytes.
//!
//! The room task never awaits a socket: it pushes frames with [`Outbox::send`], which refuses
//! (instead of blocking or growing) once the connection has too many unsent bytes. The room then
//! cuts that connection off with [`Outbox::close`], which the connection task sees at once, ahead
//! of any frames still queued.
//!
//! The queue, its byte count, the close order and the connection's waker share one small
//! allocation (a mutex over a `VecDeque` that is empty until frames come): an idle connection
//! holds about a hundred bytes here, where a tokio mpsc channel plus a watch channel held two
//! KiB (the channel's first block of 32 slots and its cache-padded state). Only the room and the
//! connection task ever take the lock, each for a push or a pop.
//!
//! The connection's TCP stream lives here too, in the same allocation (a separate one cost
//! about 0.45 KiB per idle socket in fragmentation), reached by the socket through
//! [`SharedStream`]. A connection waiting with nothing of its own to write lends the room its
//! stream: then [`Outbox::send`] writes the frame itself, under the lock, and the connection
//! task is not woken at all (a wake-up, a poll of its loop and a second lock per delivery
//! saved). Bytes the kernel does not take go to the connection task, which writes them before
//! anything else.
//!
//! An outbox also tells the room's writers when to wait: over the pause mark it holds the
//! [`Pressure`] of the rooms that fill it, and lets go once its connection has written it down
//! (see [`super::backpressure`]). That costs a delivery one comparison while under the mark.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytestring::ByteString;
use tokio::net::TcpStream;

use super::backpressure::{pause_mark, resume_mark, Pressure};
use super::frame::{self, OpCode};

/// A drained queue keeps the capacity of at most this many frames: a burst does not leave an
/// idle connection holding the memory it needed (32 bytes a slot).
const RETAINED_FRAME_SLOTS: usize = 64;

/// Why and how a connection is being closed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseOrder {
    /// The websocket close code (1001, 1009, 1011, 1013, ...).
    pub code: u16,
    /// A short human-readable reason sent in the close frame.
    pub reason: &'static str,
}

/// The frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection already holds its limit of unsent bytes: a slow consumer.
    Full,
    /// The connection task has gone away.
    Gone,
}

/// What the room's ends and the connection's end share.
struct Shared {
    state: Mutex<State>,
    /// The most bytes queued and not yet sent.
    limit: usize,
}

struct State {
    frames: VecDeque<ByteString>,
    /// Bytes queued and not yet handed to the socket (including a frame being sent).
    pending: usize,
    close: Option<CloseOrder>,
    /// How many [`Outbox`]es are alive: none left and nothing queued means detached.
    senders: usize,
    receiver_alive: bool,
    /// The connection task waiting for a frame or a close order.
    waker: Option<Waker>,
    /// The connection's stream, from the upgrade until its socket is dropped; the room writes
    /// to it while `lent` (see the module doc).
    stream: Option<TcpStream>,
    /// The connection task is waiting with nothing of its own to write: the room may write.
    lent: bool,
    /// What the kernel did not take of a frame the room wrote, or frames the room holds back
    /// (see `held`): sent first by the connection.
    unwritten: Vec<u8>,
    /// While lent, `unwritten` holds frames the room is holding back, to write them in one go
    /// with [`Outbox::release_held`].
    held: bool,
    /// The rooms whose writers wait for this outbox: it is (or was, above the resume mark) over
    /// the pause mark. Boxed: a pointer keeps an idle connection's allocation in its size class.
    holding: Option<Box<HeldRooms>>,
}

/// The gates of the rooms an outbox over its pause mark holds (never empty).
struct HeldRooms(Vec<Arc<Pressure>>);

impl HeldRooms {
    /// Lets the rooms' writers go on (outside the outbox's lock).
    fn release(self) {
        self.0.iter().for_each(|room| room.release());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Takes the waiting task's waker, to wake it once the lock is released.
    fn take_waker(&mut self) -> Option<Waker> {
        self.waker.take()
    }

    fn register(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
    }

    /// Writes what the kernel takes of `bytes` to the lent stream: how many it took (none
    /// on an error, a full socket buffer or no stream).
    fn try_write(&self, bytes: &[u8]) -> usize {
        self.stream.as_ref().map_or(0, |stream| stream.try_write(bytes).unwrap_or(0))
    }

    /// Holds `room`'s writers back if the outbox is over the pause mark and does not already.
    fn hold_if_over(&mut self, limit: usize, room: Option<&Arc<Pressure>>) {
        let Some(room) = room else { return };
        if self.pending <= pause_mark(limit) {
            return;
        }
        let holding = &mut self.holding.get_or_insert_with(|| Box::new(HeldRooms(Vec::new()))).0;
        if !holding.iter().any(|held| Arc::ptr_eq(held, room)) {
            room.hold();
            holding.push(room.clone());
        }
    }

    /// The rooms to let go once the outbox is down to the resume mark (released by the caller,
    /// outside the lock).
    fn let_go_if_drained(&mut self, limit: usize) -> Option<Box<HeldRooms>> {
        if self.pending > resume_mark(limit) {
            return None;
        }
        self.holding.take()
    }

    fn pop_frame(&mut self) -> Option<ByteString> {
        let frame = self.frames.pop_front()?;
        if self.frames.is_empty() && self.frames.capacity() > RETAINED_FRAME_SLOTS {
            self.frames = VecDeque::new();
        }
        Some(frame)
    }
}

/// The room's end: cheap to clone, never blocks.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The connection's end.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// Creates a queue that refuses frames once `limit` bytes are queued but not yet sent.
pub fn outbox(limit: usize) -> (Outbox, OutboxReceiver) {
    let state = State {
        frames: VecDeque::new(),
        pending: 0,
        close: None,
        senders: 1,
        receiver_alive: true,
        waker: None,
        stream: None,
        lent: false,
        unwritten: Vec::new(),
        held: false,
        holding: None,
    };
    let shared = Arc::new(Shared { state: Mutex::new(state), limit });
    (Outbox { shared: shared.clone() }, OutboxReceiver { shared })
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Outbox { shared: self.shared.clone() }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.take_waker()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Lets go of the rooms an outbox held, if any.
fn release(rooms: Option<Box<HeldRooms>>) {
    if let Some(rooms) = rooms {
        rooms.release();
    }
}

impl Outbox {
    /// Queues a text frame unless that would put the connection over its byte limit (a frame
    /// of no room's: it holds no writers back).
    pub fn send(&self, frame: ByteString) -> Result<(), SendError> {
        self.push(frame, false, None)
    }

    /// Queues a frame from the room whose gate is `room`, which holds the room's writers back
    /// while the outbox is over its pause mark. With `hold`, a frame the room would write itself
    /// is held back, with any others held after it, until [`Self::release_held`]: a room sending
    /// several frames to a connection in one round writes them with one system call.
    pub fn deliver(&self, frame: ByteString, hold: bool, room: &Arc<Pressure>) -> Result<(), SendError> {
        self.push(frame, hold, Some(room))
    }

    /// Writes the frames held back by [`Self::deliver`]; what the kernel does not take goes
    /// to the connection task, as for any frame the room writes.
    pub fn release_held(&self) {
        let (waker, drained) = {
            let mut state = self.shared.lock();
            if !std::mem::take(&mut state.held) || !state.lent || state.unwritten.is_empty() {
                // Nothing held, or the connection has taken the held frames itself.
                return;
            }
            let mut held = std::mem::take(&mut state.unwritten);
            let written = state.try_write(&held);
            state.pending -= written;
            let drained = state.let_go_if_drained(self.shared.limit);
            if written == held.len() {
                held_buffers::give_back(held);
                (None, drained)
            } else {
                held.drain(..written);
                state.unwritten = held;
                state.lent = false;
                (state.take_waker(), drained)
            }
        };
        release(drained);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// [`Self::deliver`] with `hold`, from no room.
    #[cfg(test)]
    fn send_held(&self, frame: ByteString) -> Result<(), SendError> {
        self.push(frame, true, None)
    }

    fn push(&self, frame: ByteString, hold: bool, room: Option<&Arc<Pressure>>) -> Result<(), SendError> {
        let waker = {
            let mut state = self.shared.lock();
            if state.pending.saturating_add(frame.len()) > self.shared.limit {
                return Err(SendError::Full);
            }
            if !state.receiver_alive {
                return Err(SendError::Gone);
            }
            if state.lent && state.close.is_none() {
                if hold || state.held {
                    state.held = true;
                    if state.unwritten.capacity() == 0 {
                        state.unwritten = held_buffers::take();
                    }
                    let before = state.unwritten.len();
                    frame::encode(&mut state.unwritten, OpCode::Text, frame.as_bytes());
                    state.pending += state.unwritten.len() - before;
                    state.hold_if_over(self.shared.limit, room);
                    return Ok(());
                }
                if write_lent(&mut state, &frame) {
                    return Ok(());
                }
                // A partial write: the rest is the connection's to send, and it must be woken.
                state.lent = false;
                state.pending += state.unwritten.len();
            } else {
                state.pending += frame.len();
                state.frames.push_back(frame);
            }
            state.hold_if_over(self.shared.limit, room);
            state.take_waker()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Orders the connection closed with `code`/`reason`, ahead of any queued frames (which
    /// then hold no writers back). The first order wins; later ones are ignored.
    pub fn close(&self, code: u16, reason: &'static str) {
        let (waker, holding) = {
            let mut state = self.shared.lock();
            if state.close.is_some() {
                return;
            }
            state.close = Some(CloseOrder { code, reason });
            (state.take_waker(), state.holding.take())
        };
        release(holding);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn pending_bytes(&self) -> usize {
        self.shared.lock().pending
    }
}

thread_local! {
    /// The frame being written by a room: one buffer a thread, not one allocation a delivery.
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `frame` to the lent stream; `true` when the kernel took all of it. Otherwise what it
/// did not take (all of it, on an error, a full socket buffer or no stream) is left in `unwritten`.
fn write_lent(state: &mut State, frame: &ByteString) -> bool {
    ENCODED.with_borrow_mut(|encoded| {
        encoded.clear();
        frame::encode(encoded, OpCode::Text, frame.as_bytes());
        let written = state.try_write(encoded);
        if written < encoded.len() {
            state.unwritten.extend_from_slice(&encoded[written..]);
        }
        if encoded.capacity() > RETAINED_ENCODED_BYTES {
            *encoded = Vec::new();
        }
        written == encoded.len()
    })
}

/// The thread's buffer for frames written by rooms keeps at most this much between frames.
const RETAINED_ENCODED_BYTES: usize = 64 * 1024;

/// Buffers for held frames, reused from round to round by the rooms of a thread: a round that
/// holds frames for every socket of a room would otherwise allocate, grow and free one buffer a
/// socket (jemalloc's realloc was ~3 % of partyd's CPU at 72,000 deliveries/s). A socket keeps
/// no buffer between rounds, so idle connections cost nothing here.
mod held_buffers {
    use std::cell::RefCell;

    /// At most this many buffers are kept a thread, each of at most `RETAINED_BYTES`.
    pub(super) const RETAINED_BUFFERS: usize = 256;
    pub(super) const RETAINED_BYTES: usize = 16 * 1024;

    thread_local! {
        static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty buffer, with the capacity of an earlier round's if one is free.
    pub(super) fn take() -> Vec<u8> {
        FREE.with_borrow_mut(Vec::pop).unwrap_or_default()
    }

    /// Keeps `buffer`'s memory for a later round, unless enough are kept or it grew too big.
    pub(super) fn give_back(mut buffer: Vec<u8>) {
        if buffer.capacity() > RETAINED_BYTES {
            return;
        }
        buffer.clear();
        FREE.with_borrow_mut(|free| {
            if free.len() < RETAINED_BUFFERS {
                free.push(buffer);
            }
        });
    }
}

/// What the connection task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Bytes of a frame the room began to write: send them first, then call
    /// [`OutboxReceiver::sent`].
    Unwritten(Vec<u8>),
    /// Send this frame, then call [`OutboxReceiver::sent`].
    Frame(ByteString),
    /// Close the socket with this order.
    Close(CloseOrder),
    /// The room dropped every sender: the connection is no longer a member.
    Detached,
}

impl OutboxReceiver {
    /// Waits for the next thing to do; a close order always comes before queued frames.
    pub async fn next(&mut self) -> Next {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            state.lent = false;
            if !state.unwritten.is_empty() {
                return Poll::Ready(Next::Unwritten(std::mem::take(&mut state.unwritten)));
            }
            if let Some(order) = &state.close {
                return Poll::Ready(Next::Close(order.clone()));
            }
            if let Some(frame) = state.pop_frame() {
                return Poll::Ready(Next::Frame(frame));
            }
            if state.senders == 0 {
                return Poll::Ready(Next::Detached);
            }
            state.register(cx);
            state.lent = state.stream.is_some();
            Poll::Pending
        })
        .await
    }

    /// Keeps the connection's stream here, for its socket to use through the returned handle
    /// and for the room to write to whenever the connection waits in [`Self::next`] with
    /// nothing of its own to write.
    pub fn attach(&mut self, stream: TcpStream) -> SharedStream {
        self.shared.lock().stream = Some(stream);
        SharedStream { shared: self.shared.clone() }
    }

    /// Takes the stream back before the connection writes anything of its own (a pong, a ping,
    /// a close frame): returns the bytes of a frame the room left unfinished, which go first.
    pub fn reclaim(&mut self) -> Option<Vec<u8>> {
        let mut state = self.shared.lock();
        state.lent = false;
        (!state.unwritten.is_empty()).then(|| std::mem::take(&mut state.unwritten))
    }

    /// The next queued frame if there is one and no close order.
    pub fn try_frame(&mut self) -> Option<ByteString> {
        let mut state = self.shared.lock();
        if state.close.is_some() {
            return None;
        }
        state.pop_frame()
    }

    /// The close order, if the room has given one.
    pub fn close_order(&self) -> Option<CloseOrder> {
        self.shared.lock().close.clone()
    }

    /// Waits until the room orders a close (never returns if it never does).
    pub async fn closed(&mut self) -> CloseOrder {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            match &state.close {
                Some(order) => Poll::Ready(order.clone()),
                None => {
                    // With every sender gone no order can come; waiting forever is the answer.
                    state.register(cx);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Marks `len` bytes of a frame as handed to the socket.
    pub fn sent(&self, len: usize) {
        let drained = {
            let mut state = self.shared.lock();
            state.pending = state.pending.saturating_sub(len);
            state.let_go_if_drained(self.shared.limit)
        };
        release(drained);
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let (frames, holding) = {
            let mut state = self.shared.lock();
            state.receiver_alive = false;
            state.lent = false;
            (std::mem::take(&mut state.frames), state.holding.take())
        };
        release(holding);
        drop(frames);
    }
}

/// The socket's way to its stream, which lives in the outbox (see the module doc). Dropping it
/// closes the stream, whoever still holds the outbox.
pub struct SharedStream {
    shared: Arc<Shared>,
}

impl SharedStream {
    /// True while the outbox holds some room's writers back (it is over its pause mark): a
    /// socket that then takes no bytes for a while is a slow consumer.
    pub fn holds_writers(&self) -> bool {
        self.shared.lock().holding.is_some()
    }

    /// Runs `io` on the stream; an error once the stream is closed.
    pub fn with<R>(&self, io: impl FnOnce(&TcpStream) -> std::io::Result<R>) -> std::io::Result<R> {
        match &self.shared.lock().stream {
            Some(stream) => io(stream),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// Takes the stream out for the end of the connection (a lingering close owns it); the room
    /// cannot write to it any more.
    pub fn into_stream(self) -> Option<TcpStream> {
        let mut state = self.shared.lock();
        state.lent = false;
        state.stream.take()
    }
}

impl Drop for SharedStream {
    fn drop(&mut self) {
        let stream = {
            let mut state = self.shared.lock();
            state.lent = false;
            state.stream.take()
        };
        drop(stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_frames_over_the_byte_limit_and_frees_room_when_sent() {
        let (outbox, mut receiver) = outbox(10);
        assert_eq!(outbox.send("123456".into()), Ok(()));
        assert_eq!(outbox.send("12345".into()), Err(SendError::Full));
        assert_eq!(outbox.pending_bytes(), 6);
        assert_eq!(receiver.next().await, Next::Frame("123456".into()));
        receiver.sent(6);
        assert_eq!(outbox.send("1234567890".into()), Ok(()));
    }

    #[tokio::test]
    async fn a_close_order_overtakes_queued_frames_and_the_first_order_wins() {
        let (outbox, mut receiver) = outbox(100);
        outbox.send("queued".into()).unwrap();
        outbox.close(1013, "slow consumer");
        outbox.close(1001, "going away");
        assert_eq!(receiver.next().await, Next::Close(CloseOrder { code: 1013, reason: "slow consumer" }));
    }

    #[tokio::test]
    async fn dropping_every_sender_detaches_after_the_queued_frames() {
        let (outbox, mut receiver) = outbox(100);
        outbox.send("last".into()).unwrap();
        drop(outbox);
        assert_eq!(receiver.next().await, Next::Frame("last".into()));
        assert_eq!(receiver.next().await, Next::Detached);
    }

    #[tokio::test]
    async fn a_waiting_connection_wakes_for_a_frame_a_close_order_and_the_last_sender_leaving() {
        let (outbox, mut receiver) = outbox(100);
        let waiting = tokio::spawn(async move {
            let frame = receiver.next().await;
            let order = receiver.closed().await;
            (frame, order)
        });
        tokio::task::yield_now().await;
        outbox.send("hello".into()).unwrap();
        tokio::task::yield_now().await;
        outbox.close(1001, "going away");
        let (frame, order) = waiting.await.unwrap();
        assert_eq!(frame, Next::Frame("hello".into()));
        assert_eq!(order, CloseOrder { code: 1001, reason: "going away" });

        let (outbox, mut receiver) = super::outbox(100);
        let room = outbox.clone();
        let waiting = tokio::spawn(async move { receiver.next().await });
        tokio::task::yield_now().await;
        drop(outbox);
        tokio::task::yield_now().await;
        drop(room);
        assert_eq!(waiting.await.unwrap(), Next::Detached);
    }

    #[tokio::test]
    async fn a_drained_queue_gives_back_the_memory_of_a_burst() {
        let (outbox, mut receiver) = outbox(usize::MAX);
        for _ in 0..RETAINED_FRAME_SLOTS * 4 {
            outbox.send("x".into()).unwrap();
        }
        while receiver.try_frame().is_some() {}
        assert!(receiver.shared.lock().frames.capacity() <= RETAINED_FRAME_SLOTS);
    }

    /// A loopback pair: the server's end (to attach) and the client's.
    async fn stream_pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    /// Polls `next` once, as the connection's loop does when it waits, and expects it to wait.
    async fn wait_once(receiver: &mut OutboxReceiver) {
        let mut next = std::pin::pin!(receiver.next());
        let polled = poll_fn(|cx| Poll::Ready(std::future::Future::poll(next.as_mut(), cx))).await;
        assert_eq!(polled, Poll::Pending);
    }

    fn text_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        frame::encode(&mut frame, OpCode::Text, payload);
        frame
    }

    #[tokio::test]
    async fn a_waiting_connection_lends_its_stream_and_the_room_writes_the_frame_itself() {
        use tokio::io::AsyncReadExt as _;
        let (outbox, mut receiver) = outbox(100);
        let (stream, mut client) = stream_pair().await;
        let _socket = receiver.attach(stream);
        outbox.send("queued before".into()).unwrap();
        assert_eq!(
            receiver.next().await,
            Next::Frame("queued before".into()),
            "frames queued earlier are the connection's"
        );
        receiver.sent(13);
        wait_once(&mut receiver).await;
        outbox.send("hello".into()).unwrap();
        assert_eq!(outbox.pending_bytes(), 0);
        assert!(
            receiver.shared.lock().frames.is_empty() && receiver.shared.lock().waker.is_some(),
            "the connection is not woken"
        );
        let mut received = [0; 7];
        client.read_exact(&mut received).await.unwrap();
        assert_eq!(received.as_slice(), text_frame(b"hello").as_slice());

        // Once the connection takes its stream back, frames queue again.
        assert_eq!(receiver.reclaim(), None);
        outbox.send("later".into()).unwrap();
        assert_eq!(receiver.next().await, Next::Frame("later".into()));
    }

    /// Attaches a stream whose client never reads, then has the room write `payload` frames to
    /// it until one does not fit: the socket's handle, the client, and how many frames went.
    async fn write_until_the_kernel_refuses(
        outbox: &Outbox,
        receiver: &mut OutboxReceiver,
        payload: &str,
    ) -> (SharedStream, TcpStream, usize) {
        let (stream, client) = stream_pair().await;
        let socket = receiver.attach(stream);
        wait_once(receiver).await;
        let mut wrote = 0;
        while receiver.shared.lock().lent {
            outbox.send(payload.into()).unwrap();
            wrote += 1;
        }
        (socket, client, wrote)
    }

    #[tokio::test]
    async fn what_the_kernel_does_not_take_goes_first_even_before_a_close_order() {
        use tokio::io::AsyncReadExt as _;
        let (outbox, mut receiver) = outbox(usize::MAX);
        let payload = "x".repeat(60_000);
        let (_socket, mut client, wrote) =
            write_until_the_kernel_refuses(&outbox, &mut receiver, &payload).await;
        assert!(wrote > 1, "the kernel took at least one whole frame");
        outbox.send("after".into()).unwrap();
        outbox.close(1013, "slow consumer");
        let unwritten = match receiver.next().await {
            Next::Unwritten(bytes) => bytes,
            other => panic!("expected the unwritten bytes, got {other:?}"),
        };
        assert_eq!(
            outbox.pending_bytes(),
            unwritten.len() + "after".len(),
            "the rest counts against the limit"
        );
        receiver.sent(unwritten.len());
        assert_eq!(receiver.next().await, Next::Close(CloseOrder { code: 1013, reason: "slow consumer" }));

        // The client reads whole frames: the room's writes and the rest, joined, are `wrote` frames.
        let frame = text_frame(payload.as_bytes());
        let mut received = vec![0; frame.len() * wrote - unwritten.len()];
        client.read_exact(&mut received).await.unwrap();
        received.extend_from_slice(&unwritten);
        assert_eq!(received, frame.repeat(wrote));
    }

    #[tokio::test]
    async fn a_reclaimed_stream_hands_back_the_rest_of_a_frame_and_a_dropped_socket_closes_it() {
        use tokio::io::AsyncReadExt as _;
        let (outbox, mut receiver) = outbox(usize::MAX);
        let (socket, mut client, _) =
            write_until_the_kernel_refuses(&outbox, &mut receiver, &"y".repeat(60_000)).await;
        let rest = receiver.reclaim().expect("the rest of a frame");
        assert!(!rest.is_empty() && rest.len() <= 60_004);
        assert_eq!(receiver.reclaim(), None);

        // The room still holds its end, but the socket's end going closes the stream: the
        // client reads what the kernel took, then the end of the stream.
        drop(socket);
        assert!(!receiver.shared.lock().lent);
        assert_eq!(outbox.send("z".into()), Ok(()), "queued, never written");
        let mut all = Vec::new();
        client.read_to_end(&mut all).await.unwrap();
        assert!(!all.is_empty() && !all.ends_with(b"z"));
    }

    #[tokio::test]
    async fn held_frames_wait_for_the_release_and_then_leave_together_in_order() {
        use tokio::io::AsyncReadExt as _;
        let (outbox, mut receiver) = outbox(100);
        let (stream, mut client) = stream_pair().await;
        let _socket = receiver.attach(stream);
        wait_once(&mut receiver).await;
        outbox.send_held("one".into()).unwrap();
        outbox.send("two".into()).unwrap();
        outbox.send_held("three".into()).unwrap();
        assert_eq!(outbox.pending_bytes(), 5 + 5 + 7, "held frames count against the limit");
        assert_eq!(outbox.send_held("x".repeat(90).into()), Err(SendError::Full));
        let mut nothing = [0; 1];
        assert!(client.try_read(&mut nothing).is_err(), "nothing is written before the release");

        outbox.release_held();
        assert_eq!(outbox.pending_bytes(), 0);
        assert!(receiver.shared.lock().waker.is_some(), "the connection is not woken");
        let expected = [text_frame(b"one"), text_frame(b"two"), text_frame(b"three")].concat();
        let mut received = vec![0; expected.len()];
        client.read_exact(&mut received).await.unwrap();
        assert_eq!(received, expected);
        outbox.release_held();
        outbox.send("four".into()).unwrap();
        let mut four = [0; 6];
        client.read_exact(&mut four).await.unwrap();
        assert_eq!(
            four.as_slice(),
            text_frame(b"four").as_slice(),
            "after the release frames are written at once again"
        );
        assert!(
            receiver.shared.lock().unwritten.capacity() == 0,
            "the socket keeps no buffer between rounds"
        );
        assert!(
            held_buffers::take().capacity() >= expected.len(),
            "the thread keeps the buffer for the next round"
        );
    }

    #[test]
    fn the_threads_held_buffers_are_bounded_in_number_and_size() {
        while held_buffers::take().capacity() > 0 {}
        held_buffers::give_back(Vec::with_capacity(held_buffers::RETAINED_BYTES + 1));
        assert_eq!(held_buffers::take().capacity(), 0, "a buffer grown too big is let go");
        for _ in 0..1000 {
            held_buffers::give_back(b"a frame".to_vec());
        }
        let kept: Vec<_> =
            std::iter::from_fn(|| Some(held_buffers::take()).filter(|buffer| buffer.capacity() > 0))
                .collect();
        assert_eq!(kept.len(), held_buffers::RETAINED_BUFFERS);
        assert!(kept.iter().all(Vec::is_empty), "a kept buffer comes back empty");
    }

    #[tokio::test]
    async fn held_frames_the_connection_wakes_up_to_are_its_own_to_send_first() {
        let (outbox, mut receiver) = outbox(100);
        let (stream, _client) = stream_pair().await;
        let _socket = receiver.attach(stream);
        wait_once(&mut receiver).await;
        outbox.send_held("held".into()).unwrap();
        assert_eq!(
            receiver.reclaim(),
            Some(text_frame(b"held")),
            "the connection needs its stream back first"
        );
        receiver.sent(6);
        outbox.send_held("queued".into()).unwrap();
        outbox.release_held();
        assert_eq!(receiver.next().await, Next::Frame("queued".into()), "not lent: frames queue as before");
        assert_eq!(outbox.pending_bytes(), 6);
    }

    #[tokio::test]
    async fn a_held_batch_the_kernel_does_not_take_goes_to_the_connection() {
        use tokio::io::AsyncReadExt as _;
        let (outbox, mut receiver) = outbox(usize::MAX);
        let (stream, mut client) = stream_pair().await;
        let _socket = receiver.attach(stream);
        wait_once(&mut receiver).await;
        let payload = "h".repeat(60_000);
        // More than any loopback socket's buffers hold.
        let frames = 200;
        for _ in 0..frames {
            outbox.send_held(payload.clone().into()).unwrap();
        }
        outbox.release_held();
        let unwritten = match receiver.next().await {
            Next::Unwritten(bytes) => bytes,
            other => panic!("expected the unwritten bytes, got {other:?}"),
        };
        assert_eq!(outbox.pending_bytes(), unwritten.len(), "only what is not yet written counts");
        let expected = text_frame(payload.as_bytes()).repeat(frames);
        let mut received = vec![0; expected.len() - unwritten.len()];
        client.read_exact(&mut received).await.unwrap();
        received.extend_from_slice(&unwritten);
        assert!(received == expected, "the kernel's part and the rest join into every frame, in order");
    }

    #[tokio::test]
    async fn over_the_pause_mark_an_outbox_holds_its_rooms_writers_until_it_is_down_to_the_resume_mark() {
        let (outbox, mut receiver) = outbox(100);
        let (room, other) = (Arc::new(Pressure::default()), Arc::new(Pressure::default()));
        outbox.deliver("x".repeat(50).into(), false, &room).unwrap();
        assert!(room.is_open(), "at the mark, not over it");
        outbox.deliver("x".repeat(10).into(), false, &room).unwrap();
        assert!(!room.is_open(), "over half its bound: the room's writers wait");
        outbox.deliver("x".repeat(10).into(), false, &room).unwrap();
        outbox.deliver("x".repeat(10).into(), false, &other).unwrap();
        assert!(!other.is_open(), "another room filling it while over the mark waits too");
        assert_eq!(room.held(), 1, "counted once a room");
        assert!(matches!(receiver.next().await, Next::Frame(_)));
        receiver.sent(50);
        assert!(!room.is_open() && !other.is_open(), "30 unsent: above a quarter of its bound");
        assert!(matches!(receiver.next().await, Next::Frame(_)));
        receiver.sent(10);
        assert!(room.is_open() && other.is_open(), "down to a quarter: the writers go on");
        outbox.deliver("x".repeat(60).into(), false, &room).unwrap();
        assert!(!room.is_open());
        outbox.close(1013, "slow consumer");
        assert!(room.is_open(), "a closed outbox holds nobody back");
    }

    #[tokio::test]
    async fn a_connection_gone_holds_no_writers_back() {
        let (outbox, receiver) = outbox(100);
        let room = Arc::new(Pressure::default());
        outbox.deliver("x".repeat(80).into(), true, &room).unwrap();
        assert!(!room.is_open(), "held frames count as well");
        drop(receiver);
        assert!(room.is_open());
    }

    #[tokio::test]
    async fn sending_to_a_gone_connection_says_so_and_counts_nothing() {
        let (outbox, receiver) = outbox(100);
        drop(receiver);
        assert_eq!(outbox.send("x".into()), Err(SendError::Gone));
        assert_eq!(outbox.pending_bytes(), 0);
    }
}

//! One websocket connection: joins its room before the upgrade is answered, then loops over
//! inbound messages (parsed here, off the room task), outbound frames from its bounded queue
//! (written in batches), close orders from the room, and the heartbeat.
//!
//! It reads its client's next message only when its rooms have room for it (see
//! [`super::backpressure`]): a writer faster than its rooms' readers is paused, not its readers
//! cut off, and a paused connection still writes, pings and obeys close orders.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse};

use super::backpressure::{Pacing, Pressure, ASK_EVERY_FRACTION};
use super::close;
use super::frame::OpCode;
use super::multiplex::Multiplexed;
use super::outbox::Outbox;
use super::outbox::{outbox, Next, OutboxReceiver};
use super::rate::MessageRate;
use super::socket::{CloseKind, Message, ReadError, Socket, WRITE_BATCH_BYTES};
use super::stall;
use super::takeover::{Accepted, TakeoverSlot};
use super::tasks::TaskGuard;
use crate::auth::Access;
use crate::config::Limits;
use crate::metrics::{Metrics, PartyCounters};
use crate::protocol::mergeable::frame::{split, FrameError, Inbound, Reassembly};
use crate::protocol::mergeable::message::MessageType;
use crate::protocol::persister::parse_frame;
use crate::room::{IpClaim, JoinOutcome, RoomHandle, SocketId};

/// Everything a connection needs besides its socket.
pub struct Connection {
    /// The room the socket joins at the upgrade (`None` for a multiplexed socket, whose
    /// channels join rooms later).
    pub room: Option<RoomHandle>,
    /// The party's counters.
    pub counters: PartyCounters,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The socket's server-wide id.
    pub socket: SocketId,
    /// The client's connection id (`_pk`).
    pub connection_id: Arc<str>,
    /// Read-only connections receive broadcasts; their changes are dropped.
    pub access: Access,
    /// This socket's share of its client IP's connection count, held while it lives.
    pub ip_claim: Option<IpClaim>,
    /// What the socket speaks.
    pub protocol: Protocol,
    /// Limits and timings.
    pub limits: Limits,
    /// What the socket sent its rooms that they may not have broadcast yet.
    pub pacing: Pacing,
}

/// The protocol of a party's sockets.
pub enum Protocol {
    /// TinyBase's PartyKit persister: `s` changes behind the party's message prefix.
    Persister {
        /// The party's message prefix.
        message_prefix: Arc<str>,
    },
    /// TinyBase's synchronizer in its legacy framing; holds the socket's partial fragments.
    Sync(RefCell<Reassembly>),
    /// TinyBase's synchronizer, multiplexed: channels (rooms) and their partial fragments.
    Multiplexed(RefCell<Multiplexed>, RefCell<Reassembly>),
}

/// Answers a websocket upgrade for `room`: the socket is a member of the room before the 101
/// is returned, so it receives every broadcast made after the client sees it open.
pub async fn upgrade(req: &HttpRequest, connection: Connection) -> HttpResponse {
    let (outbox, receiver) = outbox(connection.limits.outbound_buffer_bytes);
    upgrade_with(req, connection, outbox, receiver).await
}

/// Answers a websocket upgrade with an outbox made beforehand (a multiplexed socket's channels
/// need it to join their rooms later). On a 101 the connection waits in the request's
/// [`TakeoverSlot`] for the upgrade service to hand it the stream.
pub async fn upgrade_with(
    req: &HttpRequest,
    connection: Connection,
    outbox: Outbox,
    receiver: OutboxReceiver,
) -> HttpResponse {
    // RFC 6455 §4.2.1: the opening handshake is an HTTP/1.1 (or later) GET, and actix-http's
    // check below leaves the version out.
    if req.version() < actix_web::http::Version::HTTP_11 {
        tracing::info!(version = ?req.version(), "refusing a websocket handshake before HTTP/1.1");
        return HttpResponse::BadRequest().body("a websocket handshake needs HTTP/1.1");
    }
    if let Err(error) = actix_http::ws::verify_handshake(req.head()) {
        tracing::info!(%error, "refusing a websocket handshake");
        return HttpResponse::from(actix_http::Response::from(error));
    }
    let Some(slot) = req.extensions().get::<TakeoverSlot>().cloned() else {
        tracing::error!("a websocket upgrade reached the app outside the upgrade service");
        return HttpResponse::InternalServerError().body("websocket upgrades are not served here");
    };
    if let Some(room) = &connection.room {
        match room.join(connection.socket, connection.connection_id.clone(), outbox).await {
            Ok(JoinOutcome::Joined) => {}
            Ok(JoinOutcome::RoomFull) => {
                tracing::info!("refusing a websocket: the room is full");
                return HttpResponse::ServiceUnavailable().body("room is full");
            }
            Ok(JoinOutcome::StorageFailed) => {
                return HttpResponse::InternalServerError().body("room storage unavailable")
            }
            Err(_) => return HttpResponse::ServiceUnavailable().body("server shutting down"),
        }
    }
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|key| key.as_bytes()).unwrap_or_default();
    let accept = actix_http::ws::hash_key(key);
    let mut response = HttpResponse::SwitchingProtocols();
    response.insert_header((header::UPGRADE, "websocket")).insert_header((header::CONNECTION, "upgrade"));
    if let Ok(accept) = HeaderValue::from_bytes(&accept) {
        response.insert_header((header::SEC_WEBSOCKET_ACCEPT, accept));
    }
    if matches!(connection.protocol, Protocol::Multiplexed(..)) {
        response.insert_header((header::SEC_WEBSOCKET_PROTOCOL, "tinybase"));
    }
    let (party, room) = match &connection.room {
        Some(room) => (room.key().party().to_owned(), room.key().room().to_owned()),
        None => (String::new(), "(multiplexed)".to_owned()),
    };
    let span = tracing::info_span!("conn", party = %party, room = %room, socket = connection.socket, id = %connection.connection_id);
    slot.fill(Accepted { connection, receiver, span });
    response.finish()
}

/// Why the loop ended, and what close frame (if any) to send.
pub(super) enum Ending {
    /// The server closes: this code and reason.
    Close(u16, &'static str),
    /// The server refuses what the client sent: this code and reason. The client may still be
    /// sending (the rest of an oversize message, a flood), so what it sends after is dropped
    /// unread, not read as frames.
    Refuse(u16, &'static str),
    /// The client sent a close frame (with this code and reason): it is answered with the
    /// same code and the connection closes at once.
    ClientClosed(Option<(u16, String)>),
    /// The client sent a close frame the RFC forbids: it is answered 1002 and the connection
    /// closes at once all the same (the client has closed).
    BadClose,
    /// The stream ended or broke: nothing to answer.
    PeerGone,
}

impl Connection {
    /// The connection's task. Its future lives as long as the socket, and an idle socket pays
    /// for its whole size: so it is an `async move` block, which keeps the arguments once (an
    /// `async fn` stores them twice), and the rare futures it awaits (an inbound message, a
    /// ping, the teardown) are boxed when they happen. Frames to send stay inline (the hot
    /// path).
    /// `counted` keeps the task counted among the server's socket tasks until it ends; it is
    /// an argument, not held by a wrapping block, because a block that awaits this future
    /// stores it twice.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn run(
        self,
        mut socket: Socket,
        mut outbox: OutboxReceiver,
        counted: TaskGuard,
    ) -> impl std::future::Future<Output = ()> {
        async move {
            tracing::debug!("connected");
            stall::watch();
            let mut rate = MessageRate::new(self.limits.messages_per_second, Instant::now());
            self.metrics.connections.inc();
            let mut heartbeat = tokio::time::interval(self.limits.ping_interval);
            heartbeat.tick().await;
            let mut last_heard = Instant::now();
            let ending = loop {
                tokio::select! {
                    biased;
                    next = outbox.next() => match next {
                        Next::Frame(frame) => {
                            if let Some(ending) = send_ready_frames(&mut socket, &mut outbox, frame).await {
                                break ending;
                            }
                        }
                        Next::Unwritten(bytes) => {
                            queue_unwritten(&mut socket, &outbox, &bytes);
                            if let Some(ending) = Box::pin(flush(&mut socket, &mut outbox)).await {
                                break ending;
                            }
                        }
                        Next::Close(order) => break Ending::Close(order.code, order.reason),
                        Next::Detached => break Ending::Close(close::GOING_AWAY, "room closed"),
                    },
                    inbound = async {
                        if self.held_back() {
                            // Boxed: the rare wait does not make every idle socket's task bigger.
                            Box::pin(self.until_rooms_have_room()).await;
                        }
                        socket.recv().await
                    } => {
                        take_stream_back(&mut socket, &mut outbox);
                        last_heard = Instant::now();
                        match inbound {
                            Some(Ok(message)) => {
                                let data = matches!(message, Message::Text(_) | Message::Binary(_));
                                if data && !rate.admit(Instant::now(), stall::stalled_since) {
                                    if !self.pacing.catching_up() {
                                        tracing::info!("closing a connection over its message rate");
                                        break Ending::Refuse(close::POLICY_VIOLATION, "rate limit");
                                    }
                                    // What the client sent while it was paused comes at once:
                                    // it is read at the allowed rate, not refused.
                                    Box::pin(paced(&mut rate)).await;
                                }
                                if let Some(ending) = Box::pin(self.on_message(message, &mut socket)).await {
                                    break ending;
                                }
                                if socket.queued_bytes() > 0 {
                                    if let Some(ending) = Box::pin(flush(&mut socket, &mut outbox)).await {
                                        break ending;
                                    }
                                }
                            }
                            Some(Err(error)) => break read_error_ending(&error),
                            None => break Ending::PeerGone,
                        }
                    }
                    _ = heartbeat.tick() => {
                        take_stream_back(&mut socket, &mut outbox);
                        if self.held_back() {
                            // Paused, the client's frames (pongs too) wait unread: it is not idle.
                            last_heard = Instant::now();
                        } else if last_heard.elapsed() >= self.limits.idle_timeout {
                            break Ending::Close(close::NORMAL, "idle timeout");
                        }
                        self.pacing.tick(self.held_back());
                        socket.queue(OpCode::Ping, b"");
                        if let Some(ending) = Box::pin(flush(&mut socket, &mut outbox)).await {
                            break ending;
                        }
                    }
                }
            };
            // Frames still queued are not sent now: gone, they hold no writers back.
            drop(outbox);
            Box::pin(self.finish(ending, socket)).await;
            drop(counted);
        }
    }

    /// Returns once the rooms this socket writes to have room for its next message: at most
    /// [`super::backpressure::UNANSWERED`] of its questions are open and no outbox of those
    /// rooms is over its pause mark. Cancel-safe.
    async fn until_rooms_have_room(&self) {
        loop {
            if self.pacing.too_much_in_flight() {
                self.pacing.paused();
                self.pacing.answered().await;
                continue;
            }
            let Some(room) = self.held_room() else { return };
            self.pacing.paused();
            room.opened().await;
        }
    }

    /// True while the socket is not read because of its rooms.
    fn held_back(&self) -> bool {
        self.pacing.too_much_in_flight() || self.held_room().is_some()
    }

    /// A room this socket writes to whose writers are held back, if any (a multiplexed socket
    /// waits for each of its channels' rooms: its next message may be for any of them).
    fn held_room(&self) -> Option<Arc<Pressure>> {
        if let Some(room) = &self.room {
            return (!room.pressure().is_open()).then(|| room.pressure().clone());
        }
        let Protocol::Multiplexed(multiplexed, _) = &self.protocol else { return None };
        let multiplexed = multiplexed.borrow();
        multiplexed
            .channels
            .values()
            .map(|channel| channel.room.pressure())
            .find(|room| !room.is_open())
            .cloned()
    }

    /// Counts `bytes` handed to `room`, and asks the rooms written to for an answer when a
    /// question is due (see [`super::backpressure`]).
    pub(super) async fn count_sent(&self, room: &RoomHandle, bytes: usize) {
        let ask_every = (self.limits.outbound_buffer_bytes / ASK_EVERY_FRACTION).max(1);
        let Some(rooms) = self.pacing.sent(room, bytes, ask_every) else { return };
        let mut answers = Vec::with_capacity(rooms.len());
        for room in rooms {
            // A room gone has nothing in flight.
            if let Ok(answer) = room.handled().await {
                answers.push(answer);
            }
        }
        self.pacing.asked(answers);
    }

    /// Leaves the rooms, counts the close and ends the socket (with a close frame, if any).
    async fn finish(self, ending: Ending, socket: Socket) {
        if let Some(room) = &self.room {
            room.leave(self.socket).await;
        }
        if let Protocol::Multiplexed(multiplexed, _) = &self.protocol {
            let channels: Vec<RoomHandle> =
                multiplexed.borrow_mut().channels.drain().map(|(_, channel)| channel.room).collect();
            for room in channels {
                room.leave(self.socket).await;
            }
        }
        self.metrics.connections.dec();
        match ending {
            Ending::Close(code, reason) => self.close(socket, code, reason, CloseKind::Orderly).await,
            Ending::Refuse(code, reason) => self.close(socket, code, reason, CloseKind::Refusal).await,
            Ending::ClientClosed(close) => {
                tracing::debug!(code = close.as_ref().map(|(code, _)| *code), "peer closed");
                let code = close.map_or(close::NORMAL, |(code, _)| code);
                socket.close((code, ""), CloseKind::Reply, self.limits.close_grace).await;
            }
            Ending::BadClose => {
                self.close(socket, close::PROTOCOL_ERROR, "protocol error", CloseKind::Reply).await
            }
            Ending::PeerGone => tracing::debug!("peer gone"),
        }
    }

    /// Sends the server's close frame and ends the closing handshake.
    async fn close(&self, socket: Socket, code: u16, reason: &'static str, kind: CloseKind) {
        tracing::info!(code, reason, "closing connection");
        self.metrics.close_sent(code);
        socket.close((code, reason), kind, self.limits.close_grace).await;
    }

    fn count_and_parse(
        &self,
        text: &str,
        message_prefix: &str,
    ) -> Result<crate::protocol::persister::Changes, crate::protocol::persister::IgnoredFrame> {
        self.count_in(text.len());
        parse_frame(text, message_prefix)
    }

    fn count_in(&self, bytes: usize) {
        self.counters.messages_in.inc();
        self.counters.bytes_in.inc_by(bytes as u64);
    }

    /// Handles one inbound message; `Some` ends the connection. A pong it owes is queued on
    /// `socket`, for the loop to write.
    async fn on_message(&self, message: Message, socket: &mut Socket) -> Option<Ending> {
        let payload = match &message {
            Message::Text(text) => Some(Ok(text.as_str())),
            // The synchronizer reads a binary frame as UTF-8 text.
            Message::Binary(bytes) => Some(std::str::from_utf8(bytes).map_err(|_| ())),
            _ => None,
        };
        match (&self.protocol, payload) {
            (Protocol::Sync(reassembly), Some(payload)) => {
                let room = self.room.as_ref()?;
                return self.on_sync_payload(payload.ok(), "", room, self.access, reassembly).await;
            }
            (Protocol::Multiplexed(multiplexed, reassembly), Some(payload)) => {
                return self.on_multiplexed_payload(payload.ok(), multiplexed, reassembly).await;
            }
            _ => {}
        }
        let Protocol::Persister { message_prefix } = &self.protocol else {
            return on_control(message, socket);
        };
        match message {
            Message::Text(text) => match self.count_and_parse(&text, message_prefix) {
                Ok(_) if self.access == Access::Read => {
                    self.counters.refused_read_only.inc();
                    tracing::info!("dropping changes from a read-only connection");
                }
                Ok(changes) => {
                    let room = self.room.as_ref()?;
                    if room.send_changes(self.socket, self.connection_id.clone(), changes).await.is_err() {
                        return Some(Ending::Close(close::GOING_AWAY, "server shutting down"));
                    }
                    self.count_sent(room, text.len()).await;
                }
                Err(ignored) => {
                    self.counters.ignored_invalid.inc();
                    tracing::debug!(reason = %ignored, "ignoring a frame");
                }
            },
            Message::Binary(_) => tracing::debug!("ignoring a binary frame"),
            control => return on_control(control, socket),
        }
        None
    }
}

/// Handles ping, pong and close; `Some` ends the connection.
fn on_control(message: Message, socket: &mut Socket) -> Option<Ending> {
    match message {
        Message::Text(_) | Message::Binary(_) | Message::Pong => None,
        Message::Ping(bytes) => {
            socket.queue(OpCode::Pong, &bytes);
            None
        }
        Message::Close(close) => Some(Ending::ClientClosed(close)),
    }
}

impl Connection {
    /// Handles one synchronizer payload (`None`: not UTF-8): validates it (fragments are
    /// reassembled first), then hands it to the room. Anything invalid closes the socket as
    /// TinyBase's server does: 1007 `tinybase:14`, or 1013 `tinybase:15:fragments`.
    pub(super) async fn on_sync_payload(
        &self,
        payload: Option<&str>,
        channel: &str,
        room: &RoomHandle,
        access: Access,
        reassembly: &RefCell<Reassembly>,
    ) -> Option<Ending> {
        self.count_in(payload.map_or(0, str::len));
        let Some((recipient, remainder)) = payload.and_then(split) else {
            return self.invalid("not `recipient\\nmessage`");
        };
        let inbound = reassembly.borrow_mut().accept(
            &format!("{channel}\n{recipient}"),
            remainder,
            crate::room::now_ms(),
        );
        let (remainders, message) = match inbound {
            Ok(Inbound::Pending) => return None,
            Ok(Inbound::Message { remainders, message }) => (remainders, message),
            Err(FrameError::Invalid(reason)) => return self.invalid(reason),
            Err(FrameError::TooManyFragments(reason)) => {
                tracing::info!(reason, "closing a synchronizer socket over its fragment limits");
                return Some(Ending::Refuse(close::TRY_AGAIN_LATER, "tinybase:15:fragments"));
            }
        };
        let reads_only = matches!(
            message.kind,
            MessageType::GetContentHashes
                | MessageType::GetTableDiff
                | MessageType::GetRowDiff
                | MessageType::GetCellDiff
                | MessageType::GetValueDiff
        );
        if access == Access::Read && !reads_only {
            self.counters.refused_read_only.inc();
            tracing::debug!("dropping a message that carries data from a read-only connection");
            return None;
        }
        if room.send_sync(self.socket, recipient.to_owned(), remainders, message).await.is_err() {
            return Some(Ending::Close(close::GOING_AWAY, "server shutting down"));
        }
        self.count_sent(room, payload.map_or(0, str::len)).await;
        None
    }

    /// Closes a synchronizer socket that sent something invalid (1007 `tinybase:14`).
    pub(super) fn invalid(&self, reason: &str) -> Option<Ending> {
        self.counters.ignored_invalid.inc();
        tracing::info!(reason, "closing a synchronizer socket that sent an invalid message");
        Some(Ending::Refuse(close::INVALID_PAYLOAD, "tinybase:14"))
    }
}

/// Puts the rest of a frame the room began to write ahead of anything else the socket sends.
fn queue_unwritten(socket: &mut Socket, outbox: &OutboxReceiver, bytes: &[u8]) {
    socket.queue_raw(bytes);
    outbox.sent(bytes.len());
}

/// Stops the room writing to the stream before the connection writes anything of its own.
fn take_stream_back(socket: &mut Socket, outbox: &mut OutboxReceiver) {
    if let Some(bytes) = outbox.reclaim() {
        queue_unwritten(socket, outbox, &bytes);
    }
}

/// Writes `first` and then every frame already queued, in one write of up to about
/// [`WRITE_BATCH_BYTES`] (a busy room queues several frames per round).
async fn send_ready_frames(
    socket: &mut Socket,
    outbox: &mut OutboxReceiver,
    first: bytestring::ByteString,
) -> Option<Ending> {
    let mut frame = Some(first);
    while let Some(next) = frame {
        socket.queue(OpCode::Text, next.as_bytes());
        outbox.sent(next.len());
        if socket.queued_bytes() >= WRITE_BATCH_BYTES {
            break;
        }
        frame = outbox.try_frame();
    }
    flush(socket, outbox).await
}

/// Writes what the socket has gathered, unless the room orders the connection closed first (a
/// client that does not read must not hold its connection task). A client that takes nothing
/// while it holds its rooms' writers back is closed as a slow consumer.
async fn flush(socket: &mut Socket, outbox: &mut OutboxReceiver) -> Option<Ending> {
    tokio::select! {
        written = socket.flush() => match written {
            Ok(()) => None,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                tracing::warn!("closing a slow consumer: it holds its room's writers back and reads nothing");
                Some(Ending::Close(close::TRY_AGAIN_LATER, "slow consumer"))
            }
            Err(_) => Some(Ending::PeerGone),
        },
        order = outbox.closed() => Some(Ending::Close(order.code, order.reason)),
    }
}

/// Waits until `rate` lets one more message through, and counts it.
async fn paced(rate: &mut MessageRate) {
    while !rate.admit(Instant::now(), stall::stalled_since) {
        tokio::time::sleep(rate.interval()).await;
    }
}

/// The close that answers bytes the socket refused.
fn read_error_ending(error: &ReadError) -> Ending {
    let code = error.close_code();
    match error {
        ReadError::TooBig => Ending::Refuse(code, "message too big"),
        ReadError::NotUtf8 => Ending::Refuse(code, "text frame is not valid UTF-8"),
        ReadError::Protocol(reason) => {
            tracing::info!(reason, "websocket protocol error");
            Ending::Refuse(code, "protocol error")
        }
        ReadError::BadClose(reason) => {
            tracing::info!(reason, "a close frame the RFC forbids");
            Ending::BadClose
        }
    }
}

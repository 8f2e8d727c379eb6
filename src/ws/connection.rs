//! One websocket connection: joins its room before the upgrade is answered, then loops over
//! inbound frames (parsed here, off the room task), outbound frames from its bounded queue,
//! close orders from the room, and the heartbeat.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use tracing::Instrument;

use super::close;
use super::outbox::{outbox, Next, OutboxReceiver};
use crate::auth::Access;
use crate::config::Limits;
use crate::metrics::{Metrics, PartyCounters};
use crate::protocol::mergeable::frame::{split, FrameError, Inbound, Reassembly};
use crate::protocol::mergeable::message::MessageType;
use crate::protocol::persister::parse_frame;
use super::multiplex::Multiplexed;
use super::outbox::Outbox;
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
pub async fn upgrade(req: &HttpRequest, payload: web::Payload, connection: Connection) -> actix_web::Result<HttpResponse> {
    let (outbox, receiver) = outbox(connection.limits.outbound_buffer_bytes);
    upgrade_with(req, payload, connection, outbox, receiver).await
}

/// Answers a websocket upgrade with an outbox made beforehand (a multiplexed socket's channels
/// need it to join their rooms later).
pub async fn upgrade_with(
    req: &HttpRequest,
    payload: web::Payload,
    connection: Connection,
    outbox: Outbox,
    receiver: OutboxReceiver,
) -> actix_web::Result<HttpResponse> {
    let (mut response, session, stream) = actix_ws::handle(req, payload)?;
    if let Some(room) = &connection.room {
        match room.join(connection.socket, connection.connection_id.clone(), outbox).await {
            Ok(JoinOutcome::Joined) => {}
            Ok(JoinOutcome::RoomFull) => {
                tracing::info!("refusing a websocket: the room is full");
                return Ok(HttpResponse::ServiceUnavailable().body("room is full"));
            }
            Ok(JoinOutcome::StorageFailed) => return Ok(HttpResponse::InternalServerError().body("room storage unavailable")),
            Err(_) => return Ok(HttpResponse::ServiceUnavailable().body("server shutting down")),
        }
    }
    if matches!(connection.protocol, Protocol::Multiplexed(..)) {
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static("tinybase"));
    }
    let limits = &connection.limits;
    let stream = stream
        .max_frame_size(limits.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_message_bytes);
    let (party, room) = match &connection.room {
        Some(room) => (room.key().party().to_owned(), room.key().room().to_owned()),
        None => (String::new(), "(multiplexed)".to_owned()),
    };
    let span = tracing::info_span!("conn", party = %party, room = %room, socket = connection.socket, id = %connection.connection_id);
    actix_web::rt::spawn(connection.run(session, stream, receiver).instrument(span));
    Ok(response)
}

/// Why the loop ended, and what close frame (if any) to send.
pub(super) enum Ending {
    Close(u16, &'static str),
    /// The peer closed or vanished: answer its close frame if it sent one.
    PeerGone(Option<CloseReason>),
}

impl Connection {
    /// The connection's task. Its future lives as long as the socket, and an idle socket pays
    /// for its whole size: so it is an `async move` block, which keeps the arguments once (an
    /// `async fn` stores them twice), and the rare futures it awaits (an inbound message, a
    /// ping, the teardown) are boxed when they happen. Frames to send stay inline (the hot
    /// path). 1.3 KiB instead of 2.7.
    fn run(self, mut session: Session, mut stream: AggregatedMessageStream, mut outbox: OutboxReceiver) -> impl std::future::Future<Output = ()> {
        async move {
            tracing::debug!("connected");
            let rate = rate_limiter(self.limits.messages_per_second);
            self.metrics.connections.inc();
            let mut heartbeat = tokio::time::interval(self.limits.ping_interval);
            heartbeat.tick().await;
            let mut last_heard = Instant::now();
            let ending = loop {
                tokio::select! {
                    biased;
                    next = outbox.next() => match next {
                        Next::Frame(frame) => {
                            if let Some(ending) = send_ready_frames(&mut session, &mut outbox, frame).await {
                                break ending;
                            }
                        }
                        Next::Close(order) => break Ending::Close(order.code, order.reason),
                        Next::Detached => break Ending::Close(close::GOING_AWAY, "room closed"),
                    },
                    inbound = stream.recv() => {
                        last_heard = Instant::now();
                        match inbound {
                            Some(Ok(message)) => {
                                let data = matches!(message, AggregatedMessage::Text(_) | AggregatedMessage::Binary(_));
                                if data && rate.check().is_err() {
                                    tracing::info!("closing a connection over its message rate");
                                    break Ending::Close(close::POLICY_VIOLATION, "rate limit");
                                }
                                if let Some(ending) = Box::pin(self.on_message(message, &mut session)).await {
                                    break ending;
                                }
                            }
                            Some(Err(error)) => break protocol_error_ending(&error),
                            None => break Ending::PeerGone(None),
                        }
                    }
                    _ = heartbeat.tick() => {
                        if last_heard.elapsed() >= self.limits.idle_timeout {
                            break Ending::Close(close::NORMAL, "idle timeout");
                        }
                        if Box::pin(session.ping(b"")).await.is_err() {
                            break Ending::PeerGone(None);
                        }
                    }
                }
            };
            Box::pin(self.finish(ending, session)).await;
        }
    }

    /// Leaves the rooms, counts the close and sends the close frame (if any).
    async fn finish(self, ending: Ending, session: Session) {
        if let Some(room) = &self.room {
            room.leave(self.socket).await;
        }
        if let Protocol::Multiplexed(multiplexed, _) = &self.protocol {
            let channels: Vec<RoomHandle> = multiplexed.borrow_mut().channels.drain().map(|(_, channel)| channel.room).collect();
            for room in channels {
                room.leave(self.socket).await;
            }
        }
        self.metrics.connections.dec();
        let reason = match ending {
            Ending::Close(code, reason) => {
                tracing::info!(code, reason, "closing connection");
                self.metrics.close_sent(code);
                Some(CloseReason { code: CloseCode::from(code), description: Some(reason.to_owned()) })
            }
            Ending::PeerGone(reason) => {
                tracing::debug!("peer closed");
                reason
            }
        };
        let _ = session.close(reason).await;
    }

    fn count_and_parse(&self, text: &str, message_prefix: &str) -> Result<crate::protocol::persister::Changes, crate::protocol::persister::IgnoredFrame> {
        self.count_in(text.len());
        parse_frame(text, message_prefix)
    }

    fn count_in(&self, bytes: usize) {
        self.counters.messages_in.inc();
        self.counters.bytes_in.inc_by(bytes as u64);
    }

    /// Handles one inbound message; `Some` ends the connection.
    async fn on_message(&self, message: AggregatedMessage, session: &mut Session) -> Option<Ending> {
        let payload = match &message {
            AggregatedMessage::Text(text) => Some(Ok(&**text)),
            // The synchronizer reads a binary frame as UTF-8 text.
            AggregatedMessage::Binary(bytes) => Some(std::str::from_utf8(bytes).map_err(|_| ())),
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
        let Protocol::Persister { message_prefix } = &self.protocol else { return self.on_control(message, session).await };
        match message {
            AggregatedMessage::Text(text) => match self.count_and_parse(&text, message_prefix) {
                Ok(_) if self.access == Access::Read => {
                    self.counters.refused_read_only.inc();
                    tracing::info!("dropping changes from a read-only connection");
                }
                Ok(changes) => {
                    let room = self.room.as_ref()?;
                    if room.send_changes(self.socket, self.connection_id.clone(), changes).await.is_err() {
                        return Some(Ending::Close(close::GOING_AWAY, "server shutting down"));
                    }
                }
                Err(ignored) => {
                    self.counters.ignored_invalid.inc();
                    tracing::debug!(reason = %ignored, "ignoring a frame");
                }
            },
            AggregatedMessage::Binary(_) => tracing::debug!("ignoring a binary frame"),
            control => return self.on_control(control, session).await,
        }
        None
    }

    /// Handles ping, pong and close; `Some` ends the connection.
    async fn on_control(&self, message: AggregatedMessage, session: &mut Session) -> Option<Ending> {
        match message {
            AggregatedMessage::Text(_) | AggregatedMessage::Binary(_) => {}
            AggregatedMessage::Ping(bytes) => {
                if session.pong(&bytes).await.is_err() {
                    return Some(Ending::PeerGone(None));
                }
            }
            AggregatedMessage::Pong(_) => {}
            AggregatedMessage::Close(reason) => return Some(Ending::PeerGone(reason.or(Some(CloseCode::Normal.into())))),
        }
        None
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
        let Some((recipient, remainder)) = payload.and_then(split) else { return self.invalid("not `recipient\\nmessage`") };
        let inbound = reassembly.borrow_mut().accept(&format!("{channel}\n{recipient}"), remainder, crate::room::now_ms());
        let (remainders, message) = match inbound {
            Ok(Inbound::Pending) => return None,
            Ok(Inbound::Message { remainders, message }) => (remainders, message),
            Err(FrameError::Invalid(reason)) => return self.invalid(reason),
            Err(FrameError::TooManyFragments(reason)) => {
                tracing::info!(reason, "closing a synchronizer socket over its fragment limits");
                return Some(Ending::Close(close::TRY_AGAIN_LATER, "tinybase:15:fragments"));
            }
        };
        let reads_only = matches!(
            message.kind,
            MessageType::GetContentHashes | MessageType::GetTableDiff | MessageType::GetRowDiff | MessageType::GetCellDiff | MessageType::GetValueDiff
        );
        if access == Access::Read && !reads_only {
            self.counters.refused_read_only.inc();
            tracing::debug!("dropping a message that carries data from a read-only connection");
            return None;
        }
        if room.send_sync(self.socket, recipient.to_owned(), remainders, message).await.is_err() {
            return Some(Ending::Close(close::GOING_AWAY, "server shutting down"));
        }
        None
    }

    /// Closes a synchronizer socket that sent something invalid (1007 `tinybase:14`).
    pub(super) fn invalid(&self, reason: &str) -> Option<Ending> {
        self.counters.ignored_invalid.inc();
        tracing::info!(reason, "closing a synchronizer socket that sent an invalid message");
        Some(Ending::Close(close::INVALID_PAYLOAD, "tinybase:14"))
    }
}

/// Sends `first` and then every frame already queued, without going back to the connection's
/// other work in between (a busy room queues several frames per round).
async fn send_ready_frames(session: &mut Session, outbox: &mut OutboxReceiver, first: bytestring::ByteString) -> Option<Ending> {
    let mut frame = first;
    loop {
        let len = frame.len();
        let sent = tokio::select! {
            sent = session.text(frame) => sent.is_ok(),
            order = outbox.closed() => return Some(Ending::Close(order.code, order.reason)),
        };
        outbox.sent(len);
        if !sent {
            return Some(Ending::PeerGone(None));
        }
        frame = outbox.try_frame()?;
    }
}

/// A limiter of `per_second` messages per second with bursts of twice that.
fn rate_limiter(per_second: u32) -> governor::DefaultDirectRateLimiter {
    let rate = std::num::NonZeroU32::new(per_second).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = rate.saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(std::num::NonZeroU32::MIN));
    governor::RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(burst))
}

/// The close that answers a broken inbound stream.
fn protocol_error_ending(error: &ProtocolError) -> Ending {
    match error {
        ProtocolError::Overflow => Ending::Close(close::MESSAGE_TOO_BIG, "message too big"),
        // actix-ws reports an over-long continuation and non-UTF-8 text as I/O errors.
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Ending::Close(close::INVALID_PAYLOAD, "text frame is not valid UTF-8")
        }
        ProtocolError::Io(io) if io.to_string().contains("continuation size") => {
            Ending::Close(close::MESSAGE_TOO_BIG, "message too big")
        }
        ProtocolError::Io(_) => Ending::PeerGone(None),
        other => {
            tracing::info!(error = %other, "websocket protocol error");
            Ending::Close(close::PROTOCOL_ERROR, "protocol error")
        }
    }
}

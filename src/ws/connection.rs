//! One websocket connection: joins its room before the upgrade is answered, then loops over
//! inbound frames (parsed here, off the room task), outbound frames from its bounded queue,
//! close orders from the room, and the heartbeat.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use tracing::Instrument;

use super::close;
use super::outbox::{outbox, Next, OutboxReceiver};
use crate::auth::Access;
use crate::config::Limits;
use crate::metrics::{Metrics, PartyCounters};
use crate::protocol::persister::parse_frame;
use crate::room::{IpClaim, JoinOutcome, RoomHandle, SocketId};

/// Everything a connection needs besides its socket.
pub struct Connection {
    /// The room the socket joins.
    pub room: RoomHandle,
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
    /// The party's message prefix.
    pub message_prefix: Arc<str>,
    /// Limits and timings.
    pub limits: Limits,
}

/// Answers a websocket upgrade for `room`: the socket is a member of the room before the 101
/// is returned, so it receives every broadcast made after the client sees it open.
pub async fn upgrade(req: &HttpRequest, payload: web::Payload, connection: Connection) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(req, payload)?;
    let limits = &connection.limits;
    let (outbox, receiver) = outbox(limits.outbound_buffer_bytes);
    match connection.room.join(connection.socket, connection.connection_id.clone(), outbox).await {
        Ok(JoinOutcome::Joined) => {}
        Ok(JoinOutcome::RoomFull) => {
            tracing::info!("refusing a websocket: the room is full");
            return Ok(HttpResponse::ServiceUnavailable().body("room is full"));
        }
        Ok(JoinOutcome::StorageFailed) => return Ok(HttpResponse::InternalServerError().body("room storage unavailable")),
        Err(_) => return Ok(HttpResponse::ServiceUnavailable().body("server shutting down")),
    }
    let stream = stream
        .max_frame_size(limits.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_message_bytes);
    let key = connection.room.key();
    let span = tracing::info_span!("conn", party = %key.party(), room = %key.room(), socket = connection.socket, id = %connection.connection_id);
    actix_web::rt::spawn(connection.run(session, stream, receiver).instrument(span));
    Ok(response)
}

/// Why the loop ended, and what close frame (if any) to send.
enum Ending {
    Close(u16, &'static str),
    /// The peer closed or vanished: answer its close frame if it sent one.
    PeerGone(Option<CloseReason>),
}

impl Connection {
    async fn run(self, mut session: Session, mut stream: AggregatedMessageStream, mut outbox: OutboxReceiver) {
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
                        let len = frame.len();
                        let sent = tokio::select! {
                            sent = session.text(frame) => sent.is_ok(),
                            order = outbox.closed() => break Ending::Close(order.code, order.reason),
                        };
                        outbox.sent(len);
                        if !sent {
                            break Ending::PeerGone(None);
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
                            if let Some(ending) = self.on_message(message, &mut session).await {
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
                    if session.ping(b"").await.is_err() {
                        break Ending::PeerGone(None);
                    }
                }
            }
        };
        self.room.leave(self.socket).await;
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

    /// Counts an inbound text frame and parses it.
    fn count_in(&self, text: &str) -> Result<crate::protocol::persister::Changes, crate::protocol::persister::IgnoredFrame> {
        self.counters.messages_in.inc();
        self.counters.bytes_in.inc_by(text.len() as u64);
        parse_frame(text, &self.message_prefix)
    }

    /// Handles one inbound message; `Some` ends the connection.
    async fn on_message(&self, message: AggregatedMessage, session: &mut Session) -> Option<Ending> {
        match message {
            AggregatedMessage::Text(text) => match self.count_in(&text) {
                Ok(_) if self.access == Access::Read => {
                    self.counters.refused_read_only.inc();
                    tracing::info!("dropping changes from a read-only connection");
                }
                Ok(changes) => {
                    if self.room.send_changes(self.socket, self.connection_id.clone(), changes).await.is_err() {
                        return Some(Ending::Close(close::GOING_AWAY, "server shutting down"));
                    }
                }
                Err(ignored) => {
                    self.counters.ignored_invalid.inc();
                    tracing::debug!(reason = %ignored, "ignoring a frame");
                }
            },
            AggregatedMessage::Binary(_) => tracing::debug!("ignoring a binary frame"),
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

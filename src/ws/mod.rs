//! Websocket connections: the upgrade into a room, the takeover of the stream from actix-http,
//! the frames and the socket on the bare stream, the per-connection loop (reading changes,
//! writing broadcasts, heartbeat, limits), the closing handshake (with a lingering close for a
//! refused client), the message rate and the watchdog whose stalls it forgives, multiplexed
//! synchronizer sockets, the bounded outbound queue and the backpressure that slows a room's
//! writers down to its readers.

pub mod backpressure;
mod connection;
pub mod frame;
mod linger;
pub mod multiplex;
pub mod outbox;
pub mod rate;
pub mod socket;
pub mod stall;
pub mod takeover;
pub mod tasks;

pub use connection::{upgrade, upgrade_with, Connection, Protocol};

/// The websocket close codes partyd sends.
pub mod close {
    /// The server is going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the websocket protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The client broke a policy (its message rate).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message was larger than `max_message_bytes`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server failed (storage error).
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The client stopped reading (slow consumer).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Normal closure (e.g. after a long silence from the client).
    pub const NORMAL: u16 = 1000;
    /// An operator deleted the room.
    pub const ROOM_DELETED: u16 = 4000;
}

//! The server's limits and timings, their defaults, and the overrides a party may make.

use std::path::Path;
use std::time::Duration;

use super::ConfigError;

/// Largest websocket message and HTTP body (16 MiB): over it, close 1009 / HTTP 413.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Unsent bytes one connection may hold before it is closed 1013 as a slow consumer (16 MiB).
/// Over half of it, the writers of its rooms are no longer read until it is down to a quarter.
pub const DEFAULT_OUTBOUND_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// A connection holding its rooms' writers back (over half its outbound buffer) whose client
/// takes no byte for this long is closed 1013 as a slow consumer.
pub const DEFAULT_SLOW_CONSUMER_TIMEOUT_SECONDS: u32 = 10;
/// How often the server pings each websocket.
pub const DEFAULT_PING_INTERVAL_SECONDS: u64 = 20;
/// A websocket silent this long (no frame at all, pongs included) is closed.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// How long the server's closing handshake may take (the client reading what is still unsent,
/// then the close frame) before the TCP connection is dropped.
pub const DEFAULT_CLOSE_GRACE_SECONDS: u64 = 2;
/// Commands a room may have queued before senders wait (backpressure, bounded memory).
pub const DEFAULT_ROOM_QUEUE: usize = 1024;
/// A room with no connections and no work leaves memory after this long (reloaded on next use).
pub const DEFAULT_IDLE_UNLOAD_SECONDS: u64 = 60;
/// The largest stored size of one room (256 MiB): a change over it is refused, a PUT gets 413.
pub const DEFAULT_MAX_ROOM_BYTES: usize = 256 * 1024 * 1024;
/// Sockets one room may hold: one more is answered 503.
pub const DEFAULT_MAX_CONNECTIONS_PER_ROOM: usize = 10_000;
/// Sockets one client IP may hold in one party: one more is answered 429.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
/// Messages per second one connection may send (bursts of twice that): over it, close 1008.
pub const DEFAULT_MESSAGES_PER_SECOND: u32 = 1000;
/// Rooms in memory at once (server-wide, or per party when a party sets it): a new room is answered 503.
pub const DEFAULT_MAX_LIVE_ROOMS: usize = 100_000;
/// How long a client may take to send a request's head (line and headers): then 408 and closed.
pub const DEFAULT_REQUEST_HEAD_TIMEOUT_SECONDS: u64 = 5;
/// How long a client may take to send a whole request body: then 408 and closed. Room for a
/// store of a few MiB over a slow link; a stalled body holds a connection no longer.
pub const DEFAULT_REQUEST_BODY_TIMEOUT_SECONDS: u64 = 30;
/// HTTP connections one client address may hold at once (websockets not counted once upgraded):
/// one more is answered 429 and closed. Browsers open about six to one server.
pub const DEFAULT_MAX_HTTP_CONNECTIONS_PER_IP: usize = 256;
/// Connections the kernel may queue before partyd accepts them (capped by the kernel's
/// `net.core.somaxconn`).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// Limits and timings of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest websocket message and HTTP body.
    pub max_message_bytes: usize,
    /// Unsent bytes a connection may hold before it is cut off; over half, writers wait.
    pub outbound_buffer_bytes: usize,
    /// How long (seconds) a connection holding writers back may take no byte before it is cut
    /// off. A `u32`, not a `Duration`: it fits the padding after `messages_per_second`, and each
    /// connection keeps a copy of its limits (16 bytes more would move every idle socket's task
    /// to a bigger allocation).
    pub slow_consumer_timeout_seconds: u32,
    /// Websocket ping period.
    pub ping_interval: Duration,
    /// Silence after which a websocket is closed.
    pub idle_timeout: Duration,
    /// How long the server's closing handshake may take.
    pub close_grace: Duration,
    /// Bound of each room's command queue.
    pub room_queue: usize,
    /// How long a room without connections or work stays in memory.
    pub idle_unload: Duration,
    /// Largest stored size of one room.
    pub max_room_bytes: usize,
    /// Sockets one room may hold.
    pub max_connections_per_room: usize,
    /// Sockets one client IP may hold in one party.
    pub max_connections_per_ip: usize,
    /// Messages per second per connection (bursts of twice that).
    pub messages_per_second: u32,
    /// Rooms in memory at once.
    pub max_live_rooms: usize,
    /// How long a request's head may take to arrive (server-wide).
    pub request_head_timeout: Duration,
    /// How long a request's whole body may take to arrive (server-wide).
    pub request_body_timeout: Duration,
    /// HTTP connections one client address may hold (server-wide).
    pub max_http_connections_per_ip: usize,
}

impl Limits {
    /// How long a connection holding writers back may take no byte before it is cut off.
    pub fn slow_consumer_timeout(&self) -> Duration {
        Duration::from_secs(self.slow_consumer_timeout_seconds.into())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            outbound_buffer_bytes: DEFAULT_OUTBOUND_BUFFER_BYTES,
            slow_consumer_timeout_seconds: DEFAULT_SLOW_CONSUMER_TIMEOUT_SECONDS,
            ping_interval: Duration::from_secs(DEFAULT_PING_INTERVAL_SECONDS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECONDS),
            close_grace: Duration::from_secs(DEFAULT_CLOSE_GRACE_SECONDS),
            room_queue: DEFAULT_ROOM_QUEUE,
            idle_unload: Duration::from_secs(DEFAULT_IDLE_UNLOAD_SECONDS),
            max_room_bytes: DEFAULT_MAX_ROOM_BYTES,
            max_connections_per_room: DEFAULT_MAX_CONNECTIONS_PER_ROOM,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            messages_per_second: DEFAULT_MESSAGES_PER_SECOND,
            max_live_rooms: DEFAULT_MAX_LIVE_ROOMS,
            request_head_timeout: Duration::from_secs(DEFAULT_REQUEST_HEAD_TIMEOUT_SECONDS),
            request_body_timeout: Duration::from_secs(DEFAULT_REQUEST_BODY_TIMEOUT_SECONDS),
            max_http_connections_per_ip: DEFAULT_MAX_HTTP_CONNECTIONS_PER_IP,
        }
    }
}

/// The limits a party may override (read from the server section or a party section).
#[derive(Default, Clone, Copy)]
pub(super) struct OverridableLimits {
    pub(super) max_message_bytes: Option<usize>,
    pub(super) max_room_bytes: Option<usize>,
    pub(super) max_connections_per_room: Option<usize>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) messages_per_second: Option<u32>,
    pub(super) max_live_rooms: Option<usize>,
}

/// Takes the overridable limits out of a server or party section (named fields, so that
/// messages about them name the key).
macro_rules! overridable_limits {
    ($section:expr) => {
        OverridableLimits {
            max_message_bytes: $section.max_message_bytes,
            max_room_bytes: $section.max_room_bytes,
            max_connections_per_room: $section.max_connections_per_room,
            max_connections_per_ip: $section.max_connections_per_ip,
            messages_per_second: $section.messages_per_second,
            max_live_rooms: $section.max_live_rooms,
        }
    };
}

impl OverridableLimits {
    /// `base` with these overrides; `section` names them in messages.
    pub(super) fn apply(self, base: &Limits, source: &Path, section: &str) -> Result<Limits, ConfigError> {
        let positive = |value: Option<usize>, default: usize, key: &str| match value {
            Some(0) => Err(ConfigError::Invalid {
                path: source.to_path_buf(),
                key: format!("{section}.{key}"),
                message: "must be greater than 0".into(),
            }),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        Ok(Limits {
            max_message_bytes: positive(self.max_message_bytes, base.max_message_bytes, "max_message_bytes")?,
            max_room_bytes: positive(self.max_room_bytes, base.max_room_bytes, "max_room_bytes")?,
            max_connections_per_room: positive(
                self.max_connections_per_room,
                base.max_connections_per_room,
                "max_connections_per_room",
            )?,
            max_connections_per_ip: positive(
                self.max_connections_per_ip,
                base.max_connections_per_ip,
                "max_connections_per_ip",
            )?,
            messages_per_second: positive(
                self.messages_per_second.map(|n| n as usize),
                base.messages_per_second as usize,
                "messages_per_second",
            )?
            .try_into()
            .unwrap_or(u32::MAX),
            max_live_rooms: positive(self.max_live_rooms, base.max_live_rooms, "max_live_rooms")?,
            ..base.clone()
        })
    }
}

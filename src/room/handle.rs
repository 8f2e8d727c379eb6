//! The cheap-clone handle through which HTTP handlers and connections talk to a room task,
//! and the commands it carries.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::RoomKey;
use crate::protocol::mergeable::frame::SyncMessage;
use crate::protocol::persister::{Changes, Content};
use crate::ws::backpressure::Pressure;
use crate::ws::outbox::Outbox;

/// Identifies one websocket within the whole server (several sockets may share a connection id).
pub type SocketId = u64;

/// The room task has stopped (the server is shutting down); the request cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("room is not running")]
pub struct RoomGone;

/// Whether a socket could join.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// It is a member now.
    Joined,
    /// The room holds `max_connections_per_room` sockets already (503).
    RoomFull,
    /// The room could not be loaded from storage (500).
    StorageFailed,
}

/// How a PUT of the whole store ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PutResult {
    /// Saved and flushed; the room may now have a store (201).
    Saved,
    /// The room already had a store; nothing changed (205).
    AlreadyHasStore,
    /// The content is larger than `max_room_bytes` (413).
    TooLarge,
    /// Storage failed; nothing was acknowledged (500).
    StorageFailed,
}

/// What a GET of the store found.
#[derive(Debug, PartialEq, Eq)]
pub enum GetResult {
    /// The GET body: `[tables, values]`.
    Store(Bytes),
    /// The room has no store yet.
    NoStore,
    /// The room could not be read from storage.
    StorageFailed,
}

/// A look inside a room, for operators (the admin API's debug dump).
#[derive(Debug)]
pub struct Inspection {
    /// The GET body, or `None` when the room has no store.
    pub content: Option<String>,
    /// The stored entries in TinyBase's key layout (with the party's storage prefix), as
    /// (key, JSON value), in TinyBase's key order.
    pub reference_entries: Vec<(String, String)>,
    /// The connection id of every socket in the room.
    pub connection_ids: Vec<String>,
}

/// How a server-side write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerWriteResult {
    /// Saved and broadcast: the accepted changes as JSON `[tables, values, 1]`.
    Applied(String),
    /// Nothing in the changes was accepted (empty tables and rows only).
    NothingAccepted,
    /// The room has no store.
    NoStore,
    /// Storage failed; nothing was saved or broadcast.
    StorageFailed,
}

/// What a room task shares with its handles: counters to read without asking it, and its gate.
/// Written only when they change, so that connections reading the gate on every message do not
/// contend for the cache line.
#[derive(Debug, Default)]
pub struct RoomStats {
    /// Sockets in the room.
    pub connections: AtomicUsize,
    /// [`BUSY`], [`PARKED`] or [`EVICTED`]: whether the registry may make the room leave
    /// memory to make way for another (see `registry::LiveRooms::park`).
    parking: AtomicU8,
    /// Held while an outbox of the room is over its pause mark: its writers wait. Reached
    /// through here, not from the handle: every connection holds a handle.
    pub pressure: Arc<Pressure>,
}

/// The task is running, or waiting with sockets or work: it stays.
const BUSY: u8 = 0;
/// The task waits with no sockets and nothing to do: the registry may make it leave.
const PARKED: u8 = 1;
/// The registry made it leave: it must stop without touching storage.
const EVICTED: u8 = 2;

impl RoomStats {
    /// The task is about to wait idle.
    pub(crate) fn park(&self) {
        self.parking.store(PARKED, Ordering::Release);
    }

    /// The task woke; false if the registry made it leave first (then it must stop). Exactly
    /// one of this and [`RoomStats::evict`] wins a parked room.
    pub(crate) fn wake(&self) -> bool {
        self.parking.compare_exchange(PARKED, BUSY, Ordering::AcqRel, Ordering::Acquire) != Err(EVICTED)
    }

    /// Makes a parked room leave; false if it is not parked.
    fn evict(&self) -> bool {
        self.parking.compare_exchange(PARKED, EVICTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// The commands a room task handles, one at a time, in arrival order.
pub(crate) enum Command {
    Join {
        socket: SocketId,
        connection_id: Arc<str>,
        outbox: Outbox,
        channel: Option<Arc<str>>,
        joined: oneshot::Sender<JoinOutcome>,
    },
    Leave {
        socket: SocketId,
    },
    Changes {
        socket: SocketId,
        connection_id: Arc<str>,
        changes: Changes,
    },
    Put {
        content: Content,
        reply: oneshot::Sender<PutResult>,
    },
    Get {
        reply: oneshot::Sender<GetResult>,
    },
    GetMergeable {
        reply: oneshot::Sender<GetResult>,
    },
    Sync {
        socket: SocketId,
        recipient: String,
        remainders: Vec<String>,
        message: SyncMessage,
    },
    Inspect {
        reply: oneshot::Sender<Option<Inspection>>,
    },
    Delete {
        reply: oneshot::Sender<bool>,
    },
    ServerChanges {
        changes: Changes,
        reply: oneshot::Sender<ServerWriteResult>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// Answers once everything queued before it is handled and its frames delivered (a
    /// writer's bytes in flight, see [`crate::ws::backpressure`]).
    Handled {
        done: oneshot::Sender<()>,
    },
}

/// A live room, as seen from outside its task.
#[derive(Clone)]
pub struct RoomHandle {
    key: RoomKey,
    commands: mpsc::Sender<Command>,
    stats: Arc<RoomStats>,
}

impl RoomHandle {
    pub(crate) fn new(key: RoomKey, commands: mpsc::Sender<Command>, stats: Arc<RoomStats>) -> Self {
        Self { key, commands, stats }
    }

    /// Held while an outbox of the room is over its pause mark: writers wait before reading on.
    pub fn pressure(&self) -> &Arc<Pressure> {
        &self.stats.pressure
    }

    /// True when both handles reach the same room task.
    pub fn same_room(&self, other: &RoomHandle) -> bool {
        Arc::ptr_eq(&self.stats, &other.stats)
    }

    /// Sockets in the room now.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// Which room this is.
    pub fn key(&self) -> &RoomKey {
        &self.key
    }

    /// True once the room task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Whether this handle belongs to the task that keeps `stats`.
    pub(crate) fn has_stats(&self, stats: &Arc<RoomStats>) -> bool {
        Arc::ptr_eq(&self.stats, stats)
    }

    /// Makes the room's task stop if nothing can be waiting on it: this is the only handle
    /// (sockets and requests in flight hold their own), no command is queued, and the task is
    /// parked. Call with the registry's lock held (handles are cloned only under it); once it
    /// returns true, dropping this handle ends the task.
    pub(crate) fn try_evict(&self) -> bool {
        self.commands.strong_count() == 1
            && self.commands.capacity() == self.commands.max_capacity()
            && self.stats.evict()
    }

    async fn send(&self, command: Command) -> Result<(), RoomGone> {
        self.commands.send(command).await.map_err(|_| RoomGone)
    }

    /// Makes a socket a member of the room; it receives every broadcast made after this returns.
    pub async fn join(
        &self,
        socket: SocketId,
        connection_id: Arc<str>,
        outbox: Outbox,
    ) -> Result<JoinOutcome, RoomGone> {
        let (joined, answer) = oneshot::channel();
        self.send(Command::Join { socket, connection_id, outbox, channel: None, joined }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Makes one channel of a multiplexed socket a member: every frame the room sends it is
    /// wrapped as `M\n<channel>\n<frame>`.
    pub async fn join_channel(
        &self,
        socket: SocketId,
        connection_id: Arc<str>,
        outbox: Outbox,
        channel: Arc<str>,
    ) -> Result<JoinOutcome, RoomGone> {
        let (joined, answer) = oneshot::channel();
        self.send(Command::Join { socket, connection_id, outbox, channel: Some(channel), joined }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Ends a socket's membership (its other sockets with the same connection id stay).
    pub async fn leave(&self, socket: SocketId) {
        // A room that is gone has no membership to end.
        let _ = self.send(Command::Leave { socket }).await;
    }

    /// Queues validated changes from a connection; applied, flushed, then broadcast.
    /// A change that would make the room larger than `max_room_bytes` is refused, and the
    /// sending socket (only) gets the stored truth back.
    pub async fn send_changes(
        &self,
        socket: SocketId,
        connection_id: Arc<str>,
        changes: Changes,
    ) -> Result<(), RoomGone> {
        self.send(Command::Changes { socket, connection_id, changes }).await
    }

    /// Saves a validated initial store; answers once it is durable.
    pub async fn put(&self, content: Content) -> Result<PutResult, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Put { content, reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Reads the store as the GET body; never sees a change that is not yet durable.
    pub async fn get(&self) -> Result<GetResult, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Get { reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// A `tinybase-sync` room's merged store with stamps and hashes (TinyBase's encoded
    /// mergeable content); `StorageFailed` for other kinds.
    pub async fn get_mergeable(&self) -> Result<GetResult, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::GetMergeable { reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Queues one valid synchronizer message from a socket of a `tinybase-sync` room, addressed
    /// to `recipient` (`""` everyone, `S` the server); `remainders` are relayed byte for byte.
    pub async fn send_sync(
        &self,
        socket: SocketId,
        recipient: String,
        remainders: Vec<String>,
        message: SyncMessage,
    ) -> Result<(), RoomGone> {
        self.send(Command::Sync { socket, recipient, remainders, message }).await
    }

    /// The room's content, stored entries and connections; `None` if it cannot be loaded.
    pub async fn inspect(&self) -> Result<Option<Inspection>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Inspect { reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Deletes the room's data and closes its sockets with 4000; `false` if storage failed.
    pub async fn delete(&self) -> Result<bool, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Delete { reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Applies changes from the server itself: saved, then broadcast to every socket.
    pub async fn server_changes(&self, changes: Changes) -> Result<ServerWriteResult, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ServerChanges { changes, reply }).await?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Asks the room to answer once everything queued before is handled and delivered.
    pub async fn handled(&self) -> Result<oneshot::Receiver<()>, RoomGone> {
        let (done, answer) = oneshot::channel();
        self.send(Command::Handled { done }).await?;
        Ok(answer)
    }

    /// Asks the room to finish its queued work, close its sockets with 1001 and stop.
    pub(crate) async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.send(Command::Shutdown { done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

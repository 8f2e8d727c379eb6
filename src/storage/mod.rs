//! Storage: the one sled database behind a small trait. It knows rooms, keys and bytes — not
//! HTTP, websockets or TinyBase. Writes are atomic batches; durability comes from
//! [`Storage::durable`], a group commit shared by every room.

mod applier;
#[cfg(test)]
mod crash_tests;
mod flusher;
mod image;
mod journal;
pub mod layout;
mod leftovers;
mod ops;
mod pool;
pub mod recover;
mod sled_store;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

pub use flusher::{FlushObserver, FlushStats, Pacing};
pub use pool::StoragePool;
/// The free space partyd keeps in reserve under the data dir by default: sled is not offered a
/// batch that would leave less (see `applier`).
pub const DEFAULT_RESERVE_BYTES: u64 = 32 << 20;
pub use sled_store::SledStorage;

/// The longest a group commit waits to gather more (see `flusher`): 8 ms.
pub const DEFAULT_GROUP_COMMIT_WINDOW: std::time::Duration = std::time::Duration::from_millis(8);

/// Which room: a party and a room name.
#[derive(Clone, Copy, Debug)]
pub struct RoomPath<'a> {
    /// The party's name.
    pub party: &'a str,
    /// The room's name.
    pub room: &'a str,
}

/// One write inside a room: `value: None` removes the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryWrite {
    /// The entry key, without the room prefix.
    pub key: Vec<u8>,
    /// The new value, or `None` to remove the entry.
    pub value: Option<Vec<u8>>,
}

/// Storage failed. Kept apart from every "request rejected" error: this is the server's fault.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process holds the data dir.
    #[error("data dir {path} is in use by another process (locked); stop it or choose another --data-dir")]
    Locked {
        /// The data dir.
        path: PathBuf,
    },
    /// The database on disk cannot be read.
    #[error("data dir {path} is corrupt ({detail}); nothing was deleted or repaired")]
    Corrupt {
        /// The data dir.
        path: PathBuf,
        /// What sled said.
        detail: String,
    },
    /// The journal cannot be replayed whole: starting would lose acknowledged writes.
    #[error(
        "journal in data dir {path} cannot be fully replayed: {detail}; start refused, nothing was changed; \
         run `partyd recover` to replay what can be read and move the damaged journal aside"
    )]
    Journal {
        /// The data dir.
        path: PathBuf,
        /// Each file and what is wrong with it.
        detail: String,
    },
    /// An I/O or engine error (shared by every waiter of a failed flush).
    #[error("storage error: {0}")]
    Io(Arc<str>),
    /// The file system has no room for the write (or less than the reserve partyd keeps);
    /// writes are refused until space returns, reads go on.
    #[error("storage full: {0}")]
    Full(Arc<str>),
    /// Storage did not answer in time (a stalled disk); the call may still complete.
    #[error("storage stalled: {0}")]
    Stalled(Arc<str>),
}

impl StorageError {
    /// Whether this is a full disk rather than a fault.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

/// Resolves once everything written before [`Storage::durable`] was called is on disk.
pub struct DurableTicket {
    answer: oneshot::Receiver<Result<(), StorageError>>,
}

impl DurableTicket {
    pub(crate) fn new(answer: oneshot::Receiver<Result<(), StorageError>>) -> Self {
        Self { answer }
    }

    /// A ticket that already failed.
    pub fn failed(error: StorageError) -> Self {
        let (sender, answer) = oneshot::channel();
        let _ = sender.send(Err(error));
        Self { answer }
    }
}

impl DurableTicket {
    /// Blocks the calling thread until the ticket resolves (for shutdown and the offline
    /// commands, which have nothing else to do meanwhile).
    pub fn wait(self) -> Result<(), StorageError> {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut context = Context::from_waker(&waker);
        let mut ticket = std::pin::pin!(self);
        loop {
            if let Poll::Ready(result) = ticket.as_mut().poll(&mut context) {
                return result;
            }
            std::thread::park();
        }
    }
}

impl Future for DurableTicket {
    type Output = Result<(), StorageError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or_else(|_| Err(StorageError::Io("the flusher has stopped".into()))))
    }
}

/// A room's round whose commit has not started yet: the room may add to it until the commit
/// takes it, so changes that arrive while the round waits for its group commit join that
/// commit instead of waiting for the next one.
#[derive(Debug, Default)]
pub struct OpenRound {
    /// The writes so far and the room's stored size after them; `None` once the commit took them.
    pending: std::sync::Mutex<Option<PendingWrites>>,
}

/// What an [`OpenRound`] holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PendingWrites {
    /// The round's writes, in order.
    pub writes: Vec<EntryWrite>,
    /// The room's stored size after them.
    pub stored_bytes: u64,
    /// How many messages the writes came from: the load by which commits are paced.
    pub messages: usize,
}

/// An [`OpenRound`] held open: its commit cannot take it until this is dropped.
pub struct Joining<'a>(std::sync::MutexGuard<'a, Option<PendingWrites>>);

impl OpenRound {
    /// An open round of `writes` from `messages` messages, leaving the room `stored_bytes` big.
    pub fn new(writes: Vec<EntryWrite>, stored_bytes: u64, messages: usize) -> Self {
        Self { pending: std::sync::Mutex::new(Some(PendingWrites { writes, stored_bytes, messages })) }
    }

    /// Holds the round open to add to it; `None` once its commit has taken it.
    pub fn try_join(&self) -> Option<Joining<'_>> {
        let pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.is_some().then_some(Joining(pending))
    }

    /// Takes the writes for the commit; nothing can join after this.
    pub fn close(&self) -> PendingWrites {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().unwrap_or_default()
    }
}

impl Joining<'_> {
    /// Adds one more message's `writes` after the round's, leaving the room `stored_bytes` big.
    pub fn add(&mut self, writes: Vec<EntryWrite>, stored_bytes: u64) {
        if let Some(pending) = self.0.as_mut() {
            pending.writes.extend(writes);
            pending.stored_bytes = stored_bytes;
            pending.messages += 1;
        }
    }
}

/// A room's entries: (entry key without the room prefix, value), in key order.
pub type RoomEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// What the index knows of a stored room, updated by every write in the same batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomMeta {
    /// The room's stored size as its kind counts it (ids and cell texts).
    pub stored_bytes: u64,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
}

/// A stored room, as listed from the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room's name.
    pub room: String,
    /// Its size and last write.
    pub meta: RoomMeta,
}

/// What rooms need from a storage engine.
pub trait Storage: Send + Sync + 'static {
    /// Every entry of a room in key order: (entry key without the room prefix, value).
    fn load_room(&self, room: RoomPath<'_>) -> Result<RoomEntries, StorageError>;
    /// Calls `visit` with every entry of a room (key without the room prefix, value), in key
    /// order, without collecting them first.
    fn visit_room(
        &self,
        room: RoomPath<'_>,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StorageError> {
        for (key, value) in self.load_room(room)? {
            visit(&key, &value);
        }
        Ok(())
    }
    /// Applies the writes, and the room's index entry (`stored_bytes`, now), as one atomic
    /// batch. Not durable until [`Storage::durable`] says so.
    fn write(
        &self,
        room: RoomPath<'_>,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
    ) -> Result<(), StorageError>;
    /// Removes every entry of a room and its index entry, as one atomic batch (not yet durable).
    fn delete_room(&self, room: RoomPath<'_>) -> Result<(), StorageError>;
    /// Group commit: a ticket that resolves once everything written so far is flushed.
    fn durable(&self) -> DurableTicket;
    /// A room's round: deletes the room first if asked, then applies `writes` and its index
    /// entry atomically; the ticket resolves once that is durable. An engine may queue the
    /// work and commit many rooms' rounds together (sled: one batch and one flush).
    fn commit(
        &self,
        room: RoomPath<'_>,
        delete_room: bool,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
    ) -> DurableTicket {
        let applied = (|| {
            if delete_room {
                self.delete_room(room)?;
            }
            if !writes.is_empty() {
                self.write(room, writes, stored_bytes)?;
            }
            Ok(())
        })();
        match applied {
            Ok(()) => self.durable(),
            Err(error) => DurableTicket::failed(error),
        }
    }
    /// Like [`Storage::commit`], but the round stays open to later writes of the same room
    /// until its commit starts (see [`OpenRound`]); engines that cannot do that commit it as
    /// it is and return no open round. `messages` is how many messages the writes came from
    /// (engines that pace their group commits pace by it).
    fn commit_open(
        &self,
        room: RoomPath<'_>,
        delete_room: bool,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
        _messages: usize,
    ) -> (DurableTicket, Option<Arc<OpenRound>>) {
        (self.commit(room, delete_room, writes, stored_bytes), None)
    }
    /// Writes an image of the room (all its entries in one value) so that its next load reads
    /// one value instead of iterating its keys; any later write to the room removes it. Only a
    /// faster copy: not durable until the next flush, and losing it costs nothing but speed.
    /// Call only from the room's one writer. Engines without images do nothing.
    fn save_image(&self, _room: RoomPath<'_>) -> Result<(), StorageError> {
        Ok(())
    }
    /// Makes everything written so far durable, blocking (used at shutdown and by the offline
    /// commands).
    fn flush(&self) -> Result<(), StorageError>;
    /// A party's stored rooms in name order (bytewise), those starting with `prefix` and
    /// coming after `after`, at most `limit`.
    fn list_rooms(
        &self,
        party: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRoom>, StorageError>;
    /// Whether the room has anything stored: the index holds every room written and not
    /// deleted since. Sees every acknowledged round, like the reads above.
    fn is_stored(&self, room: RoomPath<'_>) -> Result<bool, StorageError> {
        let listed = self.list_rooms(room.party, room.room, None, 1)?;
        Ok(listed.first().is_some_and(|stored| stored.room == room.room))
    }
    /// Every stored room of every party, as (party, room), parties and rooms in name order.
    fn all_rooms(&self) -> Result<Vec<(String, String)>, StorageError>;
    /// Why writes cannot be made durable now, if they cannot (a full disk, a failing engine):
    /// what `/readyz` reports and how refusals are worded.
    fn write_failure(&self) -> Option<StorageError> {
        None
    }
    /// Counters of the group-commit flusher.
    fn flush_stats(&self) -> FlushStats;
    /// Calls `observer` with the duration and the number of waiters of every flush from now on.
    fn observe_flushes(&self, observer: FlushObserver);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str) -> EntryWrite {
        EntryWrite { key: key.as_bytes().to_vec(), value: Some(b"1".to_vec()) }
    }

    #[test]
    fn an_open_round_counts_the_messages_that_join_it_until_it_is_closed() {
        let round = OpenRound::new(vec![set("a")], 1, 3);
        round.try_join().expect("open").add(vec![set("b"), set("c")], 2);
        round.try_join().expect("open").add(Vec::new(), 2);
        let closed = round.close();
        assert_eq!(
            closed,
            PendingWrites { writes: vec![set("a"), set("b"), set("c")], stored_bytes: 2, messages: 5 }
        );
        assert!(round.try_join().is_none(), "nothing joins a closed round");
        assert_eq!(round.close(), PendingWrites::default());
    }
}

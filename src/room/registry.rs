//! The registry of live rooms: finds a room's task or starts it (loading the room from storage
//! on first touch), lets idle rooms leave memory, hands out socket ids, and shuts every room
//! down at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::handle::{Command, RoomGone, RoomHandle, RoomStats, SocketId};
use super::task::RoomTask;
use super::RoomKey;
use crate::config::{Limits, PartyConfig};
use crate::metrics::Metrics;
use crate::storage::Storage;

/// The map of live rooms, shared by the registry and the room tasks (which retire themselves).
#[derive(Default)]
pub(crate) struct LiveRooms {
    rooms: Mutex<HashMap<RoomKey, RoomHandle>>,
}

impl LiveRooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomKey, RoomHandle>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes an idle room if nothing can reach it any more: no command is queued and the
    /// registry holds the only handle (handles are only cloned under this lock, so none can
    /// appear meanwhile). Returns whether the room was removed; its task must then stop.
    pub(crate) fn retire(&self, key: &RoomKey, commands: &mpsc::Receiver<Command>) -> bool {
        let mut rooms = self.lock();
        if commands.sender_strong_count() > 1 || !commands.is_empty() {
            return false;
        }
        rooms.remove(key);
        true
    }
}

/// What is live of one party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartySummary {
    /// Rooms in memory.
    pub live_rooms: usize,
    /// Sockets in those rooms.
    pub connections: usize,
}

/// Every live room of the server.
pub struct Rooms {
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    limits: Limits,
    live: Arc<LiveRooms>,
    next_socket: AtomicU64,
    accepting: AtomicBool,
}

impl Rooms {
    /// An empty registry over `storage`.
    pub fn new(storage: Arc<dyn Storage>, limits: &Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            storage,
            metrics,
            limits: limits.clone(),
            live: Arc::default(),
            next_socket: AtomicU64::new(1),
            accepting: AtomicBool::new(true),
        }
    }

    /// The room's handle, starting its task if the room is not live yet.
    /// Must be called from within a Tokio runtime.
    pub fn room(&self, party: &PartyConfig, key: RoomKey) -> Result<RoomHandle, RoomGone> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(RoomGone);
        }
        let mut live = self.live.lock();
        if let Some(handle) = live.get(&key).filter(|handle| !handle.is_closed()) {
            return Ok(handle.clone());
        }
        let (commands, receiver) = mpsc::channel(self.limits.room_queue);
        let stats = Arc::new(RoomStats::default());
        let handle = RoomHandle::new(key.clone(), commands, stats.clone());
        let task = RoomTask::new(key.clone(), self.storage.clone(), party, stats, self.metrics.clone());
        tokio::spawn(task.run(receiver, self.live.clone(), self.limits.idle_unload));
        live.insert(key, handle.clone());
        Ok(handle)
    }

    /// A server-wide unique id for a new socket.
    pub fn next_socket_id(&self) -> SocketId {
        self.next_socket.fetch_add(1, Ordering::Relaxed)
    }

    /// How many rooms are in memory.
    pub fn live_count(&self) -> usize {
        self.live.lock().len()
    }

    /// Rooms in memory and their sockets, for one party.
    pub fn party_summary(&self, party: &str) -> PartySummary {
        let live = self.live.lock();
        let rooms = live.iter().filter(|(key, _)| key.party() == party);
        rooms.fold(PartySummary::default(), |summary, (_, handle)| PartySummary {
            live_rooms: summary.live_rooms + 1,
            connections: summary.connections + handle.connections(),
        })
    }

    /// The live room's handle, without starting it.
    pub fn live_room(&self, key: &RoomKey) -> Option<RoomHandle> {
        self.live.lock().get(key).filter(|handle| !handle.is_closed()).cloned()
    }

    /// Stops starting rooms, then lets every live room finish its queued work, close its
    /// sockets with 1001 and stop.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::Release);
        let handles: Vec<RoomHandle> = self.live.lock().drain().map(|(_, handle)| handle).collect();
        futures_util::future::join_all(handles.iter().map(RoomHandle::shutdown)).await;
    }
}

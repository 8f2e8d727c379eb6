//! The registry of live rooms: finds a room's task or starts it (loading the room from storage
//! on first touch, within the live-room limits), lets idle rooms leave memory, counts sockets per
//! client IP, hands out socket ids, and shuts every room down at the end.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::handle::{Command, RoomHandle, RoomStats, SocketId};
use super::persisted::room_path;
use super::task::RoomTask;
use super::RoomKey;
use crate::config::{Limits, PartyConfig};
use crate::log_limit::limited;
use crate::metrics::Metrics;
use crate::storage::{Storage, StoragePool};

/// Why a room cannot be reached.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The server is shutting down.
    #[error("server shutting down")]
    ShuttingDown,
    /// `max_live_rooms` rooms are in memory already (server-wide or in this party).
    #[error("too many live rooms")]
    TooManyRooms,
}

/// A live room: its handle, and its place among the parked rooms while it has one.
struct Live {
    handle: RoomHandle,
    parked: Option<u64>,
}

#[derive(Default)]
struct LiveMap {
    handles: HashMap<RoomKey, Live>,
    per_party: HashMap<String, usize>,
    /// Each party's parked rooms (no sockets, nothing to do) in the order they parked: when
    /// the live-room limit is reached, the room parked longest makes way for the new one. An
    /// entry may be stale (the room woke since); it is dropped when it is reached.
    parked: HashMap<String, BTreeMap<u64, RoomKey>>,
    next_parked: u64,
}

impl LiveMap {
    fn remove(&mut self, key: &RoomKey) {
        let Some(live) = self.handles.remove(key) else { return };
        if let Some(count) = self.per_party.get_mut(key.party()) {
            *count = count.saturating_sub(1);
        }
        if let Some(order) = live.parked {
            self.unpark(key.party(), order);
        }
    }

    fn unpark(&mut self, party: &str, order: u64) {
        if let Some(parked) = self.parked.get_mut(party) {
            parked.remove(&order);
        }
    }

    /// Makes the room parked longest leave memory (of `party`, or of any party): true if one
    /// did. Rooms that woke since they parked are passed over (and listed again when they
    /// park again), so each parking is looked at once at most.
    fn evict_parked(&mut self, party: Option<&str>) -> bool {
        loop {
            let oldest = match party {
                Some(party) => self.parked.get(party).and_then(|parked| parked.first_key_value()),
                None => self
                    .parked
                    .values()
                    .filter_map(BTreeMap::first_key_value)
                    .min_by_key(|(order, _)| **order),
            };
            let Some((&order, key)) = oldest else { return false };
            let key = key.clone();
            self.unpark(key.party(), order);
            let Some(live) = self.handles.get_mut(&key).filter(|live| live.parked == Some(order)) else {
                continue;
            };
            live.parked = None;
            if live.handle.try_evict() {
                tracing::debug!(
                    party = key.party(),
                    room = key.room(),
                    "a parked room leaves memory for a new one"
                );
                self.remove(&key);
                return true;
            }
        }
    }
}

/// The map of live rooms, shared by the registry and the room tasks (which retire themselves).
#[derive(Default)]
pub(crate) struct LiveRooms {
    rooms: Mutex<LiveMap>,
}

impl LiveRooms {
    fn lock(&self) -> MutexGuard<'_, LiveMap> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The room's task is about to wait with no sockets and nothing to do: until it wakes, the
    /// registry may make it leave memory to make way for a new room over the live-room limit,
    /// instead of refusing that room. Such a room is cheap to let go: all it wrote is
    /// acknowledged, and it loads again on next use. So rooms that a client merely touched
    /// (and left) never hold the limit against others; only rooms with sockets or work do, and
    /// sockets are bounded per client address (`max_connections_per_ip`).
    pub(crate) fn park(&self, key: &RoomKey, stats: &Arc<RoomStats>) {
        let mut guard = self.lock();
        let rooms = &mut *guard;
        stats.park();
        let Some(live) = rooms.handles.get_mut(key).filter(|live| live.handle.has_stats(stats)) else {
            return;
        };
        let order = rooms.next_parked;
        rooms.next_parked += 1;
        if let Some(previous) = live.parked.replace(order) {
            rooms.unpark(key.party(), previous);
        }
        match rooms.parked.get_mut(key.party()) {
            Some(parked) => drop(parked.insert(order, key.clone())),
            None => drop(rooms.parked.insert(key.party().to_owned(), BTreeMap::from([(order, key.clone())]))),
        }
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

/// Sockets per (party, client IP).
type IpCounts = Mutex<HashMap<(String, IpAddr), usize>>;

/// One socket's share of its IP's count; given back when dropped.
pub struct IpClaim {
    counts: Arc<IpCounts>,
    key: (String, IpAddr),
}

impl Drop for IpClaim {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Every live room of the server.
pub struct Rooms {
    storage: Arc<dyn Storage>,
    /// Where rooms make their blocking storage calls.
    pool: StoragePool,
    metrics: Arc<Metrics>,
    limits: Limits,
    live: Arc<LiveRooms>,
    ips: Arc<IpCounts>,
    next_socket: AtomicU64,
    accepting: AtomicBool,
}

/// What is live of one party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartySummary {
    /// Rooms in memory.
    pub live_rooms: usize,
    /// Sockets in those rooms.
    pub connections: usize,
}

impl Rooms {
    /// An empty registry over `storage`; `limits` are the server's (for `max_live_rooms`).
    pub fn new(storage: Arc<dyn Storage>, pool: StoragePool, limits: &Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            storage,
            pool,
            metrics,
            limits: limits.clone(),
            live: Arc::default(),
            ips: Arc::default(),
            next_socket: AtomicU64::new(1),
            accepting: AtomicBool::new(true),
        }
    }

    /// Where blocking storage calls run (for the operator routes, which read storage directly).
    pub fn storage_pool(&self) -> &StoragePool {
        &self.pool
    }

    /// The room's handle, starting its task if the room is not live yet.
    /// Must be called from within a Tokio runtime.
    pub fn room(&self, party: &PartyConfig, key: RoomKey) -> Result<RoomHandle, Unavailable> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(Unavailable::ShuttingDown);
        }
        let mut live = self.live.lock();
        if let Some(live) = live.handles.get(&key).filter(|live| !live.handle.is_closed()) {
            return Ok(live.handle.clone());
        }
        live.remove(&key);
        let party_full = live.per_party.get(&party.name).copied().unwrap_or(0) >= party.limits.max_live_rooms;
        let server_full = live.handles.len() >= self.limits.max_live_rooms;
        if (party_full || server_full) && !live.evict_parked(party_full.then_some(party.name.as_str())) {
            limited!(warn, party = %party.name, live = live.handles.len(), "refusing a new room: too many live rooms");
            return Err(Unavailable::TooManyRooms);
        }
        let (commands, receiver) = mpsc::channel(self.limits.room_queue);
        let stats = Arc::new(RoomStats::default());
        let handle = RoomHandle::new(key.clone(), commands, stats.clone());
        let task = RoomTask::new(
            key.clone(),
            self.storage.clone(),
            self.pool.clone(),
            party,
            stats,
            self.metrics.clone(),
        );
        tokio::spawn(task.run(receiver, self.live.clone(), self.limits.idle_unload));
        live.handles.insert(key, Live { handle: handle.clone(), parked: None });
        *live.per_party.entry(party.name.clone()).or_default() += 1;
        Ok(handle)
    }

    /// The room's handle if it is live or has something stored; `None` if it does not exist.
    /// A read answers an absent room as empty without making it live, so reads of rooms that
    /// do not exist, however many, take nothing from `max_live_rooms`. A room that is stored,
    /// or whose storage cannot be asked, is started as by [`Rooms::room`] (its load reports
    /// the error).
    pub async fn existing_room(
        &self,
        party: &PartyConfig,
        key: RoomKey,
    ) -> Result<Option<RoomHandle>, Unavailable> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(Unavailable::ShuttingDown);
        }
        if let Some(handle) = self.live_room(&key) {
            return Ok(Some(handle));
        }
        // A room that is not live has nothing in flight: all it wrote is acknowledged, and
        // `is_stored` sees every acknowledged round. A room that goes live meanwhile and writes
        // is a request concurrent with this one, which may come after it.
        let (storage, asked) = (self.storage.clone(), key.clone());
        let stored = self.pool.run("look a room up", move || storage.is_stored(room_path(&asked))).await;
        match stored {
            Ok(false) => Ok(None),
            Ok(true) | Err(_) => self.room(party, key).map(Some),
        }
    }

    /// Counts one more socket for `ip` in `party`, unless it holds `max` already.
    pub fn claim_ip(&self, party: &str, ip: IpAddr, max: usize) -> Option<IpClaim> {
        let key = (party.to_owned(), ip);
        let mut counts = self.ips.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpClaim { counts: self.ips.clone(), key })
    }

    /// A server-wide unique id for a new socket.
    pub fn next_socket_id(&self) -> SocketId {
        self.next_socket.fetch_add(1, Ordering::Relaxed)
    }

    /// How many rooms are in memory.
    pub fn live_count(&self) -> usize {
        self.live.lock().handles.len()
    }

    /// Rooms in memory and their sockets, for one party.
    pub fn party_summary(&self, party: &str) -> PartySummary {
        let live = self.live.lock();
        let rooms = live.handles.iter().filter(|(key, _)| key.party() == party);
        rooms.fold(PartySummary::default(), |summary, (_, live)| PartySummary {
            live_rooms: summary.live_rooms + 1,
            connections: summary.connections + live.handle.connections(),
        })
    }

    /// The live room's handle, without starting it.
    pub fn live_room(&self, key: &RoomKey) -> Option<RoomHandle> {
        self.live
            .lock()
            .handles
            .get(key)
            .map(|live| &live.handle)
            .filter(|handle| !handle.is_closed())
            .cloned()
    }

    /// Stops starting rooms, then lets every live room finish its queued work, close its
    /// sockets with 1001 and stop.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::Release);
        let handles: Vec<RoomHandle> = {
            let mut live = self.live.lock();
            live.per_party.clear();
            live.parked.clear();
            live.handles.drain().map(|(_, live)| live.handle).collect()
        };
        futures_util::future::join_all(handles.iter().map(RoomHandle::shutdown)).await;
    }
}

//! The task that owns one room: it applies PUTs and changes one at a time in arrival order,
//! writes them to storage, waits until they are durable, and only then answers and broadcasts.
//!
//! Group commit: the task takes every command already queued (up to a bound) as one round,
//! writes the round's changes as one batch and waits for one flush, so a busy room pays one
//! flush per round rather than per message, and many rooms share the flusher's flushes.
//!
//! The task never waits for a socket: a delivery that takes a member's outbox over its pause
//! mark makes the room's [`Pressure`] hold its writers back (their connections stop reading,
//! see [`crate::ws::backpressure`]); only a member past its outbound bound is cut off here.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::handle::{
    Command, GetResult, Inspection, JoinOutcome, PutResult, RoomStats, ServerWriteResult, SocketId,
};
use super::persisted::{entry_writes, load_store, room_path};
use super::registry::LiveRooms;
use super::sync::{now_ms, SyncState};
use super::sync_persisted::{load_mergeable, reference_entries};
use super::RoomKey;
use crate::config::{Limits, PartyConfig, PartyKind};
use crate::log_limit::limited;
use crate::metrics::{Metrics, PartyCounters};
use crate::protocol::persister::{Changes, Permissions, PersisterStore, PutOutcome};
use crate::storage::{DurableTicket, EntryWrite, OpenRound, Storage, StorageError, StoragePool};
use crate::ws::backpressure::Pressure;
use crate::ws::close;
use crate::ws::outbox::{Outbox, SendError};

/// The most commands one round takes before it writes and flushes: bounds a round's latency
/// and the memory held by its pending broadcasts.
const MAX_COMMANDS_PER_ROUND: usize = 256;

/// One socket in the room (or one channel of a multiplexed socket).
struct Member {
    connection_id: Arc<str>,
    outbox: Outbox,
    /// The channel of a multiplexed socket, whose frames are wrapped as `M\n<channel>\n…`.
    channel: Option<Arc<str>>,
}

impl Member {
    /// Sends `frame` to the member from the room whose gate is `room`; `hold` keeps it back
    /// until [`Outbox::release_held`].
    fn deliver(&self, frame: &ByteString, hold: bool, room: &Arc<Pressure>) -> Result<(), SendError> {
        let frame = match &self.channel {
            None => frame.clone(),
            Some(channel) => format!("M\n{channel}\n{frame}").into(),
        };
        self.outbox.deliver(frame, hold, room)
    }
}

/// Something to do once the round's writes are durable.
pub(super) enum Effect {
    /// Send a frame to every socket whose connection id is not `exclude`.
    Broadcast {
        exclude: Option<Arc<str>>,
        frame: ByteString,
    },
    /// Send a frame to one socket only.
    Send {
        socket: SocketId,
        frame: ByteString,
    },
    /// Close these sockets (those in the room when the room was deleted).
    Close {
        sockets: Vec<SocketId>,
        code: u16,
        reason: &'static str,
    },
    Put(oneshot::Sender<PutResult>, PutResult),
    Get(oneshot::Sender<GetResult>, GetResult),
    Inspect(oneshot::Sender<Option<Inspection>>, Option<Inspection>),
    Deleted(oneshot::Sender<bool>),
    ServerWrite(oneshot::Sender<ServerWriteResult>, ServerWriteResult),
    /// Everything before is delivered: answer a writer's question (see [`Command::Handled`]).
    Handled(oneshot::Sender<()>),
}

/// The room's queue, for changes to join a round waiting for its commit, and how many
/// commands the round has taken so far.
struct Joiners<'a> {
    commands: &'a mut mpsc::Receiver<Command>,
    handled: usize,
}

#[derive(Default)]
pub(super) struct Round {
    /// The room's data is deleted before `writes` are applied.
    delete_room: bool,
    pub(super) writes: Vec<EntryWrite>,
    pub(super) effects: Vec<Effect>,
    shutdown: Vec<oneshot::Sender<()>>,
}

pub(crate) struct RoomTask {
    key: RoomKey,
    storage: Arc<dyn Storage>,
    /// Where the room's blocking storage calls (loads, deletes, images) run, each with a
    /// deadline: the room's thread serves other rooms' sockets meanwhile.
    pool: StoragePool,
    message_prefix: Arc<str>,
    storage_prefix: Arc<str>,
    limits: Limits,
    permissions: Arc<Permissions>,
    stats: Arc<RoomStats>,
    metrics: Arc<Metrics>,
    counters: PartyCounters,
    kind: PartyKind,
    /// A `tinybase-persister` room's store; `None` while it could not be read from storage
    /// (retried on the next round) and always for other kinds.
    store: Option<PersisterStore>,
    /// A `tinybase-sync` room's relay and replica; `None` like `store`.
    sync: Option<SyncState>,
    members: HashMap<SocketId, Member>,
    /// The last GET body, dropped whenever the store changes.
    cached_body: Option<Bytes>,
    /// A command received while a round waited for its commit that could not join it: the
    /// next round starts with it.
    held_over: Option<Command>,
}

impl RoomTask {
    pub(crate) fn new(
        key: RoomKey,
        storage: Arc<dyn Storage>,
        pool: StoragePool,
        party: &PartyConfig,
        stats: Arc<RoomStats>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            counters: metrics.party(&party.name),
            metrics,
            key,
            storage,
            pool,
            message_prefix: party.message_prefix.as_str().into(),
            storage_prefix: party.storage_prefix.as_str().into(),
            limits: party.limits.clone(),
            permissions: Arc::new(party.permissions.clone()),
            stats,
            kind: party.kind,
            store: None,
            sync: None,
            members: HashMap::new(),
            cached_body: None,
            held_over: None,
        }
    }

    /// Runs until the room is shut down, retires after `idle_unload` without connections or
    /// work, or every handle is dropped.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        live: Arc<LiveRooms>,
        idle_unload: Duration,
    ) {
        let span = tracing::info_span!("room", party = %self.key.party(), room = %self.key.room());
        async move {
            loop {
                if let Some(command) = self.held_over.take() {
                    if self.run_round(command, &mut commands).await {
                        break;
                    }
                    continue;
                }
                if let Some(deadline) = self.deadline() {
                    match tokio::time::timeout_at(deadline, commands.recv()).await {
                        Ok(Some(command)) => {
                            if self.run_round(command, &mut commands).await {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => self.on_timer().await,
                    }
                    continue;
                }
                let first = if self.members.is_empty() {
                    live.park(&self.key, &self.stats);
                    let waited = tokio::time::timeout(idle_unload, commands.recv()).await;
                    // The registry may have made the room leave while it was parked, to make
                    // way for a new room (it then dropped the last handle: `Ok(None)`). Whatever
                    // the task received meanwhile was sent through a handle dropped since, so
                    // nobody waits for it; another task may already own the room, so this one
                    // must not touch storage again.
                    if !self.stats.wake() {
                        break;
                    }
                    match waited {
                        Ok(Some(command)) => command,
                        Ok(None) => break,
                        Err(_) => {
                            self.save_image().await;
                            if live.retire(&self.key, &commands) {
                                tracing::debug!("idle room leaves memory");
                                break;
                            }
                            continue;
                        }
                    }
                } else {
                    match commands.recv().await {
                        Some(command) => command,
                        None => break,
                    }
                };
                if self.run_round(first, &mut commands).await {
                    break;
                }
            }
            tracing::debug!("room stopped");
        }
        .instrument(span)
        .await
    }

    /// Takes `first` and every command already queued (up to a bound) as one round and
    /// finishes it; true if the room is to stop.
    async fn run_round(&mut self, first: Command, commands: &mut mpsc::Receiver<Command>) -> bool {
        self.ensure_loaded().await;
        let mut round = Round::default();
        self.handle(first, &mut round);
        let mut handled = 1;
        while handled < MAX_COMMANDS_PER_ROUND {
            match commands.try_recv() {
                Ok(command) => self.handle(command, &mut round),
                Err(_) => break,
            }
            handled += 1;
        }
        let stopping = !round.shutdown.is_empty();
        let joining = (!stopping).then_some(Joiners { commands, handled });
        self.finish(round, joining).await;
        stopping
    }

    /// When the sync participant's earliest request times out, if it waits for one.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        let at_ms = self.sync.as_ref()?.next_deadline_ms()?;
        let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()));
        Some(tokio::time::Instant::now() + wait)
    }

    async fn on_timer(&mut self) {
        let mut round = Round::default();
        if let Some(sync) = self.sync.as_mut() {
            sync.on_timer(&mut round);
        }
        self.finish(round, None).await;
    }

    fn is_loaded(&self) -> bool {
        self.store.is_some() || self.sync.is_some()
    }

    /// Loads the room from storage unless it is in memory, on a storage thread: a stalled disk
    /// costs this room its deadline, not the thread's other rooms.
    async fn ensure_loaded(&mut self) {
        if self.is_loaded() {
            return;
        }
        let started = std::time::Instant::now();
        let (storage, key) = (self.storage.clone(), self.key.clone());
        let loaded = match self.kind {
            PartyKind::TinybasePersister => self
                .pool
                .run("load a room", move || load_store(storage.as_ref(), &key))
                .await
                .map(|store| self.store = Some(store)),
            PartyKind::TinybaseSync => {
                let unique_id = uuid::Uuid::new_v4().to_string();
                let max_bytes = self.limits.max_room_bytes as u64;
                self.pool
                    .run("load a room", move || load_mergeable(storage.as_ref(), &key, &unique_id, now_ms()))
                    .await
                    .map(|store| self.sync = Some(SyncState::new(store, max_bytes)))
            }
        };
        match loaded {
            Ok(()) => {
                self.metrics.room_load_seconds.observe(started.elapsed().as_secs_f64());
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "room loaded");
                self.cached_body = None;
            }
            Err(error) => limited!(error, %error, "cannot load room from storage"),
        }
    }

    fn handle(&mut self, command: Command, round: &mut Round) {
        match command {
            Command::Join { socket, connection_id, outbox, channel, joined } => {
                let outcome = if !self.is_loaded() {
                    JoinOutcome::StorageFailed
                } else if self.members.len() >= self.limits.max_connections_per_room {
                    JoinOutcome::RoomFull
                } else {
                    let connection_id = match self.sync.as_mut() {
                        Some(sync) => sync.join(socket, &connection_id, round),
                        None => connection_id,
                    };
                    self.members.insert(socket, Member { connection_id, outbox, channel });
                    self.count_members();
                    JoinOutcome::Joined
                };
                let _ = joined.send(outcome);
            }
            Command::Leave { socket } => {
                self.members.remove(&socket);
                if let Some(sync) = self.sync.as_mut() {
                    sync.leave(socket);
                }
                self.count_members();
            }
            Command::Changes { socket, connection_id, changes } => {
                let (changes, refused) = self.permissions.split(changes);
                if refused.is_some() {
                    self.counters.refused_permission.inc();
                }
                if let Some(restore) = self.refuse_if_too_large(&changes) {
                    self.restore_sender(socket, restore, round);
                    return;
                }
                self.apply_changes(changes, Some(connection_id), round);
                let restore = refused.and_then(|refused| {
                    self.store.as_ref().filter(|store| store.has_store())?.restore_payload(&refused)
                });
                self.restore_sender(socket, restore, round);
            }
            Command::ServerChanges { changes, reply } => {
                let result = match &self.store {
                    None => ServerWriteResult::StorageFailed,
                    Some(store) if !store.has_store() => ServerWriteResult::NoStore,
                    Some(_) => match self.apply_changes(changes, None, round) {
                        Some(payload) => ServerWriteResult::Applied(payload),
                        None => ServerWriteResult::NothingAccepted,
                    },
                };
                round.effects.push(Effect::ServerWrite(reply, result));
            }
            Command::Put { content, reply } if content.stored_bytes() > self.limits.max_room_bytes => {
                round.effects.push(Effect::Put(reply, PutResult::TooLarge));
            }
            Command::Put { content, reply } => {
                let content = self.permissions.filter_content(content);
                let result = match self.store.as_mut().map(|store| store.put(content)) {
                    None => PutResult::StorageFailed,
                    Some(PutOutcome::AlreadyHasStore) => PutResult::AlreadyHasStore,
                    Some(PutOutcome::Saved { ops, .. }) => {
                        self.cached_body = None;
                        round.writes.extend(entry_writes(ops));
                        PutResult::Saved
                    }
                };
                round.effects.push(Effect::Put(reply, result));
            }
            Command::Sync { socket, recipient, remainders, message } => {
                if let Some(sync) = self.sync.as_mut() {
                    self.cached_body = None;
                    if sync.route(socket, &recipient, remainders, message, round) {
                        self.counters.refused_room_full.inc();
                    }
                }
            }
            Command::GetMergeable { reply } => {
                let result = match &self.sync {
                    Some(sync) => GetResult::Store(Bytes::from(sync.participant.store.encoded_content())),
                    None => GetResult::StorageFailed,
                };
                round.effects.push(Effect::Get(reply, result));
            }
            Command::Get { reply } => {
                let result = self.read_body();
                round.effects.push(Effect::Get(reply, result));
            }
            Command::Inspect { reply } => {
                let inspection = self.inspect();
                round.effects.push(Effect::Inspect(reply, inspection));
            }
            Command::Delete { reply } => {
                round.delete_room = true;
                round.writes.clear();
                match self.kind {
                    PartyKind::TinybasePersister => self.store = Some(PersisterStore::new()),
                    PartyKind::TinybaseSync => {
                        let unique_id = uuid::Uuid::new_v4().to_string();
                        self.sync = Some(SyncState::new(
                            crate::protocol::mergeable::tree::MergeableStore::new(&unique_id),
                            self.limits.max_room_bytes as u64,
                        ));
                    }
                }
                self.cached_body = None;
                let sockets = self.members.keys().copied().collect();
                round.effects.push(Effect::Close {
                    sockets,
                    code: close::ROOM_DELETED,
                    reason: "room deleted",
                });
                round.effects.push(Effect::Deleted(reply));
            }
            Command::Shutdown { done } => round.shutdown.push(done),
            Command::Handled { done } => round.effects.push(Effect::Handled(done)),
        }
    }

    /// Applies changes and queues their broadcast; the accepted payload, if anything was accepted.
    fn apply_changes(
        &mut self,
        changes: Changes,
        sender: Option<Arc<str>>,
        round: &mut Round,
    ) -> Option<String> {
        let store = self.store.as_mut()?;
        if !store.has_store() {
            self.counters.ignored_no_store.inc();
            return None;
        }
        let Some(applied) = store.apply_changes(changes) else {
            self.counters.ignored_empty.inc();
            return None;
        };
        self.counters.accepted.inc();
        self.cached_body = None;
        round.writes.extend(entry_writes(applied.ops));
        let frame = format!("{}s{}", self.message_prefix, applied.payload);
        round.effects.push(Effect::Broadcast { exclude: sender, frame: frame.into() });
        Some(applied.payload)
    }

    /// Sends the sender (only) the changes that put it back to what is stored.
    fn restore_sender(&self, socket: SocketId, restore: Option<String>, round: &mut Round) {
        if let Some(payload) = restore {
            round
                .effects
                .push(Effect::Send { socket, frame: format!("{}s{payload}", self.message_prefix).into() });
        }
    }

    /// `Some(restore frame payload, if any)` when the changes would make the room larger than
    /// `max_room_bytes` (changes that shrink or keep its size always pass).
    fn refuse_if_too_large(&self, changes: &Changes) -> Option<Option<String>> {
        let store = self.store.as_ref().filter(|store| store.has_store())?;
        let after = store.bytes_after(changes);
        if after <= self.limits.max_room_bytes || after <= store.stored_bytes() {
            return None;
        }
        tracing::info!(
            after,
            limit = self.limits.max_room_bytes,
            "refusing a change: the room would be too large"
        );
        self.counters.refused_room_full.inc();
        Some(store.restore_payload(changes))
    }

    /// Publishes the member count, only when it changed: every broadcast counts, and a store
    /// would take the line from the connections reading the room's gate beside it.
    fn count_members(&self) {
        if self.stats.connections.load(Ordering::Relaxed) != self.members.len() {
            self.stats.connections.store(self.members.len(), Ordering::Relaxed);
        }
    }

    fn inspect(&self) -> Option<Inspection> {
        if let Some(sync) = &self.sync {
            let store = &sync.participant.store;
            return Some(Inspection {
                content: Some(store.plain_content()),
                reference_entries: reference_entries(store, &self.storage_prefix),
                connection_ids: self
                    .members
                    .values()
                    .map(|member| member.connection_id.to_string())
                    .collect(),
            });
        }
        let store = self.store.as_ref()?;
        Some(Inspection {
            content: store.render(),
            reference_entries: store.reference_entries(&self.storage_prefix),
            connection_ids: self.members.values().map(|member| member.connection_id.to_string()).collect(),
        })
    }

    fn read_body(&mut self) -> GetResult {
        if let Some(body) = &self.cached_body {
            return GetResult::Store(body.clone());
        }
        let rendered = match (&self.store, &self.sync) {
            (Some(store), _) => store.render(),
            (None, Some(sync)) => Some(sync.participant.store.plain_content()),
            (None, None) => return GetResult::StorageFailed,
        };
        match rendered {
            Some(body) => {
                let body = Bytes::from(body);
                self.cached_body = Some(body.clone());
                GetResult::Store(body)
            }
            None => GetResult::NoStore,
        }
    }

    /// Makes the round durable, then carries out its effects in order. With `joining`, changes
    /// that arrive before the round's commit starts join the round.
    async fn finish(&mut self, mut round: Round, joining: Option<Joiners<'_>>) {
        let durable = self.make_durable(&mut round, joining).await;
        let Round { effects, shutdown, .. } = round;
        match durable {
            Ok(()) => {
                // Several frames for the same sockets leave in one write a socket.
                let hold = effects
                    .iter()
                    .filter(|effect| matches!(effect, Effect::Broadcast { .. } | Effect::Send { .. }))
                    .nth(1)
                    .is_some();
                effects.into_iter().for_each(|effect| self.carry_out(effect, hold));
                if hold {
                    self.members.values().for_each(|member| member.outbox.release_held());
                }
            }
            Err(error) => {
                tracing::error!(%error, "storage failed; closing the room's sockets and reloading it");
                self.fail_round(effects, &error);
            }
        }
        if !shutdown.is_empty() {
            self.close_all(close::GOING_AWAY, "server shutting down");
            self.save_image().await;
            for done in shutdown {
                let _ = done.send(());
            }
        }
    }

    async fn make_durable(
        &mut self,
        round: &mut Round,
        joining: Option<Joiners<'_>>,
    ) -> Result<(), StorageError> {
        let writes = std::mem::take(&mut round.writes);
        if !round.delete_room && writes.is_empty() {
            return Ok(());
        }
        let messages = joining.as_ref().map_or(1, |joining| joining.handled);
        let stored_bytes = self.stored_bytes();
        let (ticket, open) = if round.delete_room {
            // Deleting reads every key of the room first: a storage call for a storage thread.
            let (storage, key) = (self.storage.clone(), self.key.clone());
            let submitted = self
                .pool
                .run("delete a room", move || {
                    Ok(storage.commit_open(room_path(&key), true, writes, stored_bytes, messages))
                })
                .await;
            match submitted {
                Ok(submitted) => submitted,
                Err(error) => return Err(error),
            }
        } else {
            self.storage.commit_open(room_path(&self.key), false, writes, stored_bytes, messages)
        };
        let timeout = self.pool.timeout();
        let durable = async {
            match (open, joining) {
                (Some(open), Some(joining)) => self.join_until_durable(ticket, &open, round, joining).await,
                _ => ticket.await,
            }
        };
        // A commit that never returns (a stalled disk) fails the round at the deadline: nothing
        // of it is acknowledged, and the room reloads what storage holds once it answers.
        tokio::time::timeout(timeout, durable).await.unwrap_or_else(|_| {
            Err(StorageError::Stalled(
                format!("the commit did not return within {} s", timeout.as_secs_f64()).into(),
            ))
        })
    }

    /// Waits for `ticket`, meanwhile adding the changes that arrive to the round while its
    /// commit has not started. The first other command, or a change too late for the commit,
    /// is held over for the next round.
    async fn join_until_durable(
        &mut self,
        ticket: DurableTicket,
        open: &OpenRound,
        round: &mut Round,
        joining: Joiners<'_>,
    ) -> Result<(), StorageError> {
        let Joiners { commands, mut handled } = joining;
        let mut ticket = std::pin::pin!(ticket);
        while handled < MAX_COMMANDS_PER_ROUND {
            let command = tokio::select! {
                biased;
                durable = &mut ticket => return durable,
                command = commands.recv() => command,
            };
            let Some(command) = command else { break };
            handled += 1;
            if matches!(command, Command::Handled { .. }) {
                // No writes: it joins any round, and answers after the changes before it.
                self.handle(command, round);
                continue;
            }
            let joined = match &command {
                Command::Changes { .. } => open.try_join(),
                _ => None,
            };
            let Some(mut joined) = joined else {
                self.held_over = Some(command);
                break;
            };
            self.handle(command, round);
            joined.add(std::mem::take(&mut round.writes), self.stored_bytes());
        }
        ticket.await
    }

    /// The room's stored size as its kind counts it.
    fn stored_bytes(&self) -> u64 {
        match (&self.store, &self.sync) {
            (Some(store), _) => store.stored_bytes() as u64,
            (None, Some(sync)) => sync.participant.bytes,
            (None, None) => 0,
        }
    }

    /// Leaves an image of a big room in storage for its next load (see [`super::image`]).
    async fn save_image(&self) {
        if self.is_loaded() {
            super::image::save_image(&self.pool, &self.storage, &self.key, self.stored_bytes()).await;
        }
    }

    fn carry_out(&mut self, effect: Effect, hold: bool) {
        match effect {
            Effect::Broadcast { exclude, frame } => self.broadcast(exclude.as_deref(), frame, hold),
            Effect::Send { socket, frame } => {
                if let Some(member) = self.members.get(&socket) {
                    if member.deliver(&frame, hold, &self.stats.pressure).is_err() {
                        member.outbox.close(close::TRY_AGAIN_LATER, "slow consumer");
                        self.members.remove(&socket);
                        self.count_members();
                    }
                }
            }
            Effect::Close { sockets, code, reason } => {
                for socket in sockets {
                    if let Some(member) = self.members.remove(&socket) {
                        member.outbox.close(code, reason);
                    }
                }
                self.count_members();
            }
            Effect::Put(reply, result) => drop(reply.send(result)),
            Effect::Get(reply, result) => drop(reply.send(result)),
            Effect::Inspect(reply, inspection) => drop(reply.send(inspection)),
            Effect::Deleted(reply) => drop(reply.send(true)),
            Effect::ServerWrite(reply, result) => drop(reply.send(result)),
            Effect::Handled(done) => drop(done.send(())),
        }
    }

    /// Nothing of a failed round is acknowledged or broadcast; the room reloads what is on disk.
    fn fail_round(&mut self, effects: Vec<Effect>, error: &StorageError) {
        for effect in effects {
            match effect {
                Effect::Broadcast { .. } | Effect::Send { .. } | Effect::Close { .. } => {}
                Effect::Put(reply, _) => drop(reply.send(PutResult::StorageFailed)),
                Effect::Get(reply, _) => drop(reply.send(GetResult::StorageFailed)),
                Effect::Inspect(reply, _) => drop(reply.send(None)),
                Effect::Deleted(reply) => drop(reply.send(false)),
                Effect::ServerWrite(reply, _) => drop(reply.send(ServerWriteResult::StorageFailed)),
                Effect::Handled(done) => drop(done.send(())),
            }
        }
        let reason = if error.is_full() { "storage full" } else { "storage error" };
        self.close_all(close::INTERNAL_ERROR, reason);
        // The next round loads the room again from what storage holds.
        self.store = None;
        self.sync = None;
        self.cached_body = None;
    }

    /// Sends a frame to every socket whose connection id is not `exclude`; a socket that cannot
    /// take it (too many unsent bytes) is cut off as a slow consumer.
    fn broadcast(&mut self, exclude: Option<&str>, frame: ByteString, hold: bool) {
        let mut delivered = 0u64;
        let pressure = &self.stats.pressure;
        self.members.retain(|socket, member| {
            if exclude == Some(&*member.connection_id) {
                return true;
            }
            match member.deliver(&frame, hold, pressure) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(SendError::Full) => {
                    limited!(warn, socket, "closing a slow consumer");
                    member.outbox.close(close::TRY_AGAIN_LATER, "slow consumer");
                    false
                }
                Err(SendError::Gone) => false,
            }
        });
        self.counters.messages_out.inc_by(delivered);
        self.counters.bytes_out.inc_by(delivered * frame.len() as u64);
        self.count_members();
    }

    fn close_all(&mut self, code: u16, reason: &'static str) {
        for (_, member) in self.members.drain() {
            member.outbox.close(code, reason);
        }
        self.count_members();
    }
}

//! The server's own replica `S` (spec §3.3–§3.4, §5): it answers hash and diff requests from
//! its store, merges ContentDiffs, pulls from a client that announces its hashes, and runs the
//! start-up exchange. Pure: time comes in as milliseconds, what to send goes out as values.

use std::collections::HashMap;

use super::frame::{encode, SyncMessage};
use super::hlc::ALPHABET;
use super::message::MessageType;
use super::tree::{MergeableStore, Mode, Touched};
use crate::protocol::json::JsValue;
use size::{incoming_leaves, leaf_bytes, store_bytes, LeafPlace};
use stamps::{empty_stamp, is_empty_object, merge_into, pair, stamp_with_object};

/// The client id of the server's participant.
pub const SERVER_ID: &str = "S";
/// How long a request waits for its response (TinyBase's default `requestTimeoutSeconds`).
pub const REQUEST_TIMEOUT_MS: u64 = 1000;
/// The most requests that may wait at once.
const MAX_PENDING: usize = 100;

/// Who a message from `S` goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every client of the room.
    Everyone,
    /// One client.
    Client(String),
}

/// A message `S` sends: the JSON remainder, framed by the relay as `S\n<remainder>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Its recipient.
    pub to: Target,
    /// `[requestId, message, body]`.
    pub remainder: String,
}

/// What handling one event produced.
#[derive(Debug, Default)]
pub struct Reaction {
    /// Messages to send, in order.
    pub sends: Vec<Outgoing>,
    /// Leaves the store accepted (to be saved before anything is sent).
    pub touched: Touched,
    /// Changes were refused because the store would outgrow its byte limit.
    pub refused_too_large: bool,
}

impl Reaction {
    fn send(&mut self, to: Target, request_id: Option<&str>, kind: MessageType, body: &JsValue) {
        self.sends.push(Outgoing { to, remainder: encode(request_id, kind, body) });
    }
}

/// Where a pull stands: which answer it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Hashes,
    TableDiff,
    RowDiff,
    CellDiff,
    ValueDiff,
}

/// One run of §3.3 against one peer.
struct Pull {
    /// The peer pulled from; `None` until someone answers the start-up broadcast.
    peer: Option<String>,
    transaction: String,
    /// My content hashes when the peer's became known.
    mine: [u32; 2],
    theirs: [u32; 2],
    /// The tables stamp gathered so far.
    tables: JsValue,
    /// Broadcast my content hashes when this pull ends (the start-up exchange).
    announce: bool,
}

struct Pending {
    pull: u64,
    stage: Stage,
    /// `None` for a broadcast request: any client may answer.
    to: Option<String>,
    deadline_ms: u64,
}

/// The server's replica and its synchronizer state.
pub struct Participant {
    /// The merged store.
    pub store: MergeableStore,
    /// The store's size as [`leaf_bytes`] counts it.
    pub bytes: u64,
    /// Changes that would take `bytes` over this (and grow it) are refused.
    max_bytes: u64,
    pulls: HashMap<u64, Pull>,
    pending: HashMap<String, Pending>,
    next_pull: u64,
    random: u64,
}

impl Participant {
    /// A participant around `store` that refuses to grow it past `max_bytes`; `seed` makes its ids.
    pub fn new(store: MergeableStore, max_bytes: u64, seed: u64) -> Self {
        let bytes = store_bytes(&store);
        Self {
            store,
            bytes,
            max_bytes,
            pulls: HashMap::new(),
            pending: HashMap::new(),
            next_pull: 0,
            random: seed | 1,
        }
    }

    /// Starts the start-up exchange (§5.1): ask everyone for their hashes, pull from the first
    /// to answer, then broadcast my own hashes (also when nobody answers in time).
    pub fn start(&mut self, now_ms: u64) -> Reaction {
        let mut reaction = Reaction::default();
        let transaction = self.new_id(11);
        let pull = self.add_pull(None, transaction, [[0, 0], [0, 0]], true);
        self.request(pull, Stage::Hashes, None, &JsValue::String(String::new()), now_ms, &mut reaction);
        reaction
    }

    /// Forgets every request in flight (the room's last client left).
    pub fn stop(&mut self) {
        self.pulls.clear();
        self.pending.clear();
    }

    /// When the earliest waiting request times out, if any.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.pending.values().map(|pending| pending.deadline_ms).min()
    }

    /// Abandons the pulls whose requests have timed out.
    pub fn expire(&mut self, now_ms: u64) -> Reaction {
        let mut reaction = Reaction::default();
        let expired: Vec<String> =
            self.pending.iter().filter(|(_, p)| p.deadline_ms <= now_ms).map(|(id, _)| id.clone()).collect();
        for request_id in expired {
            if let Some(pending) = self.pending.remove(&request_id) {
                self.end_pull(pending.pull, &mut reaction);
            }
        }
        reaction
    }

    /// Handles a valid message from client `from` addressed to everyone or to `S`.
    pub fn receive(&mut self, from: &str, message: &SyncMessage, now_ms: u64) -> Reaction {
        let mut reaction = Reaction::default();
        let request_id = message.request_id.as_deref();
        let reply = |reaction: &mut Reaction, body: JsValue| {
            reaction.send(Target::Client(from.to_owned()), request_id, MessageType::Response, &body);
        };
        let body = &message.body;
        match message.kind {
            MessageType::Response => self.on_response(from, request_id, body, now_ms, &mut reaction),
            MessageType::GetContentHashes => reply(&mut reaction, hashes_body(self.store.content_hashes())),
            MessageType::ContentHashes => {
                if let Some(theirs) = content_hashes(body) {
                    let transaction = request_id.map_or_else(|| self.new_id(11), str::to_owned);
                    let mine = self.store.content_hashes();
                    let pull = self.add_pull(Some(from.to_owned()), transaction, [mine, theirs], false);
                    self.compare_tables(pull, now_ms, &mut reaction);
                }
            }
            MessageType::ContentDiff => {
                // Without the trailing 1 it would be "set content", which the wire cannot carry.
                if matches!(body, JsValue::Array(parts) if parts.len() == 3) {
                    self.merge(body, now_ms, &mut reaction);
                }
            }
            MessageType::GetTableDiff => reply(&mut reaction, self.store.table_diff(body)),
            MessageType::GetRowDiff => reply(&mut reaction, self.store.row_diff(body)),
            MessageType::GetCellDiff => reply(&mut reaction, self.store.cell_diff(body)),
            MessageType::GetValueDiff => reply(&mut reaction, self.store.value_diff(body)),
        }
        reaction
    }

    /// Merges changes unless they could take the store over its byte limit (all or nothing: the
    /// estimate counts every incoming leaf as accepted).
    fn merge(&mut self, changes: &JsValue, now_ms: u64, reaction: &mut Reaction) {
        let places = incoming_leaves(changes);
        let before: HashMap<&LeafPlace, u64> =
            places.iter().map(|(place, _)| (place, self.existing_bytes(place))).collect();
        let incoming: u64 = places.iter().map(|(place, value)| leaf_bytes(place, value)).sum();
        let estimate = (self.bytes + incoming).saturating_sub(before.values().sum());
        if estimate > self.max_bytes && estimate > self.bytes {
            tracing::info!(estimate, limit = self.max_bytes, "refusing changes: the room would be too large");
            reaction.refused_too_large = true;
            return;
        }
        match self.store.merge(changes, Mode::Changes, now_ms) {
            Ok(touched) => {
                for (place, old) in &before {
                    let new = self.existing_bytes(place);
                    self.bytes = (self.bytes + new).saturating_sub(*old);
                }
                reaction.touched.cells.extend(touched.cells);
                reaction.touched.values.extend(touched.values);
            }
            Err(invalid) => tracing::debug!(%invalid, "ignoring changes the store refuses"),
        }
    }

    fn existing_bytes(&self, place: &LeafPlace) -> u64 {
        let leaf = match place {
            LeafPlace::Cell(table, row, cell) => self
                .store
                .tables
                .child_ref(table)
                .and_then(|t| t.child_ref(row))
                .and_then(|r| r.child_ref(cell)),
            LeafPlace::Value(id) => self.store.values.child_ref(id),
        };
        leaf.map_or(0, |leaf| leaf_bytes(place, &leaf.value))
    }

    fn on_response(
        &mut self,
        from: &str,
        request_id: Option<&str>,
        body: &JsValue,
        now_ms: u64,
        reaction: &mut Reaction,
    ) {
        let Some(request_id) = request_id else { return };
        let Some(pending) = self.pending.get(request_id) else { return };
        if pending.to.as_deref().is_some_and(|to| to != from) {
            return;
        }
        let Some(Pending { pull, stage, .. }) = self.pending.remove(request_id) else { return };
        if !self.pulls.contains_key(&pull) {
            return;
        }
        let advanced = match stage {
            Stage::Hashes => self.on_hashes(pull, from, body, now_ms, reaction),
            Stage::TableDiff => self.on_table_diff(pull, body, now_ms, reaction),
            Stage::RowDiff => self.on_row_diff(pull, body, now_ms, reaction),
            Stage::CellDiff => self.on_cell_diff(pull, body, now_ms, reaction),
            Stage::ValueDiff => {
                self.finish(pull, body.clone(), now_ms, reaction);
                Some(())
            }
        };
        if advanced.is_none() {
            tracing::debug!("abandoning a pull: an answer does not fit its request");
            self.end_pull(pull, reaction);
        }
    }

    fn on_hashes(
        &mut self,
        pull: u64,
        from: &str,
        body: &JsValue,
        now_ms: u64,
        reaction: &mut Reaction,
    ) -> Option<()> {
        let theirs = content_hashes(body)?;
        let mine = self.store.content_hashes();
        let state = self.pulls.get_mut(&pull)?;
        state.peer = Some(from.to_owned());
        state.mine = mine;
        state.theirs = theirs;
        self.compare_tables(pull, now_ms, reaction);
        Some(())
    }

    fn compare_tables(&mut self, pull: u64, now_ms: u64, reaction: &mut Reaction) {
        let Some(state) = self.pulls.get(&pull) else { return };
        if state.mine[0] != state.theirs[0] {
            let peer = state.peer.clone();
            let body = self.store.table_hashes();
            self.request(pull, Stage::TableDiff, peer, &body, now_ms, reaction);
        } else {
            self.compare_values(pull, now_ms, reaction);
        }
    }

    fn on_table_diff(
        &mut self,
        pull: u64,
        body: &JsValue,
        now_ms: u64,
        reaction: &mut Reaction,
    ) -> Option<()> {
        let (new_tables, different) = pair(body)?;
        let state = self.pulls.get_mut(&pull)?;
        state.tables = stamp_with_object(new_tables)?;
        if is_empty_object(different)? {
            self.compare_values(pull, now_ms, reaction);
        } else {
            let peer = state.peer.clone();
            let request = self.store.row_hashes(different);
            self.request(pull, Stage::RowDiff, peer, &request, now_ms, reaction);
        }
        Some(())
    }

    fn on_row_diff(&mut self, pull: u64, body: &JsValue, now_ms: u64, reaction: &mut Reaction) -> Option<()> {
        let (new_rows, different) = pair(body)?;
        let state = self.pulls.get_mut(&pull)?;
        merge_into(&mut state.tables, stamp_with_object(new_rows)?)?;
        if is_empty_object(different)? {
            self.compare_values(pull, now_ms, reaction);
        } else {
            let peer = state.peer.clone();
            let request = self.store.cell_hashes(different);
            self.request(pull, Stage::CellDiff, peer, &request, now_ms, reaction);
        }
        Some(())
    }

    fn on_cell_diff(
        &mut self,
        pull: u64,
        body: &JsValue,
        now_ms: u64,
        reaction: &mut Reaction,
    ) -> Option<()> {
        let state = self.pulls.get_mut(&pull)?;
        merge_into(&mut state.tables, stamp_with_object(body.clone())?)?;
        self.compare_values(pull, now_ms, reaction);
        Some(())
    }

    fn compare_values(&mut self, pull: u64, now_ms: u64, reaction: &mut Reaction) {
        let Some(state) = self.pulls.get(&pull) else { return };
        if state.mine[1] != state.theirs[1] {
            let peer = state.peer.clone();
            let body = self.store.value_hashes();
            self.request(pull, Stage::ValueDiff, peer, &body, now_ms, reaction);
        } else {
            self.finish(pull, empty_stamp(), now_ms, reaction);
        }
    }

    /// Merges what the pull gathered, then ends it.
    fn finish(&mut self, pull: u64, values: JsValue, now_ms: u64, reaction: &mut Reaction) {
        let Some(state) = self.pulls.get_mut(&pull) else { return };
        let tables = std::mem::replace(&mut state.tables, empty_stamp());
        self.merge(&JsValue::Array(vec![tables, values, JsValue::Number(1.0)]), now_ms, reaction);
        self.end_pull(pull, reaction);
    }

    fn end_pull(&mut self, pull: u64, reaction: &mut Reaction) {
        self.pending.retain(|_, pending| pending.pull != pull);
        if self.pulls.remove(&pull).is_some_and(|state| state.announce) {
            let transaction = self.new_id(11);
            reaction.send(
                Target::Everyone,
                Some(&transaction),
                MessageType::ContentHashes,
                &hashes_body(self.store.content_hashes()),
            );
        }
    }

    fn add_pull(
        &mut self,
        peer: Option<String>,
        transaction: String,
        [mine, theirs]: [[u32; 2]; 2],
        announce: bool,
    ) -> u64 {
        let id = self.next_pull;
        self.next_pull += 1;
        self.pulls.insert(id, Pull { peer, transaction, mine, theirs, tables: empty_stamp(), announce });
        id
    }

    /// Sends a request for a pull; over the limit of waiting requests, the pull fails at once.
    fn request(
        &mut self,
        pull: u64,
        stage: Stage,
        to: Option<String>,
        body: &JsValue,
        now_ms: u64,
        reaction: &mut Reaction,
    ) {
        if self.pending.len() >= MAX_PENDING {
            self.end_pull(pull, reaction);
            return;
        }
        let Some(transaction) = self.pulls.get(&pull).map(|state| state.transaction.clone()) else { return };
        let request_id = format!("{transaction}.{}", self.new_id(4));
        let kind = match stage {
            Stage::Hashes => MessageType::GetContentHashes,
            Stage::TableDiff => MessageType::GetTableDiff,
            Stage::RowDiff => MessageType::GetRowDiff,
            Stage::CellDiff => MessageType::GetCellDiff,
            Stage::ValueDiff => MessageType::GetValueDiff,
        };
        let target = to.clone().map_or(Target::Everyone, Target::Client);
        reaction.send(target, Some(&request_id), kind, body);
        self.pending
            .insert(request_id, Pending { pull, stage, to, deadline_ms: now_ms + REQUEST_TIMEOUT_MS });
    }

    /// `length` random alphabet characters (xorshift; ids only need to be unique).
    fn new_id(&mut self, length: usize) -> String {
        (0..length)
            .map(|_| {
                self.random ^= self.random << 13;
                self.random ^= self.random >> 7;
                self.random ^= self.random << 17;
                ALPHABET[(self.random >> 58) as usize] as char
            })
            .collect()
    }
}

fn hashes_body([tables, values]: [u32; 2]) -> JsValue {
    JsValue::Array(vec![JsValue::Number(tables.into()), JsValue::Number(values.into())])
}

fn content_hashes(body: &JsValue) -> Option<[u32; 2]> {
    match body {
        JsValue::Array(parts) => match parts.as_slice() {
            [JsValue::Number(a), JsValue::Number(b)] => Some([*a as u32, *b as u32]),
            _ => None,
        },
        _ => None,
    }
}

mod size;
mod stamps;
#[cfg(test)]
mod tests;

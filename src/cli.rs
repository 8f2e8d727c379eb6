//! The offline commands: `export`, `import` and `dump` of rooms as JSON lines
//! `{"party","room","kind","content"}`, straight on the data dir (which no server may hold).

use std::io::{BufRead, Write};

use serde_json::value::RawValue;

use crate::config::{Config, PartyConfig, PartyKind};
use crate::protocol::json;
use crate::protocol::mergeable::tree::{MergeableStore, Mode};
use crate::protocol::persister::{parse_content, PersisterStore, PutOutcome};
use crate::room::persisted::{entry_writes, load_store, room_path};
use crate::room::sync_persisted::{all_writes, load_mergeable};
use crate::room::{now_ms, RoomKey};
use crate::storage::{EntryWrite, SledStorage, Storage, StorageError};

/// Why an offline command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The data dir could not be opened or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading stdin or writing stdout failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The input or the arguments are wrong.
    #[error("{0}")]
    Refused(String),
}

/// One exported room.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomLine {
    party: String,
    room: String,
    kind: String,
    content: Option<Box<RawValue>>,
}

fn open(config: &Config) -> Result<std::sync::Arc<SledStorage>, CliError> {
    Ok(SledStorage::open_with(&config.data_dir, config.group_commit, config.storage_reserve_bytes)?)
}

fn party<'a>(config: &'a Config, name: &str) -> Result<&'a PartyConfig, CliError> {
    config
        .party(name)
        .ok_or_else(|| CliError::Refused(format!("party {name:?} is not in {}", config.source.display())))
}

/// One room as an export line: a persister room's content is its GET body (`null` without a
/// store), a sync room's is its mergeable content with stamps and hashes.
fn room_line(storage: &dyn Storage, party: &PartyConfig, room: &str) -> Result<String, CliError> {
    let key = RoomKey::new(&party.name, room)
        .map_err(|error| CliError::Refused(format!("room {room:?}: {error}")))?;
    let text = match party.kind {
        PartyKind::TinybasePersister => load_store(storage, &key)?.render(),
        PartyKind::TinybaseSync => Some(load_mergeable(storage, &key, "export", now_ms())?.encoded_content()),
    };
    let content =
        text.map(RawValue::from_string).transpose().map_err(|error| CliError::Refused(error.to_string()))?;
    let line =
        RoomLine { party: party.name.clone(), room: room.to_owned(), kind: party.kind.to_string(), content };
    serde_json::to_string(&line).map_err(|error| CliError::Refused(error.to_string()))
}

/// `partyd export [--party P] [--room R]`: every stored room of the configured parties.
pub fn export(
    config: &Config,
    only_party: Option<&str>,
    only_room: Option<&str>,
    out: &mut impl Write,
) -> Result<usize, CliError> {
    let storage = open(config)?;
    if let Some(name) = only_party {
        party(config, name)?;
    }
    let mut exported = 0;
    for (party_name, room) in storage.all_rooms()? {
        if only_party.is_some_and(|only| only != party_name) || only_room.is_some_and(|only| only != room) {
            continue;
        }
        let Ok(party) = party(config, &party_name) else {
            tracing::debug!(party = %party_name, "skipping rooms of a party that is not configured");
            continue;
        };
        writeln!(out, "{}", room_line(storage.as_ref(), party, &room)?)?;
        exported += 1;
    }
    Ok(exported)
}

/// `partyd dump <party> <room>`: one room as an export line.
pub fn dump(config: &Config, party_name: &str, room: &str, out: &mut impl Write) -> Result<(), CliError> {
    let storage = open(config)?;
    let party = party(config, party_name)?;
    let stored = storage.list_rooms(party_name, room, None, 1)?;
    if stored.first().is_none_or(|stored| stored.room != room) {
        return Err(CliError::Refused(format!("room {party_name}/{room} is not stored")));
    }
    writeln!(out, "{}", room_line(storage.as_ref(), party, room)?)?;
    Ok(())
}

/// The storage writes (and their size) that recreate a room from an export line's content.
fn room_writes(kind: PartyKind, content: Option<&RawValue>) -> Result<(Vec<EntryWrite>, u64), String> {
    let Some(content) = content else { return Ok((Vec::new(), 0)) };
    match kind {
        PartyKind::TinybasePersister => {
            let content = parse_content(content.get().as_bytes()).map_err(|error| error.to_string())?;
            let mut store = PersisterStore::new();
            let writes = match store.put(content) {
                PutOutcome::Saved { ops, .. } => entry_writes(ops).collect(),
                PutOutcome::AlreadyHasStore => Vec::new(),
            };
            Ok((writes, store.stored_bytes() as u64))
        }
        PartyKind::TinybaseSync => {
            let value =
                json::parse(content.get(), true).map_err(|error| format!("mergeable content: {error}"))?;
            let mut store = MergeableStore::new("import");
            store
                .merge(&value, Mode::Content, now_ms())
                .map_err(|error| format!("mergeable content: {error}"))?;
            let writes = all_writes(&store);
            let bytes = writes
                .iter()
                .map(|write| (write.key.len() + write.value.as_ref().map_or(0, Vec::len)) as u64)
                .sum();
            Ok((writes, bytes))
        }
    }
}

/// `partyd import [--replace]`: checks every line first, then writes them all.
pub fn import(config: &Config, replace: bool, input: impl BufRead) -> Result<usize, CliError> {
    let storage = open(config)?;
    let mut rooms = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let refuse = |why: String| CliError::Refused(format!("line {}: {why}", number + 1));
        let parsed: RoomLine =
            serde_json::from_str(&line).map_err(|error| refuse(format!("not a room line: {error}")))?;
        let party = party(config, &parsed.party).map_err(|error| refuse(error.to_string()))?;
        if parsed.kind != party.kind.to_string() {
            return Err(refuse(format!(
                "kind {:?} does not match party {:?} ({})",
                parsed.kind, party.name, party.kind
            )));
        }
        let key = RoomKey::new(&party.name, &parsed.room)
            .map_err(|error| refuse(format!("room {:?}: {error}", parsed.room)))?;
        let writes = room_writes(party.kind, parsed.content.as_deref()).map_err(refuse)?;
        if !replace && !storage.load_room(room_path(&key))?.is_empty() {
            return Err(refuse(format!(
                "room {}/{} exists (use --replace to overwrite it)",
                key.party(),
                key.room()
            )));
        }
        rooms.push((key, writes));
    }
    let imported = rooms.len();
    for (key, (writes, stored_bytes)) in rooms {
        storage.delete_room(room_path(&key))?;
        if !writes.is_empty() {
            storage.write(room_path(&key), writes, stored_bytes)?;
        }
    }
    storage.flush()?;
    Ok(imported)
}

//! The offline commands: `export`, `import` and `dump` of rooms as JSON lines
//! `{"party","room","kind","content"}`, straight on the data dir (which no server may hold).

use std::io::{BufRead, Write};

use serde_json::value::RawValue;

use crate::config::{Config, PartyConfig, PartyKind};
use crate::protocol::persister::{parse_content, PersisterStore, PutOutcome};
use crate::room::persisted::{entry_writes, load_store, room_path};
use crate::room::RoomKey;
use crate::storage::{SledStorage, Storage, StorageError};

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
    Ok(SledStorage::open(&config.data_dir)?)
}

fn party<'a>(config: &'a Config, name: &str) -> Result<&'a PartyConfig, CliError> {
    let party = config.party(name).ok_or_else(|| CliError::Refused(format!("party {name:?} is not in {}", config.source.display())))?;
    match party.kind {
        PartyKind::TinybasePersister => Ok(party),
        other => Err(CliError::Refused(format!("party {name:?} is of kind {other}, which export/import do not handle yet"))),
    }
}

fn room_line(storage: &dyn Storage, party: &PartyConfig, room: &str) -> Result<String, CliError> {
    let key = RoomKey::new(&party.name, room).map_err(|error| CliError::Refused(format!("room {room:?}: {error}")))?;
    let content = load_store(storage, &key)?.render().map(RawValue::from_string).transpose().map_err(|error| CliError::Refused(error.to_string()))?;
    let line = RoomLine { party: party.name.clone(), room: room.to_owned(), kind: party.kind.to_string(), content };
    serde_json::to_string(&line).map_err(|error| CliError::Refused(error.to_string()))
}

/// `partyd export [--party P] [--room R]`: every stored room of the configured parties.
pub fn export(config: &Config, only_party: Option<&str>, only_room: Option<&str>, out: &mut impl Write) -> Result<usize, CliError> {
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
        let parsed: RoomLine = serde_json::from_str(&line).map_err(|error| refuse(format!("not a room line: {error}")))?;
        let party = party(config, &parsed.party).map_err(|error| refuse(error.to_string()))?;
        if parsed.kind != party.kind.to_string() {
            return Err(refuse(format!("kind {:?} does not match party {:?} ({})", parsed.kind, party.name, party.kind)));
        }
        let key = RoomKey::new(&party.name, &parsed.room).map_err(|error| refuse(format!("room {:?}: {error}", parsed.room)))?;
        let content = match parsed.content {
            Some(raw) => Some(parse_content(raw.get().as_bytes()).map_err(|error| refuse(error.to_string()))?),
            None => None,
        };
        if !replace && !storage.load_room(room_path(&key))?.is_empty() {
            return Err(refuse(format!("room {}/{} exists (use --replace to overwrite it)", key.party(), key.room())));
        }
        rooms.push((key, content));
    }
    let imported = rooms.len();
    for (key, content) in rooms {
        storage.delete_room(room_path(&key))?;
        let mut store = PersisterStore::new();
        if let Some(PutOutcome::Saved { ops, .. }) = content.map(|content| store.put(content)) {
            storage.write(room_path(&key), entry_writes(ops).collect(), store.stored_bytes() as u64)?;
        }
    }
    storage.flush()?;
    Ok(imported)
}

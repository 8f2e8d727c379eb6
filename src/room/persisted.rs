//! The `tinybase-persister` room's bridge to storage: rebuilding its store from stored entries
//! and turning the store's logical writes into storage entry writes.

use crate::protocol::persister::{CellText, PersisterStore, StoreOp, StoredEntry};
use crate::storage::layout::{decode_persister_entry_key, persister_entry_key, PersisterKey};
use crate::storage::{EntryWrite, RoomPath, Storage, StorageError};

use super::RoomKey;

/// Where a room's entries live in storage.
pub fn room_path(key: &RoomKey) -> RoomPath<'_> {
    RoomPath { party: key.party(), room: key.room() }
}

/// Reads a room's store from storage. Entries that do not parse are skipped with a warning
/// (they are left on disk untouched).
pub fn load_store(storage: &dyn Storage, key: &RoomKey) -> Result<PersisterStore, StorageError> {
    let entries = storage.load_room(room_path(key))?;
    let stored = entries.into_iter().filter_map(|(entry_key, value)| {
        let entry = decode_entry(&entry_key, value);
        if entry.is_none() {
            tracing::warn!(entry_key = ?String::from_utf8_lossy(&entry_key), "skipping a stored entry that does not parse");
        }
        entry
    });
    Ok(PersisterStore::from_entries(stored))
}

fn decode_entry(entry_key: &[u8], value: Vec<u8>) -> Option<StoredEntry> {
    let key = decode_persister_entry_key(entry_key)?;
    let text = || CellText::from_stored(String::from_utf8(value).ok()?).ok();
    Some(match key {
        PersisterKey::StoreFlag => StoredEntry::StoreFlag,
        PersisterKey::Cell { table, row, cell } => StoredEntry::Cell { table, row, cell, text: text()? },
        PersisterKey::Value { id } => StoredEntry::Value { id, text: text()? },
    })
}

/// The storage writes that carry out the store's logical writes, in order.
pub fn entry_writes(ops: Vec<StoreOp>) -> impl Iterator<Item = EntryWrite> {
    ops.into_iter().map(|op| {
        let (key, value) = match op {
            StoreOp::SetStoreFlag => (PersisterKey::StoreFlag, Some(b"1".to_vec())),
            StoreOp::SetCell { table, row, cell, text } => {
                (PersisterKey::Cell { table, row, cell }, Some(text.as_str().as_bytes().to_vec()))
            }
            StoreOp::DelCell { table, row, cell } => (PersisterKey::Cell { table, row, cell }, None),
            StoreOp::SetValue { id, text } => (PersisterKey::Value { id }, Some(text.as_str().as_bytes().to_vec())),
            StoreOp::DelValue { id } => (PersisterKey::Value { id }, None),
        };
        EntryWrite { key: persister_entry_key(&key), value }
    })
}

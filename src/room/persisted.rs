//! The `tinybase-persister` room's bridge to storage: rebuilding its store from stored entries
//! and turning the store's logical writes into storage entry writes.

use crate::protocol::persister::{CellText, PersisterStore, StoreBuilder, StoreOp};
use crate::storage::layout::{persister_entry_key, read_persister_entry_key, PersisterKey, PersisterKeyRef};
use crate::storage::{EntryWrite, RoomPath, Storage, StorageError};

use super::RoomKey;

/// Where a room's entries live in storage.
pub fn room_path(key: &RoomKey) -> RoomPath<'_> {
    RoomPath { party: key.party(), room: key.room() }
}

/// Reads a room's store from storage. Entries that do not parse are skipped with a warning
/// (they are left on disk untouched).
pub fn load_store(storage: &dyn Storage, key: &RoomKey) -> Result<PersisterStore, StorageError> {
    let mut builder = StoreBuilder::default();
    storage.visit_room(room_path(key), &mut |entry_key, value| {
        if add_entry(&mut builder, entry_key, value).is_none() {
            tracing::warn!(entry_key = ?String::from_utf8_lossy(entry_key), "skipping a stored entry that does not parse");
        }
    })?;
    Ok(builder.finish())
}

fn add_entry(builder: &mut StoreBuilder, entry_key: &[u8], value: &[u8]) -> Option<()> {
    let text = || CellText::from_stored(std::str::from_utf8(value).ok()?.to_owned()).ok();
    match read_persister_entry_key(entry_key)? {
        PersisterKeyRef::StoreFlag => builder.store_flag(),
        PersisterKeyRef::Cell { table, row, cell } => builder.cell(table, row, cell, text()?),
        PersisterKeyRef::Value { id } => builder.value(id, text()?),
    }
    Some(())
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
            StoreOp::SetValue { id, text } => {
                (PersisterKey::Value { id }, Some(text.as_str().as_bytes().to_vec()))
            }
            StoreOp::DelValue { id } => (PersisterKey::Value { id }, None),
        };
        EntryWrite { key: persister_entry_key(&key), value }
    })
}

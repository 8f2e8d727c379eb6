//! Room images: every entry of a room in one sled value, so that loading a big room reads one
//! value instead of iterating tens of thousands of keys (sled's scan costs about a microsecond an
//! entry, more when its pages are not cached). An image is only a faster copy: every write and
//! every deletion of the room removes it in the same atomic batch, so it is never stale, and a
//! missing one only means the room is loaded by scanning.

use super::applier::{engine_error, Applier};
use super::layout::{image_key, room_prefix};
use super::ops::{self, Ops};
use super::{RoomPath, StorageError};

/// Rooms whose entries take more than this are not imaged: the copy would cost memory while it
/// is built and disk beside the entries out of proportion to the load it saves.
const MAX_IMAGE_BYTES: usize = 64 << 20;

/// The operation that removes a room's image, part of every write to the room.
pub fn removal(room: RoomPath<'_>) -> (Vec<u8>, Option<Vec<u8>>) {
    (image_key(room.party, room.room), None)
}

/// Visits the room's entries from its image; `Ok(false)` when it has none (or an unreadable
/// one, which is logged and ignored: the entries themselves are the truth).
pub fn visit(
    db: &sled::Db,
    room: RoomPath<'_>,
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<bool, StorageError> {
    let Some(image) = db.get(image_key(room.party, room.room)).map_err(engine_error)? else {
        return Ok(false);
    };
    let mut only_entries = true;
    if !ops::visit(&image, |_, value| only_entries &= value.is_some()) || !only_entries {
        tracing::warn!(
            party = room.party,
            room = room.room,
            "a room image does not decode; loading the room's entries instead"
        );
        return Ok(false);
    }
    ops::visit(&image, |key, value| visit(key, value.unwrap_or_default()));
    Ok(true)
}

/// Writes the room's image unless it has one already, is empty or is too big.
/// Not durable until the next flush or journal checkpoint, which is fine for a copy. The caller
/// must be the room's only writer (its task) while this runs.
pub fn save(db: &sled::Db, applier: &Applier, room: RoomPath<'_>) -> Result<(), StorageError> {
    applier.settle()?;
    let key = image_key(room.party, room.room);
    if db.contains_key(&key).map_err(engine_error)? {
        return Ok(());
    }
    let prefix = room_prefix(room.party, room.room);
    let mut image = Vec::new();
    for entry in db.scan_prefix(&prefix) {
        let (entry_key, value) = entry.map_err(engine_error)?;
        ops::push(&mut image, &entry_key[prefix.len()..], Some(&value));
        if image.len() > MAX_IMAGE_BYTES {
            return Ok(());
        }
    }
    if image.is_empty() {
        return Ok(());
    }
    let write: Ops = vec![(key, Some(image))];
    applier.apply(write)
}

#[cfg(test)]
mod tests {
    use crate::storage::{EntryWrite, RoomPath, SledStorage, Storage};

    const ROOM: RoomPath<'static> = RoomPath { party: "main", room: "imaged" };

    fn set(key: &str, value: &str) -> EntryWrite {
        EntryWrite { key: key.as_bytes().to_vec(), value: Some(value.as_bytes().to_vec()) }
    }

    fn entries(storage: &SledStorage) -> Vec<(String, String)> {
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        storage.load_room(ROOM).unwrap().into_iter().map(|(key, value)| (text(key), text(value))).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
    }

    #[tokio::test]
    async fn an_image_serves_loads_until_the_next_write_or_deletion_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        storage.commit(ROOM, false, vec![set("b", "2"), set("a", "1"), set("c\0\"", "3")], 3).await.unwrap();
        let before = entries(&storage);
        let keys = storage.raw_len();
        storage.save_image(ROOM).unwrap();
        assert_eq!(storage.raw_len(), keys + 1, "the image is one more key");
        storage.save_image(ROOM).unwrap();
        assert_eq!(storage.raw_len(), keys + 1, "an existing image is kept, not rewritten");
        assert_eq!(entries(&storage), before, "the image holds the same entries in the same order");

        storage
            .commit(ROOM, false, vec![set("a", "changed"), EntryWrite { key: b"b".to_vec(), value: None }], 2)
            .await
            .unwrap();
        assert_eq!(storage.raw_len(), keys - 1, "the write removed the image (and the entry b)");
        assert_eq!(entries(&storage), pairs(&[("a", "changed"), ("c\0\"", "3")]));

        storage.save_image(ROOM).unwrap();
        storage.commit(ROOM, true, Vec::new(), 0).await.unwrap();
        assert_eq!(storage.raw_len(), 0, "deleting the room deletes its image");
        storage.save_image(ROOM).unwrap();
        assert_eq!(storage.raw_len(), 0, "an empty room gets no image");
    }

    #[tokio::test]
    async fn rounds_after_an_image_win_when_the_journal_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            storage.commit(ROOM, false, vec![set("a", "1")], 1).await.unwrap();
            storage.save_image(ROOM).unwrap();
            storage.commit(ROOM, false, vec![set("a", "2")], 1).await.unwrap();
            storage.save_image(ROOM).unwrap();
            storage.commit(ROOM, false, vec![set("b", "3")], 2).await.unwrap();
            // Dropped without a flush: the rounds come back from the journal alone.
        }
        let storage = SledStorage::reopen(dir.path());
        assert_eq!(entries(&storage), pairs(&[("a", "2"), ("b", "3")]));
    }
}

//! The sled engine: one `Db`, one tree (the default one), keys laid out by [`super::layout`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::flusher::{FlushStats, Flusher};
use super::layout::{party_prefix, room_of_key, room_prefix};
use super::{DurableTicket, EntryWrite, RoomEntries, RoomPath, Storage, StorageError};

/// sled's page cache. Rooms keep their live state in memory, so the cache mainly serves cold
/// loads; 64 MiB keeps recently unloaded rooms warm without dominating RSS.
const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// The one sled database of the server.
pub struct SledStorage {
    db: sled::Db,
    flusher: Flusher,
}

impl SledStorage {
    /// Opens (creating if needed) the database under `dir` and starts the flusher.
    /// Never deletes or repairs anything: a locked or corrupt dir is an error naming it.
    pub fn open(dir: &Path) -> Result<Arc<Self>, StorageError> {
        std::fs::create_dir_all(dir).map_err(|error| io_error(dir, &error))?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            // Durability is ours: the group-commit flusher flushes after every write round.
            .flush_every_ms(None)
            .open()
            .map_err(|error| open_error(dir, error))?;
        let flush_db = db.clone();
        let flusher = Flusher::start(move || flush_db.flush().map(drop).map_err(engine_error))
            .map_err(|error| io_error(dir, &error))?;
        Ok(Arc::new(Self { db, flusher }))
    }
}

fn open_error(dir: &Path, error: sled::Error) -> StorageError {
    let path = PathBuf::from(dir);
    match error {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => StorageError::Locked { path },
        sled::Error::Io(io) => io_error(dir, &io),
        other => StorageError::Corrupt { path, detail: other.to_string() },
    }
}

fn io_error(dir: &Path, error: &std::io::Error) -> StorageError {
    StorageError::Io(format!("{}: {error}", dir.display()).into())
}

fn engine_error(error: sled::Error) -> StorageError {
    StorageError::Io(error.to_string().into())
}

impl Storage for SledStorage {
    fn load_room(&self, room: RoomPath<'_>) -> Result<RoomEntries, StorageError> {
        let prefix = room_prefix(room.party, room.room);
        self.db
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(engine_error)?;
                Ok((key[prefix.len()..].to_vec(), value.to_vec()))
            })
            .collect()
    }

    fn write(&self, room: RoomPath<'_>, writes: Vec<EntryWrite>) -> Result<(), StorageError> {
        let prefix = room_prefix(room.party, room.room);
        let mut batch = sled::Batch::default();
        let mut key = prefix.clone();
        for write in writes {
            key.truncate(prefix.len());
            key.extend_from_slice(&write.key);
            match write.value {
                Some(value) => batch.insert(key.as_slice(), value),
                None => batch.remove(key.as_slice()),
            }
        }
        self.db.apply_batch(batch).map_err(engine_error)
    }

    fn durable(&self) -> DurableTicket {
        self.flusher.durable()
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(drop).map_err(engine_error)
    }

    fn list_rooms(&self, party: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StorageError> {
        let prefix = party_prefix(party);
        let mut start = match after {
            // The first key after every key of room `after`: its prefix with one more byte, 0xff.
            Some(after) => room_prefix(party, after),
            None => prefix.clone(),
        };
        if after.is_some() {
            start.push(0xff);
        }
        let mut rooms: Vec<String> = Vec::new();
        let mut cursor = start;
        while rooms.len() < limit {
            let Some(entry) = self.db.range(cursor.as_slice()..).next() else { break };
            let (key, _) = entry.map_err(engine_error)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some(room) = room_of_key(&key[prefix.len()..]) else { break };
            rooms.push(room.to_owned());
            cursor = room_prefix(party, room);
            // Skip past every key of this room: no entry key starts with a 0xff byte.
            cursor.push(0xff);
        }
        Ok(rooms)
    }

    fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> EntryWrite {
        EntryWrite { key: key.as_bytes().to_vec(), value: Some(value.as_bytes().to_vec()) }
    }

    fn room(name: &str) -> RoomPath<'_> {
        RoomPath { party: "main", room: name }
    }

    #[tokio::test]
    async fn writes_are_durable_across_a_reopen_and_rooms_are_isolated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            storage.write(room("a"), vec![set("x", "1"), set("y", "2")]).unwrap();
            storage.write(room("ab"), vec![set("x", "3")]).unwrap();
            storage.write(room("a"), vec![EntryWrite { key: b"y".to_vec(), value: None }]).unwrap();
            storage.durable().await.unwrap();
        }
        let storage = reopen(dir.path());
        assert_eq!(storage.load_room(room("a")).unwrap(), vec![(b"x".to_vec(), b"1".to_vec())]);
        assert_eq!(storage.load_room(room("ab")).unwrap(), vec![(b"x".to_vec(), b"3".to_vec())]);
        assert!(storage.load_room(room("b")).unwrap().is_empty());
    }

    /// Opens a dir this process just closed. sled's I/O threads may still hold the file lock
    /// for a moment after the last `Db` is dropped, so poll (with a deadline) until they let go.
    fn reopen(dir: &Path) -> Arc<SledStorage> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SledStorage::open(dir) {
                Err(StorageError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result.unwrap(),
            }
        }
    }

    #[test]
    fn a_second_open_of_the_same_dir_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStorage::open(dir.path()).unwrap();
        let error = SledStorage::open(dir.path()).err().expect("second open must fail");
        assert!(matches!(error, StorageError::Locked { .. }), "{error}");
        assert!(error.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn a_garbage_data_dir_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conf"), b"garbage, not a sled config").unwrap();
        std::fs::write(dir.path().join("db"), vec![0xAB; 4096]).unwrap();
        let error = SledStorage::open(dir.path()).err().expect("a garbage dir must not open");
        assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
        assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), vec![0xAB; 4096], "nothing was touched");
    }

    #[test]
    fn rooms_are_listed_in_name_order_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        for name in ["b", "a", "ab", "c"] {
            storage.write(room(name), vec![set("k1", "v"), set("k2", "v")]).unwrap();
        }
        storage.write(RoomPath { party: "other", room: "zz" }, vec![set("k", "v")]).unwrap();
        assert_eq!(storage.list_rooms("main", None, 2).unwrap(), ["a", "b"]);
        assert_eq!(storage.list_rooms("main", Some("b"), 10).unwrap(), ["c", "ab"]);
        assert_eq!(storage.list_rooms("nobody", None, 10).unwrap(), Vec::<String>::new());
    }
}

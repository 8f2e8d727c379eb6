//! The sled engine: one `Db`, one tree (the default one), keys laid out by [`super::layout`].
//! Rooms' rounds are made durable by the [`Journal`] (one synchronous block write per group
//! commit) and reach sled through the [`Applier`], in batches; sled itself is flushed only at
//! the journal's checkpoints and when asked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::applier::{engine_error, Applier, Nudge, SpaceGuard};
use super::flusher::{FlushObserver, FlushStats, Flusher, Pacing};
use super::image;
use super::journal::{AppendError, Journal, BLOCK};
use super::layout::{decode_index_key, index_key, index_party_prefix, index_prefix, room_prefix};
use super::leftovers;
use super::ops::Ops;
use super::{
    DurableTicket, EntryWrite, OpenRound, PendingWrites, RoomEntries, RoomMeta, RoomPath, Storage,
    StorageError, StoredRoom,
};

/// sled's page cache. Rooms keep their live state in memory, so the cache mainly serves cold
/// loads; 64 MiB keeps recently unloaded rooms warm without dominating RSS.
const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Each journal file: 8 MiB (2,048 blocks, the first its header; a group commit takes at least
/// one), so a checkpoint (one sled flush) comes at most once every 2,047 group commits, and
/// replay at open reads little.
pub(super) const JOURNAL_BLOCKS: usize = (8 << 20) / BLOCK;

/// A unit of work for the group-commit thread (by default, a plain flush).
#[derive(Debug, Default)]
enum Work {
    /// A room's round, open to more writes until this commit takes it: the room's delete
    /// operations, if any, then its writes, journaled and then applied.
    Round { party: String, room: String, deletes: Ops, round: Arc<OpenRound> },
    /// Make writes that bypassed the journal durable: a sled flush.
    #[default]
    FlushEngine,
}

/// Entries read from sled one by one, or from a scan with the applier's queue laid over it.
type ScannedEntries<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StorageError>> + 'a>;

/// The one sled database of the server.
pub struct SledStorage {
    db: sled::Db,
    /// Journaled operations on their way into sled; every read settles it first.
    applier: Arc<Applier>,
    /// Journals the queued rounds of every room as one record, then hands them to the applier.
    flusher: Flusher<Work>,
}

impl SledStorage {
    /// Opens (creating if needed) the database under `dir` and starts the flusher with the
    /// default group-commit window. Repairs nothing and deletes only an incomplete snapshot an
    /// interrupted open of sled left (see [`leftovers`]): a locked or corrupt dir, or a journal
    /// that cannot be replayed whole, is an error naming it, and a failed open changes nothing
    /// the next one needs.
    pub fn open(dir: &Path) -> Result<Arc<Self>, StorageError> {
        Self::open_with_pacing(dir, Pacing::scaled(super::DEFAULT_GROUP_COMMIT_WINDOW))
    }

    /// Like [`Self::open`]; under load, group commits wait as `pacing` says.
    pub fn open_with_pacing(dir: &Path, pacing: Pacing) -> Result<Arc<Self>, StorageError> {
        Self::open_with(dir, pacing, super::DEFAULT_RESERVE_BYTES)
    }

    /// Like [`Self::open_with_pacing`], keeping `reserve_bytes` free under `dir`: a batch that
    /// would leave less is kept queued (and writes are refused once the journal is full)
    /// instead of being offered to sled.
    pub fn open_with(dir: &Path, pacing: Pacing, reserve_bytes: u64) -> Result<Arc<Self>, StorageError> {
        let db = open_db(dir)?;
        let engine_holds_data = db.first().map_err(engine_error)?.is_some();
        let space = SpaceGuard::new(dir.to_owned(), reserve_bytes);
        let (applier, nudge) = Applier::start(db.clone(), space).map_err(|error| io_error(dir, &error))?;
        let checkpointed = applier.clone();
        let mut journal = Journal::open(
            dir,
            JOURNAL_BLOCKS,
            engine_holds_data,
            |ops| applier.apply(ops),
            Box::new(move || checkpointed.flush()),
        )?;
        let committed = applier.clone();
        let flusher = Flusher::start(pacing, move |rounds: Vec<Work>| {
            commit_rounds(&committed, &nudge, &mut journal, rounds)
        })
        .map_err(|error| io_error(dir, &error))?;
        Ok(Arc::new(Self { db, applier, flusher }))
    }
}

#[cfg(test)]
impl SledStorage {
    /// Opens a dir this process just closed. sled's I/O threads may still hold the file lock
    /// for a moment after the last `Db` is dropped, so poll (with a deadline) until they let go.
    pub(crate) fn reopen(dir: &Path) -> Arc<Self> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Self::open(dir) {
                Err(StorageError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result.unwrap(),
            }
        }
    }

    /// Makes the disk look full (a reserve larger than any disk) or not (zero).
    pub(crate) fn set_disk_full(&self, full: bool) {
        self.applier.set_reserve_bytes(if full { u64::MAX / 4 } else { 0 });
    }

    /// Every key of the tree, rooms and index alike (for tests that check nothing stray is left).
    pub(crate) fn raw_len(&self) -> usize {
        self.applier.settle().expect("settles");
        self.db.len()
    }
}

/// Opens (creating if needed) sled under `dir`, first removing what an interrupted open of sled
/// left that would stop this one (see [`leftovers`]).
pub(super) fn open_db(dir: &Path) -> Result<sled::Db, StorageError> {
    std::fs::create_dir_all(dir).map_err(|error| io_error(dir, &error))?;
    leftovers::remove_incomplete_snapshots(dir)?;
    sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_CAPACITY_BYTES)
        // Durability is ours: the group-commit flusher flushes after every write round.
        .flush_every_ms(None)
        .open()
        .map_err(|error| open_error(dir, error))
}

/// Sorts sled's open errors. sled 0.34 reports a held lock (an flock on `<dir>/db`, taken per
/// open file, so a second open in the same process is refused too) only as an `Io` error of kind
/// `Other` with the text "could not acquire lock"; the text is all there is to match on.
fn open_error(dir: &Path, error: sled::Error) -> StorageError {
    let path = PathBuf::from(dir);
    match error {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StorageError::Locked { path }
        }
        sled::Error::Io(io) => io_error(dir, &io),
        other => StorageError::Corrupt { path, detail: other.to_string() },
    }
}

fn io_error(dir: &Path, error: &std::io::Error) -> StorageError {
    StorageError::Io(format!("{}: {error}", dir.display()).into())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn encode_meta(meta: RoomMeta) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&meta.stored_bytes.to_be_bytes());
    bytes[8..].copy_from_slice(&meta.written_at_ms.to_be_bytes());
    bytes
}

fn decode_meta(bytes: &[u8]) -> RoomMeta {
    let word = |range: std::ops::Range<usize>| {
        bytes.get(range).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
    };
    RoomMeta { stored_bytes: word(0..8), written_at_ms: word(8..16) }
}

/// The operations that write a room's entries and its index entry.
fn write_ops(room: RoomPath<'_>, writes: Vec<EntryWrite>, stored_bytes: u64) -> Ops {
    let prefix = room_prefix(room.party, room.room);
    let mut ops: Ops = writes
        .into_iter()
        .map(|write| {
            let mut key = Vec::with_capacity(prefix.len() + write.key.len());
            key.extend_from_slice(&prefix);
            key.extend_from_slice(&write.key);
            (key, write.value)
        })
        .collect();
    let meta = RoomMeta { stored_bytes, written_at_ms: now_ms() };
    ops.push((index_key(room.party, room.room), Some(encode_meta(meta).to_vec())));
    ops.push(image::removal(room));
    ops
}

/// One group commit: every room's operations are journaled as one record (durable when that
/// write returns), then queued for sled. sled is flushed when a round asks for it (writes that
/// bypassed the journal) or is too big for a journal file (then applied and flushed at once).
/// Returns how many messages the commit carried, for the pacer.
fn commit_rounds(
    applier: &Applier,
    nudge: &Nudge,
    journal: &mut Journal,
    rounds: Vec<Work>,
) -> Result<usize, StorageError> {
    let mut flush_engine = false;
    let mut ops = Ops::new();
    let mut messages = 0;
    for work in rounds {
        match work {
            Work::Round { party, room, deletes, round } => {
                ops.extend(deletes);
                let PendingWrites { writes, stored_bytes, messages: round_messages } = round.close();
                messages += round_messages;
                if !writes.is_empty() {
                    ops.extend(write_ops(RoomPath { party: &party, room: &room }, writes, stored_bytes));
                }
            }
            Work::FlushEngine => {
                flush_engine = true;
                messages += 1;
            }
        }
    }
    if !ops.is_empty() {
        match journal.append(&ops) {
            Ok(()) => applier.queue(ops, nudge),
            Err(AppendError::TooLarge) => {
                applier.apply(ops)?;
                flush_engine = true;
            }
            Err(AppendError::Storage(error)) => return Err(error),
        }
    }
    if flush_engine {
        applier.flush()?;
        journal.everything_checkpointed()?;
    }
    Ok(messages)
}

impl SledStorage {
    /// sled's entries under `prefix` with the applier's queue laid over them, in key order:
    /// exact while sled cannot take the queue.
    fn overlaid_scan(&self, prefix: &[u8]) -> Result<RoomEntries, StorageError> {
        let mut entries = std::collections::BTreeMap::new();
        for entry in self.db.scan_prefix(prefix) {
            let (key, value) = entry.map_err(engine_error)?;
            entries.insert(key.to_vec(), value.to_vec());
        }
        for (key, value) in self.applier.overlay(prefix) {
            match value {
                Some(value) => entries.insert(key, value),
                None => entries.remove(&key),
            };
        }
        Ok(entries.into_iter().collect())
    }

    /// The operations that remove every entry of a room and its index entry.
    fn delete_ops(&self, room: RoomPath<'_>) -> Result<Ops, StorageError> {
        self.applier.settle()?;
        let mut ops = Vec::new();
        for key in self.db.scan_prefix(room_prefix(room.party, room.room)).keys() {
            ops.push((key.map_err(engine_error)?.to_vec(), None));
        }
        ops.push((index_key(room.party, room.room), None));
        ops.push(image::removal(room));
        Ok(ops)
    }
}

impl Storage for SledStorage {
    fn load_room(&self, room: RoomPath<'_>) -> Result<RoomEntries, StorageError> {
        let mut entries = Vec::new();
        self.visit_room(room, &mut |key, value| entries.push((key.to_vec(), value.to_vec())))?;
        Ok(entries)
    }

    fn visit_room(
        &self,
        room: RoomPath<'_>,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StorageError> {
        let prefix = room_prefix(room.party, room.room);
        if self.applier.settle().is_err() {
            // sled cannot take the queue now: read it laid over sled's entries. Any queued
            // write of the room also removes its image, so an image is read only when none is.
            let (image_key, _) = image::removal(room);
            if self.applier.overlay(&image_key).is_empty() && image::visit(&self.db, room, visit)? {
                return Ok(());
            }
            for (key, value) in self.overlaid_scan(&prefix)? {
                visit(&key[prefix.len()..], &value);
            }
            return Ok(());
        }
        if image::visit(&self.db, room, visit)? {
            return Ok(());
        }
        for entry in self.db.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(engine_error)?;
            visit(&key[prefix.len()..], &value);
        }
        Ok(())
    }

    fn write(
        &self,
        room: RoomPath<'_>,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
    ) -> Result<(), StorageError> {
        self.applier.apply(write_ops(room, writes, stored_bytes))
    }

    fn delete_room(&self, room: RoomPath<'_>) -> Result<(), StorageError> {
        self.applier.apply(self.delete_ops(room)?)
    }

    fn durable(&self) -> DurableTicket {
        self.flusher.durable()
    }

    fn commit(
        &self,
        room: RoomPath<'_>,
        delete_room: bool,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
    ) -> DurableTicket {
        self.commit_open(room, delete_room, writes, stored_bytes, 1).0
    }

    fn commit_open(
        &self,
        room: RoomPath<'_>,
        delete_room: bool,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
        messages: usize,
    ) -> (DurableTicket, Option<Arc<OpenRound>>) {
        let deletes = if delete_room {
            match self.delete_ops(room) {
                Ok(ops) => ops,
                Err(error) => return (DurableTicket::failed(error), None),
            }
        } else {
            Vec::new()
        };
        let round = Arc::new(OpenRound::new(writes, stored_bytes, messages));
        let work = Work::Round {
            party: room.party.to_owned(),
            room: room.room.to_owned(),
            deletes,
            round: round.clone(),
        };
        (self.flusher.submit(work), Some(round))
    }

    fn flush(&self) -> Result<(), StorageError> {
        // Through the group-commit thread, so the journal is emptied too: the next open has
        // nothing to replay.
        self.flusher.durable().wait()
    }

    fn list_rooms(
        &self,
        party: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRoom>, StorageError> {
        let party_prefix = index_party_prefix(party);
        let scan_prefix = index_key(party, prefix);
        let entries: ScannedEntries<'_> =
            match self.applier.settle() {
                Ok(()) => Box::new(self.db.scan_prefix(&scan_prefix).map(|entry| {
                    entry.map(|(key, value)| (key.to_vec(), value.to_vec())).map_err(engine_error)
                })),
                Err(_) => Box::new(self.overlaid_scan(&scan_prefix)?.into_iter().map(Ok)),
            };
        let mut rooms = Vec::new();
        for entry in entries {
            let (key, value) = entry?;
            let Ok(room) = std::str::from_utf8(&key[party_prefix.len()..]) else { continue };
            if after.is_some_and(|after| room <= after) {
                continue;
            }
            if rooms.len() == limit {
                break;
            }
            rooms.push(StoredRoom { room: room.to_owned(), meta: decode_meta(&value) });
        }
        Ok(rooms)
    }

    fn is_stored(&self, room: RoomPath<'_>) -> Result<bool, StorageError> {
        let key = index_key(room.party, room.room);
        if self.applier.settle().is_err() {
            // sled is behind the queue (a full disk): the queue's last word on the key wins.
            if let Some(queued) = self.applier.overlay(&key).remove(&key) {
                return Ok(queued.is_some());
            }
        }
        self.db.contains_key(key).map_err(engine_error)
    }

    fn all_rooms(&self) -> Result<Vec<(String, String)>, StorageError> {
        let keys: Vec<Vec<u8>> = match self.applier.settle() {
            Ok(()) => self
                .db
                .scan_prefix(index_prefix())
                .keys()
                .map(|key| key.map(|key| key.to_vec()).map_err(engine_error))
                .collect::<Result<_, _>>()?,
            Err(_) => self.overlaid_scan(&index_prefix())?.into_iter().map(|(key, _)| key).collect(),
        };
        Ok(keys
            .iter()
            .filter_map(|key| decode_index_key(key))
            .map(|(party, room)| (party.to_owned(), room.to_owned()))
            .collect())
    }

    fn save_image(&self, room: RoomPath<'_>) -> Result<(), StorageError> {
        image::save(&self.db, &self.applier, room)
    }

    fn write_failure(&self) -> Option<StorageError> {
        self.applier.failure()
    }

    fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }

    fn observe_flushes(&self, observer: FlushObserver) {
        self.flusher.observe(observer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
            storage.write(room("a"), vec![set("x", "1"), set("y", "2")], 2).unwrap();
            storage.write(room("ab"), vec![set("x", "3")], 1).unwrap();
            storage.write(room("a"), vec![EntryWrite { key: b"y".to_vec(), value: None }], 1).unwrap();
            storage.durable().await.unwrap();
        }
        let storage = SledStorage::reopen(dir.path());
        assert_eq!(storage.load_room(room("a")).unwrap(), vec![(b"x".to_vec(), b"1".to_vec())]);
        assert_eq!(storage.load_room(room("ab")).unwrap(), vec![(b"x".to_vec(), b"3".to_vec())]);
        assert!(storage.load_room(room("b")).unwrap().is_empty());
    }

    #[tokio::test]
    async fn writes_that_join_an_open_round_are_durable_with_it_and_none_join_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A long window: after the first commit the next one waits, so the round stays open.
            let storage =
                SledStorage::open_with_pacing(dir.path(), Pacing::fixed(Duration::from_millis(300))).unwrap();
            storage.write(room("a"), vec![set("old", "1")], 1).unwrap();
            storage.durable().await.unwrap();
            let (ticket, open) = storage.commit_open(room("a"), true, vec![set("x", "1")], 1, 1);
            let open = open.expect("sled keeps rounds open");
            open.try_join()
                .expect("the commit waits for its window")
                .add(vec![set("y", "2"), set("x", "3")], 2);
            ticket.await.unwrap();
            assert!(open.try_join().is_none(), "the commit took the round");
            let meta = storage.list_rooms("main", "", None, 10).unwrap();
            assert_eq!(meta[0].meta.stored_bytes, 2, "the index has the last joined size");
        }
        let storage = SledStorage::reopen(dir.path());
        let entries = vec![(b"x".to_vec(), b"3".to_vec()), (b"y".to_vec(), b"2".to_vec())];
        assert_eq!(
            storage.load_room(room("a")).unwrap(),
            entries,
            "deleted first, then every write in order"
        );
    }

    #[tokio::test]
    async fn one_write_of_many_entries_lands_whole_and_removals_in_it_too() {
        let dir = tempfile::tempdir().unwrap();
        let keys = |range: std::ops::Range<u32>| range.map(|i| format!("k{i:04}")).collect::<Vec<_>>();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            storage.write(room("big"), keys(0..1000).iter().map(|k| set(k, k)).collect(), 0).unwrap();
            let mut second: Vec<_> =
                keys(0..500).into_iter().map(|k| EntryWrite { key: k.into_bytes(), value: None }).collect();
            second.extend(keys(1000..1500).iter().map(|k| set(k, "new")));
            storage.write(room("big"), second, 0).unwrap();
            storage.durable().await.unwrap();
        }
        let entries = SledStorage::reopen(dir.path()).load_room(room("big")).unwrap();
        let expected: Vec<_> = keys(500..1500)
            .into_iter()
            .map(|k| {
                let value = if k.as_str() < "k1000" { k.clone() } else { "new".to_owned() };
                (k.into_bytes(), value.into_bytes())
            })
            .collect();
        assert_eq!(entries, expected);
    }

    #[tokio::test]
    async fn a_hundred_concurrent_tickets_share_fewer_flushes_and_all_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    storage.write(room(&i.to_string()), vec![set("k", &"x".repeat(1000))], 1)?;
                    storage.durable().await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = storage.flush_stats();
        assert_eq!(stats.tickets, 100, "{stats:?}");
        assert!(stats.flushes < stats.tickets, "group commit must share flushes: {stats:?}");
    }

    #[tokio::test]
    async fn dropping_the_storage_flushes_and_answers_pending_tickets() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        storage.write(room("r"), vec![set("k", "v")], 1).unwrap();
        let tickets: Vec<_> = (0..10).map(|_| storage.durable()).collect();
        drop(storage);
        for ticket in tickets {
            ticket.await.unwrap();
        }
        assert_eq!(
            SledStorage::reopen(dir.path()).load_room(room("r")).unwrap(),
            vec![(b"k".to_vec(), b"v".to_vec())]
        );
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
        assert_eq!(std::fs::read(dir.path().join("conf")).unwrap(), b"garbage, not a sled config");
    }

    #[test]
    fn rooms_are_listed_in_name_order_page_by_page_and_deleted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        for (i, name) in ["b", "a", "ab", "c", "a b"].into_iter().enumerate() {
            storage.write(room(name), vec![set("k1", "v"), set("k2", "v")], i as u64).unwrap();
        }
        storage.write(RoomPath { party: "other", room: "zz" }, vec![set("k", "v")], 9).unwrap();
        let names = |rooms: Vec<StoredRoom>| rooms.into_iter().map(|r| r.room).collect::<Vec<_>>();
        assert_eq!(names(storage.list_rooms("main", "", None, 3).unwrap()), ["a", "a b", "ab"]);
        assert_eq!(names(storage.list_rooms("main", "", Some("ab"), 10).unwrap()), ["b", "c"]);
        assert_eq!(names(storage.list_rooms("main", "a", None, 10).unwrap()), ["a", "a b", "ab"]);
        assert_eq!(names(storage.list_rooms("nobody", "", None, 10).unwrap()), Vec::<String>::new());
        let listed = storage.list_rooms("other", "", None, 10).unwrap();
        assert_eq!(listed[0].meta.stored_bytes, 9);
        assert!(listed[0].meta.written_at_ms > 1_700_000_000_000);
        storage.delete_room(room("ab")).unwrap();
        assert!(storage.load_room(room("ab")).unwrap().is_empty());
        assert_eq!(
            storage.load_room(room("a")).unwrap().len(),
            2,
            "a neighbour with a shared prefix is untouched"
        );
        assert_eq!(storage.all_rooms().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_full_disk_keeps_acknowledged_writes_readable_refuses_when_the_journal_is_full_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open_with(dir.path(), Pacing::fixed(Duration::ZERO), 0).unwrap();
        storage.commit(room("a"), false, vec![set("x", "1")], 1).await.unwrap();
        storage.set_disk_full(true);
        storage.commit(room("a"), false, vec![set("y", "2")], 2).await.expect("the journal takes it");
        storage.commit(room("b"), false, vec![set("z", "3")], 1).await.expect("the journal takes it");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while storage.write_failure().is_none() {
            assert!(std::time::Instant::now() < deadline, "the applier never met the full disk");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(storage.write_failure().unwrap().is_full());
        let a = vec![(b"x".to_vec(), b"1".to_vec()), (b"y".to_vec(), b"2".to_vec())];
        assert_eq!(storage.load_room(room("a")).unwrap(), a, "reads lay the queue over sled");
        let listed: Vec<_> =
            storage.list_rooms("main", "", None, 10).unwrap().into_iter().map(|stored| stored.room).collect();
        assert_eq!(listed, ["a", "b"]);
        assert_eq!(storage.all_rooms().unwrap().len(), 2);

        // Half a journal file a round: the journal soon needs a checkpoint it cannot have.
        let big = "v".repeat(JOURNAL_BLOCKS * BLOCK / 2);
        let mut acknowledged = Vec::new();
        let refusal = loop {
            let key = format!("big{}", acknowledged.len());
            match storage.commit(room("c"), false, vec![set(&key, &big)], 1).await {
                Ok(()) => acknowledged.push(key),
                Err(error) => break error,
            }
            assert!(acknowledged.len() < 16, "a full disk never refused a write");
        };
        assert!(refusal.is_full(), "{refusal}");
        let keys: Vec<_> = storage.load_room(room("c")).unwrap().into_iter().map(|(key, _)| key).collect();
        let mut expected: Vec<_> = acknowledged.iter().map(|key| key.clone().into_bytes()).collect();
        expected.sort();
        assert_eq!(keys, expected, "every acknowledged write is readable, the refused one is not");

        storage.set_disk_full(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match storage.commit(room("c"), false, vec![set("after", &big)], 1).await {
                Ok(()) => break,
                Err(error) => assert!(std::time::Instant::now() < deadline, "no recovery: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while storage.write_failure().is_some() {
            assert!(std::time::Instant::now() < deadline, "the queue never reached sled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(storage);
        let storage = SledStorage::reopen(dir.path());
        assert_eq!(storage.load_room(room("a")).unwrap(), a);
        assert_eq!(storage.load_room(room("c")).unwrap().len(), acknowledged.len() + 1);
    }
}

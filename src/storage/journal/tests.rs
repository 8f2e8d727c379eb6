//! The journal alone, with an in-memory "engine": replay order across files and epochs,
//! checkpoints when a file fills, records too big for a file, and damaged files: a torn last
//! record replays up to it; any other damage refuses the open and changes no byte, and what
//! `partyd recover` would replay of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;

/// A tiny journal: 8 blocks a file, so a few records fill one.
const BLOCKS: usize = 8;

type Engine = BTreeMap<Vec<u8>, Vec<u8>>;

fn set(key: &str, value: &str) -> ops::Ops {
    vec![(key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))]
}

fn apply(engine: &mut Engine, ops: ops::Ops) {
    for (key, value) in ops {
        match value {
            Some(value) => engine.insert(key, value),
            None => engine.remove(&key),
        };
    }
}

/// A stand-in for sled: `live` is what was applied, `durable` what a checkpoint (an engine
/// flush) copied from it; a reopen starts from `durable` alone, as after a crash.
#[derive(Default)]
struct Harness {
    live: Arc<Mutex<Engine>>,
    durable: Arc<Mutex<Engine>>,
    checkpoints: Arc<AtomicUsize>,
    failing_checkpoints: Arc<AtomicUsize>,
}

impl Harness {
    fn open(&self, dir: &Path) -> Journal {
        self.try_open(dir).unwrap()
    }

    fn try_open(&self, dir: &Path) -> Result<Journal, StorageError> {
        *self.live.lock().unwrap() = self.durable.lock().unwrap().clone();
        let engine_holds_data = !self.durable.lock().unwrap().is_empty();
        let (live, durable, count, failing) = (
            self.live.clone(),
            self.durable.clone(),
            self.checkpoints.clone(),
            self.failing_checkpoints.clone(),
        );
        let replay_into = self.live.clone();
        Journal::open(
            dir,
            BLOCKS,
            engine_holds_data,
            move |ops| {
                apply(&mut replay_into.lock().unwrap(), ops);
                Ok(())
            },
            Box::new(move || {
                if failing.load(Ordering::SeqCst) > 0 {
                    failing.fetch_sub(1, Ordering::SeqCst);
                    return Err(StorageError::Io("engine flush failed".into()));
                }
                count.fetch_add(1, Ordering::SeqCst);
                *durable.lock().unwrap() = live.lock().unwrap().clone();
                Ok(())
            }),
        )
    }

    /// Journals and applies, as the group-commit thread does.
    fn commit(&self, journal: &mut Journal, ops: ops::Ops) -> Result<(), AppendError> {
        journal.append(&ops)?;
        apply(&mut self.live.lock().unwrap(), ops);
        Ok(())
    }

    /// What a crash-and-reopen recovers.
    fn recovered(&self, dir: &Path) -> Engine {
        let live = Harness {
            durable: Arc::new(Mutex::new(self.durable.lock().unwrap().clone())),
            ..Harness::default()
        };
        drop(live.open(dir));
        let engine = live.live.lock().unwrap().clone();
        engine
    }
}

fn value(engine: &Engine, key: &str) -> Option<String> {
    engine.get(key.as_bytes()).map(|value| String::from_utf8(value.clone()).unwrap())
}

#[test]
fn checkpoints_and_replay_together_recover_every_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    let mut model = Engine::new();
    {
        let mut journal = harness.open(dir.path());
        // 7 one-block records fill a file; 60 go through both files several times.
        for i in 0..30 {
            for ops in [set("k", &i.to_string()), set(&format!("k{i}"), "x")] {
                harness.commit(&mut journal, ops.clone()).unwrap();
                apply(&mut model, ops);
            }
        }
        // A checkpoint copies everything applied by the time it runs, which may be every record
        // so far: so start a fresh file, let the last checkpoint finish, and only then write the
        // record that must live in the journal alone.
        journal.switch().unwrap();
        journal.wait_empty(1 - journal.active).unwrap();
        let last = set("last", "only in the journal");
        harness.commit(&mut journal, last.clone()).unwrap();
        apply(&mut model, last);
    }
    assert!(
        harness.checkpoints.load(Ordering::SeqCst) >= 7,
        "a full file is checkpointed before it is reused"
    );
    assert_eq!(
        value(&harness.durable.lock().unwrap(), "last"),
        None,
        "the newest record lives only in the journal"
    );
    assert_eq!(harness.recovered(dir.path()), model);
    let reopened =
        Harness { durable: Arc::new(Mutex::new(harness.recovered(dir.path()))), ..Harness::default() };
    drop(reopened.open(dir.path()));
    assert_eq!(reopened.checkpoints.load(Ordering::SeqCst), 0, "a reopen finds nothing left to replay");
}

#[test]
fn a_record_too_big_for_a_file_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    let mut journal = harness.open(dir.path());
    let big = "x".repeat(BLOCKS * BLOCK);
    assert!(matches!(journal.append(&set("big", &big)), Err(AppendError::TooLarge)));
    harness.commit(&mut journal, set("small", "1")).unwrap();
    let recovered = harness.recovered(dir.path());
    assert_eq!(recovered.keys().collect::<Vec<_>>(), [b"small"]);
}

#[test]
fn after_everything_is_checkpointed_older_records_never_replay_over_direct_writes() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    let mut journal = harness.open(dir.path());
    for i in 0..10 {
        harness.commit(&mut journal, set(&format!("k{i}"), "journaled")).unwrap();
    }
    // A write that bypasses the journal, then the engine flush and the journal told of it.
    apply(&mut harness.live.lock().unwrap(), set("k9", "direct"));
    *harness.durable.lock().unwrap() = harness.live.lock().unwrap().clone();
    journal.everything_checkpointed().unwrap();
    harness.commit(&mut journal, set("later", "1")).unwrap();
    let recovered = harness.recovered(dir.path());
    assert_eq!(value(&recovered, "k9").as_deref(), Some("direct"));
    assert_eq!(value(&recovered, "later").as_deref(), Some("1"));
    assert_eq!(recovered.len(), 11);
}

#[test]
fn a_file_of_another_size_is_replayed_then_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    {
        let mut journal = harness.open(dir.path());
        harness.commit(&mut journal, set("k", "v")).unwrap();
    }
    let path = dir.path().join(FILE_NAMES[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(3 * BLOCK);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(value(&harness.recovered(dir.path()), "k").as_deref(), Some("v"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), (BLOCKS * BLOCK) as u64);
}

#[test]
fn a_failed_checkpoint_refuses_commits_until_the_checkpointer_retries_it_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    let mut journal = harness.open(dir.path());
    harness.failing_checkpoints.store(1, Ordering::SeqCst);
    let mut model = Engine::new();
    let mut refused = 0;
    let mut first_refusal = None;
    for i in 0..(3 * BLOCKS) {
        let ops = set(&format!("k{i:02}"), "v");
        match harness.commit(&mut journal, ops.clone()) {
            Ok(()) => apply(&mut model, ops),
            Err(AppendError::Storage(error)) => {
                assert!(error.to_string().contains("engine flush failed"), "{error}");
                refused += 1;
                first_refusal.get_or_insert_with(std::time::Instant::now);
                // A refused client comes back a little later; nothing else asks for a checkpoint.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(AppendError::TooLarge) => unreachable!(),
        }
    }
    let waited = first_refusal.expect("a commit was refused while the checkpoint failed").elapsed();
    assert!(refused >= 1, "the failure is reported, not hidden");
    assert!(
        waited >= super::CHECKPOINT_RETRY,
        "commits were refused only until the checkpoint was retried ({refused} refused)"
    );
    assert!(refused <= 30, "the retry came by itself within seconds: {refused} refused");
    assert_eq!(harness.recovered(dir.path()), model);
}

fn path(dir: &Path, index: usize) -> PathBuf {
    dir.join(FILE_NAMES[index])
}

/// Overwrites bytes of a journal file (as damage on disk would).
fn damage(dir: &Path, index: usize, offset: usize, bytes: &[u8]) {
    let path = path(dir, index);
    let mut contents = std::fs::read(&path).unwrap();
    contents[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(&path, contents).unwrap();
}

/// Both files' bytes (`None`: missing).
fn journal_bytes(dir: &Path) -> [Option<Vec<u8>>; 2] {
    [0, 1].map(|index| std::fs::read(path(dir, index)).ok())
}

/// Opens after `count` records `k0`, `k1`, … were committed to a fresh journal (file 0).
fn committed(dir: &Path, count: usize) -> Harness {
    let harness = Harness::default();
    let mut journal = harness.open(dir);
    for i in 0..count {
        harness.commit(&mut journal, set(&format!("k{i}"), "v")).unwrap();
    }
    drop(journal);
    harness
}

/// The open is refused with an error saying each of `expected`, and no journal byte changed.
fn assert_refused(dir: &Path, harness: &Harness, expected: &[&str]) {
    let before = journal_bytes(dir);
    let error = harness.try_open(dir).err().expect("the open must be refused");
    assert!(matches!(error, StorageError::Journal { .. }), "{error}");
    let message = error.to_string();
    for words in expected.iter().chain(&["start refused, nothing was changed", "partyd recover"]) {
        assert!(message.contains(words), "{words:?} is not in: {message}");
    }
    assert_eq!(journal_bytes(dir), before, "the refused open changed the journal");
    assert_eq!(harness.checkpoints.load(Ordering::SeqCst), 0, "nothing was replayed into the engine");
}

fn keys(engine: &Engine) -> Vec<String> {
    engine.keys().map(|key| String::from_utf8(key.clone()).unwrap()).collect()
}

/// What `partyd recover` would replay, applied to an empty engine.
fn salvaged(dir: &Path) -> (Engine, survey::Salvage) {
    let mut salvage = Survey::read(dir).unwrap().salvage();
    let mut engine = Engine::new();
    for ops in std::mem::take(&mut salvage.replay) {
        apply(&mut engine, ops);
    }
    (engine, salvage)
}

#[test]
fn a_torn_last_record_ends_the_replay_and_is_reported_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let harness = committed(dir.path(), 3);
    damage(dir.path(), 0, 3 * BLOCK + 30, &[0xFF]); // inside the last record's payload
    let torn: Vec<_> = Survey::read(dir.path()).unwrap().torn().collect();
    assert_eq!(torn, [(FILE_NAMES[0], file::Position { seq: 2, block: 3 })]);
    assert_eq!(keys(&harness.recovered(dir.path())), ["k0", "k1"]);
}

#[test]
fn the_end_of_a_file_in_leftovers_of_an_older_epoch_is_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    {
        let mut journal = harness.open(dir.path());
        // A three-block record, then everything emptied: its blocks stay behind the header.
        harness.commit(&mut journal, set("big", &"x".repeat(2 * BLOCK))).unwrap();
        *harness.durable.lock().unwrap() = harness.live.lock().unwrap().clone();
        journal.everything_checkpointed().unwrap();
        harness.commit(&mut journal, set("k", "v")).unwrap();
    }
    let survey = Survey::read(dir.path()).unwrap();
    assert!(survey.problems(true).is_empty() && survey.torn().next().is_none());
    assert_eq!(value(&harness.recovered(dir.path()), "k").as_deref(), Some("v"));
}

#[test]
fn garbage_in_the_first_record_with_a_valid_record_after_it_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    committed(dir.path(), 3);
    damage(dir.path(), 0, BLOCK, &[0xAB; BLOCK]);
    assert_refused(
        dir.path(),
        &Harness::default(),
        &["partyd-journal-0: record 0 at block 1 is damaged and 2 valid records follow"],
    );
    let (engine, salvage) = salvaged(dir.path());
    assert_eq!(keys(&engine), ["k1", "k2"]);
    assert_eq!(salvage.lost, ["partyd-journal-0: record 0 at block 1 could not be read (1 record: lost unless sled already had its writes)"]);
}

#[test]
fn garbage_in_the_only_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let harness = committed(dir.path(), 1);
    damage(dir.path(), 0, BLOCK, &[0xAB; 64]);
    let torn: Vec<_> = Survey::read(dir.path()).unwrap().torn().collect();
    assert_eq!(torn, [(FILE_NAMES[0], file::Position { seq: 0, block: 1 })]);
    assert!(harness.recovered(dir.path()).is_empty());
}

#[test]
fn damage_in_the_middle_followed_by_valid_records_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    committed(dir.path(), 6);
    damage(dir.path(), 0, 2 * BLOCK + 30, &[0xFF]); // record 1
    damage(dir.path(), 0, 3 * BLOCK + 30, &[0xFF]); // record 2
    damage(dir.path(), 0, 5 * BLOCK + 30, &[0xFF]); // record 4
    assert_refused(
        dir.path(),
        &Harness::default(),
        &["partyd-journal-0: records 1-3 from block 2 are damaged and 2 valid records follow"],
    );
    let (engine, salvage) = salvaged(dir.path());
    assert_eq!(keys(&engine), ["k0", "k3", "k5"]);
    assert_eq!(
        salvage.lost,
        [
            "partyd-journal-0: records 1-2 from block 2 could not be read (2 records: lost unless sled already had their writes)",
            "partyd-journal-0: record 4 at block 5 could not be read (1 record: lost unless sled already had its writes)"
        ]
    );
}

#[test]
fn a_damaged_header_on_a_file_with_records_refuses_the_open_and_recover_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    committed(dir.path(), 3);
    damage(dir.path(), 0, 0, &[0; BLOCK]);
    assert_refused(
        dir.path(),
        &Harness::default(),
        &["partyd-journal-0: the header is damaged (it holds 3 valid records of epoch 1)"],
    );
    // File 1 was emptied once after file 0's epoch began (epoch 2), file 0 not since: its
    // records are still to be replayed.
    let (engine, salvage) = salvaged(dir.path());
    assert_eq!(keys(&engine), ["k0", "k1", "k2"]);
    assert!(salvage.lost.is_empty(), "{:?}", salvage.lost);
}

#[test]
fn a_damaged_header_on_a_file_emptied_since_its_records_keeps_them_from_recover() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    {
        let mut journal = harness.open(dir.path());
        harness.commit(&mut journal, set("k", "journaled")).unwrap();
        // A write that bypasses the journal, the engine flush, and the journal emptied: the
        // old record stays in file 0 behind a new header.
        apply(&mut harness.live.lock().unwrap(), set("k", "direct"));
        *harness.durable.lock().unwrap() = harness.live.lock().unwrap().clone();
        journal.everything_checkpointed().unwrap();
    }
    damage(dir.path(), 0, 8, &[0xFF]);
    assert_refused(dir.path(), &harness, &["partyd-journal-0: the header is damaged"]);
    let (engine, salvage) = salvaged(dir.path());
    assert!(engine.is_empty(), "replaying the old record would undo the direct write");
    assert_eq!(salvage.lost.len(), 1);
    assert!(salvage.lost[0].contains("were not replayed"), "{:?}", salvage.lost);
}

#[test]
fn a_damaged_header_on_a_file_holding_nothing_valid_still_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    committed(dir.path(), 0);
    damage(dir.path(), 1, 4, &[0xFF]);
    assert_refused(
        dir.path(),
        &Harness::default(),
        &["partyd-journal-1: the header is damaged (it holds no valid record)"],
    );
}

#[test]
fn a_missing_file_refuses_the_open_while_the_other_is_there() {
    for (removed, kept) in [(0, 1), (1, 0)] {
        let dir = tempfile::tempdir().unwrap();
        committed(dir.path(), 2);
        std::fs::remove_file(path(dir.path(), removed)).unwrap();
        assert_refused(
            dir.path(),
            &Harness::default(),
            &[&format!("{} is missing ({} is there)", FILE_NAMES[removed], FILE_NAMES[kept])],
        );
        assert!(!path(dir.path(), removed).exists(), "the refused open did not recreate it");
        let (engine, salvage) = salvaged(dir.path());
        assert_eq!(keys(&engine).len(), if kept == 0 { 2 } else { 0 });
        assert!(salvage.lost.iter().any(|lost| lost.contains("is missing")), "{:?}", salvage.lost);
    }
}

#[test]
fn both_files_missing_refuse_the_open_only_when_the_engine_holds_data() {
    let dir = tempfile::tempdir().unwrap();
    committed(dir.path(), 2);
    for index in [0, 1] {
        std::fs::remove_file(path(dir.path(), index)).unwrap();
    }
    let holding = Harness::default();
    holding.durable.lock().unwrap().insert(b"k".to_vec(), b"v".to_vec());
    assert_refused(dir.path(), &holding, &["both journal files are missing while sled holds data"]);
    drop(Harness::default().open(dir.path()));
    assert!(path(dir.path(), 0).exists() && path(dir.path(), 1).exists(), "a new data dir gets its files");
}

#[test]
fn a_first_open_stopped_between_creating_the_files_is_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path(), 0), vec![0; BLOCKS * BLOCK]).unwrap();
    let harness = Harness::default();
    let mut journal = harness.try_open(dir.path()).expect("an all-zero file and no other is a new journal");
    harness.commit(&mut journal, set("k", "v")).unwrap();
    drop(journal);
    assert_eq!(value(&harness.recovered(dir.path()), "k").as_deref(), Some("v"));
}

/// Fills file 0 (7 one-block records) and puts `in_second` records in file 1 with every
/// checkpoint failing, so file 0 is never emptied: as after a crash right after the switch.
fn across_both_files(dir: &Path, in_second: usize) -> Harness {
    let harness = Harness::default();
    harness.failing_checkpoints.store(usize::MAX, Ordering::SeqCst);
    let mut journal = harness.open(dir);
    for i in 0..(BLOCKS - 1 + in_second) {
        harness.commit(&mut journal, set(&format!("k{i}"), "v")).unwrap();
    }
    assert_eq!(journal.active, usize::from(in_second > 0));
    drop(journal);
    harness.failing_checkpoints.store(0, Ordering::SeqCst);
    harness
}

#[test]
fn a_damaged_last_record_with_records_written_after_it_in_the_other_file_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    across_both_files(dir.path(), 2);
    damage(dir.path(), 0, (BLOCKS - 1) * BLOCK + 30, &[0xFF]);
    assert_refused(
        dir.path(),
        &Harness::default(),
        &["partyd-journal-0: record 6 at block 7 is damaged and partyd-journal-1 holds 2 records written after it"],
    );
}

#[test]
fn a_damaged_last_record_of_a_full_file_with_nothing_after_it_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let harness = across_both_files(dir.path(), 0);
    // The next file has no record yet: as if the crash came before the switch.
    damage(dir.path(), 0, (BLOCKS - 1) * BLOCK + 30, &[0xFF]);
    assert_eq!(harness.recovered(dir.path()).len(), BLOCKS - 2);
}

#[test]
fn a_failed_write_is_cleared_before_a_switch_so_it_never_looks_like_damage() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    let mut model = Engine::new();
    {
        let mut journal = harness.open(dir.path());
        for i in 0..5 {
            let ops = set(&format!("k{i}"), "v");
            harness.commit(&mut journal, ops.clone()).unwrap();
            apply(&mut model, ops);
        }
        // A record write that failed half-way: its header landed, its payload did not.
        let epoch = journal.lock().epochs[0];
        let mut payload = Vec::new();
        ops::encode(&set("never", "acknowledged"), &mut payload);
        journal.files[0]
            .write_record(journal.next_block, epoch, journal.next_seq, &payload, &mut journal.buffer)
            .unwrap();
        damage(dir.path(), 0, journal.next_block * BLOCK + 30, &[0xFF]);
        journal.unfinished = true;
        // The next round does not fit in what is left of file 0: it goes to file 1. The crash
        // comes before file 0 is checkpointed and emptied (its checkpoint fails until then).
        harness.failing_checkpoints.store(usize::MAX, Ordering::SeqCst);
        let big = set("big", &"x".repeat(2 * BLOCK));
        harness.commit(&mut journal, big.clone()).unwrap();
        apply(&mut model, big);
        assert_eq!(journal.active, 1);
    }
    harness.failing_checkpoints.store(0, Ordering::SeqCst);
    assert_eq!(harness.recovered(dir.path()), model);
}

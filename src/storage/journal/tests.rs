//! The journal alone, with an in-memory "engine": replay order across files and epochs,
//! checkpoints when a file fills, records too big for a file, and damaged files.

use std::collections::BTreeMap;
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
        *self.live.lock().unwrap() = self.durable.lock().unwrap().clone();
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
        .unwrap()
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
fn a_torn_record_ends_the_replay_and_a_damaged_header_empties_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::default();
    {
        let mut journal = harness.open(dir.path());
        for i in 0..3 {
            harness.commit(&mut journal, set(&format!("k{i}"), "v")).unwrap();
        }
    }
    let path = dir.path().join(FILE_NAMES[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2 * BLOCK + 30] ^= 0xFF; // inside the second record's payload
    std::fs::write(&path, &bytes).unwrap();
    let recovered = harness.recovered(dir.path());
    assert_eq!(recovered.keys().collect::<Vec<_>>(), [b"k0"], "records after a torn one are not replayed");

    let harness = Harness::default();
    {
        let mut journal = harness.open(dir.path());
        harness.commit(&mut journal, set("k", "v")).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xFF; // the header's epoch
    std::fs::write(&path, &bytes).unwrap();
    assert!(harness.recovered(dir.path()).is_empty());
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

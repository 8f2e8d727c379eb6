//! Crash tests (sled's kill-the-child shape): a child process writes rooms one atomic batch at a
//! time and is killed with SIGKILL mid-stream. Reopened, the data dir must hold every
//! acknowledged room, and every room it holds must be whole. Two ways of writing: direct sled
//! writes with a `durable()` now and then under constant background flushes (which put rooms
//! written after the last acknowledgement on disk in part), and rooms' rounds through
//! `commit()`, made durable by the journal alone, across several journal checkpoints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{EntryWrite, RoomPath, SledStorage, Storage};

/// Set (to the data dir) only in the child process.
const CHILD_ENV: &str = "PARTYD_STORAGE_CRASH_CHILD_DIR";
/// The child's tests, run by name in a copy of this test binary.
const CHILD_TEST: &str = "storage::crash_tests::crash_child_writes_until_killed";
const COMMIT_CHILD_TEST: &str = "storage::crash_tests::crash_child_commits_until_killed";
/// Entries in each room's one batch.
const ENTRIES: u32 = 100;
/// The child asks for durability after every this many rooms.
const DURABLE_EVERY: u32 = 5;
/// The parent kills the child once this room is written: a few rooms after the last
/// acknowledged one (200), while the next is being written and flushed.
const KILL_AFTER_ROOM: u32 = 203;
/// The last room acknowledged durable before the kill.
const LAST_ACKNOWLEDGED: u32 = KILL_AFTER_ROOM / DURABLE_EVERY * DURABLE_EVERY;
/// The committing child is killed once this room is acknowledged: each round takes 3 journal
/// blocks, so its 8 MiB files have filled (and been checkpointed) twice by then.
const COMMIT_KILL_AFTER_ROOM: u32 = 1500;

fn room_name(i: u32) -> String {
    format!("room-{i:06}")
}

fn entries(i: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..ENTRIES)
        .map(|j| (format!("k{j:04}").into_bytes(), format!("{i}:{j}:{}", "v".repeat(64)).into_bytes()))
        .collect()
}

/// The child half: does nothing unless started by the parent below.
#[tokio::test]
async fn crash_child_writes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let storage = SledStorage::open(Path::new(&dir)).expect("child opens the data dir");
    // Flush all the time, unacknowledged, so that the kill finds batches half on disk: recovery
    // must drop those, not keep half a batch.
    let background = storage.clone();
    std::thread::spawn(move || loop {
        let _ = background.flush();
    });
    for i in 0.. {
        let writes =
            entries(i).into_iter().map(|(key, value)| EntryWrite { key, value: Some(value) }).collect();
        storage
            .write(RoomPath { party: "crash", room: &room_name(i) }, writes, u64::from(ENTRIES))
            .expect("child writes");
        println!("written {i}");
        if i % DURABLE_EVERY == 0 {
            storage.durable().await.expect("child flushes");
            println!("durable {i}");
        }
    }
}

/// The committing child: every room one round through `commit()`, each awaited.
#[tokio::test]
async fn crash_child_commits_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let storage = SledStorage::open(Path::new(&dir)).expect("child opens the data dir");
    for i in 0.. {
        let writes =
            entries(i).into_iter().map(|(key, value)| EntryWrite { key, value: Some(value) }).collect();
        let ticket = storage.commit(
            RoomPath { party: "crash", room: &room_name(i) },
            false,
            writes,
            u64::from(ENTRIES),
        );
        ticket.await.expect("child commits");
        println!("durable {i}");
    }
}

/// Runs a child test until `kill_now` says so after one of its lines, kills it with SIGKILL,
/// and returns the last room it acknowledged.
fn run_child_until_killed(test: &str, dir: &Path, kill_now: impl Fn(&str) -> bool) -> u32 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep the pipe open until the child is dead: a closed pipe would make it panic and exit
    // cleanly (dropping, hence flushing, the Db) instead of crashing.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(i) = line.strip_prefix("durable ") {
            acknowledged = Some(i.parse::<u32>().unwrap());
        }
        if kill_now(&line) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);
    acknowledged.expect("the child acknowledged some rooms before it was killed")
}

/// Reopens the data dir: every acknowledged room is there, every room there is whole, and
/// nothing else is stored.
fn assert_recovered(dir: &Path, acknowledged: u32) {
    let storage = SledStorage::open(dir).unwrap();
    let rooms = storage.all_rooms().unwrap();
    for i in 0..=acknowledged {
        assert!(rooms.contains(&("crash".to_owned(), room_name(i))), "acknowledged room {i} was lost");
    }
    for (party, room) in &rooms {
        let i: u32 = room.trim_start_matches("room-").parse().unwrap();
        assert_eq!(storage.load_room(RoomPath { party, room }).unwrap(), entries(i), "room {i} is not whole");
    }
    let per_room = ENTRIES as usize + 1; // its entries and its index entry
    assert_eq!(storage.raw_len(), rooms.len() * per_room, "no entries outside the listed rooms");
}

#[test]
fn a_killed_writer_leaves_every_batch_whole_and_every_acknowledged_one_there() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = run_child_until_killed(CHILD_TEST, dir.path(), |line| {
        line.strip_prefix("written ").is_some_and(|i| i.parse::<u32>().unwrap() >= KILL_AFTER_ROOM)
    });
    assert_eq!(acknowledged, LAST_ACKNOWLEDGED, "the child stopped early");
    assert_recovered(dir.path(), acknowledged);
}

#[test]
fn a_killed_committer_keeps_every_acknowledged_round_through_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let kill_at = format!("durable {COMMIT_KILL_AFTER_ROOM}");
    let acknowledged = run_child_until_killed(COMMIT_CHILD_TEST, dir.path(), |line| line == kill_at);
    assert_eq!(acknowledged, COMMIT_KILL_AFTER_ROOM);
    let journal_bytes: u64 = ["partyd-journal-0", "partyd-journal-1"]
        .iter()
        .map(|name| std::fs::metadata(dir.path().join(name)).unwrap().len())
        .sum();
    assert!(
        u64::from(COMMIT_KILL_AFTER_ROOM) * 3 * 4096 > journal_bytes,
        "the rounds must pass through both journal files"
    );
    assert_recovered(dir.path(), acknowledged);
}

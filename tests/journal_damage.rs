//! A damaged journal against the real binary: acknowledged PUTs, SIGKILL, then the journal
//! damaged on disk. A journal that cannot be fully replayed stops startup, naming the file and
//! the damage, and the refused start changes no byte of it; `partyd recover` replays what can be
//! read, moves the journal aside and lets the next start through. A torn last record (a crash
//! mid-write) still starts, with a warning.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::process::Partyd;
use common::*;

const BLOCK: usize = 4096;
const RECORD_MAGIC: [u8; 4] = 0x5052_4543u32.to_le_bytes();
const JOURNAL: [&str; 2] = ["partyd-journal-0", "partyd-journal-1"];

fn data(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn journal(dir: &Path, index: usize) -> PathBuf {
    data(dir).join(JOURNAL[index])
}

fn store(room: &str) -> String {
    format!("/parties/main/{room}/store")
}

fn content(i: usize) -> String {
    format!("[{{\"t\":{{\"r\":{{\"n\":{i}}}}}}},{{}}]")
}

/// Starts partyd, PUTs `rooms` one after another (each acknowledged, so each is one journal
/// record of its own), then kills it: the journal is all that holds them.
async fn acknowledged_then_killed(dir: &Path, rooms: &[&str]) {
    let partyd = Partyd::spawn(dir);
    for (i, room) in rooms.iter().enumerate() {
        assert_eq!(put(partyd.addr, &store(room), &content(i)).await, StatusCode::CREATED);
    }
    partyd.kill();
}

/// The records of the header's epoch in a journal file: (block, sequence number).
fn records(path: &Path) -> Vec<(usize, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let epoch = &bytes[8..16];
    let mut found = Vec::new();
    for block in (BLOCK..bytes.len()).step_by(BLOCK) {
        let at = &bytes[block..];
        if at[..4] == RECORD_MAGIC && &at[4..12] == epoch {
            found.push((block / BLOCK, u64::from_le_bytes(at[12..20].try_into().unwrap())));
        }
    }
    found
}

fn overwrite(path: &Path, offset: usize, bytes: &[u8]) {
    let mut contents = std::fs::read(path).unwrap();
    contents[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, contents).unwrap();
}

/// Every file under `dir` and its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    all
}

fn journal_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files(&data(dir))
        .into_iter()
        .filter(|(path, _)| path.to_string_lossy().contains("partyd-journal"))
        .collect()
}

/// Runs the binary on the test's data dir and waits (with a deadline) for it to exit; one
/// still running then is killed, and its status is `None`.
fn run(dir: &Path, args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let config = dir.join("party.toml");
    if !config.exists() {
        std::fs::write(&config, "[parties.main]\nkind = \"tinybase-persister\"\n").unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_partyd"))
        .args(["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data(dir))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Output { stdout, stderr, .. } = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status, text)
}

/// A start on this data dir is refused, saying all of `expected`, and changes no journal byte.
fn assert_start_refused(dir: &Path, expected: &[&str]) {
    let before = journal_files(dir);
    let (status, output) = run(dir, &[]);
    assert!(status.is_some(), "partyd started on a damaged journal:\n{output}");
    assert!(!status.unwrap().success(), "{output}");
    for words in expected.iter().chain(&["start refused", "partyd recover"]) {
        assert!(output.contains(words), "{words:?} is not in:\n{output}");
    }
    assert_eq!(journal_files(dir), before, "a refused start changed the journal");
    // Refused again, for the same reason: the first refusal did not make things different.
    let (again, output_again) = run(dir, &[]);
    assert!(again.is_some_and(|status| !status.success()), "{output_again}");
    assert_eq!(journal_files(dir), before);
}

/// `partyd recover` on a damaged journal: succeeds, says all of `expected`, and moves the
/// journal files (byte for byte) into `damaged-<seconds>/`.
fn assert_recovered(dir: &Path, expected: &[&str]) -> String {
    let before = journal_files(dir);
    let (status, output) = run(dir, &["recover"]);
    assert!(status.is_some_and(|status| status.success()), "{output}");
    for words in expected.iter().chain(&["damaged-"]) {
        assert!(output.contains(words), "{words:?} is not in:\n{output}");
    }
    let aside: Vec<PathBuf> = std::fs::read_dir(data(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    for (path, bytes) in before {
        let moved = aside[0].join(path.file_name().unwrap());
        assert_eq!(std::fs::read(&moved).ok().as_ref(), Some(&bytes), "{} was not kept", moved.display());
    }
    output
}

async fn stored(addr: std::net::SocketAddr, room: &str) -> String {
    get_body(addr, &store(room)).await
}

#[actix_web::test]
async fn garbage_in_the_first_record_with_valid_records_after_it_refuses_startup_until_recovered() {
    let dir = data_dir();
    acknowledged_then_killed(dir.path(), &["a0", "a1", "a2", "a3"]).await;
    let path = journal(dir.path(), 0);
    assert_eq!(records(&path), [(1, 0), (2, 1), (3, 2), (4, 3)]);
    overwrite(&path, BLOCK, &[0xAB; BLOCK]);

    assert_start_refused(dir.path(), &["partyd-journal-0", "record 0 at block 1", "3 valid records follow"]);
    let report = assert_recovered(dir.path(), &["partyd-journal-0", "record 0", "block 1", "1 record"]);
    assert!(report.contains("replayed 3 records"), "{report}");

    // The damaged record's room may still be there: sled may have had its writes before the
    // kill (the journal is what makes them durable, not the only place they go).
    let partyd = Partyd::spawn(dir.path());
    for (i, room) in ["a1", "a2", "a3"].into_iter().enumerate() {
        assert_eq!(stored(partyd.addr, room).await, content(i + 1));
    }
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn mid_file_damage_followed_by_valid_records_refuses_startup_until_recovered() {
    let dir = data_dir();
    let rooms = ["m0", "m1", "m2", "m3", "m4"];
    acknowledged_then_killed(dir.path(), &rooms).await;
    let path = journal(dir.path(), 0);
    assert_eq!(records(&path).len(), 5);
    overwrite(&path, 3 * BLOCK + 40, b"bit rot"); // inside record 2's payload

    assert_start_refused(dir.path(), &["partyd-journal-0", "record 2 at block 3", "2 valid records follow"]);
    assert_recovered(dir.path(), &["record 2", "block 3", "replayed 4 records"]);

    let partyd = Partyd::spawn(dir.path());
    for (i, room) in rooms.into_iter().enumerate().filter(|&(i, _)| i != 2) {
        assert_eq!(stored(partyd.addr, room).await, content(i), "{room}");
    }
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn a_zeroed_header_on_a_file_with_records_refuses_startup_until_recovered() {
    let dir = data_dir();
    let rooms = ["z0", "z1", "z2"];
    acknowledged_then_killed(dir.path(), &rooms).await;
    let path = journal(dir.path(), 0);
    assert_eq!(records(&path).len(), 3);
    overwrite(&path, 0, &[0; BLOCK]);

    assert_start_refused(dir.path(), &["partyd-journal-0", "header"]);
    assert_recovered(dir.path(), &["partyd-journal-0", "header", "replayed 3 records"]);

    let partyd = Partyd::spawn(dir.path());
    for (i, room) in rooms.into_iter().enumerate() {
        assert_eq!(stored(partyd.addr, room).await, content(i), "{room}");
    }
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn a_removed_journal_file_refuses_startup_until_recovered() {
    let dir = data_dir();
    acknowledged_then_killed(dir.path(), &["r0", "r1"]).await;
    assert_eq!(records(&journal(dir.path(), 0)).len(), 2);
    std::fs::remove_file(journal(dir.path(), 1)).unwrap();
    assert_start_refused(dir.path(), &["partyd-journal-1 is missing"]);
    assert!(!journal(dir.path(), 1).exists(), "the refused start did not recreate it");
    assert_recovered(dir.path(), &["partyd-journal-1 is missing", "replayed 2 records"]);
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(stored(partyd.addr, "r1").await, content(1));
    partyd.kill();

    // The file holding the records removed: the other one is still there.
    acknowledged_then_killed(dir.path(), &["s0", "s1"]).await;
    std::fs::remove_file(journal(dir.path(), 0)).unwrap();
    assert_start_refused(dir.path(), &["partyd-journal-0 is missing"]);
}

#[actix_web::test]
async fn both_journal_files_removed_while_sled_holds_data_refuses_startup_until_recovered() {
    let dir = data_dir();
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(put(partyd.addr, &store("kept"), &content(0)).await, StatusCode::CREATED);
    assert!(partyd.terminate().success(), "a clean stop: sled holds the room");
    acknowledged_then_killed(dir.path(), &["lost"]).await;
    for index in [0, 1] {
        std::fs::remove_file(journal(dir.path(), index)).unwrap();
    }
    assert_start_refused(dir.path(), &["both journal files are missing"]);
    assert!(!journal(dir.path(), 0).exists() && !journal(dir.path(), 1).exists());

    let (status, report) = run(dir.path(), &["recover"]);
    assert!(status.is_some_and(|status| status.success()), "{report}");
    assert!(report.contains("both journal files are missing"), "{report}");
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(stored(partyd.addr, "kept").await, content(0));
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn a_torn_last_record_starts_with_a_warning_naming_the_file_and_block() {
    let dir = data_dir();
    acknowledged_then_killed(dir.path(), &["t0", "t1", "t2"]).await;
    let path = journal(dir.path(), 0);
    assert_eq!(records(&path), [(1, 0), (2, 1), (3, 2)]);
    // The last record's payload half written, as when the machine stops mid-write.
    overwrite(&path, 3 * BLOCK + 40, &[0; 64]);

    let partyd = Partyd::spawn(dir.path());
    assert_eq!(stored(partyd.addr, "t0").await, content(0));
    assert_eq!(stored(partyd.addr, "t1").await, content(1));
    assert_eq!(stored(partyd.addr, "t2").await, "", "the torn record was never acknowledged");
    let log = partyd.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|line| line.contains("WARN")
            && line.contains("partyd-journal-0")
            && line.contains("record 2 at block 3")),
        "{log:#?}"
    );
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn recover_without_damage_says_so_and_changes_nothing() {
    let dir = data_dir();
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(put(partyd.addr, &store("fine"), &content(0)).await, StatusCode::CREATED);
    let (busy, output) = run(dir.path(), &["recover"]);
    assert!(busy.is_some_and(|status| !status.success()), "{output}");
    assert!(output.contains("in use by another process"), "{output}");
    partyd.kill();

    let before = files(&data(dir.path()));
    let (status, output) = run(dir.path(), &["recover"]);
    assert!(status.is_some_and(|status| status.success()), "{output}");
    assert!(output.contains("nothing to recover"), "{output}");
    assert_eq!(files(&data(dir.path())), before, "recover changed the data dir");
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(stored(partyd.addr, "fine").await, content(0));
    assert!(partyd.terminate().success());
}

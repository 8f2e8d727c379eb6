//! The offline commands of the real binary: export, import (with and without --replace) and
//! dump round-trip rooms exactly, refuse bad input, and refuse while a server holds the data dir.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use actix_web::http::StatusCode;
use common::process::Partyd;
use common::*;

fn partyd(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_partyd"))
        .args([
            "--config",
            dir.join("party.toml").to_str().unwrap(),
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[actix_web::test]
async fn export_import_and_dump_round_trip_rooms_exactly() {
    let source = data_dir();
    let server = Partyd::spawn(source.path());
    let addr = server.addr;
    let bodies = [
        (
            "main",
            "one",
            "/store",
            r#"[{"t":{"r":{"n":-0,"big":1E21,"s":"\u2028é\"","a":[1e400,{"k":null}]},"9":{"c":true}}},{"v":0.000001}]"#,
        ),
        ("main", "empty", "/store", "[{},{}]"),
        ("custom", "one", "/my_tinybase", "[{},{\"x\":\"\u{FFFC}\"}]"),
    ];
    for (party, room, store_path, body) in bodies {
        assert_eq!(
            put(addr, &format!("/parties/{party}/{room}{store_path}"), body).await,
            StatusCode::CREATED
        );
    }
    let originals: Vec<String> = {
        let mut all = Vec::new();
        for (party, room, store_path, _) in bodies {
            all.push(get_body(addr, &format!("/parties/{party}/{room}{store_path}")).await);
        }
        all
    };
    let busy = partyd(source.path(), &["export"], "");
    assert!(!busy.status.success());
    assert!(text(&busy.stderr).contains("in use by another process"), "{}", text(&busy.stderr));
    assert!(server.terminate().success());

    let export = partyd(source.path(), &["export"], "");
    assert!(export.status.success(), "{}", text(&export.stderr));
    let lines = text(&export.stdout);
    assert_eq!(lines.lines().count(), 3, "{lines}");
    let only_custom = partyd(source.path(), &["export", "--party", "custom"], "");
    assert_eq!(text(&only_custom.stdout).lines().count(), 1);
    let dump = partyd(source.path(), &["dump", "main", "one"], "");
    let dumped: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(
        (dumped["party"].as_str(), dumped["room"].as_str(), dumped["kind"].as_str()),
        (Some("main"), Some("one"), Some("tinybase-persister"))
    );
    assert!(!partyd(source.path(), &["dump", "main", "nope"], "").status.success());

    let target = data_dir();
    std::fs::copy(source.path().join("party.toml"), target.path().join("party.toml")).unwrap();
    let import = partyd(target.path(), &["import"], &lines);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let again = partyd(target.path(), &["import"], &lines);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("--replace"), "{}", text(&again.stderr));
    assert!(partyd(target.path(), &["import", "--replace"], &lines).status.success());

    let server = Partyd::spawn(target.path());
    for ((party, room, store_path, _), original) in bodies.iter().zip(&originals) {
        assert_eq!(
            &get_body(server.addr, &format!("/parties/{party}/{room}{store_path}")).await,
            original,
            "{party}/{room}"
        );
    }
    assert!(server.terminate().success());
}

#[test]
fn import_refuses_bad_lines_and_writes_nothing() {
    let dir = data_dir();
    std::fs::write(dir.path().join("party.toml"), "[parties.main]\nkind = \"tinybase-persister\"\n").unwrap();
    let good = r#"{"party":"main","room":"ok","kind":"tinybase-persister","content":[{},{"v":1}]}"#;
    let bad_lines = [
        "not json",
        r#"{"party":"nope","room":"r","kind":"tinybase-persister","content":null}"#,
        r#"{"party":"main","room":"r","kind":"tinybase-sync","content":null}"#,
        r#"{"party":"main","room":"r","kind":"tinybase-persister","content":[{"t":5},{}]}"#,
        r#"{"party":"main","room":"","kind":"tinybase-persister","content":null}"#,
        r#"{"party":"main","room":"r","kind":"tinybase-persister","content":null,"extra":1}"#,
    ];
    for bad in bad_lines {
        let output = partyd(dir.path(), &["import"], &format!("{good}\n{bad}\n"));
        assert!(!output.status.success(), "{bad}");
        assert!(text(&output.stderr).contains("line 2"), "{bad}: {}", text(&output.stderr));
    }
    let export = partyd(dir.path(), &["export"], "");
    assert_eq!(text(&export.stdout), "", "nothing was written by the refused imports");
}

#[actix_web::test]
async fn sync_rooms_export_and_import_with_their_stamps_and_hashes() {
    let toml = "[parties.sync]\nkind = \"tinybase-sync\"\n";
    let source = data_dir();
    let server = Partyd::spawn_with(source.path(), toml, &[]);
    let mut socket = connect_url(&format!("ws://{}/parties/sync/r", server.addr)).await;
    socket.send("\n[\"t\",3,[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"NjEtLV-----67WEb\"],\"gone\":[\"\u{FFFC}\",\"NjEtLV-----67WEc\"]}]}]}],[{\"open\":[true,\"NjEtLV-----67WEd\"]}],1]]").await;
    until("merged", || async { get_body(server.addr, "/parties/sync/r/store").await.contains("open") }).await;
    let original = get_body(server.addr, "/parties/sync/r/store?format=mergeable").await;
    assert!(server.terminate().success());
    let export = partyd(source.path(), &["export"], "");
    assert!(export.status.success(), "{}", text(&export.stderr));
    let line: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(line["kind"], "tinybase-sync");
    assert_eq!(line["content"], serde_json::from_str::<serde_json::Value>(&original).unwrap());

    let target = data_dir();
    std::fs::write(target.path().join("party.toml"), toml).unwrap();
    let bad = r#"{"party":"sync","room":"x","kind":"tinybase-sync","content":[[{"t":[{}]}],[{}]]}"#;
    let refused = partyd(target.path(), &["import"], bad);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("mergeable content"), "{}", text(&refused.stderr));
    let import = partyd(target.path(), &["import"], &text(&export.stdout));
    assert!(import.status.success(), "{}", text(&import.stderr));
    let server = Partyd::spawn_with(target.path(), toml, &[]);
    let imported = get_body(server.addr, "/parties/sync/r/store?format=mergeable").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&imported).unwrap(),
        serde_json::from_str::<serde_json::Value>(&original).unwrap()
    );
    assert_eq!(
        get_body(server.addr, "/parties/sync/r/store").await,
        r#"[{"pets":{"fido":{"species":"dog"}}},{"open":true}]"#
    );
    assert!(server.terminate().success());
}

/// Runs the binary with exactly these arguments (no flags put in front).
fn partyd_raw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_partyd")).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn global_flags_are_accepted_after_the_command() {
    let dir = data_dir();
    let config = dir.path().join("party.toml");
    std::fs::write(&config, "[parties.main]\nkind = \"tinybase-persister\"\n").unwrap();
    let data = dir.path().join("elsewhere");
    let line = r#"{"party":"main","room":"r","kind":"tinybase-persister","content":[{},{"v":1}]}"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_partyd"))
        .args(["import", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    let import = child.wait_with_output().unwrap();
    assert!(import.status.success(), "{}", text(&import.stderr));
    assert!(data.is_dir(), "the data dir given after the command was used");
    let export =
        partyd_raw(&["export", "--data-dir", data.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    assert_eq!(text(&export.stdout).trim(), line);
}

#[test]
fn version_prints_the_package_version() {
    let output = partyd_raw(&["--version"]);
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).trim(), format!("partyd {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_config_says_valid_or_what_is_wrong_and_opens_no_storage() {
    let dir = data_dir();
    let config = dir.path().join("party.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:2999\"\n[parties.main]\nkind = \"tinybase-sync\"\n",
    )
    .unwrap();
    let valid = partyd_raw(&[
        "check-config",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    let summary = text(&valid.stdout);
    assert!(summary.contains("valid"), "{summary}");
    assert!(summary.contains("listen 127.0.0.1:2999"), "{summary}");
    assert!(summary.contains("party main (tinybase-sync"), "{summary}");
    assert!(!data.exists(), "check-config created the data dir");

    std::fs::write(&config, "[parties.main]\nkind = \"tinybase-persister\"\nstore_path = \"no-slash\"\n")
        .unwrap();
    let invalid = partyd_raw(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(text(&invalid.stderr).contains("store_path"), "{}", text(&invalid.stderr));
    let missing = partyd_raw(&["check-config", "--config", dir.path().join("nope.toml").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nope.toml"), "{}", text(&missing.stderr));
}

#[test]
fn a_notify_service_hears_ready_when_partyd_listens_and_stopping_on_sigterm() {
    let dir = data_dir();
    let socket_path = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    listener.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let server = Partyd::spawn_with(
        dir.path(),
        "[parties.main]\nkind = \"tinybase-persister\"\n",
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buffer = [0u8; 256];
    let length = listener.recv(&mut buffer).expect("READY from partyd");
    assert_eq!(text(&buffer[..length]).lines().next(), Some("READY=1"));
    assert!(server.terminate().success());
    let length = listener.recv(&mut buffer).expect("STOPPING from partyd");
    assert_eq!(text(&buffer[..length]).lines().next(), Some("STOPPING=1"));
}

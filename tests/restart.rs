//! A graceful restart of the real binary (SIGTERM, exit 0, start again on the same data dir)
//! keeps every room byte for byte, and closes open sockets with 1001; a big room comes back
//! from its image, which a later change replaces. An empty `.generating` snapshot that an
//! interrupted start left (sled writes one at every open) does not stop the next start.

mod common;

use actix_web::http::StatusCode;
use common::process::Partyd;
use common::*;

#[actix_web::test]
async fn a_graceful_restart_keeps_every_store_byte_for_byte() {
    let dir = data_dir();
    let partyd = Partyd::spawn(dir.path());
    let addr = partyd.addr;
    let content = r#"[{"pets":{"fido":{"species":"dog","legs":4},"felix":{"species":"cat"}},"9":{"1":{"x":[1,{"y":null}]}}},{"open":true,"price":1.5,"é":"\u2028"}]"#;
    assert_eq!(put(addr, "/parties/main/kept/store", content).await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/custom/kept/my_tinybase", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(
        put(addr, "/parties/main/flagged/store", "[{\"t\":{\"r\":{\"c\":1}}},{}]").await,
        StatusCode::CREATED
    );
    let mut a = connect(addr, "main", "kept", "a").await;
    let mut b = connect(addr, "main", "kept", "b").await;
    a.send("s[{\"pets\":{\"felix\":\"\u{FFFC}\",\"rex\":{\"legs\":3}}},{\"price\":-0,\"new\":\"v\"},1]")
        .await;
    b.next_text().await;
    let mut c = connect(addr, "main", "flagged", "c").await;
    let mut d = connect(addr, "main", "flagged", "d").await;
    c.send("s[{\"t\":\"\u{FFFC}\"},{},1]").await;
    d.next_text().await;
    let before = (
        get_body(addr, "/parties/main/kept/store").await,
        get_body(addr, "/parties/custom/kept/my_tinybase").await,
        get_body(addr, "/parties/main/flagged/store").await,
    );
    assert_eq!(before.2, "[{},{}]", "deleting every cell keeps the store");

    let status = partyd.terminate();
    assert!(status.success(), "SIGTERM ends partyd with status 0, not {status:?}");
    for socket in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(socket.closed().await, Ended::Closed(Some(1001)));
    }

    let partyd = Partyd::spawn(dir.path());
    let addr = partyd.addr;
    let after = (
        get_body(addr, "/parties/main/kept/store").await,
        get_body(addr, "/parties/custom/kept/my_tinybase").await,
        get_body(addr, "/parties/main/flagged/store").await,
    );
    assert_eq!(after, before);
    assert_eq!(
        put(addr, "/parties/main/flagged/store", "[{},{}]").await,
        StatusCode::RESET_CONTENT,
        "the store flag survived"
    );
    assert_eq!(get_body(addr, "/parties/main/never/store").await, "");
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn a_big_room_comes_back_from_its_image_and_a_later_change_replaces_the_image() {
    let dir = data_dir();
    let config = "[parties.main]\nkind = \"tinybase-persister\"\n";
    let debug_log = [("RUST_LOG", "info,partyd=debug")];
    let partyd = Partyd::spawn_with(dir.path(), config, &debug_log);
    let rows: Vec<String> =
        (0..2000).map(|i| format!("\"row{i}\":{{\"text\":\"row number {i}\",\"n\":{i}}}")).collect();
    let content = format!("[{{\"t\":{{{}}}}},{{\"open\":true}}]", rows.join(","));
    assert_eq!(put(partyd.addr, "/parties/main/big/store", &content).await, StatusCode::CREATED);
    let before = get_body(partyd.addr, "/parties/main/big/store").await;
    let log = partyd.log.clone();
    assert!(partyd.terminate().success());
    assert!(
        log.lock().unwrap().iter().any(|line| line.contains("room image saved")),
        "the stopping room saved its image"
    );

    let partyd = Partyd::spawn_with(dir.path(), config, &debug_log);
    assert_eq!(get_body(partyd.addr, "/parties/main/big/store").await, before);
    let mut a = connect(partyd.addr, "main", "big", "a").await;
    let mut b = connect(partyd.addr, "main", "big", "b").await;
    a.send("s[{\"t\":{\"row7\":{\"text\":\"changed\"},\"row8\":\"\u{FFFC}\"}},{},1]").await;
    b.next_text().await;
    let changed = get_body(partyd.addr, "/parties/main/big/store").await;
    assert!(
        changed.contains("\"row7\":{\"n\":7,\"text\":\"changed\"}") && !changed.contains("\"row8\""),
        "{}",
        &changed[..200]
    );
    // Killed: no image is saved on the way out, so the next load must not find the old one.
    partyd.kill();
    let partyd = Partyd::spawn_with(dir.path(), config, &debug_log);
    assert_eq!(get_body(partyd.addr, "/parties/main/big/store").await, changed);
    assert!(partyd.terminate().success());
}

#[actix_web::test]
async fn a_second_server_on_a_held_data_dir_refuses_to_start_and_says_why() {
    let dir = data_dir();
    let first = Partyd::spawn(dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_partyd"))
        .args([
            "--config",
            dir.path().join("party.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(first.terminate().success());
}

#[test]
fn a_bad_config_stops_startup_naming_the_key_and_the_file() {
    let dir = data_dir();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[parties.main]\nkind = \"tinybase-persister\"\nstore_path = \"no-slash\"\n")
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_partyd"))
        .args(["--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("parties.main.store_path"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[actix_web::test]
async fn an_empty_generating_snapshot_left_by_an_interrupted_start_does_not_stop_the_next() {
    let dir = data_dir();
    let partyd = Partyd::spawn(dir.path());
    assert_eq!(put(partyd.addr, "/parties/main/snap/store", "[{},{\"v\":7}]").await, StatusCode::CREATED);
    assert!(partyd.terminate().success());
    // sled names a snapshot by the log position it covers; the one an interrupted start was
    // writing covers more than the last complete one, so it sorts after it.
    let newest = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix("snap.").and_then(|lsn| u64::from_str_radix(lsn, 16).ok()))
        .max()
        .unwrap_or(0);
    let leftover = dir.path().join("data").join(format!("snap.{:016X}.generating", newest + 1));
    std::fs::write(&leftover, b"").unwrap();

    let partyd = Partyd::spawn(dir.path());
    assert_eq!(get_body(partyd.addr, "/parties/main/snap/store").await, "[{},{\"v\":7}]");
    assert!(!leftover.exists(), "the incomplete snapshot was removed");
    assert!(partyd.terminate().success());
}

//! Lone UTF-16 surrogates over real HTTP and websockets, through a restart of the real binary:
//! JavaScript strings may hold them (tinybase 10's `setCell('t', 'r', 'c', 'x\ud83d')` sends
//! `"x\ud83d"`), and TinyBase's servers store, relay and serve them as JSON.stringify writes them.
//! Both party kinds must do the same, byte for byte.

mod common;

use actix_web::http::StatusCode;
use common::process::Partyd;
use common::*;

const PARTIES: &str =
    "[parties.main]\nkind = \"tinybase-persister\"\n\n[parties.sync]\nkind = \"tinybase-sync\"\n";

/// A ContentDiff of what tinybase 10.0.1 wrote for `setCell('t', 'r', 'c', 'x\ud83d')`,
/// `setCell('t\ud800', 'r\udc00', 'c\udfff', '\ude00\ud83d')`, `setCell('t', 'r', 'ok', 1)`,
/// `setValue('v\ud83d', '\ud800')` and `setValue('\ufdd0\ue000', 'plain')` (the mergeable unit
/// tests have the script); the last id is escaped here, JSON.stringify writes it raw.
const DIFF: &str = r#"["tx",3,[[{"t":[{"r":[{"c":["x\ud83d","NjEtLV-----OBwCU"],"ok":[1,"NjEtLV----1OBwCU"]},""]},""],"t\ud800":[{"r\udc00":[{"c\udfff":["\ude00\ud83d","NjEtLV----0OBwCU"]},""]},""]},""],[{"v\ud83d":["\ud800","NjEtLV----2OBwCU"],"\ufdd0\ue000":["plain","NjEtLV----3OBwCU"]},""],1]]"#;
/// The server's store after merging it, with tinybase's own hashes (`getMergeableContent()`).
const MERGED: &str = r#"[[{"t":[{"r":[{"c":["x\ud83d","NjEtLV-----OBwCU",1433509359],"ok":[1,"NjEtLV----1OBwCU",1337736898]},"",2868699617]},"",532164763],"t\ud800":[{"r\udc00":[{"c\udfff":["\ude00\ud83d","NjEtLV----0OBwCU",645377900]},"",3611377295]},"",2890959474]},"",2982540995],[{"v\ud83d":["\ud800","NjEtLV----2OBwCU",3378870497],"\ufdd0\ue000":["plain","NjEtLV----3OBwCU",3190719917]},"",3830591665]]"#;

/// What JSON.stringify prints for U+FDD0 U+E000: the characters themselves.
fn as_printed(json: &str) -> String {
    json.replace("\\ufdd0\\ue000", "\u{fdd0}\u{e000}")
}

/// The next frame relayed from another client (skipping the participant's own).
async fn next_relayed(socket: &mut Socket) -> String {
    loop {
        let frame = socket.next_text().await;
        if !frame.starts_with("S\n") {
            return frame;
        }
    }
}

#[actix_web::test]
async fn lone_surrogates_are_stored_relayed_and_served_by_both_kinds_and_survive_a_restart() {
    let dir = data_dir();
    let partyd = Partyd::spawn_with(dir.path(), PARTIES, &[]);
    let addr = partyd.addr;

    // tinybase-persister: the reference answers 201, then serves the body as it came.
    let body = r#"[{},{"v":"\ud800"}]"#;
    assert_eq!(put(addr, "/parties/main/p/store", body).await, StatusCode::CREATED);
    assert_eq!(get_body(addr, "/parties/main/p/store").await, body);
    let mut a = connect(addr, "main", "p", "a").await;
    let mut b = connect(addr, "main", "p", "b").await;
    let frame = r#"s[{"t\udc00":{"r":{"c":"x\ud83d"}}},{},1]"#;
    a.send(frame).await;
    assert_eq!(b.next_text().await, frame);
    let persisted = r#"[{"t\udc00":{"r":{"c":"x\ud83d"}}},{"v":"\ud800"}]"#;
    assert_eq!(get_body(addr, "/parties/main/p/store").await, persisted);

    // tinybase-sync: relayed as sent, merged by the server to tinybase's own hashes.
    let mut c = connect_url(&format!("ws://{addr}/parties/sync/s")).await;
    let mut d = connect_url(&format!("ws://{addr}/parties/sync/s")).await;
    c.send(&format!("\n{DIFF}")).await;
    let relayed = next_relayed(&mut d).await;
    assert_eq!(relayed.split_once('\n').map(|(_, remainder)| remainder), Some(DIFF));
    let plain = as_printed(
        r#"[{"t":{"r":{"c":"x\ud83d","ok":1}},"t\ud800":{"r\udc00":{"c\udfff":"\ude00\ud83d"}}},{"v\ud83d":"\ud800","\ufdd0\ue000":"plain"}]"#,
    );
    until("the server merged the diff", || async { get_body(addr, "/parties/sync/s/store").await == plain })
        .await;
    let mergeable = as_printed(MERGED);
    assert_eq!(get_body(addr, "/parties/sync/s/store?format=mergeable").await, mergeable);

    assert!(partyd.terminate().success());
    let partyd = Partyd::spawn_with(dir.path(), PARTIES, &[]);
    let addr = partyd.addr;
    assert_eq!(get_body(addr, "/parties/main/p/store").await, persisted);
    assert_eq!(get_body(addr, "/parties/sync/s/store").await, plain);
    assert_eq!(get_body(addr, "/parties/sync/s/store?format=mergeable").await, mergeable);
    assert!(partyd.terminate().success());
}

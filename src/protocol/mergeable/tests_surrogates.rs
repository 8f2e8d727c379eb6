//! Lone UTF-16 surrogates in a MergeableStore, against what tinybase 10.0.1 makes of them: in
//! values they are hashed as JSON writes them (`\udxxx`), in ids as `TextEncoder` encodes them
//! (U+FFFD), and either way they are kept, merged and written back as they came.

use super::frame;
use super::tree::{MergeableStore, Mode};
use crate::protocol::json::{self, JsValue};

/// Printed by tinybase 10.0.1 (node, `Date.now = () => 1_700_000_000_000`):
/// `s = createMergeableStore('lone-surrogates')`, then `s.setCell('t', 'r', 'c', 'x\ud83d')`,
/// `s.setCell('t\ud800', 'r\udc00', 'c\udfff', '\ude00\ud83d')`, `s.setCell('t', 'r', 'ok', 1)`,
/// `s.setValue('v\ud83d', '\ud800')`, `s.setValue('\ufdd0\ue000', 'plain')`, and
/// `JSON.stringify(s.getMergeableContent())`, which writes the last id raw (escaped here, see
/// [`as_printed`]).
const CONTENT: &str = r#"[[{"t":[{"r":[{"c":["x\ud83d","NjEtLV-----OBwCU",1433509359],"ok":[1,"NjEtLV----1OBwCU",1337736898]},"",2868699617]},"",532164763],"t\ud800":[{"r\udc00":[{"c\udfff":["\ude00\ud83d","NjEtLV----0OBwCU",645377900]},"",3611377295]},"",2890959474]},"",2982540995],[{"v\ud83d":["\ud800","NjEtLV----2OBwCU",3378870497],"\ufdd0\ue000":["plain","NjEtLV----3OBwCU",3190719917]},"",3830591665]]"#;
/// `s.getMergeableContentHashes()`.
const HASHES: [u32; 2] = [2_982_540_995, 3_830_591_665];
/// `JSON.stringify(s.getContent())`.
const PLAIN: &str = r#"[{"t":{"r":{"c":"x\ud83d","ok":1}},"t\ud800":{"r\udc00":{"c\udfff":"\ude00\ud83d"}}},{"v\ud83d":"\ud800","\ufdd0\ue000":"plain"}]"#;
/// The same writes as a ContentDiff message carries them: every stamp of [`CONTENT`] without its
/// hash.
const DIFF: &str = r#"["tx",3,[[{"t":[{"r":[{"c":["x\ud83d","NjEtLV-----OBwCU"],"ok":[1,"NjEtLV----1OBwCU"]},""]},""],"t\ud800":[{"r\udc00":[{"c\udfff":["\ude00\ud83d","NjEtLV----0OBwCU"]},""]},""]},""],[{"v\ud83d":["\ud800","NjEtLV----2OBwCU"],"\ufdd0\ue000":["plain","NjEtLV----3OBwCU"]},""],1]]"#;
const NOW: u64 = 1_700_000_000_000;

/// What JSON.stringify prints: U+FDD0 and U+E000 raw.
fn as_printed(json: &str) -> String {
    json.replace("\\ufdd0\\ue000", "\u{fdd0}\u{e000}")
}

fn string(json: &str) -> String {
    match json::parse(json, false) {
        Ok(JsValue::String(s)) => s,
        other => panic!("{json}: {other:?}"),
    }
}

#[test]
fn tinybase_changes_with_lone_surrogates_merge_to_tinybases_hashes_and_print_back() {
    let mut store = MergeableStore::new("S");
    let touched = store.merge(&json::parse(CONTENT, true).unwrap(), Mode::Changes, NOW).unwrap();
    assert_eq!((touched.cells.len(), touched.values.len()), (3, 2));
    assert_eq!(store.content_hashes(), HASHES);
    assert_eq!(store.encoded_content(), as_printed(CONTENT));
    assert_eq!(store.plain_content(), as_printed(PLAIN));
    // Loaded back as content (what a restart does with the stored form): the same store.
    let mut loaded = MergeableStore::new("S");
    loaded.merge(&json::parse(&store.encoded_content(), true).unwrap(), Mode::Content, NOW).unwrap();
    assert_eq!(loaded.content_hashes(), HASHES);
    assert_eq!(loaded.encoded_content(), as_printed(CONTENT));
}

#[test]
fn local_writes_with_lone_surrogates_are_tinybases_own() {
    let mut store = MergeableStore::new("lone-surrogates");
    let (t, r, c) = (string(r#""t\ud800""#), string(r#""r\udc00""#), string(r#""c\udfff""#));
    store.set_cell("t", "r", "c", JsValue::String(string(r#""x\ud83d""#)), NOW);
    store.set_cell(&t, &r, &c, JsValue::String(string(r#""\ude00\ud83d""#)), NOW);
    store.set_cell("t", "r", "ok", JsValue::Number(1.0), NOW);
    store.set_value(&string(r#""v\ud83d""#), JsValue::String(string(r#""\ud800""#)), NOW);
    store.set_value(&string(r#""\ufdd0\ue000""#), JsValue::String("plain".into()), NOW);
    assert_eq!(store.content_hashes(), HASHES);
    assert_eq!(store.encoded_content(), as_printed(CONTENT));
}

#[test]
fn a_content_diff_with_lone_surrogates_is_a_valid_message_that_relays_unchanged() {
    let message = frame::decode(DIFF).unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(frame::encode(message.request_id.as_deref(), message.kind, &message.body), as_printed(DIFF));
    let mut store = MergeableStore::new("S");
    store.merge(&message.body, Mode::Changes, NOW).unwrap();
    assert_eq!(store.content_hashes(), HASHES);
    // A request id may hold one too.
    let request = r#"["\ud800",1,""]"#;
    let message = frame::decode(request).unwrap();
    assert_eq!(frame::encode(message.request_id.as_deref(), message.kind, &message.body), request);
}

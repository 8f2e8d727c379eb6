//! Lone UTF-16 surrogates, which JavaScript strings may hold and JSON.stringify writes as
//! `\udxxx`: TinyBase's server takes them anywhere (ids, cells, values, inside objects) and
//! serves them back as JSON.stringify writes them. Expected bytes are the reference's (the lone
//! surrogate scenarios of vectors/scenarios.mjs, in vectors/reference.json).

use super::tests::store_with;
use super::*;

fn apply(store: &mut PersisterStore, frame: &str) -> Option<String> {
    let changes = parse_frame(frame, "").unwrap_or_else(|e| panic!("{frame:?}: {e}"));
    store.apply_changes(changes).map(|applied| applied.payload)
}

/// The store as the room layer rebuilds it from what the ops wrote to disk.
fn reloaded(ops: &[StoreOp]) -> PersisterStore {
    let mut disk = std::collections::BTreeMap::new();
    for op in ops {
        match op.clone() {
            StoreOp::SetStoreFlag => drop(disk.insert((0, vec![]), String::new())),
            StoreOp::SetCell { table, row, cell, text } => {
                disk.insert((1, vec![table, row, cell]), text.as_str().to_owned());
            }
            StoreOp::DelCell { table, row, cell } => drop(disk.remove(&(1, vec![table, row, cell]))),
            StoreOp::SetValue { id, text } => drop(disk.insert((2, vec![id]), text.as_str().to_owned())),
            StoreOp::DelValue { id } => drop(disk.remove(&(2, vec![id]))),
        }
    }
    PersisterStore::from_entries(disk.into_iter().map(|((kind, mut ids), text)| {
        let text = || CellText::from_stored(text).expect("a stored cell reads back");
        match kind {
            0 => StoredEntry::StoreFlag,
            1 => {
                let (cell, row, table) = (ids.pop().unwrap(), ids.pop().unwrap(), ids.pop().unwrap());
                StoredEntry::Cell { table, row, cell, text: text() }
            }
            _ => StoredEntry::Value { id: ids.pop().unwrap(), text: text() },
        }
    }))
}

#[test]
fn a_put_with_a_lone_surrogate_is_saved_and_served_byte_for_byte() {
    let body = r#"[{},{"v":"\ud800"}]"#;
    let mut store = PersisterStore::new();
    let PutOutcome::Saved { ops, created_store: true } = store.put(parse_content(body.as_bytes()).unwrap())
    else {
        panic!("PUT {body} is saved")
    };
    assert_eq!(store.render().unwrap(), body);
    assert_eq!(reloaded(&ops).render().unwrap(), body, "as stored on disk");
}

#[test]
fn the_clients_cut_emoji_is_stored_and_broadcast() {
    // tinybase 10.0.1's setCell('t', 'r', 'c', 'x\ud83d') sends this frame.
    let mut store = store_with(r#"[{"t":{"r":{"c":"x"}}},{}]"#);
    let frame = r#"s[{"t":{"r":{"c":"x\ud83d"}}},{"v":"\ud800"},1]"#;
    assert_eq!(apply(&mut store, frame).as_deref(), Some(&frame[1..]));
    assert_eq!(store.render().unwrap(), r#"[{"t":{"r":{"c":"x\ud83d"}}},{"v":"\ud800"}]"#);
}

#[test]
fn ids_with_lone_surrogates_are_ordered_as_the_reference_lists_them() {
    // Tables, rows and cells by their JSON escape (`\udxxx` lowercase, then `"`), values by their
    // UTF-8 with U+FFFD in place of each lone surrogate, as the reference's storage keys sort.
    let body = r#"[{"x\ud83d":{"r":{"c":1}},"\udc00":{"\ue000":{"c":2},"\ud800":{"\ufdd0":3,"\ufdd0\ud800":4}},"a":{"r":{"c":5}},"\ud800":{"r":{"c":6}}},{"\ufffd\ud800":1,"\ud800":2,"x\ud83d":3,"\ue000":4,"\ufdd0":5}]"#;
    let mut store = PersisterStore::new();
    let PutOutcome::Saved { ops, .. } = store.put(parse_content(body.as_bytes()).unwrap()) else { panic!() };
    let expected = "[{\"\\ud800\":{\"r\":{\"c\":6}},\"\\udc00\":{\"\\ud800\":{\"\u{fdd0}\":3,\"\u{fdd0}\\ud800\":4},\"\u{e000}\":{\"c\":2}},\"a\":{\"r\":{\"c\":5}},\"x\\ud83d\":{\"r\":{\"c\":1}}},{\"x\\ud83d\":3,\"\u{e000}\":4,\"\u{fdd0}\":5,\"\\ud800\":2,\"\u{fffd}\\ud800\":1}]";
    assert_eq!(store.render().unwrap(), expected);
    assert_eq!(reloaded(&ops).render().unwrap(), expected);
}

#[test]
fn deleting_by_ids_with_lone_surrogates_finds_what_they_name() {
    let mut store =
        store_with(r#"[{"\ud800":{"\udc00":{"\udfff":1,"c":2}},"t":{"r":{"c":3}}},{"\ud800":1,"\udc00":2}]"#);
    let frame = "s[{\"\\ud800\":{\"\\udc00\":{\"\\udfff\":\"\u{FFFC}\"}},\"t\":\"\u{FFFC}\"},{\"\\udc00\":\"\u{FFFC}\"},1]";
    assert!(apply(&mut store, frame).is_some());
    assert_eq!(store.render().unwrap(), r#"[{"\ud800":{"\udc00":{"c":2}}},{"\ud800":1}]"#);
}

#[test]
fn party_toml_names_match_ids_as_text_and_typed_cells_may_hold_lone_surrogates() {
    // The names come from party.toml as plain text; U+FDD0 is how partyd holds lone surrogates.
    let types = |pairs: &[(&str, CellType)]| pairs.iter().map(|(k, t)| (k.to_string(), *t)).collect();
    let rules = Permissions {
        read_only_tables: ["a\u{fdd0}b".to_owned()].into(),
        read_only_values: ["v\u{fdd0}".to_owned()].into(),
        table_schemas: [("t".to_owned(), types(&[("s\u{fdd0}", CellType::String)]))].into(),
        ..Permissions::default()
    };
    let frame = r#"s[{"a\ufdd0b":{"r":{"c":1}},"t":{"r":{"s\ufdd0":"x\ud83d","\ud800":"y"}}},{"v\ufdd0":1,"w":"\ud800"},1]"#;
    let (accepted, refused) = rules.split(parse_frame(frame, "").unwrap());
    let mut store = store_with("[{},{}]");
    assert_eq!(
        store.apply_changes(accepted).unwrap().payload,
        "[{\"t\":{\"r\":{\"s\u{fdd0}\":\"x\\ud83d\"}}},{\"w\":\"\\ud800\"},1]"
    );
    assert_eq!(
        store.restore_payload(&refused.unwrap()).unwrap(),
        "[{\"a\u{fdd0}b\":{\"r\":{\"c\":\"\u{FFFC}\"}},\"t\":{\"r\":{\"\\ud800\":\"\u{FFFC}\"}}},{\"v\u{fdd0}\":\"\u{FFFC}\"},1]"
    );
}

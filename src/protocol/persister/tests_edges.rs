//! More edge cases of spec §12 (websocket side, numbers, ids, ops), one behaviour per test.

use super::tests::store_with;
use super::*;

const M: &str = "\u{FFFC}";

fn apply(store: &mut PersisterStore, frame: &str) -> Option<Applied> {
    let changes = parse_frame(frame, "").unwrap_or_else(|e| panic!("{frame:?}: {e}"));
    store.apply_changes(changes)
}

fn payload(store: &mut PersisterStore, frame: &str) -> Option<String> {
    apply(store, frame).map(|applied| applied.payload)
}

fn cell(text: &str) -> CellText {
    CellText::from_stored(text.to_owned()).unwrap()
}

#[test]
fn json_whitespace_around_the_payload_is_fine() {
    for frame in ["s [{},{\"v\":1},1] ", "s\n[{},{\"v\":1},1]\r\n", "s\t[ {} , {\"v\" : 1} , 1 ]"] {
        let mut store = store_with("[{},{}]");
        assert_eq!(payload(&mut store, frame).unwrap(), "[{},{\"v\":1},1]", "{frame:?}");
    }
    for frame in ["s\u{a0}[{},{},1]", "s\u{feff}[{},{},1]", "s[{},{},1]\u{b}", "s[{},{},1]//"] {
        assert!(matches!(parse_frame(frame, ""), Err(IgnoredFrame::NotJson(_))), "{frame:?}");
    }
}

#[test]
fn why_a_frame_is_ignored_is_told() {
    assert_eq!(parse_frame("tb:", "tb:"), Err(IgnoredFrame::TooShort));
    assert_eq!(parse_frame("", ""), Err(IgnoredFrame::TooShort));
    assert_eq!(parse_frame("tb;s[{},{},1]", "tb:"), Err(IgnoredFrame::NoPrefix));
    assert_eq!(parse_frame("x[{},{},1]", ""), Err(IgnoredFrame::UnknownType('x')));
    assert_eq!(parse_frame("😀[{},{},1]", ""), Err(IgnoredFrame::UnknownType('😀')));
    assert!(matches!(parse_frame("s", ""), Err(IgnoredFrame::NotJson(_))));
    assert!(matches!(parse_frame("s[{},{},2]", ""), Err(IgnoredFrame::InvalidChanges(_))));
    assert!(parse_frame("tb:s[{},{},1]", "tb:").is_ok());
}

#[test]
fn the_flag_rejects_what_javascript_rejects() {
    // NEL is whitespace for Rust but not for JavaScript's Number(); U+FEFF and U+3000 are for both.
    for flag in [
        "\"\u{85}1\"",
        "[\"\u{FFFC}\"]",
        "[null]",
        "[true]",
        "\"1n\"",
        "\"0x\"",
        "\"1_0\"",
        "[{}]",
        "\"Infinity\"",
        "1e400",
    ] {
        assert!(parse_frame(&format!("s[{{}},{{}},{flag}]"), "").is_err(), "flag {flag} is not 1");
    }
    for flag in [
        "\"\u{feff}1\"",
        "\"\u{3000}1\"",
        "\"1.\"",
        "\".1e1\"",
        "\"+.1e1\"",
        "\"0b1\"",
        "\"0o1\"",
        "\"0X01\"",
    ] {
        assert!(parse_frame(&format!("s[{{}},{{}},{flag}]"), "").is_ok(), "flag {flag} is 1");
    }
}

#[test]
fn a_deep_cell_is_a_cell_not_too_deep() {
    let mut store = store_with("[{},{}]");
    let sent = "[{\"t\":{\"r\":{\"c\":{\"deep\":{\"er\":1}}}}},{},1]";
    assert_eq!(payload(&mut store, &format!("s{sent}")).unwrap(), sent);
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"r\":{\"c\":{\"deep\":{\"er\":1}}}}},{}]");
}

#[test]
fn overflowing_numbers_are_refused_as_cells_but_kept_inside_them() {
    assert!(parse_frame("s[{},{\"v\":1e400},1]", "").is_err());
    assert!(parse_frame("s[{\"t\":{\"r\":{\"c\":-1e400}}},{},1]", "").is_err());
    let mut store = store_with("[{},{}]");
    assert_eq!(
        payload(&mut store, "s[{},{\"v\":[1e400],\"o\":{\"x\":-1e400}},1]").unwrap(),
        "[{},{\"v\":[null],\"o\":{\"x\":null}},1]"
    );
    assert_eq!(store.render().unwrap(), "[{},{\"o\":{\"x\":null},\"v\":[null]}]");
    let store = store_with("[{\"t\":{\"r\":{\"a\":[1e400],\"o\":{\"x\":1e400}}}},{}]");
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"r\":{\"a\":[null],\"o\":{\"x\":null}}}},{}]");
}

#[test]
fn numbers_in_changes_are_reserialised() {
    let mut store = store_with("[{},{}]");
    let sent =
        "s[{\"t\":{\"r\":{\"z\":-0,\"e\":1E21,\"f\":5.000,\"i\":9007199254740993,\"u\":1e-400}}},{},1]";
    assert_eq!(
        payload(&mut store, sent).unwrap(),
        "[{\"t\":{\"r\":{\"z\":0,\"e\":1e+21,\"f\":5,\"i\":9007199254740992,\"u\":0}}},{},1]"
    );
    assert_eq!(
        store.render().unwrap(),
        "[{\"t\":{\"r\":{\"e\":1e+21,\"f\":5,\"i\":9007199254740992,\"u\":0,\"z\":0}}},{}]"
    );
}

#[test]
fn markers_inside_json_cells_are_absent_when_stored_and_repeated_when_broadcast() {
    let mut store = store_with("[{},{}]");
    let frame =
        format!("s[{{\"t\":{{\"r\":{{\"a\":[\"{M}\",1],\"o\":{{\"k\":\"{M}\",\"j\":2}}}}}}}},{{}},1]");
    let applied = apply(&mut store, &frame).unwrap();
    assert_eq!(
        applied.payload,
        format!("[{{\"t\":{{\"r\":{{\"a\":[\"{M}\",1],\"o\":{{\"k\":\"{M}\",\"j\":2}}}}}}}},{{}},1]")
    );
    assert!(applied.ops.contains(&StoreOp::SetCell {
        table: "t".into(),
        row: "r".into(),
        cell: "a".into(),
        text: cell("[null,1]")
    }));
    assert!(applied.ops.contains(&StoreOp::SetCell {
        table: "t".into(),
        row: "r".into(),
        cell: "o".into(),
        text: cell("{\"j\":2}")
    }));
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"r\":{\"a\":[null,1],\"o\":{\"j\":2}}}},{}]");
    assert!(!applied.payload.contains("\\ufffc"), "the raw character, not an escape");
}

#[test]
fn the_marker_and_encoded_cells_are_plain_strings_in_a_put() {
    let body = format!(
        "[{{\"t\":{{\"r\":{{\"c\":\"{M}\",\"e\":\"\u{FFFD}{{\\\"a\\\":1}}\"}}}}}},{{\"v\":\"{M}\"}}]"
    );
    let store = store_with(&body);
    assert_eq!(store.render().unwrap(), body);
    assert!(parse_content(format!("[{{\"t\":\"{M}\"}},{{}}]").as_bytes()).is_err());
}

#[test]
fn the_same_change_twice_is_broadcast_twice() {
    let mut store = store_with("[{\"t\":{\"r\":{\"c\":1}}},{}]");
    for _ in 0..2 {
        let applied = apply(&mut store, "s[{\"t\":{\"r\":{\"c\":1}}},{},1]").unwrap();
        assert_eq!(applied.payload, "[{\"t\":{\"r\":{\"c\":1}}},{},1]");
    }
    for _ in 0..2 {
        let applied = apply(&mut store, &format!("s[{{\"x\":\"{M}\"}},{{\"x\":\"{M}\"}},1]")).unwrap();
        assert_eq!(applied.payload, format!("[{{\"x\":\"{M}\"}},{{\"x\":\"{M}\"}},1]"));
        assert!(applied.ops.is_empty(), "deleting what does not exist writes nothing");
    }
}

#[test]
fn a_table_deleted_then_recreated_holds_only_its_new_cells() {
    let mut store =
        store_with("[{\"t\":{\"r\":{\"c\":1,\"d\":2},\"s\":{\"c\":3}},\"u\":{\"r\":{\"c\":4}}},{}]");
    apply(&mut store, &format!("s[{{\"t\":\"{M}\"}},{{}},1]")).unwrap();
    apply(&mut store, "s[{\"t\":{\"r\":{\"n\":5}}},{},1]").unwrap();
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"r\":{\"n\":5}},\"u\":{\"r\":{\"c\":4}}},{}]");
    // One message deleting a table and setting another: both applied.
    let applied =
        apply(&mut store, &format!("s[{{\"u\":\"{M}\",\"w\":{{\"r\":{{\"c\":6}}}}}},{{}},1]")).unwrap();
    assert_eq!(applied.payload, format!("[{{\"u\":\"{M}\",\"w\":{{\"r\":{{\"c\":6}}}}}},{{}},1]"));
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"r\":{\"n\":5}},\"w\":{\"r\":{\"c\":6}}},{}]");
}

#[test]
fn a_row_and_a_table_go_with_their_last_cell() {
    let mut store = store_with("[{\"t\":{\"r\":{\"c\":1},\"s\":{\"c\":2}}},{}]");
    apply(&mut store, &format!("s[{{\"t\":{{\"r\":{{\"c\":\"{M}\"}}}}}},{{}},1]")).unwrap();
    assert_eq!(store.render().unwrap(), "[{\"t\":{\"s\":{\"c\":2}}},{}]");
    apply(&mut store, &format!("s[{{\"t\":{{\"s\":\"{M}\"}}}},{{}},1]")).unwrap();
    assert_eq!(store.render().unwrap(), "[{},{}]");
    assert!(store.has_store());
    assert_eq!(store.put(parse_content(b"[{},{}]").unwrap()), PutOutcome::AlreadyHasStore);
}

#[test]
fn empty_tables_and_rows_are_left_out_of_a_bigger_change() {
    let mut store = store_with("[{},{}]");
    let sent = "s[{\"e\":{},\"t\":{\"empty\":{},\"r\":{\"c\":1}}},{\"v\":2},1]";
    assert_eq!(payload(&mut store, sent).unwrap(), "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":2},1]");
}

#[test]
fn a_put_writes_exactly_its_cells_values_and_the_flag() {
    let mut store = PersisterStore::new();
    let content = parse_content(br#"[{"t":{},"w":{"r":{"c":1},"s":{}}},{"v":"x"}]"#).unwrap();
    assert!(!content.is_empty());
    let PutOutcome::Saved { ops, created_store } = store.put(content) else { panic!() };
    assert!(created_store);
    assert_eq!(
        ops,
        vec![
            StoreOp::SetCell { table: "w".into(), row: "r".into(), cell: "c".into(), text: cell("1") },
            StoreOp::SetValue { id: "v".into(), text: cell("\"x\"") },
            StoreOp::SetStoreFlag,
        ]
    );
    let empty = parse_content(b" [ { } , { } ] ").unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        PersisterStore::new().put(empty),
        PutOutcome::Saved { ops: vec![StoreOp::SetStoreFlag], created_store: true }
    );
}

#[test]
fn changes_without_a_store_are_ignored() {
    let mut store = PersisterStore::new();
    assert_eq!(payload(&mut store, "s[{},{\"v\":1},1]"), None);
    assert_eq!(store.render(), None);
    assert_eq!(store.stored_bytes(), 0);
}

#[test]
fn the_conformance_get_bytes() {
    // 'GET answers compact JSON with keys in sorted order' (http-store.test.mjs).
    let store = store_with(r#"[{"b":{"y":{"z":1,"a":2}},"a":{"x":{"c":3}}},{"v2":true,"v1":"s"}]"#);
    assert_eq!(
        store.render().unwrap(),
        r#"[{"a":{"x":{"c":3}},"b":{"y":{"a":2,"z":1}}},{"v1":"s","v2":true}]"#
    );
}

#[test]
fn ids_order_tables_by_their_escape_and_values_by_their_bytes() {
    let ids = [
        "",
        "\"",
        "\\",
        "\",\"",
        "a\",\"b",
        "__proto__",
        "0",
        "01",
        "-1",
        "10",
        "9",
        "a b",
        "a!",
        "a",
        "b",
        "\n",
        "\u{1f}",
    ];
    let mut body = String::from("[{");
    let mut values = String::new();
    for (i, id) in ids.iter().enumerate() {
        let mut quoted = String::new();
        json::write_string(id, &mut quoted);
        let sep = if i > 0 { "," } else { "" };
        body.push_str(&format!("{sep}{quoted}:{{{quoted}:{{{quoted}:{i}}}}}"));
        values.push_str(&format!("{sep}{quoted}:{i}"));
    }
    body.push_str(&format!("}},{{{values}}}]"));
    let rendered = store_with(&body).render().unwrap();
    let JsValue::Array(parts) = json::parse(&rendered, false).unwrap() else { panic!() };
    let keys = |value: &JsValue| match value {
        JsValue::Object(members) => members.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    // Tables by esc(id)+'"': `"` < `-1"` < `01"` < `\""` < `\",\""` < `\\"` < `\n"` < `\u001f"` < `__proto__"` < `a b"` < `a!"` < `a"` < `a\",\"b"` < `b"`.
    assert_eq!(
        keys(&parts[0]),
        [
            "0",
            "9",
            "10",
            "",
            "-1",
            "01",
            "\"",
            "\",\"",
            "\\",
            "\n",
            "\u{1f}",
            "__proto__",
            "a b",
            "a!",
            "a",
            "a\",\"b",
            "b"
        ]
    );
    // Values by raw bytes.
    assert_eq!(
        keys(&parts[1]),
        [
            "0",
            "9",
            "10",
            "",
            "\n",
            "\u{1f}",
            "\"",
            "\",\"",
            "-1",
            "01",
            "\\",
            "__proto__",
            "a",
            "a b",
            "a!",
            "a\",\"b",
            "b"
        ]
    );
}

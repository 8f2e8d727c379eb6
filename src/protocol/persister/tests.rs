//! Tests of the persister kind against the edge cases of spec §12 and the conformance suite.

use super::*;
use proptest::prelude::*;

/// A store made by a PUT of `body` (shared with tests_edges.rs).
pub(super) fn store_with(body: &str) -> PersisterStore {
    let mut store = PersisterStore::new();
    let content = parse_content(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    assert!(matches!(store.put(content), PutOutcome::Saved { created_store: true, .. }), "{body}");
    store
}

fn apply(store: &mut PersisterStore, frame: &str) -> Option<String> {
    let changes = parse_frame(frame, "").unwrap_or_else(|e| panic!("{frame}: {e}"));
    store.apply_changes(changes).map(|applied| applied.payload)
}

#[test]
fn invalid_put_bodies_are_refused() {
    // The list of the conformance test 'invalid PUT bodies answer 400 and create no store'.
    let bad = [
        "",
        "not json",
        "[{},{}",
        "[{},{}] x",
        "null",
        "{}",
        "[]",
        "[{}]",
        "[{},{},1]",
        "[{},{},{}]",
        "[[],{}]",
        "[{},[]]",
        "[null,{}]",
        "[{},null]",
        "[\"x\",{}]",
        "[{\"t\":null},{}]",
        "[{\"t\":\"x\"},{}]",
        "[{\"t\":\"\u{FFFC}\"},{}]",
        "[{\"t\":{\"r\":\"\u{FFFC}\"}},{}]",
        "[{\"t\":[]},{}]",
        "[{\"t\":{\"r\":null}},{}]",
        "[{\"t\":{\"r\":1}},{}]",
        "[{\"t\":{\"r\":[1]}},{}]",
        "[{\"t\":{\"r\":{\"c\":1e400}}},{}]",
        "[{},{\"v\":-1e400}]",
        "[{\"t\":{\"r\":{\"c\":NaN}}},{}]",
        "[{\"t\":{\"r\":{\"c\":undefined}}},{}]",
        "[{'t':{}},{}]",
        "[{\"t\":{\"r\":{\"c\":1}}},{},]",
        "\u{FEFF}[{},{}]",
    ];
    for body in bad {
        assert!(parse_content(body.as_bytes()).is_err(), "{body:?} must be refused");
    }
    assert_eq!(parse_content(b"[\xff]"), Err(InvalidContent::NotUtf8));
}

#[test]
fn put_saves_cells_and_values_and_the_flag_by_tinybase_rule() {
    let mut store = PersisterStore::new();
    assert_eq!(store.render(), None);
    let content = parse_content(br#"[{"t":{},"w":{"r":{"c":1},"s":{}}},{"v":1}]"#).unwrap();
    let PutOutcome::Saved { ops, created_store: true } = store.put(content) else { panic!() };
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_eq!(store.render().unwrap(), r#"[{"w":{"r":{"c":1}}},{"v":1}]"#);
    assert_eq!(store.put(parse_content(b"[{},{}]").unwrap()), PutOutcome::AlreadyHasStore);

    for body in [r#"[{"t":{}},{}]"#, r#"[{"t":{"r":{}}},{}]"#] {
        let mut store = PersisterStore::new();
        assert_eq!(
            store.put(parse_content(body.as_bytes()).unwrap()),
            PutOutcome::Saved { ops: vec![], created_store: false }
        );
        assert!(!store.has_store());
        assert_eq!(apply(&mut store, "s[{},{\"v\":1},1]"), None, "changes are ignored without a store");
    }
    let empty = store_with("[{},{}]");
    assert_eq!(empty.render().unwrap(), "[{},{}]");
}

#[test]
fn get_orders_keys_like_tinybase() {
    let store = store_with(r#"[{"b":{"y":{"z":1,"a":2}},"a":{"x":{"c":3}}},{"v2":true,"v1":"s"}]"#);
    assert_eq!(
        store.render().unwrap(),
        r#"[{"a":{"x":{"c":3}},"b":{"y":{"a":2,"z":1}}},{"v1":"s","v2":true}]"#
    );
    let store = store_with(
        r#"[{"b":{"r":{"c":1}},"a!":{"r":{"c":1}},"a":{"r":{"c":1}},"a b":{"r":{"c":1}},"10":{"r":{"c":1}},"9":{"r":{"c":1}}},{"b":1,"a!":1,"a":1,"a b":1,"":1,"01":1,"10":1}]"#,
    );
    assert_eq!(
        store.render().unwrap(),
        r#"[{"9":{"r":{"c":1}},"10":{"r":{"c":1}},"a b":{"r":{"c":1}},"a!":{"r":{"c":1}},"a":{"r":{"c":1}},"b":{"r":{"c":1}}},{"10":1,"":1,"01":1,"a":1,"a b":1,"a!":1,"b":1}]"#
    );
}

#[test]
fn every_kind_of_cell_is_kept_as_the_client_sent_it() {
    let body = "[{\"t\":{\"r\":{\"s\":\"x\",\"n\":-2.5,\"z\":-0,\"b\":false,\"nul\":null,\"a\":[1,\"two\",null,[true],1e400],\"o\":{\"k\":{\"x\":1e400}},\"m\":\"\u{FFFC}\",\"e\":\"\u{FFFD}[1,2]\"}}},{\"big\":1E21}]";
    let store = store_with(body);
    assert_eq!(
        store.render().unwrap(),
        "[{\"t\":{\"r\":{\"a\":[1,\"two\",null,[true],null],\"b\":false,\"e\":\"\u{FFFD}[1,2]\",\"m\":\"\u{FFFC}\",\"n\":-2.5,\"nul\":null,\"o\":{\"k\":{\"x\":null}},\"s\":\"x\",\"z\":0}}},{\"big\":1e+21}]"
    );
}

#[test]
fn websocket_garbage_is_ignored() {
    // The list of the conformance test 'garbage is ignored', plus the flag rejects of §4.4.
    let garbage = [
        "",
        "s",
        "hello",
        "x[{},{\"v\":1},1]",
        "S[{},{\"v\":1},1]",
        " s[{},{\"v\":1},1]",
        "s{\"bad\":1}",
        "s[{},{\"v\":1}]",
        "s[{},{\"v\":1},2]",
        "s[{},{\"v\":1},0]",
        "s[{},{\"v\":1},null]",
        "s[{},{\"v\":1},1,1]",
        "s[{\"t\":{\"r\":{\"c\":1}}},{},1]trailing",
        "s[{\"t\":{\"r\":{\"c\":1}}},{},1",
        "s[{\"t\":[1]},{},1]",
        "s[{\"t\":{\"r\":5}},{},1]",
        "s[{\"t\":{\"r\":{\"c\":1}}},[],1]",
        "s[[],{},1]",
        "s[null,{},1]",
        "s[{},{\"v\":1e400},1]",
        "s[{},{\"v\":NaN},1]",
        "snull",
        "s\"text\"",
        "s12",
        "strue",
        "tb:s[{},{\"v\":1},1]",
        "s[{},{},-1]",
        "s[{},{},false]",
        "s[{},{},{}]",
        "s[{},{},\"x\"]",
        "s[{},{},[1,1]]",
        "s[{},{},\"\u{FFFC}\"]",
        "s[\"\u{FFFC}\",{},1]",
        "s[{},\"\u{FFFC}\",1]",
        "s[{\"t\":null},{},1]",
        "s[{\"t\":true},{},1]",
    ];
    for frame in garbage {
        assert!(parse_frame(frame, "").is_err(), "{frame:?} must be ignored");
    }
    for frame in [
        "tb:",
        "tb",
        "tb:s",
        "TB:s[{},{},1]",
        "tb:x[{},{},1]",
        "tbs[{},{},1]",
        "s[{},{},1]",
        "tb:tb:s[{},{},1]",
    ] {
        assert!(parse_frame(frame, "tb:").is_err(), "{frame:?} must be ignored with prefix tb:");
    }
    assert!(parse_frame("tb:s[{},{},1]", "tb:").is_ok());
}

#[test]
fn the_flag_is_compared_loosely_with_one() {
    for flag in [
        "1",
        "1.0",
        "1e0",
        "10e-1",
        "true",
        "\"1\"",
        "\" 1 \"",
        "\"01\"",
        "\"+1\"",
        "\"1e0\"",
        "\"0x1\"",
        "\"\\t1\\n\"",
        "[1]",
        "[\"1\"]",
        "[[1]]",
    ] {
        assert!(parse_frame(&format!("s[{{}},{{}},{flag}]"), "").is_ok(), "flag {flag} is 1");
    }
    for flag in ["2", "0", "-1", "false", "null", "{}", "\"x\"", "[1,1]", "\"\"", "[]", "\"-0x1\""] {
        assert!(parse_frame(&format!("s[{{}},{{}},{flag}]"), "").is_err(), "flag {flag} is not 1");
    }
}

#[test]
fn changes_are_applied_and_only_the_accepted_part_is_broadcast() {
    let mut store = store_with(
        r#"[{"keep":{"r":{"c":1,"gone":2},"gone":{"c":3}},"gone":{"r":{"c":4}}},{"keep":1,"gone":2}]"#,
    );
    let payload = apply(&mut store, "s[{\"keep\":{\"r\":{\"gone\":\"\u{FFFC}\"},\"gone\":\"\u{FFFC}\",\"empty\":{}},\"gone\":\"\u{FFFC}\",\"nothing\":{}},{\"gone\":\"\u{FFFC}\"},1]");
    assert_eq!(payload.unwrap(), "[{\"keep\":{\"r\":{\"gone\":\"\u{FFFC}\"},\"gone\":\"\u{FFFC}\"},\"gone\":\"\u{FFFC}\"},{\"gone\":\"\u{FFFC}\"},1]");
    assert_eq!(store.render().unwrap(), r#"[{"keep":{"r":{"c":1}}},{"keep":1}]"#);
    for empty in [
        "s[{},{},1]",
        "s[{\"t\":{}},{},1]",
        "s[{\"t\":{\"r\":{}}},{},1]",
        "s[{\"u\":{},\"t\":{\"r\":{},\"s\":{}}},{},1]",
    ] {
        assert_eq!(apply(&mut store, empty), None, "{empty}");
    }
    // Deleting what does not exist, and setting what a cell already holds, are still accepted.
    assert!(apply(&mut store, "s[{\"ghost\":\"\u{FFFC}\"},{\"ghost\":\"\u{FFFC}\"},1]").is_some());
    assert_eq!(
        apply(&mut store, "s[{\"keep\":{\"r\":{\"c\":1}}},{},1]").unwrap(),
        "[{\"keep\":{\"r\":{\"c\":1}}},{},1]"
    );
    // Numbers are re-serialised; markers inside JSON cells are repeated in the broadcast only.
    assert_eq!(
        apply(
            &mut store,
            "s [{},{\"n\":-0,\"e\":1E21,\"f\":5.000,\"a\":[\"\u{FFFC}\",1],\"o\":{\"k\":\"\u{FFFC}\"}},1] "
        )
        .unwrap(),
        "[{},{\"n\":0,\"e\":1e+21,\"f\":5,\"a\":[\"\u{FFFC}\",1],\"o\":{\"k\":\"\u{FFFC}\"}},1]"
    );
    assert_eq!(
        store.render().unwrap(),
        r#"[{"keep":{"r":{"c":1}}},{"a":[null,1],"e":1e+21,"f":5,"keep":1,"n":0,"o":{}}]"#
    );
}

#[test]
fn deleting_a_table_or_row_never_touches_one_whose_id_merely_starts_the_same() {
    let mut store = store_with(
        r#"[{"a":{"r":{"c":1}},"ab":{"r":{"c":2}},"a\"":{"r":{"c":3}},"a\\":{"r":{"c":4}},"a,":{"r":{"c":5}},"t":{"r":{"c":6},"rr":{"c":7},"r\"":{"c":8}}},{}]"#,
    );
    let changes = parse_frame("s[{\"a\":\"\u{FFFC}\",\"t\":{\"r\":\"\u{FFFC}\"}},{},1]", "").unwrap();
    let applied = store.apply_changes(changes).unwrap();
    assert_eq!(
        applied.ops,
        vec![
            StoreOp::DelCell { table: "a".into(), row: "r".into(), cell: "c".into() },
            StoreOp::DelCell { table: "t".into(), row: "r".into(), cell: "c".into() },
        ]
    );
    // Order: bytes of esc(id) + '"': `a,"` < `a\""` < `a\\"` < `ab"`, and `r\""` < `rr"`.
    assert_eq!(
        store.render().unwrap(),
        r#"[{"a,":{"r":{"c":5}},"a\"":{"r":{"c":3}},"a\\":{"r":{"c":4}},"ab":{"r":{"c":2}},"t":{"r\"":{"c":8},"rr":{"c":7}}},{}]"#
    );
}

#[test]
fn deleting_every_cell_keeps_the_store_and_empties_go_away() {
    let mut store = store_with(r#"[{"t":{"r":{"c":1}}},{"v":1}]"#);
    apply(&mut store, "s[{\"t\":{\"r\":{\"c\":\"\u{FFFC}\"}}},{\"v\":\"\u{FFFC}\"},1]").unwrap();
    assert_eq!(store.render().unwrap(), "[{},{}]");
    assert_eq!(store.stored_bytes(), 0);
    apply(&mut store, "s[{\"t\":{\"r2\":{\"c\":5}}},{},1]").unwrap();
    assert_eq!(store.render().unwrap(), r#"[{"t":{"r2":{"c":5}}},{}]"#);
}

#[test]
fn odd_ids_are_ordinary_ids() {
    let ids = [
        "",
        "\"",
        "\\",
        "\",\"",
        "a\",\"b",
        "\n",
        "\t",
        "\u{0}",
        "\u{1f}",
        "é",
        "日本",
        "😀",
        "\u{2028}",
        "\u{FFFC}",
        "\u{FFFD}",
        "/",
        "%41",
        "hasStore",
        "t",
        "v",
        "__proto__",
        "constructor",
        "toString",
        "0",
        "9",
        "10",
        "01",
        "-1",
    ];
    let mut store = store_with("[{},{}]");
    for id in ids {
        let mut id_json = String::new();
        json::write_string(id, &mut id_json);
        let frame = format!("s[{{{id_json}:{{{id_json}:{{{id_json}:1}}}}}},{{{id_json}:1}},1]");
        apply(&mut store, &frame).unwrap_or_else(|| panic!("{id:?}"));
    }
    let rendered = store.render().unwrap();
    let reloaded = store_with(&rendered);
    assert_eq!(reloaded.render().unwrap(), rendered);
    let JsValue::Array(parts) = json::parse(&rendered, false).unwrap() else { panic!() };
    let JsValue::Object(tables) = &parts[0] else { panic!() };
    assert_eq!(tables.len(), ids.len());
}

#[test]
fn stored_entries_rebuild_the_same_store() {
    let mut store = store_with(r#"[{"t":{"r":{"c":[1,{"x":true}]}}},{"v":"s"}]"#);
    apply(&mut store, "s[{\"u\":{\"r\":{\"c\":2}}},{\"w\":null},1]").unwrap();
    let mut entries = vec![StoredEntry::StoreFlag];
    let JsValue::Array(parts) = json::parse(&store.render().unwrap(), false).unwrap() else { panic!() };
    let (JsValue::Object(tables), JsValue::Object(values)) = (&parts[0], &parts[1]) else { panic!() };
    for (t, rows) in tables {
        let JsValue::Object(rows) = rows else { panic!() };
        for (r, cells) in rows {
            let JsValue::Object(cells) = cells else { panic!() };
            for (c, cell) in cells {
                let text = CellText::from_stored(CellText::of(cell).as_str().to_owned()).unwrap();
                entries.push(StoredEntry::Cell { table: t.clone(), row: r.clone(), cell: c.clone(), text });
            }
        }
    }
    for (v, value) in values {
        entries.push(StoredEntry::Value { id: v.clone(), text: CellText::of(value) });
    }
    assert_eq!(PersisterStore::from_entries(entries).render(), store.render());
    assert!(CellText::from_stored("1e400".into()).is_err());
    assert!(CellText::from_stored("{".into()).is_err());
}

proptest! {
    #[test]
    fn parsing_never_panics(text in ".*", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_frame(&text, "");
        let _ = parse_frame(&text, "tb:");
        let _ = parse_content(text.as_bytes());
        let _ = parse_content(&bytes);
    }

    #[test]
    fn valid_content_round_trips_through_get(
        tables in proptest::collection::btree_map(".{0,4}", proptest::collection::btree_map(".{0,4}", proptest::collection::btree_map(".{0,4}", cell(), 1..4), 1..4), 0..4),
        values in proptest::collection::btree_map(".{0,4}", cell(), 0..4),
    ) {
        let mut body = String::from("[{");
        for (i, (t, rows)) in tables.iter().enumerate() {
            if i > 0 { body.push(','); }
            json::write_string(t, &mut body);
            body.push_str(":{");
            for (j, (r, cells)) in rows.iter().enumerate() {
                if j > 0 { body.push(','); }
                json::write_string(r, &mut body);
                body.push_str(":{");
                for (k, (c, cell)) in cells.iter().enumerate() {
                    if k > 0 { body.push(','); }
                    json::write_string(c, &mut body);
                    body.push(':');
                    body.push_str(cell);
                }
                body.push('}');
            }
            body.push('}');
        }
        body.push_str("},{");
        for (i, (v, cell)) in values.iter().enumerate() {
            if i > 0 { body.push(','); }
            json::write_string(v, &mut body);
            body.push(':');
            body.push_str(cell);
        }
        body.push_str("}]");
        let first = store_with_any(&body);
        let rendered = first.render().unwrap();
        let second = store_with_any(&rendered);
        prop_assert_eq!(second.render().unwrap(), rendered);
    }
}

fn store_with_any(body: &str) -> PersisterStore {
    let mut store = PersisterStore::new();
    store.put(parse_content(body.as_bytes()).unwrap());
    store
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(|n| {
            let mut s = String::new();
            json::write_number(n, &mut s);
            s
        }),
        ".{0,6}".prop_map(|s| {
            let mut out = String::new();
            json::write_string(&s, &mut out);
            out
        }),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("[1,{\"a\":[]}]".to_owned()),
    ]
}

#[test]
fn reference_entries_use_tinybase_storage_keys() {
    let store = store_with(r#"[{"pets":{"fido":{"species":"dog"}},"a\"b":{"r":{"c":1}}},{"open":true}]"#);
    assert_eq!(
        store.reference_entries("app_"),
        vec![
            ("app_hasStore".to_owned(), "1".to_owned()),
            ("app_t\"a\\\"b\",\"r\",\"c\"".to_owned(), "1".to_owned()),
            ("app_t\"pets\",\"fido\",\"species\"".to_owned(), "\"dog\"".to_owned()),
            ("app_vopen".to_owned(), "true".to_owned()),
        ]
    );
    assert!(PersisterStore::new().reference_entries("").is_empty());
}

#[test]
fn the_size_after_changes_is_known_before_applying_them() {
    let content =
        parse_content(br#"[{"t":{"r":{"c":"abc","d":1},"s":{"c":2}},"u":{"r":{"c":3}}},{"v":"x"}]"#).unwrap();
    let predicted = content.stored_bytes();
    let mut store = PersisterStore::new();
    store.put(content);
    assert_eq!(store.stored_bytes(), predicted);
    for frame in [
        "s[{\"t\":{\"r\":{\"c\":\"longer text\",\"e\":\"\u{FFFC}\"}}},{\"v\":\"\u{FFFC}\",\"w\":[1,2]},1]",
        "s[{\"t\":{\"s\":\"\u{FFFC}\"},\"u\":\"\u{FFFC}\",\"new\":{\"r\":{\"c\":true}}},{},1]",
        "s[{\"t\":\"\u{FFFC}\"},{\"v\":\"\u{FFFC}\"},1]",
    ] {
        let changes = parse_frame(frame, "").unwrap();
        let predicted = store.bytes_after(&changes);
        store.apply_changes(changes);
        assert_eq!(store.stored_bytes(), predicted, "{frame}");
    }
}

#[test]
fn a_restore_payload_puts_back_what_is_stored() {
    let store = store_with(r#"[{"t":{"r":{"c":1,"d":2},"s":{"c":3}},"u":{"r":{"c":4}}},{"v":"x"}]"#);
    let changes = parse_frame("s[{\"t\":{\"r\":{\"c\":9,\"new\":1},\"s\":\"\u{FFFC}\",\"gone\":\"\u{FFFC}\"},\"u\":\"\u{FFFC}\",\"x\":{\"r\":{\"c\":1}}},{\"v\":\"\u{FFFC}\",\"w\":1},1]", "").unwrap();
    assert_eq!(
        store.restore_payload(&changes).unwrap(),
        "[{\"t\":{\"r\":{\"c\":1,\"new\":\"\u{FFFC}\"},\"s\":{\"c\":3}},\"u\":{\"r\":{\"c\":4}},\"x\":{\"r\":{\"c\":\"\u{FFFC}\"}}},{\"v\":\"x\",\"w\":\"\u{FFFC}\"},1]"
    );
    assert_eq!(store.restore_payload(&parse_frame("s[{\"ghost\":\"\u{FFFC}\"},{},1]", "").unwrap()), None);
}

fn rules() -> Permissions {
    let types = |pairs: &[(&str, CellType)]| pairs.iter().map(|(k, t)| (k.to_string(), *t)).collect();
    Permissions {
        read_only_tables: ["config".to_owned()].into(),
        read_only_values: ["version".to_owned()].into(),
        no_delete_tables: ["log".to_owned()].into(),
        table_schemas: [(
            "todos".to_owned(),
            types(&[("text", CellType::String), ("done", CellType::Boolean), ("tags", CellType::Array)]),
        )]
        .into(),
        value_schema: Some(types(&[("open", CellType::Boolean), ("version", CellType::Number)])),
    }
}

#[test]
fn permissions_drop_refused_parts_and_keep_the_rest() {
    let frame = "s[{\"config\":{\"r\":{\"c\":1}},\"log\":{\"e1\":\"\u{FFFC}\",\"e2\":{\"msg\":\"hi\",\"old\":\"\u{FFFC}\"}},\"todos\":{\"t1\":{\"text\":\"a\",\"done\":\"yes\",\"extra\":1,\"tags\":\"\u{FFFD}[1]\"}},\"free\":{\"r\":{\"c\":1}}},{\"open\":true,\"version\":2,\"other\":1},1]";
    let (accepted, refused) = rules().split(parse_frame(frame, "").unwrap());
    let mut store = store_with("[{},{}]");
    assert_eq!(
        store.apply_changes(accepted).unwrap().payload,
        "[{\"log\":{\"e2\":{\"msg\":\"hi\"}},\"todos\":{\"t1\":{\"text\":\"a\",\"tags\":\"\u{FFFD}[1]\"}},\"free\":{\"r\":{\"c\":1}}},{\"open\":true},1]"
    );
    let refused = refused.unwrap();
    // Refused: the read-only table, the deletion in the no-delete table (nothing stored there, so
    // the restore is a deletion too), the cells off the schema, the read-only and unlisted values.
    assert_eq!(
        store.restore_payload(&refused).unwrap(),
        "[{\"config\":{\"r\":{\"c\":\"\u{FFFC}\"}},\"log\":{\"e2\":{\"old\":\"\u{FFFC}\"}},\"todos\":{\"t1\":{\"done\":\"\u{FFFC}\",\"extra\":\"\u{FFFC}\"}}},{\"version\":\"\u{FFFC}\",\"other\":\"\u{FFFC}\"},1]"
    );
    let (accepted, refused) = rules().split(parse_frame("s[{\"free\":\"\u{FFFC}\"},{},1]", "").unwrap());
    assert!(refused.is_none());
    assert!(store.apply_changes(accepted).is_some());
    assert!(Permissions::default().allows_everything() && !rules().allows_everything());
}

#[test]
fn a_put_may_write_read_only_parts_but_not_break_the_schema() {
    let content = parse_content("[{\"config\":{\"r\":{\"c\":1}},\"todos\":{\"t1\":{\"text\":\"a\",\"done\":1},\"t2\":{\"bad\":1}}},{\"version\":1,\"open\":\"no\"}]".as_bytes()).unwrap();
    let mut store = PersisterStore::new();
    assert!(matches!(
        store.put(rules().filter_content(content)),
        PutOutcome::Saved { created_store: true, .. }
    ));
    assert_eq!(
        store.render().unwrap(),
        "[{\"config\":{\"r\":{\"c\":1}},\"todos\":{\"t1\":{\"text\":\"a\"}}},{\"version\":1}]"
    );
    let refused_all = parse_content(b"[{\"todos\":{\"t\":{\"x\":1}}},{}]").unwrap();
    let mut store = PersisterStore::new();
    assert_eq!(
        store.put(rules().filter_content(refused_all)),
        PutOutcome::Saved { ops: vec![], created_store: false },
        "TinyBase's flag rule: nothing accepted, no store"
    );
}

//! Vectors recorded from the reference itself: TinyBase 10.0.1's `TinyBasePartyKitServer` run by
//! `vectors/gen.mjs` on the scenarios of `vectors/scenarios.mjs` (PUT statuses, every frame's
//! broadcast, the GET body). GET bodies must match byte for byte; broadcasts up to the order of
//! members (spec §13 lets key order inside a broadcast differ).

use super::*;

const VECTORS: &str = include_str!("vectors/reference.json");

fn field<'a>(object: &'a JsValue, name: &str) -> &'a JsValue {
    let JsValue::Object(members) = object else { panic!("not an object: {object:?}") };
    members.iter().find(|(key, _)| key == name).map(|(_, value)| value).unwrap_or_else(|| panic!("no {name}"))
}

fn text(value: &JsValue) -> &str {
    match value {
        JsValue::String(text) => text,
        other => panic!("not a string: {other:?}"),
    }
}

fn items(value: &JsValue) -> &[JsValue] {
    match value {
        JsValue::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// Sorts the members of the top `depth` object levels by key.
fn sort_members(value: &mut JsValue, depth: usize) {
    if let (JsValue::Object(members), 1..) = (value, depth) {
        members.sort_by(|(a, _), (b, _)| a.cmp(b));
        for (_, member) in members {
            sort_members(member, depth - 1);
        }
    }
}

/// A broadcast frame with the members of tables, rows, cells and values in one fixed order.
fn normalised(frame: &str) -> String {
    let mut value = json::parse(frame.strip_prefix('s').expect("an s frame"), false).expect("JSON");
    let JsValue::Array(parts) = &mut value else { panic!("{frame}") };
    sort_members(&mut parts[0], 3);
    sort_members(&mut parts[1], 1);
    let mut out = String::new();
    json::write_wire(&value, &mut out);
    out
}

#[test]
fn every_reference_vector_is_reproduced() {
    let vectors = json::parse(VECTORS, false).expect("the vectors are JSON");
    let vectors = items(&vectors);
    assert!(vectors.len() > 40);
    for vector in vectors {
        let (put, expect) = (text(field(vector, "put")), field(vector, "expect"));
        let mut store = PersisterStore::new();
        let status = match parse_content(put.as_bytes()) {
            Err(_) => 400.0,
            Ok(content) => match store.put(content) {
                PutOutcome::AlreadyHasStore => 205.0,
                PutOutcome::Saved { .. } => 201.0,
            },
        };
        assert_eq!(JsValue::Number(status), *field(expect, "put"), "PUT {put:?}");
        let frames = items(field(vector, "frames"));
        let broadcasts = items(field(expect, "broadcasts"));
        assert_eq!(frames.len(), broadcasts.len());
        for (frame, broadcast) in frames.iter().zip(broadcasts) {
            let frame = text(frame);
            let ours = parse_frame(frame, "")
                .ok()
                .and_then(|changes| store.apply_changes(changes))
                .map(|applied| format!("s{}", applied.payload));
            match (ours, broadcast) {
                (None, JsValue::Null) => {}
                (Some(ours), JsValue::String(theirs)) => {
                    assert_eq!(normalised(&ours), normalised(theirs), "frame {frame:?}")
                }
                (ours, theirs) => panic!(
                    "frame {frame:?} after PUT {put:?}: we broadcast {ours:?}, the reference {theirs:?}"
                ),
            }
        }
        assert_eq!(store.render().unwrap_or_default(), text(field(expect, "get")), "GET after PUT {put:?}");
    }
}

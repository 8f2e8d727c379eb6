//! Property tests: merging changes is commutative, associative and idempotent (the CRDT laws),
//! hashes included, on random changes over a few ids where one HLC always carries one write.

use proptest::prelude::*;

use super::hlc::{client_id, encode};
use super::tree::{MergeableStore, Mode};
use crate::protocol::json::{self, JsValue};

const NOW: u64 = 1_700_000_000_000;

/// One write: (table, row, cell) or a value (table = None), by a writer at HLC number `stamp`.
type Write = (Option<(u8, u8, u8)>, u8, u16);

/// Rows of a table being written: row id → (cell id, leaf JSON).
type Rows = Vec<(String, Vec<(String, String)>)>;

fn hlc(stamp: u16, writer: u8) -> String {
    encode(NOW - 10_000 + u64::from(stamp), u64::from(writer), &client_id(&format!("client{writer}")))
}

/// The changes message of some writes. The value is a function of the HLC and the place, so two
/// writes with the same HLC at one place are the same write (as in TinyBase, where HLCs are unique).
fn changes(writes: &[Write]) -> JsValue {
    let mut text_tables: Vec<(String, Rows)> = Vec::new();
    let mut text_values: Vec<(String, String)> = Vec::new();
    for &(place, writer, stamp) in writes {
        let hlc = hlc(stamp, writer);
        let delete = stamp % 5 == 0;
        let leaf = |id: &str| {
            let value = if delete { "\"\u{FFFC}\"".to_owned() } else { format!("\"{id}@{hlc}\"") };
            format!("[{value},\"{hlc}\"]")
        };
        match place {
            None => text_values.push((format!("v{}", stamp % 3), leaf(&format!("v{}", stamp % 3)))),
            Some((t, r, c)) => {
                let (t, r, c) = (format!("t{}", t % 2), format!("r{}", r % 3), format!("c{}", c % 3));
                let leaf = leaf(&format!("{t}/{r}/{c}"));
                let table = match text_tables.iter_mut().position(|(id, _)| *id == t) {
                    Some(i) => &mut text_tables[i].1,
                    None => {
                        text_tables.push((t.clone(), Vec::new()));
                        &mut text_tables.last_mut().unwrap().1
                    }
                };
                let row = match table.iter_mut().position(|(id, _)| *id == r) {
                    Some(i) => &mut table[i].1,
                    None => {
                        table.push((r.clone(), Vec::new()));
                        &mut table.last_mut().unwrap().1
                    }
                };
                // A later write to the same cell in one message replaces the earlier (JSON keys).
                row.retain(|(id, _)| *id != c);
                row.push((c, leaf));
            }
        }
    }
    let object = |members: Vec<String>| format!("{{{}}}", members.join(","));
    let tables = text_tables.into_iter().map(|(t, rows)| {
        let rows = rows.into_iter().map(|(r, cells)| {
            format!(
                "\"{r}\":[{}]",
                object(cells.into_iter().map(|(c, leaf)| format!("\"{c}\":{leaf}")).collect())
            )
        });
        format!("\"{t}\":[{}]", object(rows.collect()))
    });
    let mut values_seen: Vec<(String, String)> = Vec::new();
    for (id, leaf) in text_values {
        values_seen.retain(|(seen, _)| *seen != id);
        values_seen.push((id, leaf));
    }
    let values = values_seen.into_iter().map(|(id, leaf)| format!("\"{id}\":{leaf}"));
    let text = format!("[[{}],[{}],1]", object(tables.collect()), object(values.collect()));
    json::parse(&text, true).unwrap()
}

/// The content after merging `messages` in order, compared as JSON values (children's order
/// follows arrival, which receivers ignore).
fn merged(messages: &[&JsValue]) -> serde_json::Value {
    let mut store = MergeableStore::new("server");
    for message in messages {
        store.merge(message, Mode::Changes, NOW).unwrap();
    }
    serde_json::from_str(&store.encoded_content()).unwrap()
}

fn writes() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec((prop::option::of((0u8..4, 0u8..4, 0u8..4)), 0u8..3, 0u16..50), 0..8)
}

proptest! {
    #[test]
    fn merging_is_commutative_associative_and_idempotent(a in writes(), b in writes(), c in writes()) {
        let (a, b, c) = (changes(&a), changes(&b), changes(&c));
        prop_assert_eq!(merged(&[&a, &b]), merged(&[&b, &a]));
        prop_assert_eq!(merged(&[&a, &b, &c]), merged(&[&c, &a, &b]));
        prop_assert_eq!(merged(&[&a, &b, &c]), merged(&[&b, &c, &a]));
        prop_assert_eq!(merged(&[&a, &a]), merged(&[&a]));
        prop_assert_eq!(merged(&[&a, &b, &a, &b]), merged(&[&a, &b]));
    }
}

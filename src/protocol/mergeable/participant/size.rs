//! What the participant's store costs in bytes, roughly, so that `max_room_bytes` can bound it:
//! per leaf its ids, its value's JSON, its stamp and hash.

use crate::protocol::json::JsValue;
use crate::protocol::mergeable::tree::MergeableStore;

/// Where a leaf lives.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) enum LeafPlace {
    Cell(String, String, String),
    Value(String),
}

/// Roughly what a leaf costs in storage: its ids, its value's JSON, its stamp and hash. A
/// tombstone counts no value, so that a deletion never makes a room larger.
pub(super) fn leaf_bytes(place: &LeafPlace, value: &JsValue) -> u64 {
    let ids = match place {
        LeafPlace::Cell(table, row, cell) => table.len() + row.len() + cell.len(),
        LeafPlace::Value(id) => id.len(),
    };
    let mut json = String::new();
    if *value != JsValue::Undefined {
        crate::protocol::json::write_wire(value, &mut json);
    }
    (ids + json.len() + 32) as u64
}

pub(super) fn store_bytes(store: &MergeableStore) -> u64 {
    let cells = store.tables.children().flat_map(|(table, rows)| {
        rows.children().flat_map(move |(row, cells)| {
            cells.children().map(move |(cell, leaf)| {
                leaf_bytes(&LeafPlace::Cell(table.into(), row.into(), cell.into()), &leaf.value)
            })
        })
    });
    let values =
        store.values.children().map(|(id, leaf)| leaf_bytes(&LeafPlace::Value(id.into()), &leaf.value));
    cells.sum::<u64>() + values.sum::<u64>()
}

/// Every leaf of a changes message `[tables, values, 1]` with its value (anything malformed is
/// left out; the merge refuses it anyway).
pub(super) fn incoming_leaves(changes: &JsValue) -> Vec<(LeafPlace, &JsValue)> {
    fn children(stamp: &JsValue) -> &[(String, JsValue)] {
        match stamp {
            JsValue::Array(parts) => match parts.first() {
                Some(JsValue::Object(members)) => members,
                _ => &[],
            },
            _ => &[],
        }
    }
    fn thing(stamp: &JsValue) -> &JsValue {
        match stamp {
            JsValue::Array(parts) => parts.first().unwrap_or(stamp),
            _ => stamp,
        }
    }
    let JsValue::Array(parts) = changes else { return Vec::new() };
    let mut leaves = Vec::new();
    if let Some(tables) = parts.first() {
        for (table, rows) in children(tables) {
            for (row, cells) in children(rows) {
                for (cell, leaf) in children(cells) {
                    leaves.push((LeafPlace::Cell(table.clone(), row.clone(), cell.clone()), thing(leaf)));
                }
            }
        }
    }
    if let Some(values) = parts.get(1) {
        for (id, leaf) in children(values) {
            leaves.push((LeafPlace::Value(id.clone()), thing(leaf)));
        }
    }
    leaves
}

//! The `tinybase-sync` room's bridge to storage: the merged store's entries in TinyBase's
//! DurableObject layout (spec §6) behind the `m` tag. Loading is one prefix scan in content mode;
//! saving writes every leaf a merge accepted with the new hashes of its row, table and roots.

use std::collections::{HashMap, HashSet};

use super::persisted::room_path;
use super::RoomKey;
use crate::protocol::json::{self, JsValue};
use crate::protocol::mergeable::tree::{Leaf, MergeableStore, Mode, Node, Touched};
use crate::storage::layout::{decode_mergeable_entry_key, mergeable_entry_key, MergeableSection};
use crate::storage::{EntryWrite, Storage, StorageError};

/// Reads a room's merged store (empty if nothing is stored). Entries that do not parse are
/// skipped with a warning and left on disk.
pub fn load_mergeable(
    storage: &dyn Storage,
    key: &RoomKey,
    unique_id: &str,
    now_ms: u64,
) -> Result<MergeableStore, StorageError> {
    let mut store = MergeableStore::new(unique_id);
    let mut tables = Builder::default();
    let mut values = Builder::default();
    storage.visit_room(room_path(key), &mut |entry_key, value| {
        let parsed = decode_mergeable_entry_key(entry_key)
            .zip(std::str::from_utf8(value).ok().and_then(|text| json::parse(text, true).ok()).and_then(stamp_parts));
        let Some(((section, ids), stamp)) = parsed else {
            tracing::warn!(entry_key = ?String::from_utf8_lossy(entry_key), "skipping a stored entry that does not parse");
            return;
        };
        let (builder, leaf_depth) = if section == MergeableSection::Tables { (&mut tables, 3) } else { (&mut values, 1) };
        builder.insert(&ids, stamp, ids.len() == leaf_depth);
    })?;
    if !tables.children.is_empty() || !values.children.is_empty() {
        let content = JsValue::Array(vec![tables.into_stamp(3), values.into_stamp(1)]);
        if let Err(invalid) = store.merge(&content, Mode::Content, now_ms) {
            tracing::error!(%invalid, "stored mergeable content does not load; starting the room empty");
        }
    }
    Ok(store)
}

/// `(value, hlc, hash)` of a stored `[value, hlc, hash]`.
fn stamp_parts(value: JsValue) -> Option<(JsValue, String, f64)> {
    let JsValue::Array(parts) = value else { return None };
    let [thing, JsValue::String(hlc), JsValue::Number(hash)] = <[JsValue; 3]>::try_from(parts).ok()? else {
        return None;
    };
    Some((thing, hlc, hash))
}

/// Rebuilds one tree from its entries, in any order.
#[derive(Default)]
struct Builder {
    own: Option<(String, f64)>,
    leaf: Option<(JsValue, String, f64)>,
    children: Vec<(String, Builder)>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn insert(&mut self, ids: &[String], stamp: (JsValue, String, f64), is_leaf: bool) {
        match ids.split_first() {
            None if is_leaf => self.leaf = Some(stamp),
            None => self.own = Some((stamp.1, stamp.2)),
            Some((id, rest)) => {
                let position = *self.index.entry(id.clone()).or_insert_with(|| {
                    self.children.push((id.clone(), Builder::default()));
                    self.children.len() - 1
                });
                self.children[position].1.insert(rest, stamp, is_leaf);
            }
        }
    }

    /// `[{children}, hlc, hash]` for a container `depth` levels above its leaves.
    fn into_stamp(self, depth: u8) -> JsValue {
        if depth == 0 {
            let (value, hlc, hash) = self.leaf.unwrap_or((JsValue::Undefined, String::new(), 0.0));
            return JsValue::Array(vec![value, JsValue::String(hlc), JsValue::Number(hash)]);
        }
        let (hlc, hash) = self.own.unwrap_or_default();
        let children =
            self.children.into_iter().map(|(id, child)| (id, child.into_stamp(depth - 1))).collect();
        JsValue::Array(vec![JsValue::Object(children), JsValue::String(hlc), JsValue::Number(hash)])
    }
}

fn container_value<T>(node: &Node<T>) -> Vec<u8> {
    let mut out = String::from("[0,");
    json::write_string(&node.hlc, &mut out);
    out.push_str(&format!(",{}]", node.hash));
    out.into_bytes()
}

fn leaf_value(leaf: &Leaf) -> Vec<u8> {
    let mut out = String::from("[");
    json::write_wire(&leaf.value, &mut out);
    out.push(',');
    json::write_string(&leaf.hlc, &mut out);
    out.push_str(&format!(",{}]", leaf.hash));
    out.into_bytes()
}

/// The writes that save the touched leaves, their rows and tables, and both roots.
pub fn touched_writes(store: &MergeableStore, touched: &Touched) -> Vec<EntryWrite> {
    let mut writes = Vec::new();
    let mut put = |section, ids: &[&str], value: Vec<u8>| {
        writes.push(EntryWrite { key: mergeable_entry_key(section, ids), value: Some(value) })
    };
    if touched.cells.is_empty() && touched.values.is_empty() {
        return Vec::new();
    }
    put(MergeableSection::Tables, &[], container_value(&store.tables));
    put(MergeableSection::Values, &[], container_value(&store.values));
    let mut tables_seen = HashSet::new();
    let mut rows_seen = HashSet::new();
    for (table_id, row_id, cell_id) in &touched.cells {
        let Some(table) = store.tables.child_ref(table_id) else { continue };
        let Some(row) = table.child_ref(row_id) else { continue };
        let Some(leaf) = row.child_ref(cell_id) else { continue };
        if tables_seen.insert(table_id) {
            put(MergeableSection::Tables, &[table_id], container_value(table));
        }
        if rows_seen.insert((table_id, row_id)) {
            put(MergeableSection::Tables, &[table_id, row_id], container_value(row));
        }
        put(MergeableSection::Tables, &[table_id, row_id, cell_id], leaf_value(leaf));
    }
    for value_id in &touched.values {
        if let Some(leaf) = store.values.child_ref(value_id) {
            put(MergeableSection::Values, &[value_id], leaf_value(leaf));
        }
    }
    writes
}

/// Every entry of the store as TinyBase's DurableObject persister would hold it: (storage
/// prefix + key, JSON value), in key order, for the admin API's debug dump.
pub fn reference_entries(store: &MergeableStore, storage_prefix: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = all_writes(store)
        .into_iter()
        .map(|write| {
            let key = String::from_utf8_lossy(&write.key[1..]).into_owned();
            (
                format!("{storage_prefix}{key}"),
                String::from_utf8_lossy(&write.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// The writes that save the whole store (an import).
pub fn all_writes(store: &MergeableStore) -> Vec<EntryWrite> {
    let mut entries = Vec::new();
    let mut add = |section, ids: &[&str], value: Vec<u8>| {
        entries.push(EntryWrite { key: mergeable_entry_key(section, ids), value: Some(value) })
    };
    add(MergeableSection::Tables, &[], container_value(&store.tables));
    for (table_id, table) in store.tables.children() {
        add(MergeableSection::Tables, &[table_id], container_value(table));
        for (row_id, row) in table.children() {
            add(MergeableSection::Tables, &[table_id, row_id], container_value(row));
            for (cell_id, leaf) in row.children() {
                add(MergeableSection::Tables, &[table_id, row_id, cell_id], leaf_value(leaf));
            }
        }
    }
    add(MergeableSection::Values, &[], container_value(&store.values));
    for (value_id, leaf) in store.values.children() {
        add(MergeableSection::Values, &[value_id], leaf_value(leaf));
    }
    entries
}

//! The stamp tree of a MergeableStore (spec §2.3–§2.6): leaves with value, HLC and hash under
//! rows, tables and the values root; merging incoming stamps in changes mode (hashes recomputed
//! incrementally, exactly as TinyBase does) or content mode (hashes taken as given).

use std::collections::HashMap;

use super::hash::{hash, hash_bytes};
use super::hlc::{is_valid, Clock, MAX_FUTURE_OFFSET_MS};
use crate::protocol::json::{self, JsValue};

/// A leaf: a cell or a value. `JsValue::Undefined` is a tombstone.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// The value (strings encoding objects/arrays are kept as sent).
    pub value: JsValue,
    /// Its stamp.
    pub hlc: String,
    /// `H(JSON(value ?? null) ":" hlc)`, or as loaded.
    pub hash: u32,
}

impl Default for Leaf {
    fn default() -> Self {
        Self { value: JsValue::Undefined, hlc: String::new(), hash: 0 }
    }
}

/// A container: children in insertion order, its own HLC and hash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node<T> {
    children: Vec<(String, T)>,
    index: HashMap<String, usize>,
    /// The container's own HLC (`""` in practice).
    pub hlc: String,
    /// The container's hash.
    pub hash: u32,
}

impl<T: Default> Node<T> {
    fn child(&mut self, id: &str) -> &mut T {
        let position = match self.index.get(id) {
            Some(&position) => position,
            None => {
                self.index.insert(id.to_owned(), self.children.len());
                self.children.push((id.to_owned(), T::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[position].1
    }
}

impl<T> Node<T> {
    /// The child `id`, if there is one.
    pub fn child_ref(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&position| &self.children[position].1)
    }

    /// The children in insertion order.
    pub fn children(&self) -> impl Iterator<Item = (&str, &T)> {
        self.children.iter().map(|(id, child)| (id.as_str(), child))
    }
}

/// A row of cells, a table of rows, the tables root, the values root.
pub type Row = Node<Leaf>;
/// A table of rows.
pub type Table = Node<Row>;

/// The leaves a merge or a local write accepted, in the order it accepted them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// (table, row, cell) of every accepted cell.
    pub cells: Vec<(String, String, String)>,
    /// Every accepted value.
    pub values: Vec<String>,
}

/// Whether incoming hashes are recomputed (changes) or taken as given (content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `applyMergeableChanges`: every sync message.
    Changes,
    /// `setMergeableContent`: loading from storage.
    Content,
}

/// Why incoming stamps were ignored as a whole.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid mergeable changes: {0}")]
pub struct InvalidStamps(pub &'static str);

/// One parsed incoming stamp: its thing, HLC (`""` when absent) and hash (0 when absent).
struct Stamp<'a> {
    thing: &'a JsValue,
    hlc: &'a str,
    hash: u32,
}

fn stamp<'a>(value: &'a JsValue, mode: Mode, max_time: u64) -> Result<Stamp<'a>, InvalidStamps> {
    let JsValue::Array(parts) = value else { return Err(InvalidStamps("a stamp is not an array")) };
    let allowed = if mode == Mode::Content { 3..=3 } else { 1..=3 };
    if !allowed.contains(&parts.len()) {
        return Err(InvalidStamps("a stamp has the wrong length"));
    }
    let hlc = match parts.get(1) {
        None => "",
        Some(JsValue::String(hlc)) if is_valid(hlc, Some(max_time)) => hlc,
        Some(_) => return Err(InvalidStamps("an HLC is invalid or too far ahead")),
    };
    let hash = match parts.get(2) {
        None => 0,
        Some(JsValue::Number(n)) if n.is_finite() => *n as i64 as u32,
        Some(_) => return Err(InvalidStamps("a hash is not a finite number")),
    };
    Ok(Stamp { thing: &parts[0], hlc, hash })
}

fn members<'a>(stamp: &Stamp<'a>) -> Result<&'a [(String, JsValue)], InvalidStamps> {
    match stamp.thing {
        JsValue::Object(members) => Ok(members),
        _ => Err(InvalidStamps("a container is not an object")),
    }
}

fn valid_leaf(value: &JsValue) -> bool {
    match value {
        JsValue::Number(n) => n.is_finite(),
        JsValue::String(s) => s != json::MARKER,
        _ => true,
    }
}

/// Checks a whole message before anything is applied (spec §2.6).
fn validate(tables: &Stamp<'_>, values: &Stamp<'_>, mode: Mode, max_time: u64) -> Result<(), InvalidStamps> {
    let leaves = |container: &Stamp<'_>| -> Result<(), InvalidStamps> {
        for (_, leaf) in members(container)? {
            if !valid_leaf(stamp(leaf, mode, max_time)?.thing) {
                return Err(InvalidStamps("a leaf value is invalid"));
            }
        }
        Ok(())
    };
    for (_, table) in members(tables)? {
        for (_, row) in members(&stamp(table, mode, max_time)?)? {
            leaves(&stamp(row, mode, max_time)?)?;
        }
    }
    leaves(values)
}

/// `H(id ":" decimal(hash))`, a child's term in its parent's hash.
fn term(id: &str, child_hash: u32) -> u32 {
    hash(&format!("{id}:{child_hash}"))
}

/// The hash of a leaf value at an HLC: `H(JSON(value ?? null) ":" hlc)`. The JSON is text, not a
/// held string (its lone surrogates are `\udxxx` escapes), so its bytes are hashed as they are.
pub fn leaf_hash(value: &JsValue, hlc: &str) -> u32 {
    let mut text = String::new();
    json::write_stored(value, &mut text);
    text.push(':');
    text.push_str(hlc);
    hash_bytes(text.as_bytes())
}

/// Applies a container's incoming HLC (spec §2.5 step 1.2) and returns the folded hash.
fn own_hlc<T>(node: &mut Node<T>, incoming: &str, mut acc: u32, mode: Mode) -> u32 {
    if incoming > node.hlc.as_str() {
        if mode == Mode::Changes {
            acc ^= if node.hlc.is_empty() { 0 } else { hash(&node.hlc) } ^ hash(incoming);
        }
        node.hlc = incoming.to_owned();
    }
    acc
}

/// Merges incoming leaves into a row or the values root; returns the newest accepted HLC.
fn merge_leaves(
    node: &mut Node<Leaf>,
    incoming: &Stamp<'_>,
    mode: Mode,
    max_time: u64,
    accepted: &mut Vec<String>,
) -> Result<String, InvalidStamps> {
    let mut acc = if mode == Mode::Changes { node.hash } else { incoming.hash };
    let mut newest = incoming.hlc.to_owned();
    for (id, leaf_stamp) in members(incoming)? {
        let leaf_stamp = stamp(leaf_stamp, mode, max_time)?;
        let leaf = node.child(id);
        if !leaf.hlc.is_empty() && leaf_stamp.hlc <= leaf.hlc.as_str() {
            continue;
        }
        let old_hash = leaf.hash;
        if leaf_stamp.hlc > leaf.hlc.as_str() {
            leaf.hlc = leaf_stamp.hlc.to_owned();
        }
        leaf.value = leaf_stamp.thing.clone();
        leaf.hash =
            if mode == Mode::Changes { leaf_hash(&leaf.value, leaf_stamp.hlc) } else { leaf_stamp.hash };
        if mode == Mode::Changes {
            acc ^= term(id, old_hash) ^ term(id, leaf.hash);
        }
        accepted.push(id.clone());
        if leaf_stamp.hlc > newest.as_str() {
            newest = leaf_stamp.hlc.to_owned();
        }
    }
    node.hash = own_hlc(node, incoming.hlc, acc, mode);
    Ok(newest)
}

/// A MergeableStore's content and clock.
#[derive(Clone, Debug)]
pub struct MergeableStore {
    /// The tables root.
    pub tables: Node<Table>,
    /// The values root.
    pub values: Node<Leaf>,
    /// The store's clock.
    pub clock: Clock,
}

impl MergeableStore {
    /// An empty store for `unique_id`.
    pub fn new(unique_id: &str) -> Self {
        Self { tables: Node::default(), values: Node::default(), clock: Clock::new(unique_id) }
    }

    /// `[tablesHash, valuesHash]`.
    pub fn content_hashes(&self) -> [u32; 2] {
        [self.tables.hash, self.values.hash]
    }

    /// Merges `[[tables, hlc?, hash?], [values, hlc?, hash?], 1?]` (deletions already decoded to
    /// `Undefined`) at local time `now`. Nothing is applied if any part is invalid. Content mode
    /// empties the store first and keeps the incoming hashes.
    pub fn merge(&mut self, message: &JsValue, mode: Mode, now: u64) -> Result<Touched, InvalidStamps> {
        let max_time = now + MAX_FUTURE_OFFSET_MS;
        let JsValue::Array(parts) = message else { return Err(InvalidStamps("not an array")) };
        match (mode, parts.len(), parts.get(2)) {
            (Mode::Content, 2, _) | (Mode::Changes, 2, _) => {}
            (Mode::Changes, 3, Some(JsValue::Number(flag))) if *flag == 1.0 => {}
            _ => return Err(InvalidStamps("not [tables, values] or [tables, values, 1]")),
        }
        let tables = stamp(&parts[0], mode, max_time)?;
        let values = stamp(&parts[1], mode, max_time)?;
        validate(&tables, &values, mode, max_time)?;
        if mode == Mode::Content {
            self.tables = Node::default();
            self.values = Node::default();
        }
        let mut touched = Touched::default();
        let newest_table = self.merge_tables(&tables, mode, max_time, &mut touched)?;
        let newest_value = merge_leaves(&mut self.values, &values, mode, max_time, &mut touched.values)?;
        let newest = newest_table.max(newest_value);
        self.clock.seen(Some(&newest), now);
        Ok(touched)
    }

    fn merge_tables(
        &mut self,
        incoming: &Stamp<'_>,
        mode: Mode,
        max_time: u64,
        touched: &mut Touched,
    ) -> Result<String, InvalidStamps> {
        let mut acc = if mode == Mode::Changes { self.tables.hash } else { incoming.hash };
        let mut newest = incoming.hlc.to_owned();
        for (table_id, table_stamp) in members(incoming)? {
            let table_stamp = stamp(table_stamp, mode, max_time)?;
            let table = self.tables.child(table_id);
            let old_table_hash = table.hash;
            let mut table_acc = if mode == Mode::Changes { table.hash } else { table_stamp.hash };
            let mut table_newest = table_stamp.hlc.to_owned();
            for (row_id, row_stamp) in members(&table_stamp)? {
                let row_stamp = stamp(row_stamp, mode, max_time)?;
                let row = table.child(row_id);
                let old_row_hash = row.hash;
                let mut cells = Vec::new();
                let row_newest = merge_leaves(row, &row_stamp, mode, max_time, &mut cells)?;
                touched.cells.extend(cells.into_iter().map(|cell| (table_id.clone(), row_id.clone(), cell)));
                if mode == Mode::Changes {
                    table_acc ^= if old_row_hash == 0 { 0 } else { term(row_id, old_row_hash) }
                        ^ term(row_id, row.hash);
                }
                table_newest = table_newest.max(row_newest);
            }
            table.hash = own_hlc(table, table_stamp.hlc, table_acc, mode);
            if mode == Mode::Changes {
                acc ^= if old_table_hash == 0 { 0 } else { term(table_id, old_table_hash) }
                    ^ term(table_id, table.hash);
            }
            newest = newest.max(table_newest);
        }
        self.tables.hash = own_hlc(&mut self.tables, incoming.hlc, acc, mode);
        Ok(newest)
    }

    /// The whole tree with 3-element stamps, tombstones as the U+FFFC marker, keys in
    /// JavaScript order: the encoded form a persister saves.
    pub fn encoded_content(&self) -> String {
        let mut out = String::from("[");
        write_node(&mut out, &self.tables, |out, table| {
            write_node(out, table, |out, row| write_node(out, row, write_leaf));
        });
        out.push(',');
        write_node(&mut out, &self.values, write_leaf);
        out.push(']');
        out
    }
}

fn write_leaf(out: &mut String, leaf: &Leaf) {
    out.push('[');
    json::write_wire(&leaf.value, out);
    out.push(',');
    json::write_string(&leaf.hlc, out);
    out.push_str(&format!(",{}]", leaf.hash));
}

/// Writes `[{id: child…}, hlc, hash]` with the children in JavaScript key order.
fn write_node<T>(out: &mut String, node: &Node<T>, write_child: impl Fn(&mut String, &T)) {
    let mut children: Vec<(&str, &T)> =
        node.children.iter().map(|(id, child)| (id.as_str(), child)).collect();
    json::sort_js_keys(&mut children);
    out.push_str("[{");
    for (i, (id, child)) in children.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_string(id, out);
        out.push(':');
        write_child(out, child);
    }
    out.push_str("},");
    json::write_string(&node.hlc, out);
    out.push_str(&format!(",{}]", node.hash));
}

//! Local writes into a MergeableStore (spec §2.7) and the changes of a transaction (§2.8
//! `getTransactionMergeableChanges`): what a synchronizer broadcasts (short stamps) and what a
//! persister saves (3-element stamps with the containers' current hashes).

use super::tree::{Leaf, MergeableStore, Mode, Node, Touched};
use crate::protocol::json::{js_object as object, JsValue};

fn text(value: &str) -> JsValue {
    JsValue::String(value.to_owned())
}

/// A stamp: `[thing, hlc, hash]` with hashes, else the short `[thing]` / `[thing, hlc]`.
fn stamp(thing: JsValue, hlc: &str, hash: u32, with_hashes: bool) -> JsValue {
    match (with_hashes, hlc.is_empty()) {
        (true, _) => JsValue::Array(vec![thing, text(hlc), JsValue::Number(f64::from(hash))]),
        (false, true) => JsValue::Array(vec![thing]),
        (false, false) => JsValue::Array(vec![thing, text(hlc)]),
    }
}

fn leaf_stamp(leaf: &Leaf, with_hashes: bool) -> JsValue {
    stamp(leaf.value.clone(), &leaf.hlc, leaf.hash, with_hashes)
}

/// Appends `id` to an insertion-ordered list of groups unless present; returns its group.
fn group<'a, T: Default>(groups: &'a mut Vec<(String, T)>, id: &str) -> &'a mut T {
    let position = groups.iter().position(|(key, _)| key == id).unwrap_or_else(|| {
        groups.push((id.to_owned(), T::default()));
        groups.len() - 1
    });
    &mut groups[position].1
}

fn one_leaf(value: JsValue, hlc: String) -> JsValue {
    JsValue::Array(vec![value, JsValue::String(hlc)])
}

fn empty_stamp() -> JsValue {
    JsValue::Array(vec![JsValue::Object(Vec::new())])
}

/// The touched rows of one table, in first-touch order: row id → cell ids.
type TouchedRows = Vec<(String, Vec<String>)>;

impl MergeableStore {
    /// Writes one cell locally at time `now` (`Undefined` deletes it). Writing the value the cell
    /// already has does nothing. Returns what was touched.
    pub fn set_cell(&mut self, table: &str, row: &str, cell: &str, value: JsValue, now: u64) -> Touched {
        let current =
            self.tables.child_ref(table).and_then(|t| t.child_ref(row)).and_then(|r| r.child_ref(cell));
        if current.map_or(JsValue::Undefined, |leaf| leaf.value.clone()) == value {
            return Touched::default();
        }
        let hlc = self.clock.next(now);
        let row_stamp = JsValue::Array(vec![JsValue::Object(vec![(cell.to_owned(), one_leaf(value, hlc))])]);
        let table_stamp = JsValue::Array(vec![JsValue::Object(vec![(row.to_owned(), row_stamp)])]);
        let tables = JsValue::Array(vec![JsValue::Object(vec![(table.to_owned(), table_stamp)])]);
        self.merge(&JsValue::Array(vec![tables, empty_stamp()]), Mode::Changes, now).unwrap_or_default()
    }

    /// Writes one value locally at time `now` (`Undefined` deletes it); same rules as cells.
    pub fn set_value(&mut self, id: &str, value: JsValue, now: u64) -> Touched {
        if self.values.child_ref(id).map_or(JsValue::Undefined, |leaf| leaf.value.clone()) == value {
            return Touched::default();
        }
        let hlc = self.clock.next(now);
        let values = JsValue::Array(vec![JsValue::Object(vec![(id.to_owned(), one_leaf(value, hlc))])]);
        self.merge(&JsValue::Array(vec![empty_stamp(), values]), Mode::Changes, now).unwrap_or_default()
    }

    /// `[tablesStamp, valuesStamp, 1]` holding the touched leaves and their ancestors.
    pub fn transaction_changes(&self, touched: &Touched, with_hashes: bool) -> JsValue {
        let mut tables: Vec<(String, TouchedRows)> = Vec::new();
        for (table, row, cell) in &touched.cells {
            let cells = group(group(&mut tables, table), row);
            if !cells.contains(cell) {
                cells.push(cell.clone());
            }
        }
        let tables_json = tables
            .into_iter()
            .filter_map(|(table_id, rows)| {
                let table = self.tables.child_ref(&table_id)?;
                let rows = rows
                    .into_iter()
                    .filter_map(|(row_id, cells)| {
                        let row = table.child_ref(&row_id)?;
                        let cells = cells.into_iter().filter_map(|cell| {
                            Some((cell.clone(), leaf_stamp(row.child_ref(&cell)?, with_hashes)))
                        });
                        Some((row_id, container(row, object(cells.collect()), with_hashes)))
                    })
                    .collect();
                Some((table_id, container(table, object(rows), with_hashes)))
            })
            .collect();
        let mut values: Vec<String> = Vec::new();
        for value in &touched.values {
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        let values_json = values
            .into_iter()
            .filter_map(|id| Some((id.clone(), leaf_stamp(self.values.child_ref(&id)?, with_hashes))));
        JsValue::Array(vec![
            container(&self.tables, object(tables_json), with_hashes),
            container(&self.values, object(values_json.collect()), with_hashes),
            JsValue::Number(1.0),
        ])
    }
}

fn container<T>(node: &Node<T>, thing: JsValue, with_hashes: bool) -> JsValue {
    stamp(thing, &node.hlc, node.hash, with_hashes)
}

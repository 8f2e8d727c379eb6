//! The reads the synchronizer protocol uses (spec §2.8): hashes and diffs against a peer's
//! hashes, as JSON values in JavaScript key order, with short stamps (`[thing, hlc]`, or
//! `[thing]` when the HLC is empty).

use super::tree::{Leaf, MergeableStore, Node, Row, Table};
use crate::protocol::json::{js_object as object, JsValue};

fn short_stamp(thing: JsValue, hlc: &str) -> JsValue {
    if hlc.is_empty() {
        JsValue::Array(vec![thing])
    } else {
        JsValue::Array(vec![thing, JsValue::String(hlc.to_owned())])
    }
}

fn number(hash: u32) -> JsValue {
    JsValue::Number(f64::from(hash))
}

fn hashes<T>(node: &Node<T>, hash_of: impl Fn(&T) -> u32) -> JsValue {
    object(node.children().map(|(id, child)| (id.to_owned(), number(hash_of(child)))).collect())
}

fn leaf_stamp(leaf: &Leaf) -> JsValue {
    short_stamp(leaf.value.clone(), &leaf.hlc)
}

fn row_stamp(row: &Row) -> JsValue {
    short_stamp(
        object(row.children().map(|(id, leaf)| (id.to_owned(), leaf_stamp(leaf))).collect()),
        &row.hlc,
    )
}

fn table_stamp(table: &Table) -> JsValue {
    short_stamp(
        object(table.children().map(|(id, row)| (id.to_owned(), row_stamp(row))).collect()),
        &table.hlc,
    )
}

/// The members of an argument object (anything else reads as empty).
fn members(value: &JsValue) -> &[(String, JsValue)] {
    match value {
        JsValue::Object(members) => members,
        _ => &[],
    }
}

/// Whether `hash` differs from the argument's entry for `id` (a missing id differs).
fn differs(other: &JsValue, id: &str, hash: u32) -> bool {
    !members(other).iter().any(|(key, value)| key == id && *value == number(hash))
}

fn has(other: &JsValue, id: &str) -> bool {
    members(other).iter().any(|(key, _)| key == id)
}

fn get<'a>(other: &'a JsValue, id: &str) -> Option<&'a JsValue> {
    members(other).iter().rev().find(|(key, _)| key == id).map(|(_, value)| value)
}

/// The rows of one table in a cell diff being built: row id → cell id → `[cell, hlc]`.
type CellDiffRows = Vec<(String, Vec<(String, JsValue)>)>;

impl MergeableStore {
    /// `getMergeableTableHashes()`: `{tableId: hash}`.
    pub fn table_hashes(&self) -> JsValue {
        hashes(&self.tables, |table| table.hash)
    }

    /// `getMergeableValueHashes()`: `{valueId: hash}`.
    pub fn value_hashes(&self) -> JsValue {
        hashes(&self.values, |leaf| leaf.hash)
    }

    /// `getMergeableTableDiff(other)`: `[newTables, differingTableHashes]`.
    pub fn table_diff(&self, other: &JsValue) -> JsValue {
        let (mut new_tables, mut different) = (Vec::new(), Vec::new());
        for (id, table) in self.tables.children() {
            if has(other, id) {
                if differs(other, id, table.hash) {
                    different.push((id.to_owned(), number(table.hash)));
                }
            } else {
                new_tables.push((id.to_owned(), table_stamp(table)));
            }
        }
        JsValue::Array(vec![short_stamp(object(new_tables), &self.tables.hlc), object(different)])
    }

    /// `getMergeableRowHashes(otherTableHashes)`: all my rows of each differing table.
    pub fn row_hashes(&self, other: &JsValue) -> JsValue {
        let tables = members(other).iter().filter_map(|(id, _)| {
            let table = self.tables.child_ref(id)?;
            differs(other, id, table.hash).then(|| (id.clone(), hashes(table, |row| row.hash)))
        });
        object(tables.collect())
    }

    /// `getMergeableRowDiff(otherTableRowHashes)`: `[newRows, differingRowHashes]`.
    pub fn row_diff(&self, other: &JsValue) -> JsValue {
        let (mut new_rows, mut different) = (Vec::new(), Vec::new());
        for (table_id, other_rows) in members(other) {
            let Some(table) = self.tables.child_ref(table_id) else { continue };
            let (mut table_new, mut table_different) = (Vec::new(), Vec::new());
            for (row_id, row) in table.children() {
                if has(other_rows, row_id) {
                    if differs(other_rows, row_id, row.hash) {
                        table_different.push((row_id.to_owned(), number(row.hash)));
                    }
                } else {
                    table_new.push((row_id.to_owned(), row_stamp(row)));
                }
            }
            if !table_new.is_empty() {
                new_rows.push((table_id.clone(), JsValue::Array(vec![object(table_new)])));
            }
            if !table_different.is_empty() {
                different.push((table_id.clone(), object(table_different)));
            }
        }
        JsValue::Array(vec![short_stamp(object(new_rows), &self.tables.hlc), object(different)])
    }

    /// `getMergeableCellHashes(otherTableRowHashes)`: all my cells of each differing row.
    pub fn cell_hashes(&self, other: &JsValue) -> JsValue {
        let mut out = Vec::new();
        for (table_id, other_rows) in members(other) {
            let Some(table) = self.tables.child_ref(table_id) else { continue };
            let rows: Vec<_> = members(other_rows)
                .iter()
                .filter_map(|(row_id, _)| {
                    let row = table.child_ref(row_id)?;
                    differs(other_rows, row_id, row.hash)
                        .then(|| (row_id.clone(), hashes(row, |leaf| leaf.hash)))
                })
                .collect();
            if !rows.is_empty() {
                out.push((table_id.clone(), object(rows)));
            }
        }
        object(out)
    }

    /// `getMergeableCellDiff(otherTableRowCellHashes)`: my cells that differ, as 2-element stamps.
    pub fn cell_diff(&self, other: &JsValue) -> JsValue {
        let mut tables: Vec<(String, CellDiffRows)> = Vec::new();
        for (table_id, other_rows) in members(other) {
            for (row_id, other_cells) in members(other_rows) {
                let Some(table) = self.tables.child_ref(table_id) else { continue };
                let Some(row) = table.child_ref(row_id) else { continue };
                for (cell_id, leaf) in row.children() {
                    if get(other_cells, cell_id) == Some(&number(leaf.hash)) {
                        continue;
                    }
                    let position = tables.iter().position(|(id, _)| id == table_id).unwrap_or_else(|| {
                        tables.push((table_id.clone(), Vec::new()));
                        tables.len() - 1
                    });
                    let rows = &mut tables[position].1;
                    let row_position = rows.iter().position(|(id, _)| id == row_id).unwrap_or_else(|| {
                        rows.push((row_id.clone(), Vec::new()));
                        rows.len() - 1
                    });
                    let pair = JsValue::Array(vec![leaf.value.clone(), JsValue::String(leaf.hlc.clone())]);
                    rows[row_position].1.push((cell_id.to_owned(), pair));
                }
            }
        }
        let tables = tables
            .into_iter()
            .map(|(table_id, rows)| {
                let table = self.tables.child_ref(&table_id);
                let rows = rows
                    .into_iter()
                    .map(|(row_id, cells)| {
                        let row_hlc = table
                            .and_then(|table| table.child_ref(&row_id))
                            .map_or("", |row| row.hlc.as_str());
                        (row_id, short_stamp(object(cells), row_hlc))
                    })
                    .collect();
                (table_id, short_stamp(object(rows), table.map_or("", |table| table.hlc.as_str())))
            })
            .collect();
        short_stamp(object(tables), &self.tables.hlc)
    }

    /// `getMergeableValueDiff(otherValueHashes)`: my values that differ, as short stamps.
    pub fn value_diff(&self, other: &JsValue) -> JsValue {
        let values = self.values.children().filter(|(id, leaf)| get(other, id) != Some(&number(leaf.hash)));
        short_stamp(
            object(values.map(|(id, leaf)| (id.to_owned(), leaf_stamp(leaf))).collect()),
            &self.values.hlc,
        )
    }
}

impl MergeableStore {
    /// The store as plain `[tables, values]` JSON, as `getContent()` would print it: deleted
    /// cells and values left out, and rows and tables left with nothing left out too.
    pub fn plain_content(&self) -> String {
        let live = |node: &Node<Leaf>| -> Vec<(String, JsValue)> {
            node.children()
                .filter(|(_, leaf)| leaf.value != JsValue::Undefined)
                .map(|(id, leaf)| (id.to_owned(), leaf.value.clone()))
                .collect()
        };
        let tables = self.tables.children().filter_map(|(table_id, table)| {
            let rows: Vec<(String, JsValue)> = table
                .children()
                .filter_map(|(row_id, row)| {
                    let cells = live(row);
                    (!cells.is_empty()).then(|| (row_id.to_owned(), object(cells)))
                })
                .collect();
            (!rows.is_empty()).then(|| (table_id.to_owned(), object(rows)))
        });
        let content = JsValue::Array(vec![object(tables.collect()), object(live(&self.values))]);
        let mut out = String::new();
        crate::protocol::json::write_stored(&content, &mut out);
        out
    }
}

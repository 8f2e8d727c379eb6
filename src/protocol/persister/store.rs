//! One room's store in memory: applying a PUT (the initial store) and `s` changes, producing
//! the storage writes and the broadcast payload, and rendering the GET body in TinyBase order.

use std::collections::BTreeMap;

use super::{CellText, Changes, Content, RowChange, TableChange};
use crate::protocol::ids::{TabularId, ValueId};
use crate::protocol::json::{self, MARKER};

mod peek;

type Row = BTreeMap<TabularId, CellText>;
type Table = BTreeMap<TabularId, Row>;

/// One logical storage write (the room layer maps these to keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// The room now has a store.
    SetStoreFlag,
    /// Set one cell.
    SetCell { table: String, row: String, cell: String, text: CellText },
    /// Delete one cell.
    DelCell { table: String, row: String, cell: String },
    /// Set one value.
    SetValue { id: String, text: CellText },
    /// Delete one value.
    DelValue { id: String },
}

/// What is on disk for a room, to rebuild it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredEntry {
    /// The room has a store.
    StoreFlag,
    /// One cell.
    Cell { table: String, row: String, cell: String, text: CellText },
    /// One value.
    Value { id: String, text: CellText },
}

/// How a PUT ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The room already had a store: nothing changes (205).
    AlreadyHasStore,
    /// Saved (201); `created_store` tells whether the room now has a store.
    Saved { ops: Vec<StoreOp>, created_store: bool },
}

/// Changes that were accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    /// The storage writes, to be made durable before anything is broadcast.
    pub ops: Vec<StoreOp>,
    /// `[acceptedTables,acceptedValues,1]` in broadcast form (no prefix, no `s`).
    pub payload: String,
}

/// One room's store.
#[derive(Debug, Default)]
pub struct PersisterStore {
    has_store: bool,
    tables: BTreeMap<TabularId, Table>,
    values: BTreeMap<ValueId, CellText>,
    bytes: usize,
}

fn cell_bytes(ids: &[&str], text: &CellText) -> usize {
    ids.iter().map(|id| id.len()).sum::<usize>() + text.as_str().len()
}

impl PersisterStore {
    /// A room without a store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a room from its stored entries (in any order).
    pub fn from_entries(entries: impl IntoIterator<Item = StoredEntry>) -> Self {
        let mut builder = StoreBuilder::default();
        for entry in entries {
            match entry {
                StoredEntry::StoreFlag => builder.store_flag(),
                StoredEntry::Cell { table, row, cell, text } => builder.cell(&table, &row, &cell, text),
                StoredEntry::Value { id, text } => builder.value(&id, text),
            }
        }
        builder.finish()
    }

    /// Whether the room has a store (an empty store differs from none).
    pub fn has_store(&self) -> bool {
        self.has_store
    }

    /// Approximate bytes held: ids and cell texts.
    pub fn stored_bytes(&self) -> usize {
        self.bytes
    }

    fn set_cell(&mut self, table: &str, row: &str, cell: &str, text: CellText) {
        self.bytes += cell_bytes(&[table, row, cell], &text);
        let cells = self.tables.entry(table.into()).or_default().entry(row.into()).or_default();
        if let Some(old) = cells.insert(cell.into(), text) {
            self.bytes -= cell_bytes(&[table, row, cell], &old);
        }
    }

    fn set_value(&mut self, id: &str, text: CellText) {
        self.bytes += cell_bytes(&[id], &text);
        if let Some(old) = self.values.insert(id.into(), text) {
            self.bytes -= cell_bytes(&[id], &old);
        }
    }

    /// Saves a PUT's content as the initial store (no effect if the room has one).
    pub fn put(&mut self, content: Content) -> PutOutcome {
        if self.has_store {
            return PutOutcome::AlreadyHasStore;
        }
        let mut ops = Vec::new();
        for (table, rows) in content.tables {
            for (row, cells) in rows {
                for (cell, text) in cells {
                    self.set_cell(&table, &row, &cell, text.clone());
                    ops.push(StoreOp::SetCell { table: table.clone(), row: row.clone(), cell, text });
                }
            }
        }
        for (id, text) in content.values {
            self.set_value(&id, text.clone());
            ops.push(StoreOp::SetValue { id, text });
        }
        // TinyBase sets the flag when the content was empty or any cell or value was saved.
        let created_store = content.empty || !ops.is_empty();
        if created_store {
            self.has_store = true;
            ops.push(StoreOp::SetStoreFlag);
        }
        PutOutcome::Saved { ops, created_store }
    }

    /// Applies changes; `None` when the room has no store or nothing was accepted.
    pub fn apply_changes(&mut self, changes: Changes) -> Option<Applied> {
        if !self.has_store {
            return None;
        }
        let mut ops = Vec::new();
        let mut tables_json = String::new();
        for (table_id, change) in changes.tables {
            let table_json = match change {
                TableChange::Delete => {
                    self.delete_table(&table_id, &mut ops);
                    Some(marker())
                }
                TableChange::Rows(rows) => self.apply_rows(&table_id, rows, &mut ops),
            };
            if let Some(table_json) = table_json {
                push_member(&mut tables_json, &table_id, &table_json);
            }
        }
        let mut values_json = String::new();
        for (value_id, change) in changes.values {
            let value_json = match change {
                None => {
                    if let Some(old) = self.values.remove(&ValueId::from(value_id.as_str())) {
                        self.bytes -= cell_bytes(&[&value_id], &old);
                        ops.push(StoreOp::DelValue { id: value_id.clone() });
                    }
                    marker()
                }
                Some(cell) => {
                    let json = cell.wire().to_owned();
                    self.set_value(&value_id, cell.stored.clone());
                    ops.push(StoreOp::SetValue { id: value_id.clone(), text: cell.stored });
                    json
                }
            };
            push_member(&mut values_json, &value_id, &value_json);
        }
        if tables_json.is_empty() && values_json.is_empty() {
            return None;
        }
        Some(Applied { ops, payload: format!("[{{{tables_json}}},{{{values_json}}},1]") })
    }

    /// Applies the row changes of one table; the table's broadcast JSON, or `None` if nothing in it was accepted.
    fn apply_rows(
        &mut self,
        table_id: &str,
        rows: Vec<(String, RowChange)>,
        ops: &mut Vec<StoreOp>,
    ) -> Option<String> {
        let mut rows_json = String::new();
        for (row_id, change) in rows {
            let row_json = match change {
                RowChange::Delete => {
                    self.delete_row(table_id, &row_id, ops);
                    marker()
                }
                RowChange::Cells(cells) if cells.is_empty() => continue,
                RowChange::Cells(cells) => {
                    let mut cells_json = String::new();
                    for (cell_id, change) in cells {
                        let cell_json = match change {
                            None => {
                                self.delete_cell(table_id, &row_id, &cell_id, ops);
                                marker()
                            }
                            Some(cell) => {
                                let json = cell.wire().to_owned();
                                self.set_cell(table_id, &row_id, &cell_id, cell.stored.clone());
                                ops.push(StoreOp::SetCell {
                                    table: table_id.into(),
                                    row: row_id.clone(),
                                    cell: cell_id.clone(),
                                    text: cell.stored,
                                });
                                json
                            }
                        };
                        push_member(&mut cells_json, &cell_id, &cell_json);
                    }
                    format!("{{{cells_json}}}")
                }
            };
            push_member(&mut rows_json, &row_id, &row_json);
        }
        (!rows_json.is_empty()).then(|| format!("{{{rows_json}}}"))
    }

    fn delete_table(&mut self, table_id: &str, ops: &mut Vec<StoreOp>) {
        if let Some(table) = self.tables.remove(&TabularId::from(table_id)) {
            for (row_id, cells) in table {
                self.forget_row(table_id, row_id.as_str(), cells, ops);
            }
        }
    }

    fn delete_row(&mut self, table_id: &str, row_id: &str, ops: &mut Vec<StoreOp>) {
        let table_key = TabularId::from(table_id);
        let Some(table) = self.tables.get_mut(&table_key) else { return };
        let Some(cells) = table.remove(&TabularId::from(row_id)) else { return };
        if table.is_empty() {
            self.tables.remove(&table_key);
        }
        self.forget_row(table_id, row_id, cells, ops);
    }

    /// Accounts for, and writes the deletion of, every cell of a row already taken out of memory.
    fn forget_row(&mut self, table_id: &str, row_id: &str, cells: Row, ops: &mut Vec<StoreOp>) {
        for (cell_id, text) in cells {
            self.bytes -= cell_bytes(&[table_id, row_id, cell_id.as_str()], &text);
            ops.push(StoreOp::DelCell {
                table: table_id.into(),
                row: row_id.into(),
                cell: cell_id.as_str().into(),
            });
        }
    }

    fn delete_cell(&mut self, table_id: &str, row_id: &str, cell_id: &str, ops: &mut Vec<StoreOp>) {
        let (table_key, row_key) = (TabularId::from(table_id), TabularId::from(row_id));
        let Some(table) = self.tables.get_mut(&table_key) else { return };
        let Some(row) = table.get_mut(&row_key) else { return };
        let Some(old) = row.remove(&TabularId::from(cell_id)) else { return };
        self.bytes -= cell_bytes(&[table_id, row_id, cell_id], &old);
        ops.push(StoreOp::DelCell { table: table_id.into(), row: row_id.into(), cell: cell_id.into() });
        if row.is_empty() {
            table.remove(&row_key);
            if table.is_empty() {
                self.tables.remove(&table_key);
            }
        }
    }

    /// The GET body: `[tables,values]` in TinyBase's order; `None` without a store.
    pub fn render(&self) -> Option<String> {
        if !self.has_store {
            return None;
        }
        let mut out = String::with_capacity(self.bytes * 2 + 16);
        out.push_str("[{");
        for (i, (table_id, rows)) in self.tables.iter().enumerate() {
            open_member(&mut out, i, table_id.as_str());
            out.push('{');
            for (j, (row_id, cells)) in rows.iter().enumerate() {
                open_member(&mut out, j, row_id.as_str());
                out.push('{');
                for (k, (cell_id, text)) in cells.iter().enumerate() {
                    open_member(&mut out, k, cell_id.as_str());
                    out.push_str(text.as_str());
                }
                out.push('}');
            }
            out.push('}');
        }
        out.push_str("},{");
        for (i, (value_id, text)) in self.values.iter().enumerate() {
            open_member(&mut out, i, value_id.as_str());
            out.push_str(text.as_str());
        }
        out.push_str("}]");
        Some(out)
    }
}

fn marker() -> String {
    let mut out = String::new();
    json::write_string(MARKER, &mut out);
    out
}

/// Appends `,"id":` (without the comma for the first member).
fn open_member(out: &mut String, index: usize, id: &str) {
    if index > 0 {
        out.push(',');
    }
    json::write_string(id, out);
    out.push(':');
}

/// Appends `"id":json` to an object body being built.
fn push_member(out: &mut String, id: &str, json_text: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    json::write_string(id, out);
    out.push(':');
    out.push_str(json_text);
}

/// A row being gathered while loading: table id, row id and its cells so far.
type GatheredRow = (TabularId, TabularId, Vec<(TabularId, CellText)>);

/// Rebuilds a store from stored entries one at a time. Storage lists a row's cells together, so
/// the builder gathers them and looks the row up (and allocates its ids) once per row.
#[derive(Default)]
pub struct StoreBuilder {
    store: PersisterStore,
    row: Option<GatheredRow>,
}

impl StoreBuilder {
    /// The room has a store.
    pub fn store_flag(&mut self) {
        self.store.has_store = true;
    }

    /// One stored cell.
    pub fn cell(&mut self, table: &str, row: &str, cell: &str, text: CellText) {
        match &mut self.row {
            Some((t, r, cells)) if t.as_str() == table && r.as_str() == row => {
                cells.push((TabularId::from(cell), text))
            }
            _ => {
                self.flush_row();
                self.row =
                    Some((TabularId::from(table), TabularId::from(row), vec![(TabularId::from(cell), text)]));
            }
        }
    }

    /// One stored value.
    pub fn value(&mut self, id: &str, text: CellText) {
        self.store.set_value(id, text);
    }

    /// The store.
    pub fn finish(mut self) -> PersisterStore {
        self.flush_row();
        self.store
    }

    fn flush_row(&mut self) {
        let Some((table, row, cells)) = self.row.take() else { return };
        let (mut added, mut removed) = (0, 0);
        let ids = [table.as_str().len(), row.as_str().len()].iter().sum::<usize>();
        let target = self.store.tables.entry(table).or_default().entry(row).or_default();
        for (cell, text) in cells {
            added += ids + cell.as_str().len() + text.as_str().len();
            let cell_len = cell.as_str().len();
            if let Some(old) = target.insert(cell, text) {
                removed += ids + cell_len + old.as_str().len();
            }
        }
        self.store.bytes = self.store.bytes + added - removed;
    }
}

//! Reading a store without changing it, for what sits around the protocol: the reference's
//! storage entries (admin dump), the size a change would leave (room limits), and the payload
//! that restores a sender whose change was refused (permissions).

use super::{cell_bytes, marker, push_member, PersisterStore, Row};
use crate::protocol::ids::{TabularId, ValueId};
use crate::protocol::json;
use crate::protocol::persister::{CellText, Changes, RowChange, TableChange};

impl PersisterStore {
    /// The entries TinyBase's server would hold for this store (spec §7), as (key, JSON value),
    /// sorted like Durable Object storage lists them (by the bytes of the key).
    pub fn reference_entries(&self, storage_prefix: &str) -> Vec<(String, String)> {
        let mut entries = Vec::new();
        if self.has_store {
            entries.push((format!("{storage_prefix}hasStore"), "1".to_owned()));
        }
        for (table_id, rows) in &self.tables {
            for (row_id, cells) in rows {
                for (cell_id, text) in cells {
                    let mut key = format!("{storage_prefix}t");
                    for (i, id) in [table_id, row_id, cell_id].into_iter().enumerate() {
                        if i > 0 {
                            key.push(',');
                        }
                        json::write_string(id.as_str(), &mut key);
                    }
                    entries.push((key, text.as_str().to_owned()));
                }
            }
        }
        for (value_id, text) in &self.values {
            // A value's key holds its id raw, and storage keys are UTF-8: there, a lone
            // surrogate is U+FFFD.
            let id = json::surrogates::to_utf8_lossy(value_id.as_str());
            entries.push((format!("{storage_prefix}v{id}"), text.as_str().to_owned()));
        }
        entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        entries
    }

    /// The stored size after `changes` would be applied (without applying them).
    pub fn bytes_after(&self, changes: &Changes) -> usize {
        let mut bytes = self.bytes as i64;
        let cell_size = |t: &str, r: &str, c: &str, text: Option<&CellText>| {
            text.map_or(0, |text| cell_bytes(&[t, r, c], text) as i64)
        };
        for (table_id, change) in &changes.tables {
            let table = self.tables.get(&TabularId::from(table_id.as_str()));
            let row_size = |row_id: &str, row: &Row| {
                row.iter().map(|(c, text)| cell_size(table_id, row_id, c.as_str(), Some(text))).sum::<i64>()
            };
            match change {
                TableChange::Delete => {
                    bytes -=
                        table.map_or(0, |rows| rows.iter().map(|(r, row)| row_size(r.as_str(), row)).sum())
                }
                TableChange::Rows(rows) => {
                    for (row_id, change) in rows {
                        let row = table.and_then(|rows| rows.get(&TabularId::from(row_id.as_str())));
                        match change {
                            RowChange::Delete => bytes -= row.map_or(0, |row| row_size(row_id, row)),
                            RowChange::Cells(cells) => {
                                for (cell_id, cell) in cells {
                                    let old = row.and_then(|row| row.get(&TabularId::from(cell_id.as_str())));
                                    bytes -= cell_size(table_id, row_id, cell_id, old);
                                    bytes += cell_size(
                                        table_id,
                                        row_id,
                                        cell_id,
                                        cell.as_ref().map(|cell| &cell.stored),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        for (value_id, value) in &changes.values {
            let old = self.values.get(&ValueId::from(value_id.as_str()));
            bytes -= old.map_or(0, |text| cell_bytes(&[value_id], text) as i64);
            bytes += value.as_ref().map_or(0, |value| cell_bytes(&[value_id], &value.stored) as i64);
        }
        bytes.max(0) as usize
    }

    /// The changes that put a client which sent `changes` back to what is stored: every cell,
    /// row, table and value they touch, as stored now (deleted where nothing is stored).
    /// `None` when they touch nothing.
    pub fn restore_payload(&self, changes: &Changes) -> Option<String> {
        let mut tables_json = String::new();
        for (table_id, change) in &changes.tables {
            let table = self.tables.get(&TabularId::from(table_id.as_str()));
            let mut rows_json = String::new();
            let mut restore_row = |row_id: &str, cells: &mut dyn Iterator<Item = &str>| {
                let row = table.and_then(|rows| rows.get(&TabularId::from(row_id)));
                let mut cells_json = String::new();
                for cell_id in cells {
                    let text = row.and_then(|row| row.get(&TabularId::from(cell_id)));
                    push_member(
                        &mut cells_json,
                        cell_id,
                        &text.map_or_else(marker, |text| text.as_str().to_owned()),
                    );
                }
                if !cells_json.is_empty() {
                    push_member(&mut rows_json, row_id, &format!("{{{cells_json}}}"));
                }
            };
            match change {
                TableChange::Delete => {
                    for (row_id, row) in table.into_iter().flatten() {
                        restore_row(row_id.as_str(), &mut row.keys().map(TabularId::as_str));
                    }
                }
                TableChange::Rows(rows) => {
                    for (row_id, change) in rows {
                        match change {
                            RowChange::Delete => {
                                let row = table.and_then(|rows| rows.get(&TabularId::from(row_id.as_str())));
                                restore_row(
                                    row_id,
                                    &mut row.into_iter().flat_map(|row| row.keys().map(TabularId::as_str)),
                                );
                            }
                            RowChange::Cells(cells) => {
                                restore_row(row_id, &mut cells.iter().map(|(cell_id, _)| cell_id.as_str()))
                            }
                        }
                    }
                }
            }
            if !rows_json.is_empty() {
                push_member(&mut tables_json, table_id, &format!("{{{rows_json}}}"));
            }
        }
        let mut values_json = String::new();
        for (value_id, _) in &changes.values {
            let text = self.values.get(&ValueId::from(value_id.as_str()));
            push_member(
                &mut values_json,
                value_id,
                &text.map_or_else(marker, |text| text.as_str().to_owned()),
            );
        }
        (!tables_json.is_empty() || !values_json.is_empty())
            .then(|| format!("[{{{tables_json}}},{{{values_json}}},1]"))
    }
}

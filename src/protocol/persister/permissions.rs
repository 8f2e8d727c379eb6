//! Declarative permissions, with the semantics of TinyBase's `canSet…`/`canDel…` hooks (spec
//! §8): read-only tables and values, tables whose rows and cells may not be deleted, and typed
//! schemas. A refused part is dropped; the accepted rest goes on; the refused part is returned
//! so the sender can be restored to what is stored.

use std::collections::{HashMap, HashSet};

use super::{CellChange, CellText, Changes, Content, RowChange, TableChange};
use crate::protocol::json::surrogates;

/// The type a schema gives a cell or value. Objects and arrays also match TinyBase 10's
/// encoding of them as strings (U+FFFD followed by their JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellType {
    /// A string (not an encoded object or array).
    String,
    /// A finite number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// An array, or a string encoding one.
    Array,
    /// An object, or a string encoding one.
    Object,
}

impl CellType {
    /// Reads a schema type name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "null" => Self::Null,
            "array" => Self::Array,
            "object" => Self::Object,
            _ => return None,
        })
    }

    fn of(text: &CellText) -> Self {
        let text = text.as_str();
        match text.as_bytes().first() {
            Some(b'"') if text.starts_with("\"\u{FFFD}[") => Self::Array,
            Some(b'"') if text.starts_with("\"\u{FFFD}{") => Self::Object,
            Some(b'"') => Self::String,
            Some(b't' | b'f') => Self::Boolean,
            Some(b'n') => Self::Null,
            Some(b'[') => Self::Array,
            Some(b'{') => Self::Object,
            _ => Self::Number,
        }
    }
}

/// A party's permissions. The default allows everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Clients may not set or delete anything in these tables (the initial PUT may).
    pub read_only_tables: HashSet<String>,
    /// Clients may not set or delete these values (the initial PUT may).
    pub read_only_values: HashSet<String>,
    /// Rows and cells of these tables may be added and changed, never deleted.
    pub no_delete_tables: HashSet<String>,
    /// Tables with a schema: only the listed cells, of the listed types.
    pub table_schemas: HashMap<String, HashMap<String, CellType>>,
    /// When set: only the listed values, of the listed types.
    pub value_schema: Option<HashMap<String, CellType>>,
}

impl Permissions {
    /// True when nothing is restricted.
    pub fn allows_everything(&self) -> bool {
        *self == Self::default()
    }

    fn cell_fits(&self, table: &str, cell: &str, text: &CellText) -> bool {
        get(&self.table_schemas, table).is_none_or(|schema| get(schema, cell) == Some(&CellType::of(text)))
    }

    fn value_fits(&self, value: &str, text: &CellText) -> bool {
        self.value_schema.as_ref().is_none_or(|schema| get(schema, value) == Some(&CellType::of(text)))
    }

    /// The initial save: only the schema applies (read-only parts may be written by a PUT).
    pub fn filter_content(&self, mut content: Content) -> Content {
        for (table, rows) in &mut content.tables {
            for (_, cells) in rows.iter_mut() {
                cells.retain(|(cell, text)| self.cell_fits(table, cell, text));
            }
            rows.retain(|(_, cells)| !cells.is_empty());
        }
        content.tables.retain(|(_, rows)| !rows.is_empty());
        content.values.retain(|(value, text)| self.value_fits(value, text));
        content
    }

    /// Splits changes into the accepted part and the refused part (`None` when nothing was refused).
    pub fn split(&self, changes: Changes) -> (Changes, Option<Changes>) {
        let mut accepted = Changes { tables: Vec::new(), values: Vec::new() };
        let mut refused = Changes { tables: Vec::new(), values: Vec::new() };
        for (table, change) in changes.tables {
            let (ok, no) = self.split_table(&table, change);
            if let Some(ok) = ok {
                accepted.tables.push((table.clone(), ok));
            }
            if let Some(no) = no {
                refused.tables.push((table, no));
            }
        }
        for (value, change) in changes.values {
            let allowed = !listed(&self.read_only_values, &value)
                && change.as_ref().is_none_or(|cell: &CellChange| self.value_fits(&value, &cell.stored));
            if allowed {
                accepted.values.push((value, change))
            } else {
                refused.values.push((value, change))
            }
        }
        let refused = (!refused.tables.is_empty() || !refused.values.is_empty()).then_some(refused);
        (accepted, refused)
    }

    fn split_table(&self, table: &str, change: TableChange) -> (Option<TableChange>, Option<TableChange>) {
        if listed(&self.read_only_tables, table) {
            return (None, Some(change));
        }
        let no_delete = listed(&self.no_delete_tables, table);
        let rows = match change {
            TableChange::Delete if no_delete => return (None, Some(TableChange::Delete)),
            TableChange::Delete => return (Some(TableChange::Delete), None),
            TableChange::Rows(rows) => rows,
        };
        let (mut ok_rows, mut no_rows) = (Vec::new(), Vec::new());
        for (row, change) in rows {
            match change {
                RowChange::Delete if no_delete => no_rows.push((row, RowChange::Delete)),
                RowChange::Delete => ok_rows.push((row, RowChange::Delete)),
                RowChange::Cells(cells) => {
                    let (ok, no): (Vec<_>, Vec<_>) =
                        cells.into_iter().partition(|(cell, change)| match change {
                            None => !no_delete,
                            Some(cell_change) => self.cell_fits(table, cell, &cell_change.stored),
                        });
                    // A row whose every cell was refused carries nothing, like an empty row.
                    if !ok.is_empty() {
                        ok_rows.push((row.clone(), RowChange::Cells(ok)));
                    }
                    if !no.is_empty() {
                        no_rows.push((row, RowChange::Cells(no)));
                    }
                }
            }
        }
        let some = |rows: Vec<(String, RowChange)>| (!rows.is_empty()).then_some(TableChange::Rows(rows));
        (some(ok_rows), some(no_rows))
    }
}

/// Whether an id is one of party.toml's names. Ids are held as `json::surrogates` describes and
/// names are plain text, so they are compared as text (an id with a lone surrogate is no name:
/// TOML cannot write one).
fn listed(names: &HashSet<String>, id: &str) -> bool {
    surrogates::to_plain(id).is_some_and(|id| names.contains(id.as_ref()))
}

/// What party.toml gives the name an id is, compared as [`listed`] does.
fn get<'a, T>(names: &'a HashMap<String, T>, id: &str) -> Option<&'a T> {
    surrogates::to_plain(id).and_then(|id| names.get(id.as_ref()))
}

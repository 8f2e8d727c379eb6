//! The `tinybase-persister` kind (TinyBase's PartyKit persister protocol): validating PUT
//! bodies and `s` changes, the room's store in memory, and its GET rendering, byte-exact with
//! TinyBase 10's server class. See the protocol notes `partykit-persister.md`.

mod parse;
mod permissions;
mod store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edges;
#[cfg(test)]
mod tests_model;
#[cfg(test)]
mod tests_reference;
#[cfg(test)]
mod tests_surrogates;

pub use parse::{parse_changes, parse_content, parse_frame, IgnoredFrame, InvalidContent};
pub use permissions::{CellType, Permissions};
pub use store::{Applied, PersisterStore, PutOutcome, StoreBuilder, StoreOp, StoredEntry};

use super::json::{self, JsValue};

/// The canonical JSON text of one valid cell or value, exactly as GET prints it; stored on
/// disk as these bytes too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellText(Box<str>);

/// Stored text that is not a valid cell or value.
#[derive(Debug, thiserror::Error)]
#[error("stored cell is not a valid cell")]
pub struct InvalidStoredCell;

impl CellText {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a cell read from disk, checking it is still a valid cell.
    pub fn from_stored(text: String) -> Result<Self, InvalidStoredCell> {
        match json::parse(&text, false) {
            Ok(value) if is_valid_cell(&value) => Ok(Self(text.into_boxed_str())),
            _ => Err(InvalidStoredCell),
        }
    }

    fn of(value: &JsValue) -> Self {
        let mut text = String::new();
        json::write_stored(value, &mut text);
        Self(text.into_boxed_str())
    }
}

/// TinyBase 10's cell and value check: string, finite number, boolean, null, array or object
/// (arrays and objects are not looked into).
fn is_valid_cell(value: &JsValue) -> bool {
    match value {
        JsValue::Number(n) => n.is_finite(),
        JsValue::String(_) | JsValue::Bool(_) | JsValue::Null | JsValue::Array(_) | JsValue::Object(_) => {
            true
        }
        JsValue::Undefined => false,
    }
}

/// Whether an `undefined` (a decoded marker) is anywhere inside: only then do the stored and the
/// broadcast forms differ.
fn holds_undefined(value: &JsValue) -> bool {
    match value {
        JsValue::Undefined => true,
        JsValue::Array(items) => items.iter().any(holds_undefined),
        JsValue::Object(members) => members.iter().any(|(_, member)| holds_undefined(member)),
        JsValue::Null | JsValue::Bool(_) | JsValue::Number(_) | JsValue::String(_) => false,
    }
}

/// A cell or value set by a change: its stored form, and its broadcast form when that differs
/// (an array or object holding a deletion marker).
#[derive(Clone, Debug, PartialEq)]
pub struct CellChange {
    stored: CellText,
    wire: Option<Box<str>>,
}

impl CellChange {
    fn of(value: &JsValue) -> Self {
        let stored = CellText::of(value);
        let wire = holds_undefined(value).then(|| {
            let mut wire = String::new();
            json::write_wire(value, &mut wire);
            wire.into_boxed_str()
        });
        Self { stored, wire }
    }

    /// The JSON text broadcast for this cell.
    fn wire(&self) -> &str {
        self.wire.as_deref().unwrap_or(self.stored.as_str())
    }
}

/// The cells of one row, the rows of one table, the tables of a PUT body, in body order.
type ContentRow = Vec<(String, CellText)>;
type ContentTable = Vec<(String, ContentRow)>;

/// A valid PUT body: tables → rows → cells and values, empty tables and rows left out.
#[derive(Debug, PartialEq)]
pub struct Content {
    tables: Vec<(String, ContentTable)>,
    values: Vec<(String, CellText)>,
    /// The body was exactly `[{}, {}]` (no tables and no values at all).
    empty: bool,
}

impl Content {
    /// True when the body was exactly `[{},{}]` (no table and no value at all). Content holding
    /// only empty tables or rows is not empty, yet saves nothing: TinyBase's store-flag rule.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The stored size this content would have (ids and cell texts), as [`PersisterStore::stored_bytes`] counts it.
    pub fn stored_bytes(&self) -> usize {
        let cells: usize = self
            .tables
            .iter()
            .flat_map(|(t, rows)| {
                rows.iter().flat_map(move |(r, cells)| {
                    cells.iter().map(move |(c, text)| t.len() + r.len() + c.len() + text.as_str().len())
                })
            })
            .sum();
        cells + self.values.iter().map(|(v, text)| v.len() + text.as_str().len()).sum::<usize>()
    }
}

/// What a change does to one table.
#[derive(Debug, PartialEq)]
pub enum TableChange {
    /// Delete the table.
    Delete,
    /// Change these rows.
    Rows(Vec<(String, RowChange)>),
}

/// What a change does to one row.
#[derive(Debug, PartialEq)]
pub enum RowChange {
    /// Delete the row.
    Delete,
    /// Set (`Some`) or delete (`None`) these cells.
    Cells(Vec<(String, Option<CellChange>)>),
}

/// Valid `s` changes: `[tables, values, 1]` with deletions decoded.
#[derive(Debug, PartialEq)]
pub struct Changes {
    tables: Vec<(String, TableChange)>,
    values: Vec<(String, Option<CellChange>)>,
}

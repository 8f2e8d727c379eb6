//! Validation of what clients send: PUT bodies (content) and websocket frames (changes),
//! with TinyBase 10's rules — any violation anywhere refuses the whole input.

use std::fmt;

use super::{is_valid_cell, CellChange, CellText, Changes, Content, RowChange, TableChange};
use crate::protocol::json::{self, JsValue};

/// Why a PUT body is refused (400).
#[derive(Debug, PartialEq, Eq)]
pub enum InvalidContent {
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not JSON.
    NotJson(json::JsonError),
    /// The JSON is not valid content; the text says where.
    Shape(String),
}

impl fmt::Display for InvalidContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("body is not valid UTF-8"),
            Self::NotJson(error) => write!(f, "body is {error}"),
            Self::Shape(reason) => write!(f, "body is not TinyBase content: {reason}"),
        }
    }
}

impl std::error::Error for InvalidContent {}

/// Why a websocket frame is ignored (logged, never answered).
#[derive(Debug, PartialEq, Eq)]
pub enum IgnoredFrame {
    /// Nothing follows the message prefix.
    TooShort,
    /// The frame does not start with the party's message prefix.
    NoPrefix,
    /// The type character is not `s`.
    UnknownType(char),
    /// The payload is not JSON.
    NotJson(json::JsonError),
    /// The payload is JSON but not valid changes.
    InvalidChanges(String),
}

impl fmt::Display for IgnoredFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("nothing after the message prefix"),
            Self::NoPrefix => f.write_str("frame does not start with the message prefix"),
            Self::UnknownType(c) => write!(f, "unknown message type {c:?}"),
            Self::NotJson(error) => write!(f, "payload is {error}"),
            Self::InvalidChanges(reason) => write!(f, "payload is not valid changes: {reason}"),
        }
    }
}

/// Validates a PUT body: UTF-8 (a BOM is not JSON), JSON, `[tables, values]` with objects down
/// to rows and valid cells. The deletion marker is a plain string here.
pub fn parse_content(body: &[u8]) -> Result<Content, InvalidContent> {
    let text = std::str::from_utf8(body).map_err(|_| InvalidContent::NotUtf8)?;
    let value = json::parse(text, false).map_err(InvalidContent::NotJson)?;
    let JsValue::Array(mut parts) = value else { return Err(shape("not an array [tables, values]")) };
    if parts.len() != 2 {
        return Err(shape("not an array of exactly 2 elements [tables, values]"));
    }
    let values = parts.pop().unwrap_or(JsValue::Null);
    let tables = parts.pop().unwrap_or(JsValue::Null);
    let (JsValue::Object(tables), JsValue::Object(values)) = (tables, values) else {
        return Err(shape("tables and values must be objects"));
    };
    let empty = tables.is_empty() && values.is_empty();
    let mut content_tables = Vec::with_capacity(tables.len());
    for (table_id, table) in tables {
        let JsValue::Object(rows) = table else {
            return Err(shape(format!("table {table_id:?} is not an object")));
        };
        let mut content_rows = Vec::with_capacity(rows.len());
        for (row_id, row) in rows {
            let JsValue::Object(cells) = row else {
                return Err(shape(format!("row {table_id:?}/{row_id:?} is not an object")));
            };
            let mut content_cells = Vec::with_capacity(cells.len());
            for (cell_id, cell) in cells {
                if !is_valid_cell(&cell) {
                    return Err(shape(format!("cell {table_id:?}/{row_id:?}/{cell_id:?} is not a finite number, string, boolean, null, array or object")));
                }
                content_cells.push((cell_id, CellText::of(&cell)));
            }
            if !content_cells.is_empty() {
                content_rows.push((row_id, content_cells));
            }
        }
        if !content_rows.is_empty() {
            content_tables.push((table_id, content_rows));
        }
    }
    let mut content_values = Vec::with_capacity(values.len());
    for (value_id, value) in values {
        if !is_valid_cell(&value) {
            return Err(shape(format!(
                "value {value_id:?} is not a finite number, string, boolean, null, array or object"
            )));
        }
        content_values.push((value_id, CellText::of(&value)));
    }
    Ok(Content { tables: content_tables, values: content_values, empty })
}

fn shape(reason: impl Into<String>) -> InvalidContent {
    InvalidContent::Shape(reason.into())
}

/// Takes a websocket text frame apart: `<prefix>s<JSON of [tables, values, 1]>`.
pub fn parse_frame(frame: &str, prefix: &str) -> Result<Changes, IgnoredFrame> {
    let rest = frame.strip_prefix(prefix).ok_or(IgnoredFrame::NoPrefix)?;
    let mut chars = rest.chars();
    let kind = chars.next().ok_or(IgnoredFrame::TooShort)?;
    if kind != 's' {
        return Err(IgnoredFrame::UnknownType(kind));
    }
    let payload = json::parse(chars.as_str(), true).map_err(IgnoredFrame::NotJson)?;
    changes(payload).map_err(IgnoredFrame::InvalidChanges)
}

/// Validates changes given as a whole body (`[tables, values, 1]`, deletions as the marker), as
/// the admin API receives them: the same rules as a websocket `s` payload.
pub fn parse_changes(body: &[u8]) -> Result<Changes, IgnoredFrame> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IgnoredFrame::InvalidChanges("body is not valid UTF-8".into()))?;
    let payload = json::parse(text, true).map_err(IgnoredFrame::NotJson)?;
    changes(payload).map_err(IgnoredFrame::InvalidChanges)
}

fn changes(payload: JsValue) -> Result<Changes, String> {
    let JsValue::Array(parts) = payload else { return Err("not an array [tables, values, 1]".into()) };
    let [tables, values, flag]: [JsValue; 3] =
        parts.try_into().map_err(|_| "not an array of exactly 3 elements [tables, values, 1]".to_owned())?;
    if !loosely_equals_one(&flag) {
        return Err("the third element is not 1".into());
    }
    let (JsValue::Object(tables), JsValue::Object(values)) = (tables, values) else {
        return Err("tables and values must be objects".into());
    };
    let tables = tables
        .into_iter()
        .map(|(table_id, table)| {
            let change = match table {
                JsValue::Undefined => TableChange::Delete,
                JsValue::Object(rows) => TableChange::Rows(row_changes(&table_id, rows)?),
                _ => return Err(format!("table {table_id:?} is not an object")),
            };
            Ok((table_id, change))
        })
        .collect::<Result<_, String>>()?;
    let values = values
        .into_iter()
        .map(|(value_id, value)| {
            Ok((value_id.clone(), cell_change(value, || format!("value {value_id:?}"))?))
        })
        .collect::<Result<_, String>>()?;
    Ok(Changes { tables, values })
}

fn row_changes(table_id: &str, rows: Vec<(String, JsValue)>) -> Result<Vec<(String, RowChange)>, String> {
    rows.into_iter()
        .map(|(row_id, row)| {
            let change = match row {
                JsValue::Undefined => RowChange::Delete,
                JsValue::Object(cells) => RowChange::Cells(
                    cells
                        .into_iter()
                        .map(|(cell_id, cell)| {
                            let change =
                                cell_change(cell, || format!("cell {table_id:?}/{row_id:?}/{cell_id:?}"))?;
                            Ok((cell_id, change))
                        })
                        .collect::<Result<_, String>>()?,
                ),
                _ => return Err(format!("row {table_id:?}/{row_id:?} is not an object")),
            };
            Ok((row_id, change))
        })
        .collect()
}

/// `None` is a deletion (the marker); otherwise the cell must be valid.
fn cell_change(value: JsValue, what: impl Fn() -> String) -> Result<Option<CellChange>, String> {
    match value {
        JsValue::Undefined => Ok(None),
        value if is_valid_cell(&value) => Ok(Some(CellChange::of(&value))),
        _ => Err(format!("{} is not a finite number, string, boolean, null, array or object", what())),
    }
}

/// JavaScript's `flag == 1` (spec §4.4).
fn loosely_equals_one(flag: &JsValue) -> bool {
    match flag {
        JsValue::Number(n) => *n == 1.0,
        JsValue::Bool(b) => *b,
        JsValue::String(s) => string_to_number(s) == Some(1.0),
        JsValue::Array(_) => string_to_number(&to_js_string(flag)) == Some(1.0),
        JsValue::Undefined | JsValue::Null | JsValue::Object(_) => false,
    }
}

/// `String(value)` for what an array join needs.
fn to_js_string(value: &JsValue) -> String {
    match value {
        JsValue::Undefined | JsValue::Null => String::new(),
        JsValue::Bool(b) => b.to_string(),
        JsValue::Number(n) => {
            let mut out = String::new();
            match n {
                n if n.is_nan() => out.push_str("NaN"),
                n if n.is_infinite() => out.push_str(if *n > 0.0 { "Infinity" } else { "-Infinity" }),
                n => json::write_number(*n, &mut out),
            }
            out
        }
        JsValue::String(s) => s.clone(),
        JsValue::Array(items) => items.iter().map(to_js_string).collect::<Vec<_>>().join(","),
        JsValue::Object(_) => "[object Object]".into(),
    }
}

/// JavaScript's `Number(string)`, as far as telling whether it is 1 needs: trimmed; empty is 0;
/// `0x`/`0o`/`0b` integers; decimal literals with sign, fraction and exponent.
fn string_to_number(s: &str) -> Option<f64> {
    let s = s.trim_matches(is_js_whitespace);
    if s.is_empty() {
        return Some(0.0);
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = s.strip_prefix(prefix) {
            return u128::from_str_radix(digits, radix)
                .ok()
                .filter(|_| !digits.starts_with('+'))
                .map(|n| n as f64);
        }
    }
    let decimal = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if decimal {
        s.parse().ok()
    } else {
        None
    }
}

/// JavaScript's `StrWhiteSpaceChar` (WhiteSpace and LineTerminator): Unicode's White_Space
/// without U+0085 (NEL), plus U+FEFF.
fn is_js_whitespace(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

//! Stamps as JSON values while a pull gathers them (spec §3.3): checking their shape and merging
//! the tables, rows and cells of one answer into the changes gathered so far.

use crate::protocol::json::JsValue;

pub(super) fn empty_stamp() -> JsValue {
    JsValue::Array(vec![JsValue::Object(Vec::new())])
}

pub(super) fn pair(body: &JsValue) -> Option<(JsValue, &JsValue)> {
    match body {
        JsValue::Array(parts) if parts.len() == 2 => Some((parts[0].clone(), &parts[1])),
        _ => None,
    }
}

pub(super) fn is_empty_object(value: &JsValue) -> Option<bool> {
    match value {
        JsValue::Object(members) => Some(members.is_empty()),
        _ => None,
    }
}

/// Checks that a stamp is `[{…}]` or `[{…}, hlc]`.
pub(super) fn stamp_with_object(stamp: JsValue) -> Option<JsValue> {
    match &stamp {
        JsValue::Array(parts) if matches!(parts.first(), Some(JsValue::Object(_))) && parts.len() <= 2 => {
            Some(stamp)
        }
        _ => None,
    }
}

/// The children of a stamp `[{…}, …]`.
fn stamp_children(stamp: &mut JsValue) -> Option<&mut Vec<(String, JsValue)>> {
    let JsValue::Array(parts) = stamp else { return None };
    let JsValue::Object(members) = parts.first_mut()? else { return None };
    Some(members)
}

fn hlc_of(stamp: &JsValue) -> &str {
    match stamp {
        JsValue::Array(parts) => match parts.get(1) {
            Some(JsValue::String(hlc)) => hlc,
            _ => "",
        },
        _ => "",
    }
}

/// Raises a stamp's HLC to `hlc` if that is later (the slot is then written, §3.3).
fn raise_hlc(stamp: &mut JsValue, hlc: &str) {
    let latest = hlc_of(stamp).max(hlc).to_owned();
    if let JsValue::Array(parts) = stamp {
        parts.truncate(1);
        parts.push(JsValue::String(latest));
    }
}

fn child<'a>(members: &'a mut Vec<(String, JsValue)>, id: &str) -> &'a mut JsValue {
    let position = match members.iter().position(|(member, _)| member == id) {
        Some(position) => position,
        None => {
            members.push((id.to_owned(), empty_stamp()));
            members.len() - 1
        }
    };
    &mut members[position].1
}

/// Adds the tables, rows and cells of `from` to the tables stamp `into` (spec §3.3).
pub(super) fn merge_into(into: &mut JsValue, mut from: JsValue) -> Option<()> {
    let from_hlc = hlc_of(&from).to_owned();
    let from_tables = stamp_children(&mut from)?;
    let into_tables = stamp_children(into)?;
    for (table_id, mut table_stamp) in std::mem::take(from_tables) {
        let table_hlc = hlc_of(&table_stamp).to_owned();
        let rows = stamp_children(&mut table_stamp)?;
        let table = child(into_tables, &table_id);
        for (row_id, mut row_stamp) in std::mem::take(rows) {
            let row_hlc = hlc_of(&row_stamp).to_owned();
            let cells = stamp_children(&mut row_stamp)?;
            let table_rows = stamp_children(table)?;
            let row = child(table_rows, &row_id);
            let row_cells = stamp_children(row)?;
            for (cell_id, cell) in std::mem::take(cells) {
                match row_cells.iter_mut().find(|(id, _)| *id == cell_id) {
                    Some((_, existing)) => *existing = cell,
                    None => row_cells.push((cell_id, cell)),
                }
            }
            raise_hlc(row, &row_hlc);
        }
        raise_hlc(table, &table_hlc);
    }
    raise_hlc(into, &from_hlc);
    Some(())
}

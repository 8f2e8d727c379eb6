//! Writing JSON as JavaScript's `JSON.stringify` does: the stored form (GET) and the broadcast
//! form (markers written back), numbers as `Number#toString`, strings with JSON's escapes only.

use std::fmt::Write as _;

use super::surrogates::{self, Piece};
use super::{JsValue, MARKER};

/// Appends `JSON.stringify(value)` as stored and served by GET: `undefined` in an array prints
/// `null`, an object member that is `undefined` is left out, non-finite numbers print `null`.
pub fn write_stored(value: &JsValue, out: &mut String) {
    write_value(value, out, false);
}

/// Appends the broadcast form: like [`write_stored`], but every `undefined` is the marker string.
pub fn write_wire(value: &JsValue, out: &mut String) {
    write_value(value, out, true);
}

fn write_value(value: &JsValue, out: &mut String, wire: bool) {
    match value {
        JsValue::Undefined if wire => write_string(MARKER, out),
        JsValue::Undefined | JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) => write_number(*n, out),
        JsValue::String(s) => write_string(s, out),
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out, wire);
            }
            out.push(']');
        }
        JsValue::Object(members) => {
            out.push('{');
            let mut first = true;
            for (key, member) in members {
                if !wire && matches!(member, JsValue::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_string(key, out);
                out.push(':');
                write_value(member, out, wire);
            }
            out.push('}');
        }
    }
}

/// Appends a number as `Number#toString` prints it; non-finite numbers print `null` (JSON).
pub fn write_number(n: f64, out: &mut String) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n == 0.0 {
        out.push('0');
    } else {
        out.push_str(ryu_js::Buffer::new().format_finite(n));
    }
}

/// Appends `JSON.stringify(s)` of a held string: quotes, `\"`, `\\`, the short escapes,
/// `\u00xx` for other control characters, `\udxxx` for lone surrogates, everything else raw.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    escape_into(s, out);
    out.push('"');
}

/// The JSON escape of one character, if it needs one.
pub fn escape_char(c: char) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t",
        "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013",
        "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c",
        "\\u001d", "\\u001e", "\\u001f",
    ];
    match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        c if (c as u32) < 0x20 => Some(CONTROL[c as usize]),
        _ => None,
    }
}

fn escape_into(s: &str, out: &mut String) {
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        if c == surrogates::ESCAPE {
            // The rest holds lone surrogates or U+FDD0: read it piece by piece.
            out.push_str(&s[run_start..i]);
            return escape_held_into(&s[i..], out);
        }
        if let Some(escape) = escape_char(c) {
            out.push_str(&s[run_start..i]);
            out.push_str(escape);
            run_start = i + c.len_utf8();
        }
    }
    out.push_str(&s[run_start..]);
}

fn escape_held_into(s: &str, out: &mut String) {
    for piece in surrogates::pieces(s) {
        match piece {
            Piece::Char(c) => match escape_char(c) {
                Some(escape) => out.push_str(escape),
                None => out.push(c),
            },
            // Lowercase hex, as JSON.stringify writes it.
            Piece::Lone(unit) => {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

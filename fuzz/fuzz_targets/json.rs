//! partyd's JSON parser (`partyd::protocol::json`) on arbitrary bytes.
//!
//! Checked:
//! - it never panics;
//! - it accepts exactly what serde_json accepts, with the same values, except where the two
//!   grammars deliberately differ: partyd takes numbers past f64's range as ±Infinity (as
//!   `JSON.parse` does) and nests 512 deep where serde_json stops at 128; inputs with a `\u`
//!   escape of a surrogate are left out (partyd follows JavaScript there, which is changing);
//! - decoding the deletion marker changes values, never what is accepted;
//! - what it parsed, written back (stored and wire forms), parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partyd::protocol::json::{self, JsValue};

/// A `\u` escape of a UTF-16 surrogate (U+D800 to U+DFFF), or text that looks like one (an
/// escaped backslash before `uD8..`): such inputs are not compared.
fn has_surrogate_escape(text: &str) -> bool {
    text.as_bytes().windows(4).any(|window| {
        window[0] == b'\\'
            && window[1] == b'u'
            && matches!(window[2], b'd' | b'D')
            && matches!(window[3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
    })
}

/// Whether `ours` is the value serde_json read.
fn same(ours: &JsValue, theirs: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (ours, theirs) {
        (JsValue::Null, Value::Null) => true,
        (JsValue::Bool(a), Value::Bool(b)) => a == b,
        (JsValue::Number(a), Value::Number(b)) => {
            // Both round correctly (serde_json with `float_roundtrip`); -0 equals 0 here.
            b.as_f64().is_some_and(|b| *a == b)
        }
        (JsValue::String(a), Value::String(b)) => a == b,
        (JsValue::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        // serde_json keeps the last of repeated keys, as partyd (and JavaScript) does.
        (JsValue::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter().all(|(key, value)| b.get(key).is_some_and(|theirs| same(value, theirs)))
        }
        _ => false,
    }
}

fn all_finite(value: &JsValue) -> bool {
    match value {
        JsValue::Number(n) => n.is_finite(),
        JsValue::Array(items) => items.iter().all(all_finite),
        JsValue::Object(members) => members.iter().all(|(_, member)| all_finite(member)),
        _ => true,
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let ours = json::parse(text, false);
    let decoded = json::parse(text, true);
    assert_eq!(ours.as_ref().err(), decoded.as_ref().err(), "decoding the marker changes nothing accepted");

    if let (Ok(value), Ok(decoded)) = (&ours, &decoded) {
        // JSON.stringify writes non-finite numbers as null: those values do not come back.
        if all_finite(value) {
            let mut stored = String::new();
            json::write_stored(value, &mut stored);
            assert_eq!(json::parse(&stored, false).as_ref(), Ok(value), "stored form: {stored}");
            let mut wire = String::new();
            json::write_wire(decoded, &mut wire);
            assert_eq!(json::parse(&wire, true).as_ref(), Ok(decoded), "wire form: {wire}");
        }
    }

    if has_surrogate_escape(text) {
        return;
    }
    match (&ours, serde_json::from_str::<serde_json::Value>(text)) {
        (Ok(ours), Ok(theirs)) => assert!(same(ours, &theirs), "{ours:?} != {theirs:?}"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(error)) => {
            let message = error.to_string();
            assert!(
                message.starts_with("number out of range") || message.starts_with("recursion limit exceeded"),
                "partyd accepts what serde_json refuses: {message}"
            );
        }
        (Err(error), Ok(_)) => panic!("partyd refuses what serde_json accepts: {error}"),
    }
});

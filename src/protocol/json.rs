//! JSON exactly as JavaScript's `JSON.parse` and `JSON.stringify` treat it: correctly rounded
//! doubles (overflow to ±Infinity), JavaScript's own-key order for objects, duplicate keys
//! resolved as JavaScript does, numbers printed as `Number#toString` prints them, and strings
//! that are any UTF-16, lone surrogates included (held as [`surrogates`] describes).
//! (serde_json cannot parse `1e400` to Infinity without crate-wide feature flags, and refuses
//! lone surrogates.)

use std::collections::HashMap;

pub mod surrogates;
mod write;

pub use write::{escape_char, write_number, write_stored, write_string, write_wire};

/// The deepest nesting accepted; deeper input is refused instead of risking the stack.
pub const MAX_DEPTH: usize = 512;
/// The deletion marker of TinyBase's websocket changes (U+FFFC).
pub const MARKER: &str = "\u{FFFC}";
/// Objects with more members than this find duplicate keys by hashing instead of scanning.
const LINEAR_DUPLICATE_SCAN: usize = 16;

/// A JavaScript value as JSON can express it, plus `undefined` (the decoded marker).
#[derive(Clone, Debug, PartialEq)]
pub enum JsValue {
    /// `undefined`: only from a decoded deletion marker.
    Undefined,
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A double (may be ±Infinity after overflow).
    Number(f64),
    /// A string, held as [`surrogates`] describes (itself unless it has a lone surrogate or U+FDD0).
    String(String),
    /// An array.
    Array(Vec<JsValue>),
    /// An object, members in JavaScript's own-key order; keys are held like strings.
    Object(Vec<(String, JsValue)>),
}

/// Why a text is not JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not JSON at byte {position}: {reason}")]
pub struct JsonError {
    /// Byte offset of the problem.
    pub position: usize,
    /// What was expected.
    pub reason: &'static str,
}

/// Parses like `JSON.parse`. With `decode_marker`, every string value (never a key) equal to
/// U+FFFC becomes [`JsValue::Undefined`], at any depth.
pub fn parse(text: &str, decode_marker: bool) -> Result<JsValue, JsonError> {
    let mut parser = Parser { bytes: text.as_bytes(), text, at: 0, decode_marker };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.at != parser.bytes.len() {
        return Err(parser.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    decode_marker: bool,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError { position: self.at, reason }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect_literal(&mut self, literal: &'static str, value: JsValue) -> Result<JsValue, JsonError> {
        if self.bytes[self.at..].starts_with(literal.as_bytes()) {
            self.at += literal.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsValue, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let string = self.string()?;
                Ok(if self.decode_marker && string == MARKER {
                    JsValue::Undefined
                } else {
                    JsValue::String(string)
                })
            }
            Some(b't') => self.expect_literal("true", JsValue::Bool(true)),
            Some(b'f') => self.expect_literal("false", JsValue::Bool(false)),
            Some(b'n') => self.expect_literal("null", JsValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsValue, JsonError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(JsValue::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(JsValue::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsValue, JsonError> {
        self.at += 1;
        let mut members = Members::default();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(JsValue::Object(members.into_js_order()));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(JsValue::Object(members.into_js_order()));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn number(&mut self) -> Result<JsValue, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        // The grammar was checked above; Rust's parse rounds correctly, overflows to ±inf and
        // underflows to ±0, exactly like JavaScript.
        let number = self.text[start..self.at].parse::<f64>().map_err(|_| self.error("bad number"))?;
        Ok(JsValue::Number(number))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// A string, held as [`surrogates`] describes.
    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let run_start = self.at;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 || self.at_held_escape() {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.text[run_start..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(&mut out)?;
                }
                Some(_) if self.at_held_escape() => {
                    surrogates::push_char(&mut out, surrogates::ESCAPE);
                    self.at += surrogates::ESCAPE_UTF8.len();
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// Whether the text goes on with U+FDD0, which a held string doubles.
    fn at_held_escape(&self) -> bool {
        self.bytes[self.at] == surrogates::ESCAPE_UTF8[0]
            && self.bytes[self.at..].starts_with(surrogates::ESCAPE_UTF8)
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let Some(byte) = self.peek() else { return Err(self.error("unterminated escape")) };
        self.at += 1;
        let simple = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(out),
            _ => return Err(self.error("unknown escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.text.get(self.at..self.at + 4).ok_or_else(|| self.error("short \\u escape"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("bad \\u escape"));
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("bad \\u escape"))
    }

    /// `\uXXXX`, or a pair of them that makes one character. Like `JSON.parse`, a surrogate
    /// without its other half is kept as it is, a lone code unit of the string.
    fn unicode_escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let unit = self.hex4()?;
        if (0xD800..=0xDBFF).contains(&unit) {
            if let Some(low) = self.low_surrogate_escape() {
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                let c = char::from_u32(code).ok_or_else(|| self.error("bad \\u escape"))?;
                surrogates::push_char(out, c);
                return Ok(());
            }
        }
        match char::from_u32(unit) {
            Some(c) => surrogates::push_char(out, c),
            None => surrogates::push_lone_surrogate(out, unit as u16),
        }
        Ok(())
    }

    /// Takes a following `\uDC00`–`\uDFFF` (the low half of a pair); leaves anything else.
    fn low_surrogate_escape(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at + 2..self.at + 6)?;
        if !self.bytes[self.at..].starts_with(b"\\u") || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let unit = u32::from_str_radix(digits, 16).ok().filter(|unit| (0xDC00..=0xDFFF).contains(unit))?;
        self.at += 6;
        Some(unit)
    }
}

/// Object members while parsing: a repeated key keeps its first position and takes the last value.
#[derive(Default)]
struct Members {
    list: Vec<(String, JsValue)>,
    index: Option<HashMap<String, usize>>,
}

impl Members {
    fn insert(&mut self, key: String, value: JsValue) {
        if self.index.is_none() && self.list.len() >= LINEAR_DUPLICATE_SCAN {
            let index = self.list.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
            self.index = Some(index);
        }
        let existing = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.list.iter().position(|(k, _)| *k == key),
        };
        match existing {
            Some(position) => self.list[position].1 = value,
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.clone(), self.list.len());
                }
                self.list.push((key, value));
            }
        }
    }

    /// JavaScript's own-key order: array-index keys ascending, then the rest as inserted.
    fn into_js_order(self) -> Vec<(String, JsValue)> {
        let mut list = self.list;
        sort_js_keys(&mut list);
        list
    }
}

/// Puts members in JavaScript's own-key order: array-index keys ascending, then the others in
/// their current order (the sort is stable).
pub fn sort_js_keys<K: AsRef<str>, V>(members: &mut [(K, V)]) {
    if members.iter().any(|(key, _)| is_array_index(key.as_ref()).is_some()) {
        members.sort_by_key(|(key, _)| is_array_index(key.as_ref()).map_or((1, 0), |index| (0, index)));
    }
}

/// An object value with its members in JavaScript's own-key order.
pub fn js_object(mut members: Vec<(String, JsValue)>) -> JsValue {
    sort_js_keys(&mut members);
    JsValue::Object(members)
}

/// The array index an id stands for: canonical decimal `0` ..= `4294967294`.
pub fn is_array_index(id: &str) -> Option<u32> {
    let bytes = id.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 10
        || (bytes[0] == b'0' && bytes.len() > 1)
        || !bytes.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    id.parse::<u64>().ok().filter(|&n| n < u64::from(u32::MAX)).map(|n| n as u32)
}

#[cfg(test)]
mod tests;

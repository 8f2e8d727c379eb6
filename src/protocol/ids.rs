//! Ids in the order TinyBase's server lists them (spec §3.4): array-index ids first, ascending
//! numerically; then table/row/cell ids by the bytes of their JSON escape followed by `"` (the
//! order of the reference's storage keys), and value ids by their raw bytes. Ids are held as
//! `json::surrogates` describes; a lone surrogate counts as its escape `\udxxx` in a table, row
//! or cell id, and as U+FFFD (the UTF-8 a storage key gets) in a value id.

use std::cmp::Ordering;
use std::fmt;

use super::json::surrogates::{self, ESCAPE_UTF8};
use super::json::{escape_char, is_array_index, write_string};

/// A table, row or cell id, ordered as the reference's storage keys list it: array-index ids
/// first (numerically), then by the bytes of `esc(id) + '"'`. No `Borrow<str>`: its order is not
/// `str`'s, so a map keyed by it must be searched with a `TabularId`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TabularId(Box<str>);

/// A value id: array-index ids first (numerically), then by raw UTF-8 bytes. No `Borrow<str>`,
/// for the same reason as [`TabularId`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ValueId(Box<str>);

macro_rules! id_basics {
    ($id:ident) => {
        impl $id {
            /// Wraps an id.
            pub fn new(id: String) -> Self {
                Self(id.into_boxed_str())
            }

            /// The id as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $id {
            fn from(id: String) -> Self {
                Self::new(id)
            }
        }

        impl From<&str> for $id {
            fn from(id: &str) -> Self {
                Self(id.into())
            }
        }

        impl fmt::Debug for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl PartialOrd for $id {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}

id_basics!(TabularId);
id_basics!(ValueId);

impl Ord for TabularId {
    fn cmp(&self, other: &Self) -> Ordering {
        by_index_then(&self.0, &other.0, escaped_then_quote_cmp)
    }
}

impl Ord for ValueId {
    fn cmp(&self, other: &Self) -> Ordering {
        by_index_then(&self.0, &other.0, utf8_cmp)
    }
}

/// The first byte where two ids differ (or the shorter one's length), and whether a held
/// U+FDD0 starts close enough before it to be part of the character there: then that character
/// is a lone surrogate or U+FDD0, and neither its escape nor its storage bytes are its bytes.
fn first_difference(x: &[u8], y: &[u8]) -> (usize, bool) {
    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
    // A held piece is 6 bytes long at most, and U+FDD0 starts every held piece.
    let held_near = |bytes: &[u8]| {
        let end = bytes.len().min(at + ESCAPE_UTF8.len());
        bytes.get(at.saturating_sub(5)..end).is_some_and(|near| near.windows(3).any(|w| w == ESCAPE_UTF8))
    };
    (at, held_near(x) || held_near(y))
}

/// Value ids: by the UTF-8 of the key TinyBase's server stores (lone surrogates as U+FFFD, as
/// storage encodes keys). Ids that only differ there tie in the reference, which then lists them
/// in the order they were first written; a sorted map cannot, so they go by code unit instead.
fn utf8_cmp(a: &str, b: &str) -> Ordering {
    if !first_difference(a.as_bytes(), b.as_bytes()).1 {
        return a.as_bytes().cmp(b.as_bytes());
    }
    let (x, y) = (surrogates::to_utf8_lossy(a), surrogates::to_utf8_lossy(b));
    x.as_bytes().cmp(y.as_bytes()).then_with(|| surrogates::to_utf16(a).cmp(&surrogates::to_utf16(b)))
}

fn by_index_then(a: &str, b: &str, rest: impl Fn(&str, &str) -> Ordering) -> Ordering {
    // Only ids starting with a digit can be array indices; most ids skip the parse.
    let index = |id: &str| {
        if id.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            is_array_index(id)
        } else {
            None
        }
    };
    match (index(a), index(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => rest(a, b),
    }
}

/// Compares `esc(a) + '"'` with `esc(b) + '"'` without building them. Up to the first byte
/// where `a` and `b` differ, their escaped forms are equal too; there, an escaped character
/// starts with `\` and no escape is a prefix of another, so that one position decides.
fn escaped_then_quote_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (at, held_near) = first_difference(x, y);
    if held_near {
        // Rare: compare the escaped forms themselves (each ends with its closing quote).
        let escaped = |id: &str| {
            let mut out = String::with_capacity(id.len() + 2);
            write_string(id, &mut out);
            out
        };
        return escaped(a).as_bytes()[1..].cmp(&escaped(b).as_bytes()[1..]);
    }
    let (p, q) = (x.get(at).copied(), y.get(at).copied());
    // `None` is the closing quote of the shorter id.
    let escaped = |byte: Option<u8>| -> &'static [u8] {
        match byte {
            None => b"\"",
            Some(byte) if byte < 0x80 => escape_char(byte as char).map_or(&[], str::as_bytes),
            Some(_) => &[],
        }
    };
    let first = |byte: Option<u8>| escaped(byte).first().copied().or(byte).unwrap_or(b'"');
    match (escaped(p), escaped(q)) {
        (e, f) if !e.is_empty() && !f.is_empty() && p.is_some() && q.is_some() => e.cmp(f),
        _ => first(p).cmp(&first(q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::json::surrogates::Piece;

    fn sorted<T: Ord + Clone>(ids: &[T]) -> Vec<T> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids
    }

    #[test]
    fn tabular_ids_sort_like_the_reference_storage_keys() {
        let ids: Vec<TabularId> = ["b", "a", "a!", "a b"].map(TabularId::from).to_vec();
        assert_eq!(sorted(&ids), ["a b", "a!", "a", "b"].map(TabularId::from).to_vec());
        // `"` escapes to `\"` (0x5C after the shared prefix), `\` to `\\`, control chars to `\u00xx`.
        let ids: Vec<TabularId> = ["a\"", "a\\", "a\n", "a", "a#", "ab"].map(TabularId::from).to_vec();
        assert_eq!(sorted(&ids), ["a", "a#", "a\"", "a\\", "a\n", "ab"].map(TabularId::from).to_vec());
    }

    /// The straightforward order: build both escaped forms and compare their bytes.
    fn reference_cmp(a: &str, b: &str) -> Ordering {
        let escaped = |id: &str| {
            let mut out = String::new();
            for piece in surrogates::pieces(id) {
                match piece {
                    Piece::Char(c) => match escape_char(c) {
                        Some(escape) => out.push_str(escape),
                        None => out.push(c),
                    },
                    Piece::Lone(unit) => out.push_str(&format!("\\u{unit:04x}")),
                }
            }
            out.push('"');
            out
        };
        escaped(a).as_bytes().cmp(escaped(b).as_bytes())
    }

    /// The value order written out: UTF-8 with U+FFFD for lone surrogates, then code units.
    fn reference_value_cmp(a: &str, b: &str) -> Ordering {
        let lossy = |id: &str| String::from_utf16_lossy(&surrogates::to_utf16(id));
        lossy(a).cmp(&lossy(b)).then_with(|| surrogates::to_utf16(a).cmp(&surrogates::to_utf16(b)))
    }

    /// Ids from characters that escape, that share leading bytes, and lone surrogates with the
    /// characters that hold them.
    fn id() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let units = [
            0x61, 0x22, 0x5C, 0x0A, 0x01, 0x1F, 0x23, 0x21, 0x30, 0x39, 0xE9, 0x20, 0xD800, 0xDBFF, 0xDC00,
            0xDFFF, 0xFDD0, 0xFDD1, 0xE000, 0xE7FF, 0xFFFD, 0xFFFF,
        ];
        let unit = prop_oneof![
            8 => proptest::sample::select(units.to_vec()).prop_map(|unit| vec![unit]),
            1 => Just(vec![0xD83D, 0xDE00]),
        ];
        proptest::collection::vec(unit, 0..6).prop_map(|units| surrogates::from_utf16(&units.concat()))
    }

    proptest::proptest! {
        #[test]
        fn the_fast_order_is_the_escaped_order(a in id(), b in id()) {
            proptest::prop_assert_eq!(escaped_then_quote_cmp(&a, &b), reference_cmp(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn the_fast_value_order_is_the_storage_key_order(a in id(), b in id()) {
            proptest::prop_assert_eq!(utf8_cmp(&a, &b), reference_value_cmp(&a, &b), "{:?} vs {:?}", a, b);
        }
    }

    #[test]
    fn value_ids_sort_by_raw_bytes() {
        let ids: Vec<ValueId> = ["b", "a!", "a b", "a", ""].map(ValueId::from).to_vec();
        assert_eq!(sorted(&ids), ["", "a", "a b", "a!", "b"].map(ValueId::from).to_vec());
    }

    #[test]
    fn array_indices_come_first_in_numeric_order() {
        let ids = ["", "-1", "01", "4294967295", "4294967294", "10", "9", "0"];
        let expected = ["0", "9", "10", "4294967294", "", "-1", "01", "4294967295"];
        assert_eq!(sorted(&ids.map(ValueId::from)), expected.map(ValueId::from).to_vec());
        let tabular = sorted(&ids.map(TabularId::from));
        assert_eq!(&tabular[..4], &["0", "9", "10", "4294967294"].map(TabularId::from));
    }
}

//! Ids in the order TinyBase's server lists them (spec §3.4): array-index ids first, ascending
//! numerically; then table/row/cell ids by the bytes of their JSON escape followed by `"` (the
//! order of the reference's storage keys), and value ids by their raw bytes.

use std::cmp::Ordering;
use std::fmt;

use super::json::{escape_char, is_array_index};

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
        by_index_then(&self.0, &other.0, |a, b| escaped_then_quote(a).cmp(escaped_then_quote(b)))
    }
}

impl Ord for ValueId {
    fn cmp(&self, other: &Self) -> Ordering {
        by_index_then(&self.0, &other.0, |a, b| a.as_bytes().cmp(b.as_bytes()))
    }
}

fn by_index_then(a: &str, b: &str, rest: impl Fn(&str, &str) -> Ordering) -> Ordering {
    match (is_array_index(a), is_array_index(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => rest(a, b),
    }
}

/// The bytes of `esc(id) + '"'`, lazily, without allocating.
fn escaped_then_quote(id: &str) -> impl Iterator<Item = u8> + '_ {
    id.chars()
        .flat_map(|c| {
            let mut utf8 = [0u8; 4];
            let encoded: EscapedChar = match escape_char(c) {
                Some(escape) => EscapedChar::Static(escape.as_bytes().iter()),
                None => {
                    let len = c.encode_utf8(&mut utf8).len();
                    EscapedChar::Raw(utf8, 0, len)
                }
            };
            encoded
        })
        .chain(std::iter::once(b'"'))
}

enum EscapedChar {
    Static(std::slice::Iter<'static, u8>),
    Raw([u8; 4], usize, usize),
}

impl Iterator for EscapedChar {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        match self {
            Self::Static(bytes) => bytes.next().copied(),
            Self::Raw(bytes, at, len) => (*at < *len).then(|| {
                *at += 1;
                bytes[*at - 1]
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The key layout of the one sled tree: every key starts with the room's prefix
//! (`u32 BE length + party + u32 BE length + room`), then the kind's entry key. The length
//! prefixes make one room's keys never a prefix range of another's (`a` vs `ab`, `p`+`qr` vs `pq`+`r`).

/// The prefix of every key of one room.
pub fn room_prefix(party: &str, room: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + party.len() + room.len());
    push_segment(&mut key, party.as_bytes());
    push_segment(&mut key, room.as_bytes());
    key
}

/// The prefix of every key of one party.
pub fn party_prefix(party: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + party.len());
    push_segment(&mut key, party.as_bytes());
    key
}

fn push_segment(key: &mut Vec<u8>, segment: &[u8]) {
    // Segments are bounded far below u32::MAX (names ≤ 256 bytes, ids ≤ the message limit).
    key.extend_from_slice(&(segment.len() as u32).to_be_bytes());
    key.extend_from_slice(segment);
}

/// Splits one length-prefixed segment off the front of `bytes`.
fn take_segment(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<4>()?;
    let length = u32::from_be_bytes(*length) as usize;
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// The first byte of every index key. Room keys start with a party length whose first byte is
/// 0 (party names are at most 256 bytes), so the index never mixes with room entries.
const INDEX_TAG: u8 = 0xFF;

/// The index key of a room: `0xFF + u32 BE length + party + room`. The room is last and raw, so
/// index keys of one party sort by room name.
pub fn index_key(party: &str, room: &str) -> Vec<u8> {
    let mut key = index_party_prefix(party);
    key.extend_from_slice(room.as_bytes());
    key
}

/// The prefix of every index key of one party.
pub fn index_party_prefix(party: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + party.len());
    key.push(INDEX_TAG);
    push_segment(&mut key, party.as_bytes());
    key
}

/// The prefix of every index key.
pub fn index_prefix() -> [u8; 1] {
    [INDEX_TAG]
}

/// Reads an index key back into (party, room).
pub fn decode_index_key(key: &[u8]) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(&[INDEX_TAG])?;
    let (party, room) = take_segment(rest)?;
    Some((std::str::from_utf8(party).ok()?, std::str::from_utf8(room).ok()?))
}

/// The first byte of every room image key (after rooms' 0 and before the index's 0xFF).
const IMAGE_TAG: u8 = 0xFE;

/// The key of a room's image (all its entries in one value, see `Storage::save_image`):
/// `0xFE + the room prefix`.
pub fn image_key(party: &str, room: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + party.len() + room.len());
    key.push(IMAGE_TAG);
    push_segment(&mut key, party.as_bytes());
    push_segment(&mut key, room.as_bytes());
    key
}

/// An entry of a `tinybase-persister` room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersisterKey {
    /// The room has a store (TinyBase's `hasStore`).
    StoreFlag,
    /// One cell.
    Cell { table: String, row: String, cell: String },
    /// One value.
    Value { id: String },
}

const STORE_FLAG_TAG: u8 = b'h';
const CELL_TAG: u8 = b'c';
const VALUE_TAG: u8 = b'v';

/// The entry key (without the room prefix) of a persister entry.
pub fn persister_entry_key(key: &PersisterKey) -> Vec<u8> {
    match key {
        PersisterKey::StoreFlag => vec![STORE_FLAG_TAG],
        PersisterKey::Cell { table, row, cell } => {
            let mut bytes = Vec::with_capacity(9 + table.len() + row.len() + cell.len());
            bytes.push(CELL_TAG);
            push_segment(&mut bytes, table.as_bytes());
            push_segment(&mut bytes, row.as_bytes());
            bytes.extend_from_slice(cell.as_bytes());
            bytes
        }
        PersisterKey::Value { id } => {
            let mut bytes = Vec::with_capacity(1 + id.len());
            bytes.push(VALUE_TAG);
            bytes.extend_from_slice(id.as_bytes());
            bytes
        }
    }
}

/// A persister entry key read in place, its ids borrowed from the key bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersisterKeyRef<'a> {
    StoreFlag,
    Cell { table: &'a str, row: &'a str, cell: &'a str },
    Value { id: &'a str },
}

/// Reads an entry key back without copying; `None` for keys that do not parse.
pub fn read_persister_entry_key(bytes: &[u8]) -> Option<PersisterKeyRef<'_>> {
    let (tag, rest) = bytes.split_first()?;
    let text = |bytes| std::str::from_utf8(bytes).ok();
    match *tag {
        STORE_FLAG_TAG if rest.is_empty() => Some(PersisterKeyRef::StoreFlag),
        CELL_TAG => {
            let (table, rest) = take_segment(rest)?;
            let (row, cell) = take_segment(rest)?;
            Some(PersisterKeyRef::Cell { table: text(table)?, row: text(row)?, cell: text(cell)? })
        }
        VALUE_TAG => Some(PersisterKeyRef::Value { id: text(rest)? }),
        _ => None,
    }
}

/// Reads an entry key back into owned ids; `None` for keys that do not parse (the tests'
/// round trip; loading reads keys in place with [`read_persister_entry_key`]).
#[cfg(test)]
pub fn decode_persister_entry_key(bytes: &[u8]) -> Option<PersisterKey> {
    Some(match read_persister_entry_key(bytes)? {
        PersisterKeyRef::StoreFlag => PersisterKey::StoreFlag,
        PersisterKeyRef::Cell { table, row, cell } => {
            PersisterKey::Cell { table: table.into(), row: row.into(), cell: cell.into() }
        }
        PersisterKeyRef::Value { id } => PersisterKey::Value { id: id.into() },
    })
}

/// The first byte of every entry key of a `tinybase-sync` room (never a persister tag).
const MERGEABLE_TAG: u8 = b'm';

/// Which tree of a MergeableStore an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeableSection {
    /// `t`: the tables root, a table, a row or a cell.
    Tables,
    /// `v`: the values root or a value.
    Values,
}

/// The entry key of a `tinybase-sync` entry: `m`, then TinyBase's DurableObject key (spec §6):
/// `t` or `v` and the JSON of the id list without its brackets (`t"pets","fido"`).
pub fn mergeable_entry_key(section: MergeableSection, ids: &[&str]) -> Vec<u8> {
    let mut key = String::with_capacity(2 + ids.iter().map(|id| id.len() + 3).sum::<usize>());
    key.push(MERGEABLE_TAG as char);
    key.push(if section == MergeableSection::Tables { 't' } else { 'v' });
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            key.push(',');
        }
        crate::protocol::json::write_string(id, &mut key);
    }
    key.into_bytes()
}

/// Reads a `tinybase-sync` entry key back; `None` for keys that do not parse.
pub fn decode_mergeable_entry_key(bytes: &[u8]) -> Option<(MergeableSection, Vec<String>)> {
    let rest = bytes.strip_prefix(&[MERGEABLE_TAG])?;
    let (section, ids) = rest.split_first()?;
    let section = match section {
        b't' => MergeableSection::Tables,
        b'v' => MergeableSection::Values,
        _ => return None,
    };
    let text = std::str::from_utf8(ids).ok()?;
    let crate::protocol::json::JsValue::Array(items) =
        crate::protocol::json::parse(&format!("[{text}]"), false).ok()?
    else {
        return None;
    };
    let ids = items.into_iter().map(|item| match item {
        crate::protocol::json::JsValue::String(id) => Some(id),
        _ => None,
    });
    let ids: Vec<String> = ids.collect::<Option<_>>()?;
    let most = if section == MergeableSection::Tables { 3 } else { 1 };
    (ids.len() <= most).then_some((section, ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn room_prefixes_never_overlap() {
        let pairs = [
            (("a", "b"), ("a", "bc")),
            (("p", "qr"), ("pq", "r")),
            (("", "ab"), ("a", "b")),
            (("x", ""), ("x", "\0")),
        ];
        for ((p1, r1), (p2, r2)) in pairs {
            let (k1, k2) = (room_prefix(p1, r1), room_prefix(p2, r2));
            assert!(!k1.starts_with(&k2) && !k2.starts_with(&k1), "{p1}/{r1} vs {p2}/{r2}");
        }
        assert!(room_prefix("p", "r").starts_with(&party_prefix("p")));
        assert!(!room_prefix("pq", "r").starts_with(&party_prefix("p")));
        assert_eq!(decode_index_key(&index_key("p", "room")), Some(("p", "room")));
        assert!(!index_key("pq", "r").starts_with(&index_party_prefix("p")));
        assert!(index_key("p", "a") < index_key("p", "a b") && index_key("p", "a b") < index_key("p", "b"));
        assert_ne!(room_prefix(&"p".repeat(256), "r")[0], index_prefix()[0]);
        let image = image_key("p", "r");
        assert!(image[0] != room_prefix(&"p".repeat(256), "r")[0] && image[0] != index_prefix()[0]);
        assert_ne!(image_key("p", "qr"), image_key("pq", "r"));
    }

    #[test]
    fn mergeable_keys_are_tinybase_keys_behind_a_tag_and_read_back() {
        let key = mergeable_entry_key(MergeableSection::Tables, &["pets", "fi\"do", "legs"]);
        assert_eq!(key, b"mt\"pets\",\"fi\\\"do\",\"legs\"".to_vec());
        assert_eq!(
            decode_mergeable_entry_key(&key),
            Some((MergeableSection::Tables, vec!["pets".into(), "fi\"do".into(), "legs".into()]))
        );
        assert_eq!(mergeable_entry_key(MergeableSection::Values, &[]), b"mv".to_vec());
        assert_eq!(decode_mergeable_entry_key(b"mv"), Some((MergeableSection::Values, vec![])));
        for bad in [&b"mv\"a\",\"b\""[..], b"mt1", b"mx", b"m", b"c", b"mt\"a\",\"b\",\"c\",\"d\""] {
            assert_eq!(decode_mergeable_entry_key(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode_persister_entry_key(&key), None);
        // A table's keys never prefix another table's.
        let table = |id: &str| mergeable_entry_key(MergeableSection::Tables, &[id]);
        assert!(!table("pets2").starts_with(&table("pets")));
    }

    #[test]
    fn a_tables_cells_never_share_a_prefix_with_another_table() {
        let cell = |table: &str| {
            persister_entry_key(&PersisterKey::Cell {
                table: table.into(),
                row: "r".into(),
                cell: "c".into(),
            })
        };
        assert!(!cell("ab").starts_with(&cell("a")[..5]));
    }

    #[test]
    fn garbage_keys_do_not_parse() {
        for bytes in [&b""[..], b"x", b"hh", b"c\0\0\0\x05ab", b"c\0\0", b"v\xff"] {
            assert_eq!(decode_persister_entry_key(bytes), None, "{bytes:?}");
        }
    }

    /// Ids as TinyBase may send them: anything, the characters that delimit the reference's
    /// keys (quote, backslash, comma) and NUL, and long ones.
    fn id() -> impl Strategy<Value = String> {
        prop_oneof![".*", "[\"\\\\,\\x00ab]{0,6}", ".{200,1000}"]
    }

    /// Names from a tiny alphabet, so that near-collisions (`a`/`ab`, `p`+`qr`/`pq`+`r`) are common.
    fn name() -> impl Strategy<Value = String> {
        "[pqr\\x00]{0,4}"
    }

    proptest! {
        #[test]
        fn a_room_prefix_never_starts_another_rooms_key(
            (p1, r1, p2, r2) in (name(), name(), name(), name()),
            entry in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            prop_assume!((&p1, &r1) != (&p2, &r2));
            let mut other_key = room_prefix(&p2, &r2);
            other_key.extend_from_slice(&entry);
            prop_assert!(!other_key.starts_with(&room_prefix(&p1, &r1)), "{:?}/{:?} vs {:?}/{:?} + {:?}", p1, r1, p2, r2, entry);
            prop_assert!(other_key.first() != Some(&index_prefix()[0]), "room keys never look like index keys");
        }

        #[test]
        fn entry_keys_round_trip(table in id(), row in id(), cell in id(), id in id()) {
            for key in [PersisterKey::StoreFlag, PersisterKey::Cell { table, row, cell }, PersisterKey::Value { id }] {
                prop_assert_eq!(decode_persister_entry_key(&persister_entry_key(&key)), Some(key));
            }
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_persister_entry_key(&bytes);
            let _ = decode_index_key(&bytes);
        }
    }
}

//! JavaScript strings in Rust `String`s. A JavaScript string is any sequence of UTF-16 code
//! units, and one may hold a lone surrogate (half of a pair without the other half: `'x\ud83d'`
//! is an emoji cut in half), which JSON carries as a `\udxxx` escape and which has no UTF-8 form.
//! TinyBase's servers take such strings anywhere (ids, cells, values, object keys) and give them
//! back as they came, so partyd must hold them.
//!
//! It holds them in ordinary `String`s: a lone surrogate is the noncharacter U+FDD0 followed by
//! the private-use character U+E000 + (unit − 0xD800), and a U+FDD0 of the string itself is
//! U+FDD0 twice. Unicode sets noncharacters aside for a program's internal use, so every string
//! without U+FDD0 (every string in practice) is held as itself, and the mapping stays one-to-one.
//! Ids, cells and values stay `String`s end to end, through the protocol, the room and the storage
//! keys, none of which has to know. Only what gives strings their JavaScript meaning does: the
//! JSON parser makes the held form, the JSON writer prints `\udxxx` as JSON.stringify does, the
//! hash encodes as `TextEncoder` does (U+FFFD), and ids sort by those bytes. So does what compares
//! them with text that never was JSON (party.toml's names): see [`to_plain`] and [`from_plain`].
//! (A `Vec<u16>` or WTF-8 bytes would have changed the type of every id and value, in code far
//! from JSON, for strings no real store holds.)

use std::borrow::Cow;

/// Starts a held lone surrogate, or (doubled) stands for itself.
pub const ESCAPE: char = '\u{FDD0}';
/// The UTF-8 of [`ESCAPE`].
pub(crate) const ESCAPE_UTF8: &[u8] = "\u{FDD0}".as_bytes();
/// The private-use character after [`ESCAPE`] for the surrogate 0xD800; 0xDFFF maps to U+E7FF.
const FIRST_HELD: u32 = 0xE000;
/// The first surrogate code unit.
const FIRST_SURROGATE: u32 = 0xD800;
/// How many surrogate code units there are (0xD800 to 0xDFFF).
const SURROGATES: u32 = 0x800;

/// One element of a JavaScript string as held: a character, or a lone surrogate code unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A Unicode scalar value (a surrogate pair is one).
    Char(char),
    /// A surrogate code unit without its other half.
    Lone(u16),
}

/// Appends one character of a string being held.
pub fn push_char(out: &mut String, c: char) {
    if c == ESCAPE {
        out.push(ESCAPE);
    }
    out.push(c);
}

/// Holds text that never was JSON (a name from party.toml, a URL): itself, unless it has U+FDD0.
pub fn from_plain(text: &str) -> Cow<'_, str> {
    if is_plain(text) {
        return Cow::Borrowed(text);
    }
    let mut held = String::with_capacity(text.len() + 3);
    text.chars().for_each(|c| push_char(&mut held, c));
    Cow::Owned(held)
}

/// Appends a lone surrogate code unit (0xD800 ..= 0xDFFF) to a string being held.
pub fn push_lone_surrogate(out: &mut String, unit: u16) {
    debug_assert!((0xD800..=0xDFFF).contains(&unit), "{unit:#x} is not a surrogate");
    // A surrogate's low 11 bits are its offset from 0xD800, and U+E000 ..= U+E7FF are all chars.
    if let Some(held) = char::from_u32(FIRST_HELD + (u32::from(unit) & (SURROGATES - 1))) {
        out.push(ESCAPE);
        out.push(held);
    }
}

/// The pieces of a held string, in order. A U+FDD0 that neither doubles nor precedes a held
/// surrogate (text never made by the parser) reads as itself.
pub fn pieces(held: &str) -> impl Iterator<Item = Piece> + '_ {
    let mut chars = held.chars().peekable();
    std::iter::from_fn(move || {
        let c = chars.next()?;
        if c != ESCAPE {
            return Some(Piece::Char(c));
        }
        Some(match chars.peek().copied() {
            Some(ESCAPE) => {
                chars.next();
                Piece::Char(ESCAPE)
            }
            Some(next) if (FIRST_HELD..FIRST_HELD + SURROGATES).contains(&u32::from(next)) => {
                chars.next();
                Piece::Lone((u32::from(next) - FIRST_HELD + FIRST_SURROGATE) as u16)
            }
            _ => Piece::Char(ESCAPE),
        })
    })
}

/// Whether a held string is its own text (holds no U+FDD0, so no lone surrogate either).
pub fn is_plain(held: &str) -> bool {
    !held.contains(ESCAPE)
}

/// The string as Rust text, to compare with names that never went through JSON (party.toml's):
/// `None` when it holds a lone surrogate, which no such name can.
pub fn to_plain(held: &str) -> Option<Cow<'_, str>> {
    if is_plain(held) {
        return Some(Cow::Borrowed(held));
    }
    pieces(held)
        .map(|piece| match piece {
            Piece::Char(c) => Some(c),
            Piece::Lone(_) => None,
        })
        .collect::<Option<String>>()
        .map(Cow::Owned)
}

/// The UTF-8 that `TextEncoder` makes of the string: each lone surrogate becomes U+FFFD.
pub fn to_utf8_lossy(held: &str) -> Cow<'_, str> {
    if is_plain(held) {
        return Cow::Borrowed(held);
    }
    Cow::Owned(
        pieces(held)
            .map(|piece| match piece {
                Piece::Char(c) => c,
                Piece::Lone(_) => char::REPLACEMENT_CHARACTER,
            })
            .collect(),
    )
}

/// Holds a JavaScript string given as UTF-16 code units (`String.fromCharCode(...units)`).
pub fn from_utf16(units: &[u16]) -> String {
    let mut out = String::with_capacity(units.len());
    for decoded in char::decode_utf16(units.iter().copied()) {
        match decoded {
            Ok(c) => push_char(&mut out, c),
            Err(lone) => push_lone_surrogate(&mut out, lone.unpaired_surrogate()),
        }
    }
    out
}

/// The UTF-16 code units of a held string.
pub fn to_utf16(held: &str) -> Vec<u16> {
    let mut units = Vec::with_capacity(held.len());
    for piece in pieces(held) {
        match piece {
            Piece::Char(c) => units.extend_from_slice(c.encode_utf16(&mut [0; 2])),
            Piece::Lone(unit) => units.push(unit),
        }
    }
    units
}

/// JavaScript strings of `units` code units or pairs, for property tests: text, lone surrogates,
/// and the characters that hold those (U+FDD0, private-use ones) as text of their own.
#[cfg(test)]
pub(crate) fn arbitrary(units: std::ops::Range<usize>) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let unit = prop_oneof![
        4 => any::<char>().prop_map(|c| c.encode_utf16(&mut [0; 2]).to_vec()),
        1 => (0xD800u16..=0xDFFF).prop_map(|unit| vec![unit]),
        1 => proptest::sample::select(vec![0xFDD0u16, 0xE000, 0xE7FF]).prop_map(|unit| vec![unit]),
    ];
    proptest::collection::vec(unit, units).prop_map(|units| from_utf16(&units.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strings_without_the_escape_are_held_as_themselves() {
        for text in ["", "a", "x😀", "\u{e000}", "\u{fffd}", "\u{fdd1}\u{e000}"] {
            let units: Vec<u16> = text.encode_utf16().collect();
            assert_eq!(from_utf16(&units), text);
            assert!(is_plain(text));
            assert_eq!(to_utf8_lossy(text), text);
        }
    }

    #[test]
    fn lone_surrogates_and_the_escape_are_held_apart() {
        let held = from_utf16(&[0x78, 0xD83D, 0xFDD0, 0xDC00, 0xFDD0, 0xE000, 0xDFFF]);
        assert_eq!(
            held,
            "x\u{fdd0}\u{e03d}\u{fdd0}\u{fdd0}\u{fdd0}\u{e400}\u{fdd0}\u{fdd0}\u{e000}\u{fdd0}\u{e7ff}"
        );
        assert_eq!(
            pieces(&held).collect::<Vec<_>>(),
            [
                Piece::Char('x'),
                Piece::Lone(0xD83D),
                Piece::Char(ESCAPE),
                Piece::Lone(0xDC00),
                Piece::Char(ESCAPE),
                Piece::Char('\u{e000}'),
                Piece::Lone(0xDFFF)
            ]
        );
        assert_eq!(to_utf8_lossy(&held), "x\u{fffd}\u{fdd0}\u{fffd}\u{fdd0}\u{e000}\u{fffd}");
        assert_eq!(to_plain(&held), None);
        assert_eq!(to_plain(&from_utf16(&[0x61, 0xFDD0, 0xE000])).as_deref(), Some("a\u{fdd0}\u{e000}"));
        // A lone U+FDD0 in text the parser did not make reads as itself.
        assert_eq!(pieces("\u{fdd0}a").collect::<Vec<_>>(), [Piece::Char(ESCAPE), Piece::Char('a')]);
        assert_eq!(from_plain("a\u{fdd0}b\u{fdd0}"), "a\u{fdd0}\u{fdd0}b\u{fdd0}\u{fdd0}");
        assert_eq!(to_plain(&from_plain("a\u{fdd0}\u{e000}")).as_deref(), Some("a\u{fdd0}\u{e000}"));
    }

    proptest! {
        #[test]
        fn utf16_round_trips_and_holding_is_one_to_one(
            a in proptest::collection::vec(prop_oneof![any::<u16>(), 0xD7F0u16..0xE010, Just(0xFDD0), 0xE000u16..0xE800], 0..12),
            b in proptest::collection::vec(prop_oneof![any::<u16>(), 0xD7F0u16..0xE010, Just(0xFDD0), 0xE000u16..0xE800], 0..12),
        ) {
            let (held_a, held_b) = (from_utf16(&a), from_utf16(&b));
            prop_assert_eq!(to_utf16(&held_a), a.clone());
            prop_assert_eq!(held_a == held_b, a == b);
            // Joining held strings holds the joined string, unless the join makes a pair.
            let pair = matches!((a.last(), b.first()), (Some(0xD800..=0xDBFF), Some(0xDC00..=0xDFFF)));
            if !pair {
                prop_assert_eq!(held_a + &held_b, from_utf16(&[a, b].concat()));
            }
        }
    }
}

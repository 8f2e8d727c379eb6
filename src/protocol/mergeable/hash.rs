//! TinyBase's string hash (spec §2.1): 32-bit FNV-1a over the UTF-8 bytes of a string, as
//! `TextEncoder` makes them (a lone surrogate becomes U+FFFD).

use crate::protocol::json::surrogates;

/// The FNV-1a offset basis.
const OFFSET_BASIS: u32 = 0x811C_9DC5;
/// The FNV-1a prime.
const PRIME: u32 = 0x0100_0193;

/// `H(bytes)`: FNV-1a over raw bytes (for strings, their UTF-8).
pub fn hash_bytes(bytes: &[u8]) -> u32 {
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(PRIME))
}

/// `H(s)`: FNV-1a over the `TextEncoder` UTF-8 of the JavaScript string `s` (held as
/// [`surrogates`] describes; JSON text, which holds nothing, goes to [`hash_bytes`]).
pub fn hash(s: &str) -> u32 {
    hash_bytes(surrogates::to_utf8_lossy(s).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{hash, hash_bytes};
    use crate::protocol::json::{parse, JsValue};

    #[test]
    fn standard_fnv1a_values() {
        assert_eq!(hash(""), 2_166_136_261);
        assert_eq!(hash("a"), 3_826_002_220);
        assert_eq!(hash("foobar"), 3_214_735_720);
    }

    #[test]
    fn lone_surrogates_hash_as_u_fffd_like_text_encoder_makes_them() {
        // The `inputUtf16` cases of the spec's vectors/hash.json, read as JSON gives them to us.
        for (json, expected) in
            [(r#""\ud800""#, 55_024_714), (r#""a\udc00b""#, 1_982_953_453), (r#""\ud83d""#, 55_024_714)]
        {
            let JsValue::String(s) = parse(json, false).unwrap() else { panic!("{json}") };
            assert_eq!(hash(&s), expected, "{json}");
        }
        // The characters that carry lone surrogates inside partyd hash as themselves.
        let JsValue::String(s) = parse(r#""\ufdd0\ue000\ufdd0""#, false).unwrap() else { panic!() };
        assert_eq!(hash(&s), hash_bytes("\u{fdd0}\u{e000}\u{fdd0}".as_bytes()));
    }
}

//! TinyBase's string hash (spec §2.1): 32-bit FNV-1a over the UTF-8 bytes of a string.

/// The FNV-1a offset basis.
const OFFSET_BASIS: u32 = 0x811C_9DC5;
/// The FNV-1a prime.
const PRIME: u32 = 0x0100_0193;

/// `H(bytes)`: FNV-1a over raw bytes (for strings, their UTF-8).
pub fn hash_bytes(bytes: &[u8]) -> u32 {
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(PRIME))
}

/// `H(s)`: FNV-1a over the UTF-8 bytes of `s`.
pub fn hash(s: &str) -> u32 {
    hash_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn standard_fnv1a_values() {
        assert_eq!(hash(""), 2_166_136_261);
        assert_eq!(hash("a"), 3_826_002_220);
        assert_eq!(hash("foobar"), 3_214_735_720);
    }
}

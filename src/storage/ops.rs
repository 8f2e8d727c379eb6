//! Key operations and their bytes, shared by journal records (a round's operations) and room
//! images (a room's entries). Each is the key (u32 length, bytes), then 0 for a removal or 1
//! and the value (u32 length, bytes).

/// Whole keys and their new values (`None`: remove), in order.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Appends the encoding of `ops` to `out`.
pub fn encode<'a>(ops: impl IntoIterator<Item = &'a (Vec<u8>, Option<Vec<u8>>)>, out: &mut Vec<u8>) {
    for (key, value) in ops {
        push(out, key, value.as_deref());
    }
}

/// Appends the encoding of one operation to `out`.
pub fn push(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    let mut put = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    put(key);
    match value {
        Some(value) => {
            put(&[1]);
            put(value);
        }
        None => put(&[0]),
    }
}

/// The operations of a payload, or `None` if it is not one [`encode`] wrote.
pub fn decode(payload: &[u8]) -> Option<Ops> {
    let mut ops = Vec::new();
    visit(payload, |key, value| ops.push((key.to_vec(), value.map(<[u8]>::to_vec)))).then_some(ops)
}

/// Calls `visit` with each operation of a payload in order, without copying; false if the
/// payload is not one [`encode`] wrote (operations before the damage have been visited).
pub fn visit(mut payload: &[u8], mut visit: impl FnMut(&[u8], Option<&[u8]>)) -> bool {
    fn take<'a>(payload: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
        let bytes = payload.get(4..4 + len)?;
        *payload = &payload[4 + len..];
        Some(bytes)
    }
    while !payload.is_empty() {
        let Some(key) = take(&mut payload) else { return false };
        let value = match take(&mut payload) {
            Some([0]) => None,
            Some([1]) => match take(&mut payload) {
                Some(value) => Some(value),
                None => return false,
            },
            _ => return false,
        };
        visit(key, value);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_and_damaged_payloads_are_refused() {
        let ops: Ops = vec![
            (b"k".to_vec(), Some(b"v".to_vec())),
            (Vec::new(), None),
            (b"\0\x01".to_vec(), Some(Vec::new())),
        ];
        let mut payload = Vec::new();
        encode(&ops, &mut payload);
        assert_eq!(decode(&payload), Some(ops));
        assert_eq!(decode(&[]), Some(Vec::new()));
        assert_eq!(decode(&payload[..payload.len() - 1]), None, "truncated");
        let mut bad_tag = Vec::new();
        encode(&[(b"k".to_vec(), None)], &mut bad_tag);
        *bad_tag.last_mut().unwrap() = 7;
        assert_eq!(decode(&bad_tag), None);
    }
}

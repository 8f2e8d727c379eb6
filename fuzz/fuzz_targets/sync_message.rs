//! The synchronizer protocol's parsers (`partyd::protocol::mergeable`): messages, fragment
//! headers and the reassembly of fragments, on arbitrary text.
//!
//! Input: UTF-8 text cut at U+001E into payloads as a socket receives them. A payload's first
//! character, when it is a control character other than a newline, is not sent: it moves the
//! clock on by ten times its code point mod 128, in milliseconds (up to 1.27 s). Checked:
//! - nothing panics;
//! - a valid message re-encodes to text that decodes to the same message (when its numbers
//!   are finite);
//! - reassembly stops at the first refusal (the socket closes with it), a whole message from
//!   fragments is every piece of one message id in index order and decodes from their joined
//!   pieces, and the partial messages held stay within TinyBase's limits (pieces per message,
//!   partial messages, buffered bytes), expired ones (older than 1 s) let go.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use partyd::protocol::json::JsValue;
use partyd::protocol::mergeable::frame::{
    decode, encode, fragment, split, FrameError, Inbound, Reassembly, FRAGMENT_TIMEOUT_MS,
    MAX_BUFFERED_BYTES, MAX_FRAGMENT_COUNT, MAX_PARTIAL_MESSAGES,
};

/// A partial message as the harness saw it: first piece's time, pieces, bytes.
struct Held {
    started_ms: u64,
    pieces: usize,
    bytes: usize,
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
    let mut reassembly = Reassembly::default();
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut now_ms = 0u64;
    for payload in text.split('\u{1e}') {
        let mut payload = payload;
        if let Some(first) = payload.chars().next().filter(|c| c.is_control() && *c != '\n') {
            now_ms += u64::from(first) % 128 * 10;
            payload = &payload[first.len_utf8()..];
        }
        // A message alone: decoding, and the round trip of a valid one.
        // Cells that are arrays or objects are not looked into (as TinyBase 10 does), so they may
        // hold numbers past f64's range, which JSON writes as null: those do not come back.
        if let Some(message) = decode(payload).ok().filter(|message| all_finite(&message.body)) {
            let again = encode(message.request_id.as_deref(), message.kind, &message.body);
            assert_eq!(decode(&again), Ok(message), "re-encoded as {again}");
        }
        let Some((recipient, remainder)) = split(payload) else { continue };
        let piece = fragment(remainder);
        held.retain(|_, partial| now_ms.saturating_sub(partial.started_ms) < FRAGMENT_TIMEOUT_MS);
        match reassembly.accept(recipient, remainder, now_ms) {
            Ok(Inbound::Pending) => {
                let piece = piece.expect("only a fragment can be pending");
                assert!(piece.count <= MAX_FRAGMENT_COUNT && piece.index < piece.count);
                let partial = held.entry(format!("{recipient}\n{}", piece.message_id)).or_insert(Held {
                    started_ms: now_ms,
                    pieces: 0,
                    bytes: 0,
                });
                partial.pieces += 1;
                partial.bytes += remainder.len();
                assert!(partial.pieces < piece.count, "a pending message still misses pieces");
            }
            Ok(Inbound::Message { remainders, message }) => {
                if remainders == [remainder] && decode(remainder).is_ok() {
                    assert_eq!(decode(remainder).as_ref(), Ok(&message));
                    continue;
                }
                let piece = piece.expect("a message of several remainders ends with a fragment");
                let pieces: Vec<_> =
                    remainders.iter().map(|r| fragment(r).expect("every remainder is a piece")).collect();
                assert_eq!(pieces.len(), piece.count);
                for (index, each) in pieces.iter().enumerate() {
                    assert_eq!(
                        (each.message_id, each.index, each.count),
                        (piece.message_id, index, piece.count)
                    );
                }
                let joined: String = pieces.iter().map(|each| each.piece).collect();
                assert_eq!(decode(&joined).as_ref(), Ok(&message));
                held.remove(&format!("{recipient}\n{}", piece.message_id));
            }
            Err(FrameError::TooManyFragments(reason)) => {
                let piece = piece.expect("only fragments count against the limits");
                let new = !held.contains_key(&format!("{recipient}\n{}", piece.message_id));
                let buffered: usize = held.values().map(|partial| partial.bytes).sum();
                assert!(
                    piece.count > MAX_FRAGMENT_COUNT
                        || (new && held.len() >= MAX_PARTIAL_MESSAGES)
                        || buffered + remainder.len() > MAX_BUFFERED_BYTES,
                    "refused ({reason}) within the limits"
                );
                return;
            }
            Err(FrameError::Invalid(_)) => return,
        }
        assert!(held.len() <= MAX_PARTIAL_MESSAGES);
        assert!(held.values().map(|partial| partial.bytes).sum::<usize>() <= MAX_BUFFERED_BYTES);
    }
});

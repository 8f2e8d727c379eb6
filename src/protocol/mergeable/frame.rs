//! Legacy synchronizer framing (spec §4.2–§4.3): `recipient "\n" remainder`, the remainder being
//! one JSON message or one fragment of a larger one; decoding and validating messages, and
//! reassembling fragments per socket within TinyBase's limits.

use std::collections::HashMap;

use super::message::{validate, InvalidMessage, MessageType};
use crate::protocol::json::{self, JsValue};

/// How long a partial message may wait for its other pieces (TinyBase's request timeout).
pub const FRAGMENT_TIMEOUT_MS: u64 = 1000;
/// The most pieces one message may have.
pub const MAX_FRAGMENT_COUNT: usize = 1000;
/// The most partial messages one socket may have at once.
pub const MAX_PARTIAL_MESSAGES: usize = 100;
/// The most bytes of pieces one socket may have buffered.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// A valid synchronizer message, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncMessage {
    /// The request id (`None` for `null`).
    pub request_id: Option<String>,
    /// What it is.
    pub kind: MessageType,
    /// Its body (deletion markers decoded to `Undefined`).
    pub body: JsValue,
}

/// Splits a payload at its first newline into (recipient or sender, remainder).
pub fn split(payload: &str) -> Option<(&str, &str)> {
    payload.split_once('\n')
}

/// Parses and validates one JSON message (spec §3.1).
pub fn decode(remainder: &str) -> Result<SyncMessage, InvalidMessage> {
    let value = json::parse(remainder, true).map_err(|_| InvalidMessage("not JSON"))?;
    let (request_id, kind) = {
        let message = validate(&value)?;
        (message.request_id.map(str::to_owned), message.kind)
    };
    let JsValue::Array(mut parts) = value else { return Err(InvalidMessage("not an array")) };
    let body = parts.pop().unwrap_or(JsValue::Undefined);
    Ok(SyncMessage { request_id, kind, body })
}

/// Writes `[requestId, message, body]` as a TinyBase synchronizer sends it.
pub fn encode(request_id: Option<&str>, kind: MessageType, body: &JsValue) -> String {
    let mut out = String::from("[");
    match request_id {
        Some(id) => json::write_string(id, &mut out),
        None => out.push_str("null"),
    }
    out.push_str(&format!(",{},", kind.number()));
    json::write_wire(body, &mut out);
    out.push(']');
    out
}

/// One piece of a fragmented message: `messageId "\n" index "\n" count "\n" piece`.
#[derive(Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// 16 alphabet characters naming the message.
    pub message_id: &'a str,
    /// This piece's position.
    pub index: usize,
    /// How many pieces the message has.
    pub count: usize,
    /// This piece of the message's JSON.
    pub piece: &'a str,
}

/// Reads a remainder as a fragment; `None` if it does not have the fragment header.
pub fn fragment(remainder: &str) -> Option<Fragment<'_>> {
    let (message_id, rest) = remainder.split_once('\n')?;
    if message_id.len() != 16
        || !message_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let (index, rest) = rest.split_once('\n')?;
    let (count, piece) = rest.split_once('\n')?;
    let number = |digits: &str| -> Option<usize> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Absurdly long digit strings are simply too many pieces.
        Some(digits.parse::<usize>().unwrap_or(usize::MAX))
    };
    Some(Fragment { message_id, index: number(index)?, count: number(count)?, piece })
}

/// Why a socket must be closed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Close 1007 `tinybase:14`.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// Close 1013 `tinybase:15:fragments`.
    #[error("too many fragments: {0}")]
    TooManyFragments(&'static str),
}

impl From<InvalidMessage> for FrameError {
    fn from(invalid: InvalidMessage) -> Self {
        Self::Invalid(invalid.0)
    }
}

/// What one inbound remainder amounts to.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// A whole message: the remainders to relay (one, or every piece in index order, each
    /// `messageId\ni\nn\npiece`) and the message itself.
    Message { remainders: Vec<String>, message: SyncMessage },
    /// A piece of a message that is not complete yet.
    Pending,
}

struct Partial {
    count: usize,
    pieces: Vec<Option<String>>,
    received: usize,
    bytes: usize,
    started_ms: u64,
}

/// The fragments one socket has sent that do not make a whole message yet.
#[derive(Default)]
pub struct Reassembly {
    partial: HashMap<String, Partial>,
    buffered: usize,
}

impl Reassembly {
    /// Takes one remainder addressed to `recipient` at time `now_ms`.
    pub fn accept(&mut self, recipient: &str, remainder: &str, now_ms: u64) -> Result<Inbound, FrameError> {
        let whole = decode(remainder);
        if let Ok(message) = whole {
            return Ok(Inbound::Message { remainders: vec![remainder.to_owned()], message });
        }
        let Some(piece) = fragment(remainder) else { return Err(whole.unwrap_err().into()) };
        self.expire(now_ms);
        if piece.count > MAX_FRAGMENT_COUNT {
            return Err(FrameError::TooManyFragments("more than 1000 pieces"));
        }
        if piece.index >= piece.count {
            return Err(FrameError::Invalid("a fragment index is out of range"));
        }
        let key = format!("{recipient}\n{}", piece.message_id);
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL_MESSAGES {
            return Err(FrameError::TooManyFragments("too many partial messages"));
        }
        if self.buffered + remainder.len() > MAX_BUFFERED_BYTES {
            return Err(FrameError::TooManyFragments("too many buffered bytes"));
        }
        let partial = self.partial.entry(key.clone()).or_insert_with(|| Partial {
            count: piece.count,
            pieces: vec![None; piece.count],
            received: 0,
            bytes: 0,
            started_ms: now_ms,
        });
        if partial.count != piece.count {
            return Err(FrameError::Invalid("fragments disagree on their count"));
        }
        let slot = &mut partial.pieces[piece.index];
        if slot.is_some() {
            return Err(FrameError::Invalid("a fragment index came twice"));
        }
        *slot = Some(remainder.to_owned());
        partial.received += 1;
        partial.bytes += remainder.len();
        self.buffered += remainder.len();
        if partial.received < partial.count {
            return Ok(Inbound::Pending);
        }
        let Some(partial) = self.partial.remove(&key) else { return Ok(Inbound::Pending) };
        self.buffered -= partial.bytes;
        let remainders: Vec<String> = partial.pieces.into_iter().flatten().collect();
        let joined: String = remainders.iter().filter_map(|piece| fragment(piece).map(|f| f.piece)).collect();
        let message = decode(&joined)?;
        Ok(Inbound::Message { remainders, message })
    }

    /// Drops partial messages whose first piece came more than the timeout ago.
    fn expire(&mut self, now_ms: u64) {
        let buffered = &mut self.buffered;
        self.partial.retain(|_, partial| {
            let keep = now_ms.saturating_sub(partial.started_ms) < FRAGMENT_TIMEOUT_MS;
            if !keep {
                *buffered -= partial.bytes;
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(message: &str, id: &str, size: usize) -> Vec<String> {
        let chunks: Vec<&str> =
            message.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).unwrap()).collect();
        chunks.iter().enumerate().map(|(i, c)| format!("{id}\n{i}\n{}\n{c}", chunks.len())).collect()
    }

    #[test]
    fn whole_messages_decode_and_encode_back() {
        let text = r#"["x.y",3,[[{"t":[{"r":[{"c":["\uFFFC","NjEtLV-----67WEb"]}]}]}],[{}],1]]"#;
        let message = decode(text).unwrap();
        assert_eq!(message.kind, MessageType::ContentDiff);
        assert_eq!(message.request_id.as_deref(), Some("x.y"));
        assert_eq!(
            encode(message.request_id.as_deref(), message.kind, &message.body),
            text.replace("\\uFFFC", "\u{FFFC}")
        );
        assert_eq!(
            encode(None, MessageType::GetContentHashes, &JsValue::String(String::new())),
            r#"[null,1,""]"#
        );
        assert!(decode("[null,1,\"\"").is_err());
        assert!(decode("[null,9,\"\"]").is_err());
        assert_eq!(split("S\n[1]"), Some(("S", "[1]")));
        assert_eq!(split("\n[1]\n"), Some(("", "[1]\n")));
        assert_eq!(split("no newline"), None);
    }

    #[test]
    fn fragments_reassemble_in_any_order_and_keep_their_pieces() {
        let message = r#"["tx",2,[123456,654321]]"#;
        let mut parts = pieces(message, "abcdefghijklmnop", 5);
        parts.swap(0, 2);
        let mut reassembly = Reassembly::default();
        for part in &parts[..parts.len() - 1] {
            assert_eq!(reassembly.accept("", part, 0), Ok(Inbound::Pending));
        }
        let Ok(Inbound::Message { remainders, message: decoded }) =
            reassembly.accept("", parts.last().unwrap(), 10)
        else {
            panic!()
        };
        assert_eq!(decoded.kind, MessageType::ContentHashes);
        assert_eq!(remainders, pieces(message, "abcdefghijklmnop", 5));
        assert_eq!(reassembly.buffered, 0);
    }

    #[test]
    fn bad_fragments_close_the_socket() {
        let mut r = Reassembly::default();
        assert_eq!(
            r.accept("", "abcdefghijklmnop\n0\n1001\nx", 0),
            Err(FrameError::TooManyFragments("more than 1000 pieces"))
        );
        assert!(matches!(r.accept("", "abcdefghijklmnop\n2\n2\nx", 0), Err(FrameError::Invalid(_))));
        assert_eq!(r.accept("", "abcdefghijklmnop\n0\n2\n[", 0), Ok(Inbound::Pending));
        assert!(matches!(r.accept("", "abcdefghijklmnop\n0\n2\n[", 0), Err(FrameError::Invalid(_))));
        assert!(matches!(r.accept("", "abcdefghijklmnop\n1\n3\n]", 0), Err(FrameError::Invalid(_))));
        // Joined but not a valid message.
        assert!(matches!(r.accept("", "abcdefghijklmnop\n1\n2\n]", 0), Err(FrameError::Invalid(_))));
        assert!(matches!(r.accept("", "short\n0\n2\nx", 0), Err(FrameError::Invalid(_))));
        assert!(matches!(r.accept("", "not json", 0), Err(FrameError::Invalid(_))));
        assert!(matches!(r.accept("", "abcdefghijklmnop\n-1\n2\nx", 0), Err(FrameError::Invalid(_))));
        assert!(matches!(
            r.accept("", "abcdefghijklmnop\n99999999999999999999999\n2\nx", 0),
            Err(FrameError::Invalid(_))
        ));
    }

    #[test]
    fn partial_messages_are_bounded_and_expire() {
        let mut r = Reassembly::default();
        for i in 0..MAX_PARTIAL_MESSAGES {
            assert_eq!(r.accept("", &format!("{i:0>16}\n0\n2\n["), 0), Ok(Inbound::Pending));
        }
        assert_eq!(
            r.accept("", "zzzzzzzzzzzzzzzz\n0\n2\n[", 10),
            Err(FrameError::TooManyFragments("too many partial messages"))
        );
        // A second later the old ones are gone.
        assert_eq!(r.accept("", "zzzzzzzzzzzzzzzz\n0\n2\n[", FRAGMENT_TIMEOUT_MS), Ok(Inbound::Pending));
        assert_eq!(r.partial.len(), 1);
        let big = format!("yyyyyyyyyyyyyyyy\n0\n2\n{}", "x".repeat(MAX_BUFFERED_BYTES));
        assert_eq!(
            r.accept("", &big, FRAGMENT_TIMEOUT_MS),
            Err(FrameError::TooManyFragments("too many buffered bytes"))
        );
    }
}

//! Synchronizer messages (spec §3.1): `[requestId, message, body]` and the validity rules the v10
//! server applies to everything it relays (an invalid message closes its sender with 1007).

use super::hlc::is_valid as is_valid_hlc;
use crate::protocol::json::JsValue;

/// The message numbers of the synchronizer protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// 0: the answer to a request.
    Response,
    /// 1: asks for `[tablesHash, valuesHash]`.
    GetContentHashes,
    /// 2: announces the sender's content hashes.
    ContentHashes,
    /// 3: changes to merge.
    ContentDiff,
    /// 4: `getMergeableTableDiff(body)`.
    GetTableDiff,
    /// 5: `getMergeableRowDiff(body)`.
    GetRowDiff,
    /// 6: `getMergeableCellDiff(body)`.
    GetCellDiff,
    /// 7: `getMergeableValueDiff(body)`.
    GetValueDiff,
}

impl MessageType {
    fn from_number(number: f64) -> Option<Self> {
        const KINDS: [MessageType; 8] = [
            MessageType::Response,
            MessageType::GetContentHashes,
            MessageType::ContentHashes,
            MessageType::ContentDiff,
            MessageType::GetTableDiff,
            MessageType::GetRowDiff,
            MessageType::GetCellDiff,
            MessageType::GetValueDiff,
        ];
        // Only whole numbers 0 to 7 name a message (1.5 or -0.5 do not).
        (number.fract() == 0.0 && (0.0..8.0).contains(&number)).then(|| KINDS[number as usize])
    }

    /// The message's number on the wire.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// A valid message, taken apart.
#[derive(Debug, PartialEq)]
pub struct Message<'a> {
    /// The request id (`None` for `null`).
    pub request_id: Option<&'a str>,
    /// What it is.
    pub kind: MessageType,
    /// Its body.
    pub body: &'a JsValue,
}

/// Why a message is invalid.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid synchronizer message: {0}")]
pub struct InvalidMessage(pub &'static str);

fn is_hash(value: &JsValue) -> bool {
    matches!(value, JsValue::Number(n) if n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(n))
}

fn is_hash_tree(value: &JsValue, depth: u8) -> bool {
    match value {
        JsValue::Object(members) => {
            members
                .iter()
                .all(|(_, member)| if depth == 0 { is_hash(member) } else { is_hash_tree(member, depth - 1) })
        }
        _ => false,
    }
}

fn is_content_hashes(value: &JsValue) -> bool {
    matches!(value, JsValue::Array(parts) if parts.len() == 2 && parts.iter().all(is_hash))
}

fn is_leaf(value: &JsValue) -> bool {
    match value {
        JsValue::Number(n) => n.is_finite(),
        _ => true,
    }
}

/// A wire stamp of depth `depth`: `[thing]` or `[thing, hlc]`, never with a hash.
fn is_wire_stamp(value: &JsValue, depth: u8) -> bool {
    let JsValue::Array(parts) = value else { return false };
    let hlc_ok = match parts.get(1) {
        None => parts.len() == 1,
        Some(JsValue::String(hlc)) => parts.len() == 2 && is_valid_hlc(hlc, None),
        Some(_) => false,
    };
    hlc_ok
        && match (&parts[0], depth) {
            (thing, 0) => is_leaf(thing),
            (JsValue::Object(members), _) => {
                members.iter().all(|(_, member)| is_wire_stamp(member, depth - 1))
            }
            _ => false,
        }
}

fn is_changes(value: &JsValue) -> bool {
    let JsValue::Array(parts) = value else { return false };
    let ends_right = match parts.len() {
        2 => true,
        3 => parts[2] == JsValue::Number(1.0),
        _ => false,
    };
    ends_right && is_wire_stamp(&parts[0], 3) && is_wire_stamp(&parts[1], 1)
}

fn is_response_body(body: &JsValue) -> bool {
    is_content_hashes(body)
        || is_wire_stamp(body, 3)
        || is_wire_stamp(body, 1)
        || matches!(body, JsValue::Array(parts) if parts.len() == 2 && is_wire_stamp(&parts[0], 3) && (is_hash_tree(&parts[1], 0) || is_hash_tree(&parts[1], 1)))
}

/// Validates a decoded message (the U+FFFC marker already turned into `Undefined`).
pub fn validate(value: &JsValue) -> Result<Message<'_>, InvalidMessage> {
    let JsValue::Array(parts) = value else { return Err(InvalidMessage("not an array")) };
    let [request_id, number, body] = parts.as_slice() else { return Err(InvalidMessage("not 3 elements")) };
    let request_id = match request_id {
        JsValue::Null => None,
        JsValue::String(id) => Some(id.as_str()),
        _ => return Err(InvalidMessage("the request id is not null or a string")),
    };
    let JsValue::Number(number) = number else { return Err(InvalidMessage("the message is not a number")) };
    let kind = MessageType::from_number(*number).ok_or(InvalidMessage("unknown message"))?;
    let body_ok = match kind {
        MessageType::Response => is_response_body(body),
        MessageType::GetContentHashes => *body == JsValue::String(String::new()),
        MessageType::ContentHashes => is_content_hashes(body),
        MessageType::ContentDiff => is_changes(body),
        MessageType::GetTableDiff | MessageType::GetValueDiff => is_hash_tree(body, 0),
        MessageType::GetRowDiff => is_hash_tree(body, 1),
        MessageType::GetCellDiff => is_hash_tree(body, 2),
    };
    if !body_ok {
        return Err(InvalidMessage("the body does not fit the message"));
    }
    Ok(Message { request_id, kind, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::json::parse;

    fn check(text: &str) -> Result<MessageType, InvalidMessage> {
        let value = parse(text, true).unwrap();
        validate(&value).map(|message| message.kind)
    }

    #[test]
    fn valid_messages_of_every_kind() {
        let valid = [
            (r#"[null,1,""]"#, MessageType::GetContentHashes),
            (r#"["t1",2,[123,0]]"#, MessageType::ContentHashes),
            (
                r#"["t1",3,[[{"t":[{"r":[{"c":["x","NjEtLV-----67WEb"],"d":["\uFFFC","NjEtLV-----67WEb"]}]}]}],[{}],1]]"#,
                MessageType::ContentDiff,
            ),
            (r#"["t1",3,[[{}],[{"v":[{"a":[1]},"NjEtLV-----67WEb"]},""]]]"#, MessageType::ContentDiff),
            (r#"["t1.r",4,{"t":4294967295}]"#, MessageType::GetTableDiff),
            (r#"["t1.r",5,{"t":{"r":1}}]"#, MessageType::GetRowDiff),
            (r#"["t1.r",6,{"t":{"r":{"c":0}}}]"#, MessageType::GetCellDiff),
            (r#"["t1.r",7,{}]"#, MessageType::GetValueDiff),
            (r#"["t1.r",0,[1,2]]"#, MessageType::Response),
            (r#"["t1.r",0,[[{}],{"t":1}]]"#, MessageType::Response),
            (r#"["t1.r",0,[[{}],{"t":{"r":1}}]]"#, MessageType::Response),
            (r#"["t1.r",0,[{"v":["x"]}]]"#, MessageType::Response),
        ];
        for (text, kind) in valid {
            assert_eq!(check(text), Ok(kind), "{text}");
        }
    }

    #[test]
    fn invalid_messages_are_refused() {
        let invalid = [
            r#"[null,1]"#,
            r#"[null,1,"",4]"#,
            r#"[5,1,""]"#,
            r#"[null,"1",""]"#,
            r#"[null,8,""]"#,
            r#"[null,1.5,""]"#,
            r#"[null,1,"x"]"#,
            r#"[null,2,[1]]"#,
            r#"[null,2,[1,-1]]"#,
            r#"[null,2,[1,4294967296]]"#,
            r#"[null,2,[1,0.5]]"#,
            r#"[null,3,[[{}],[{}],2]]"#,
            r#"[null,3,[[{"t":[{"r":[{"c":["x","NjEtLV-----67WEb",5]}]}]}],[{}],1]]"#,
            r#"[null,3,[[{"t":[{"r":[{"c":["x","short"]}]}]}],[{}],1]]"#,
            r#"[null,3,[[{"t":{"r":[]}}],[{}],1]]"#,
            r#"[null,4,{"t":"1"}]"#,
            r#"[null,5,{"t":1}]"#,
            r#"[null,6,{"t":{"r":1}}]"#,
            r#"[null,7,[]]"#,
            r#"[null,0,"x"]"#,
            r#""nope""#,
        ];
        for text in invalid {
            assert!(check(text).is_err(), "{text} must be invalid");
        }
    }
}

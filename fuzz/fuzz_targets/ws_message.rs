//! Websocket message reassembly (`partyd::ws::socket::Reader`): arbitrary sequences of frames,
//! fed in arbitrary chunks.
//!
//! Input: one byte of message limit (times 4: 0 to 1020 bytes), one byte `n`, `n` chunk
//! lengths, then frames, each a byte of FIN/RSV/opcode as on the wire, a byte of payload
//! length and the payload (masked here, with a key that changes from frame to frame).
//! Checked:
//! - it never panics;
//! - it gives exactly the messages, or the refusal, that a plain model of RFC 6455 §5.4 (fragments)
//!   and §5.5 (control frames between them) gives, and stops at the first refusal;
//! - every refusal's close code is 1002, 1007 or 1009;
//! - no message, and no partial message it holds, is over the limit, and no allocation while
//!   reading is larger than the limit and the bytes buffered allow.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use partyd::ws::socket::{Message, ReadError, Reader};
use partyd_fuzz::{chunks, client_frame, Largest, LengthForm};

#[global_allocator]
static ALLOCATOR: Largest = Largest;

struct Frame<'a> {
    first: u8,
    payload: &'a [u8],
}

fn frames(mut bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    while let [first, length, rest @ ..] = bytes {
        let (payload, after) = rest.split_at(usize::from(*length).min(rest.len()));
        out.push(Frame { first: *first, payload });
        bytes = after;
    }
    out
}

/// What the server must make of `frames`: the messages in order, then the refusal if any.
fn model(frames: &[Frame<'_>], max_message: usize) -> (Vec<Message>, Option<ReadError>) {
    let mut messages = Vec::new();
    // The opcode (text or binary) and bytes of a message whose final fragment is still to come.
    let mut partial: Option<(u8, Vec<u8>)> = None;
    for frame in frames {
        let (fin, reserved, opcode) = (frame.first & 0x80 != 0, frame.first & 0x70, frame.first & 0x0F);
        let control = matches!(opcode, 0x8..=0xF);
        // Reserved bits without an extension, an unknown opcode, a fragmented or long control
        // frame: broken framing.
        let broken = reserved != 0
            || !matches!(opcode, 0x0..=0x2 | 0x8..=0xA)
            || (control && (!fin || frame.payload.len() > 125));
        let refusal = if broken {
            Some(ReadError::Protocol(""))
        } else if frame.payload.len() > max_message {
            Some(ReadError::TooBig)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return (messages, Some(refusal));
        }
        let whole = match opcode {
            0x9 => {
                messages.push(Message::Ping(Bytes::copy_from_slice(frame.payload)));
                continue;
            }
            0xA => {
                messages.push(Message::Pong);
                continue;
            }
            0x8 => match close(frame.payload) {
                Ok(close) => {
                    messages.push(Message::Close(close));
                    continue;
                }
                Err(()) => return (messages, Some(ReadError::BadClose(""))),
            },
            0x0 => {
                let Some((_, joined)) = partial.as_mut() else {
                    return (messages, Some(ReadError::Protocol("")));
                };
                if joined.len() + frame.payload.len() > max_message {
                    return (messages, Some(ReadError::TooBig));
                }
                joined.extend_from_slice(frame.payload);
                if !fin {
                    continue;
                }
                partial.take().expect("a partial message")
            }
            _ if partial.is_some() => return (messages, Some(ReadError::Protocol(""))),
            _ if !fin => {
                partial = Some((opcode, frame.payload.to_vec()));
                continue;
            }
            _ => (opcode, frame.payload.to_vec()),
        };
        match whole {
            (0x1, text) => match String::from_utf8(text) {
                Ok(text) => messages.push(Message::Text(text)),
                Err(_) => return (messages, Some(ReadError::NotUtf8)),
            },
            (_, binary) => messages.push(Message::Binary(Bytes::from(binary))),
        }
    }
    (messages, None)
}

/// A close payload as RFC 6455 §5.5.1 and §7.4 allow it: empty, or a code an endpoint may
/// send (1000-1003, 1007-1011, the IANA-registered 1012-1014, or 3000-4999) and a UTF-8 reason.
fn close(payload: &[u8]) -> Result<Option<(u16, String)>, ()> {
    match payload {
        [] => Ok(None),
        [_] => Err(()),
        [high, low, reason @ ..] => {
            let code = u16::from(*high) << 8 | u16::from(*low);
            let sendable = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
                .contains(&code)
                || (3000..5000).contains(&code);
            let reason = String::from_utf8(reason.to_vec()).map_err(|_| ())?;
            if sendable {
                Ok(Some((code, reason)))
            } else {
                Err(())
            }
        }
    }
}

/// The refusal with its reason left out (the model does not word them).
fn kind(error: ReadError) -> ReadError {
    match error {
        ReadError::Protocol(_) => ReadError::Protocol(""),
        ReadError::BadClose(_) => ReadError::BadClose(""),
        other => other,
    }
}

fuzz_target!(|input: &[u8]| {
    let [limit, count, rest @ ..] = input else { return };
    let max_message = usize::from(*limit) * 4;
    let count = usize::from(*count).min(rest.len());
    let (lengths, records) = rest.split_at(count);
    let frames = frames(records);
    let mut wire = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        let mask = [index as u8, (index >> 8) as u8 ^ 0x5A, 0xA5, 0x3C ^ index as u8];
        wire.extend(client_frame(
            frame.first,
            LengthForm::shortest(frame.payload.len()),
            Some(mask),
            frame.payload,
        ));
    }
    let (expected, expected_refusal) = model(&frames, max_message);

    let allowed = 2 * (wire.len() + max_message + 14) + (128 << 10);
    let mut reader = Reader::new(BytesMut::new(), max_message);
    let mut messages = Vec::new();
    let mut refusal = None;
    'feed: for chunk in chunks(&wire, lengths) {
        reader.extend(chunk);
        loop {
            Largest::reset();
            let next = reader.take_message();
            let largest = Largest::get();
            assert!(largest <= allowed, "reading allocated {largest} bytes (limit {max_message})");
            assert!(reader.capacity() <= allowed, "the reader holds {} bytes", reader.capacity());
            match next {
                Ok(Some(message)) => {
                    if let Message::Text(text) = &message {
                        assert!(text.len() <= max_message);
                    }
                    if let Message::Binary(bytes) = &message {
                        assert!(bytes.len() <= max_message);
                    }
                    messages.push(message);
                }
                Ok(None) => break,
                Err(error) => {
                    assert!([1002, 1007, 1009].contains(&error.close_code()), "{error:?}");
                    refusal = Some(kind(error));
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(messages, expected);
    assert_eq!(refusal, expected_refusal);
});

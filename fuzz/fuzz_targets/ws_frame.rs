//! The websocket frame decoder (`partyd::ws::frame`) on arbitrary bytes in arbitrary chunks.
//!
//! Input: two bytes of payload limit (little-endian), one byte `n`, `n` chunk lengths, then
//! the bytes on the wire. Checked:
//! - it never panics;
//! - it decodes exactly what a plain reference decoder written from RFC 6455 §5.2 decodes
//!   (the same frames, the same refusal, the same bytes left over), whether the bytes come
//!   whole or in chunks;
//! - no allocation while decoding is larger than the payload limit and the bytes already
//!   buffered allow (a header claiming 2^62 bytes must not reserve them);
//! - every frame re-encodes to the bytes it came from, the server's own frame of the same
//!   payload decodes back to it in the shortest length form, and a valid close payload
//!   re-encodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use partyd::ws::frame::{self, FrameError, OpCode};
use partyd_fuzz::{chunks, client_frame, Largest, LengthForm};

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// What one decode step gives.
#[derive(Debug, PartialEq)]
enum Step {
    Frame { fin: bool, opcode: OpCode, payload: Vec<u8> },
    Refused(FrameError),
}

/// A frame as the reference decoder read it, with how it was written.
struct Decoded {
    fin: bool,
    opcode: OpCode,
    payload: Vec<u8>,
    form: LengthForm,
    mask: Option<[u8; 4]>,
    length: usize,
}

fn opcode(bits: u8) -> Option<OpCode> {
    Some(match bits {
        0x0 => OpCode::Continuation,
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xA => OpCode::Pong,
        _ => return None,
    })
}

/// RFC 6455 §5.2 read plainly, with the server's checks in the order partyd makes them;
/// `Ok(None)` while the frame is incomplete. `masked_only` is the server's rule for client
/// frames; the server's own frames are read without it.
fn reference(wire: &[u8], max_payload: usize, masked_only: bool) -> Result<Option<Decoded>, FrameError> {
    if wire.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (wire[0], wire[1]);
    if first & 0b0111_0000 != 0 {
        return Err(FrameError::Protocol("reserved bits set without an extension"));
    }
    let opcode = opcode(first & 0x0F).ok_or(FrameError::Protocol("unknown opcode"))?;
    let fin = first & 0x80 != 0;
    let masked = second & 0x80 != 0;
    if masked_only && !masked {
        return Err(FrameError::Protocol("a client frame is not masked"));
    }
    let (claimed, form, mut at) = match second & 0x7F {
        126 if wire.len() < 4 => return Ok(None),
        126 => (u64::from(wire[2]) << 8 | u64::from(wire[3]), LengthForm::Medium, 4),
        127 if wire.len() < 10 => return Ok(None),
        127 => (wire[2..10].iter().fold(0u64, |n, byte| n << 8 | u64::from(*byte)), LengthForm::Long, 10),
        short => (u64::from(short), LengthForm::Short, 2),
    };
    if claimed >= 1 << 63 {
        return Err(FrameError::Protocol("a 64-bit length with its top bit set"));
    }
    let control = matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong);
    if control && (!fin || claimed > 125) {
        return Err(FrameError::Protocol("a control frame is fragmented or longer than 125 bytes"));
    }
    if claimed > max_payload as u64 {
        return Err(FrameError::TooBig);
    }
    let payload_length = claimed as usize;
    let mask = if masked {
        let Some(key) = wire.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let Some(payload) = wire.get(at..at + payload_length) else { return Ok(None) };
    let payload = match mask {
        Some(mask) => payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]).collect(),
        None => payload.to_vec(),
    };
    Ok(Some(Decoded { fin, opcode, payload, form, mask, length: at + payload_length }))
}

/// The reference's steps over a whole wire, and the bytes left when it stopped for more.
fn reference_steps(wire: &[u8], max_payload: usize) -> (Vec<Step>, usize) {
    let mut steps = Vec::new();
    let mut at = 0;
    loop {
        match reference(&wire[at..], max_payload, true) {
            Ok(Some(decoded)) => {
                check_round_trips(&wire[at..at + decoded.length], &decoded);
                at += decoded.length;
                let Decoded { fin, opcode, payload, .. } = decoded;
                steps.push(Step::Frame { fin, opcode, payload });
            }
            Ok(None) => return (steps, wire.len() - at),
            Err(error) => {
                steps.push(Step::Refused(error));
                return (steps, wire.len() - at);
            }
        }
    }
}

fn check_round_trips(bytes: &[u8], decoded: &Decoded) {
    let first = if decoded.fin { 0x80 } else { 0 } | opcode_bits(decoded.opcode);
    assert_eq!(
        client_frame(first, decoded.form, decoded.mask, &decoded.payload),
        bytes,
        "a frame re-encodes to its bytes"
    );
    let mut ours = Vec::new();
    frame::encode(&mut ours, decoded.opcode, &decoded.payload);
    let back = reference(&ours, usize::MAX, false).expect("the server's frame is valid").expect("and whole");
    assert!(back.fin && back.opcode == decoded.opcode && back.payload == decoded.payload);
    assert_eq!(
        (back.form, back.mask, back.length),
        (LengthForm::shortest(decoded.payload.len()), None, ours.len())
    );
    if decoded.opcode == OpCode::Close {
        match frame::parse_close(&decoded.payload) {
            Ok(None) => assert!(decoded.payload.is_empty()),
            Ok(Some((code, reason))) => {
                assert_eq!(
                    frame::close_payload(code, &reason),
                    decoded.payload,
                    "a close payload re-encodes"
                );
            }
            Err(_) => {}
        }
    }
}

fn opcode_bits(opcode: OpCode) -> u8 {
    match opcode {
        OpCode::Continuation => 0x0,
        OpCode::Text => 0x1,
        OpCode::Binary => 0x2,
        OpCode::Close => 0x8,
        OpCode::Ping => 0x9,
        OpCode::Pong => 0xA,
    }
}

/// partyd's decoder over the wire fed in `pieces`: its steps, and the bytes it did not take
/// (those it holds and, after a refusal, those never fed).
fn decoder_steps(pieces: &[&[u8]], max_payload: usize, wire_length: usize) -> (Vec<Step>, usize) {
    // What a decode may allocate: room for the longest frame the limit lets through, or twice
    // what is buffered (a buffer grows by doubling), plus the 64 KiB `bytes` may keep as a
    // shared buffer's original capacity. Never anything in proportion to a claimed length.
    let allowed = 2 * (wire_length + 14 + max_payload) + (128 << 10);
    let mut buffer = BytesMut::new();
    let mut steps = Vec::new();
    let mut fed = 0;
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed += piece.len();
        loop {
            Largest::reset();
            let step = frame::decode(&mut buffer, max_payload);
            let largest = Largest::get();
            assert!(largest <= allowed, "a decode allocated {largest} bytes (limit {max_payload})");
            match step {
                Ok(Some(frame)) => steps.push(Step::Frame {
                    fin: frame.fin,
                    opcode: frame.opcode,
                    payload: frame.payload.to_vec(),
                }),
                Ok(None) => break,
                Err(error) => {
                    steps.push(Step::Refused(error));
                    return (steps, buffer.len() + wire_length - fed);
                }
            }
        }
    }
    (steps, buffer.len())
}

fuzz_target!(|input: &[u8]| {
    let [low, high, count, rest @ ..] = input else { return };
    let max_payload = usize::from(u16::from_le_bytes([*low, *high]));
    let count = usize::from(*count).min(rest.len());
    let (lengths, wire) = rest.split_at(count);
    let expected = reference_steps(wire, max_payload);
    assert_eq!(decoder_steps(&[wire], max_payload, wire.len()), expected, "whole");
    assert_eq!(decoder_steps(&chunks(wire, lengths), max_payload, wire.len()), expected, "in chunks");
});

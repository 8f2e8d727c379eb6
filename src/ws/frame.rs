//! RFC 6455 frames, the server's side: decoding the client's (masked) frames with every check
//! the RFC asks of a server, and encoding the server's (unmasked) frames.

use bytes::{Buf as _, BytesMut};

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One decoded frame, its payload unmasked.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: BytesMut,
}

/// A frame the server must refuse.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Broken framing (close 1002), with what was wrong.
    Protocol(&'static str),
    /// A payload longer than the limit (close 1009).
    TooBig,
}

/// The longest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Takes one whole frame off the front of `buf`; `Ok(None)` while more bytes are needed. The
/// header is checked as soon as it is complete, so an oversize or broken frame is refused
/// before its payload arrives.
pub fn decode(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Frame>, FrameError> {
    let Some(&[first, second]) = buf.get(..2) else { return Ok(None) };
    if first & 0x70 != 0 {
        return Err(FrameError::Protocol("reserved bits set without an extension"));
    }
    let opcode = OpCode::from_bits(first & 0x0F).ok_or(FrameError::Protocol("unknown opcode"))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(FrameError::Protocol("a client frame is not masked"));
    }
    let (length, header) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(bytes) => (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => (u64::from_be_bytes(bytes.try_into().unwrap_or_default()), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if length >> 63 != 0 {
        return Err(FrameError::Protocol("a 64-bit length with its top bit set"));
    }
    if opcode.is_control() && (!fin || length > MAX_CONTROL_PAYLOAD as u64) {
        return Err(FrameError::Protocol("a control frame is fragmented or longer than 125 bytes"));
    }
    if length > max_payload as u64 {
        return Err(FrameError::TooBig);
    }
    let length = length as usize;
    let Some(mask) = buf.get(header..header + 4).map(|bytes| [bytes[0], bytes[1], bytes[2], bytes[3]]) else {
        return Ok(None);
    };
    if buf.len() < header + 4 + length {
        buf.reserve(header + 4 + length - buf.len());
        return Ok(None);
    }
    buf.advance(header + 4);
    let mut payload = buf.split_to(length);
    unmask(&mut payload, mask);
    Ok(Some(Frame { fin, opcode, payload }))
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Appends one whole, unmasked server frame to `out`.
pub fn encode(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    // Reserved at once: pushing the header into an empty buffer would allocate 8 bytes and
    // then reallocate for the payload, on every delivery.
    const LONGEST_HEADER: usize = 10;
    out.reserve(LONGEST_HEADER + payload.len());
    out.push(0x80 | opcode.bits());
    match payload.len() {
        short @ 0..=125 => out.push(short as u8),
        medium @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            out.push(127);
            out.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A close frame's payload: the code, then the reason (RFC 6455 §5.5.1).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    // A close payload holds at most 125 bytes: 2 for the code, 123 for the reason.
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// The code and reason of a client's close payload; `Err` (what is wrong) for a payload the
/// RFC forbids (a lone byte, a code no endpoint may send, a reason that is not UTF-8).
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, &'static str> {
    match payload {
        [] => Ok(None),
        [_] => Err("a close payload of one byte"),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            // 1012-1014 are registered with IANA since RFC 6455 (service restart, try again
            // later, bad gateway): a client may send them.
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err("a close code no endpoint may send");
            }
            let reason = std::str::from_utf8(reason).map_err(|_| "a close reason that is not UTF-8")?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

#[cfg(test)]
/// A client frame (for tests): header, the mask, the masked payload.
pub(crate) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        short @ 0..=125 => out.push(0x80 | short as u8),
        medium @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_frames_of_every_length_form_decode_whole_and_byte_by_byte() {
        for length in [0, 1, 5, 125, 126, 127, 4000, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..length).map(|index| (index % 251) as u8).collect();
            let wire = client_frame(0x81, &payload, [0x12, 0x34, 0x56, 0x78]);
            let mut whole = BytesMut::from(&wire[..]);
            let frame = decode(&mut whole, 1 << 20).unwrap().unwrap();
            assert_eq!(
                (frame.fin, frame.opcode, &frame.payload[..]),
                (true, OpCode::Text, &payload[..]),
                "length {length}"
            );
            assert!(whole.is_empty());
            if length <= 127 {
                let mut trickle = BytesMut::new();
                for (index, byte) in wire.iter().enumerate() {
                    trickle.extend_from_slice(&[*byte]);
                    let decoded = decode(&mut trickle, 1 << 20).unwrap();
                    assert_eq!(decoded.is_some(), index == wire.len() - 1, "length {length}, byte {index}");
                }
            }
        }
    }

    #[test]
    fn two_frames_in_one_buffer_decode_one_after_the_other() {
        let mut wire = client_frame(0x01, b"hel", [1, 2, 3, 4]);
        wire.extend(client_frame(0x80, b"lo", [5, 6, 7, 8]));
        let mut buf = BytesMut::from(&wire[..]);
        let first = decode(&mut buf, 100).unwrap().unwrap();
        assert_eq!((first.fin, first.opcode, &first.payload[..]), (false, OpCode::Text, &b"hel"[..]));
        let second = decode(&mut buf, 100).unwrap().unwrap();
        assert_eq!(
            (second.fin, second.opcode, &second.payload[..]),
            (true, OpCode::Continuation, &b"lo"[..])
        );
        assert_eq!(decode(&mut buf, 100).unwrap(), None);
    }

    #[test]
    fn malformed_frames_are_refused() {
        let cases: [(&[u8], FrameError); 6] = [
            (
                &[0x81, 0x05, b'h', b'e', b'l', b'l', b'o'],
                FrameError::Protocol("a client frame is not masked"),
            ),
            (&[0xC1, 0x80, 0, 0, 0, 0], FrameError::Protocol("reserved bits set without an extension")),
            (&[0x83, 0x80, 0, 0, 0, 0], FrameError::Protocol("unknown opcode")),
            (&[0x8B, 0x80, 0, 0, 0, 0], FrameError::Protocol("unknown opcode")),
            (
                &[0x09, 0x80, 0, 0, 0, 0],
                FrameError::Protocol("a control frame is fragmented or longer than 125 bytes"),
            ),
            (
                &[0x89, 0xFE, 0x00, 0x7E],
                FrameError::Protocol("a control frame is fragmented or longer than 125 bytes"),
            ),
        ];
        for (wire, expected) in cases {
            assert_eq!(decode(&mut BytesMut::from(wire), 1 << 20), Err(expected), "{wire:?}");
        }
    }

    #[test]
    fn an_oversize_frame_is_refused_from_its_header_alone() {
        let mut header = BytesMut::from(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 1][..]);
        assert_eq!(decode(&mut header, 1 << 20), Err(FrameError::TooBig));
        let mut huge = BytesMut::from(&[0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert_eq!(
            decode(&mut huge, usize::MAX),
            Err(FrameError::Protocol("a 64-bit length with its top bit set"))
        );
        let mut at_limit = BytesMut::from(&client_frame(0x82, &[7; 100], [9, 9, 9, 9])[..]);
        assert_eq!(decode(&mut at_limit, 99), Err(FrameError::TooBig));
    }

    #[test]
    fn server_frames_use_the_shortest_length_form() {
        for (length, header) in [
            (0usize, vec![0x81, 0]),
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut out = Vec::new();
            encode(&mut out, OpCode::Text, &vec![b'x'; length]);
            assert_eq!(&out[..header.len()], &header[..], "length {length}");
            assert_eq!(out.len(), header.len() + length);
        }
    }

    #[test]
    fn close_payloads_are_checked_and_reasons_cut_at_a_character() {
        assert_eq!(parse_close(&[]), Ok(None));
        assert_eq!(parse_close(&[0x03, 0xE8, b'o', b'k']), Ok(Some((1000, "ok".to_owned()))));
        assert_eq!(parse_close(&[0x0F, 0xA0]), Ok(Some((4000, String::new()))));
        for registered in [1012u16, 1013, 1014] {
            assert_eq!(parse_close(&registered.to_be_bytes()), Ok(Some((registered, String::new()))));
        }
        for bad in [
            &[0x03][..],
            &[0x03, 0xED],
            &[0x03, 0xEE],
            &[0x03, 0xF7],
            &[0x03, 0xF8],
            &[0x13, 0x88],
            &[0x03, 0xE8, 0xFF],
        ] {
            assert!(parse_close(bad).is_err(), "{bad:?}");
        }
        let long = "é".repeat(100);
        let payload = close_payload(1000, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}

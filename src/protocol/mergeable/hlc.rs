//! TinyBase's hybrid logical clock (spec §2.2): 16-character stamps (7 digits of logical time in
//! milliseconds, 4 of counter, 5 of client id), and the clock state that issues and adopts them.

use super::hash::hash;

/// The 64 digits of an HLC, in ASCII order (so string order is numeric order).
pub const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// How far ahead of the local clock a remote stamp may be and still be adopted.
pub const MAX_FUTURE_OFFSET_MS: u64 = 300_000;
/// The counter wraps into the next millisecond here.
const COUNTER_LIMIT: i64 = 1 << 24;
const TIME_DIGITS: usize = 7;
const COUNTER_DIGITS: usize = 4;
const CLIENT_DIGITS: usize = 5;
/// The length of an HLC.
pub const HLC_LENGTH: usize = TIME_DIGITS + COUNTER_DIGITS + CLIENT_DIGITS;

fn digit_value(byte: u8) -> u64 {
    // An unknown character counts as 0 (only reachable for strings that failed validation).
    ALPHABET.iter().position(|&digit| digit == byte).unwrap_or(0) as u64
}

fn push_digits(out: &mut String, mut value: u64, digits: usize) {
    let mut buffer = vec![b'-'; digits];
    for slot in buffer.iter_mut().rev() {
        *slot = ALPHABET[(value & 63) as usize];
        value >>= 6;
    }
    out.extend(buffer.into_iter().map(char::from));
}

fn read_digits(text: &[u8]) -> u64 {
    text.iter().fold(0, |value, &byte| (value << 6) | digit_value(byte))
}

/// The 5-character client id of a store's `uniqueId`: the low 30 bits of its hash.
pub fn client_id(unique_id: &str) -> String {
    let mut out = String::with_capacity(CLIENT_DIGITS);
    push_digits(&mut out, u64::from(hash(unique_id)) & ((1 << 30) - 1), CLIENT_DIGITS);
    out
}

/// Encodes a stamp.
pub fn encode(time: u64, counter: u64, client_id: &str) -> String {
    let mut out = String::with_capacity(HLC_LENGTH);
    push_digits(&mut out, time, TIME_DIGITS);
    push_digits(&mut out, counter, COUNTER_DIGITS);
    out.push_str(client_id);
    out
}

/// Decodes a stamp into (logical time, counter, client id); `""` and short strings read as zeros.
pub fn decode(hlc: &str) -> (u64, u64, &str) {
    let bytes = hlc.as_bytes();
    let part = |range: std::ops::Range<usize>| bytes.get(range).map_or(0, read_digits);
    (
        part(0..TIME_DIGITS),
        part(TIME_DIGITS..TIME_DIGITS + COUNTER_DIGITS),
        hlc.get(TIME_DIGITS + COUNTER_DIGITS..).unwrap_or(""),
    )
}

/// Whether `hlc` is valid: `""`, or 16 alphabet characters with a logical time ≤ `max_time`
/// (when given).
pub fn is_valid(hlc: &str, max_time: Option<u64>) -> bool {
    hlc.is_empty()
        || (hlc.len() == HLC_LENGTH
            && hlc.bytes().all(|byte| ALPHABET.contains(&byte))
            && max_time.is_none_or(|max| decode(hlc).0 <= max))
}

/// A store's clock: the last stamp it issued or adopted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    client_id: String,
    last_time: u64,
    last_counter: i64,
}

impl Clock {
    /// A fresh clock for the store with this `uniqueId`.
    pub fn new(unique_id: &str) -> Self {
        Self { client_id: client_id(unique_id), last_time: 0, last_counter: -1 }
    }

    /// The last logical time and counter (the counter starts at −1).
    pub fn state(&self) -> (u64, i64) {
        (self.last_time, self.last_counter)
    }

    /// Adopts `remote` (the newest stamp a merge accepted) at local time `now`, unless it is
    /// invalid or more than [`MAX_FUTURE_OFFSET_MS`] ahead.
    pub fn seen(&mut self, remote: Option<&str>, now: u64) {
        if remote.is_some_and(|remote| !is_valid(remote, Some(now + MAX_FUTURE_OFFSET_MS))) {
            return;
        }
        let (remote_time, remote_counter, _) = remote.map_or((0, 0, ""), decode);
        let new_time = self.last_time.max(remote_time).max(now);
        if new_time == self.last_time {
            if new_time == remote_time {
                self.last_counter = self.last_counter.max(remote_counter as i64);
            }
        } else {
            self.last_counter = if new_time == remote_time { remote_counter as i64 } else { -1 };
        }
        self.last_time = new_time;
    }

    /// The stamp of a local write at local time `now`.
    pub fn next(&mut self, now: u64) -> String {
        self.seen(None, now);
        self.last_counter += 1;
        if self.last_counter >= COUNTER_LIMIT {
            self.last_time += 1;
            self.last_counter = 0;
        }
        encode(self.last_time, self.last_counter as u64, &self.client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples() {
        assert_eq!(client_id("alice"), "67WEb");
        assert_eq!(encode(1_700_000_000_000, 0, "67WEb"), "NjEtLV-----67WEb");
        assert_eq!(encode(73_267_203_600, 7, &client_id("client3")), "03E3BsF---6kmxfM");
        assert_eq!(decode("NjEtLV----067WEb"), (1_700_000_000_000, 1, "67WEb"));
        assert!(is_valid("", Some(0)) && is_valid("NjEtLV-----67WEb", None));
        assert!(!is_valid("NjEtLV-----67WE", None) && !is_valid("NjEtLV-----67WE!", None));
        assert!(!is_valid("NjEtLV-----67WEb", Some(1_699_999_999_999)));
    }
}

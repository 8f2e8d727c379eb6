//! Party and room names as they arrive in URLs, validated once, and the key of a live room.

use std::fmt;
use std::sync::Arc;

/// The longest party or room name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// The name is the empty string.
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_BYTES`].
    #[error("name is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    /// The name holds a control character.
    #[error("name contains a control character")]
    ControlCharacter,
}

/// Checks a party or room name: 1 to [`MAX_NAME_BYTES`] bytes, no control characters.
/// Room names are raw URL path segments (never percent-decoded), so `q%41` and `qA` differ.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(())
}

/// Which room: a party name and a room name, both validated. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RoomKey {
    party: Arc<str>,
    room: Arc<str>,
}

impl RoomKey {
    /// Validates the room name; the party name comes from the configuration (already valid).
    pub fn new(party: &str, room: &str) -> Result<Self, NameError> {
        validate_name(room)?;
        Ok(Self { party: party.into(), room: room.into() })
    }

    /// The party's name.
    pub fn party(&self) -> &str {
        &self.party
    }

    /// The room's name, exactly as it appeared in the URL path.
    pub fn room(&self) -> &str {
        &self.room
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.party, self.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_raw_segments_and_refuses_empty_long_and_control_names() {
        assert_eq!(validate_name("q%41"), Ok(()));
        assert_eq!(validate_name("日本-😀"), Ok(()));
        assert_eq!(validate_name(&"x".repeat(MAX_NAME_BYTES)), Ok(()));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name(&"x".repeat(MAX_NAME_BYTES + 1)), Err(NameError::TooLong));
        assert_eq!(validate_name("a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(validate_name("a\u{7f}"), Err(NameError::ControlCharacter));
    }
}

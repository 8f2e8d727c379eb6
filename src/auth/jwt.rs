//! JWT checking with `jsonwebtoken`: the configured algorithm and key, `exp` required (with a
//! small leeway), `aud`/`iss` when configured, then the `rooms` and `access` claims.

use jsonwebtoken::{decode, Validation};
use serde::Deserialize;

use super::{pattern, Access, Refusal};
use crate::config::JwtConfig;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Deserialize)]
struct Claims {
    /// Room patterns this token may enter; absent = every room of the party.
    rooms: Option<Vec<String>>,
    /// `"read"` or `"write"` (the default).
    access: Option<String>,
}

/// Checks a token for `room`.
pub fn check(config: &JwtConfig, token: &str, room: &str) -> Result<Access, Refusal> {
    let mut validation = Validation::new(config.algorithm);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_required_spec_claims(&["exp"]);
    match &config.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
    }
    let claims = decode::<Claims>(token, &config.key, &validation)
        .map_err(|error| Refusal::new(401, format!("invalid token: {}", error.kind_description())))?
        .claims;
    let access = match claims.access.as_deref() {
        None => Access::Write,
        Some(text) => Access::parse(text)
            .ok_or_else(|| Refusal::new(401, "invalid token: access must be \"read\" or \"write\""))?,
    };
    if let Some(rooms) = claims.rooms {
        if !rooms.iter().any(|pattern| pattern::matches(pattern, room)) {
            return Err(Refusal::new(403, "the token does not grant this room"));
        }
    }
    Ok(access)
}

/// A short, token-free description of why decoding failed.
trait KindDescription {
    fn kind_description(&self) -> &'static str;
}

impl KindDescription for jsonwebtoken::errors::Error {
    fn kind_description(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind;
        match self.kind() {
            ErrorKind::ExpiredSignature => "expired",
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::InvalidAudience => "wrong audience",
            ErrorKind::InvalidIssuer => "wrong issuer",
            ErrorKind::ImmatureSignature => "not valid yet",
            ErrorKind::InvalidAlgorithm => "wrong algorithm",
            ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
            _ => "malformed",
        }
    }
}

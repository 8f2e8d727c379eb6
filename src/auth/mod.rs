//! Authentication before any room work: a party's JWT or webhook check decides whether a
//! request may go on, and with which access. Nothing of a room is loaded for a refused request.

mod jwt;
mod pattern;
mod webhook;

use crate::config::AuthConfig;

/// What an authenticated request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive broadcasts and GET; changes are dropped, PUT is refused.
    Read,
    /// Everything.
    Write,
}

impl Access {
    /// Reads an `access` claim or webhook answer: `"read"` or `"write"`.
    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// A refused request: the HTTP status (401, 403 or 503) and a short reason for the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 401 when the token is missing or invalid, 403 when it does not grant this, 503 when the
    /// webhook cannot answer.
    pub status: u16,
    /// Why, in a few words (never the token).
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// What is known of a request when it is authenticated.
#[derive(Debug)]
pub struct RequestFacts<'a> {
    /// The party's name.
    pub party: &'a str,
    /// The room's name.
    pub room: &'a str,
    /// The token from `?token=` or `Authorization: Bearer`.
    pub token: Option<&'a str>,
    /// The websocket's connection id (`_pk`), for upgrades.
    pub connection_id: Option<&'a str>,
    /// The HTTP method.
    pub method: &'a str,
    /// The path (without the query).
    pub path: &'a str,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
}

/// Decides whether a request may go on.
pub async fn authorize(auth: &AuthConfig, facts: &RequestFacts<'_>) -> Result<Access, Refusal> {
    match auth {
        AuthConfig::None => Ok(Access::Write),
        AuthConfig::Jwt(jwt) => {
            let token = facts.token.ok_or_else(|| Refusal::new(401, "a token is required"))?;
            jwt::check(jwt, token, facts.room)
        }
        AuthConfig::Webhook(webhook) => webhook::ask(webhook, facts).await,
    }
}

/// Whether a websocket upgrade's `Origin` is allowed. A request without `Origin` (not from a
/// browser, which always sends one) is not held to the list.
pub fn origin_allowed(allowed: Option<&[String]>, origin: Option<&str>) -> bool {
    match (allowed, origin) {
        (Some(allowed), Some(origin)) => allowed.iter().any(|candidate| candidate == origin),
        _ => true,
    }
}

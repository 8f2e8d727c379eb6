//! The authorization webhook: partyd POSTs what it knows of the request; 200 allows (the body
//! may say `{"access":"read"}`), 401/403 refuse with that status, anything else or a timeout
//! refuses with 503 (fail closed). Nothing is cached.

use serde::Deserialize;
use serde_json::json;

use super::{Access, Refusal, RequestFacts};
use crate::config::WebhookConfig;
use crate::log_limit::limited;

/// The biggest webhook answer partyd reads.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct Answer {
    access: Option<String>,
}

/// Asks the webhook about a request.
pub async fn ask(config: &WebhookConfig, facts: &RequestFacts<'_>) -> Result<Access, Refusal> {
    let body = json!({
        "party": facts.party,
        "room": facts.room,
        "token": facts.token,
        "connection_id": facts.connection_id,
        "method": facts.method,
        "path": facts.path,
        "origin": facts.origin,
    });
    let client = awc::Client::builder().timeout(config.timeout).finish();
    let mut response = match client.post(&config.url).send_json(&body).await {
        Ok(response) => response,
        Err(error) => {
            limited!(warn, %error, "authorization webhook did not answer; refusing");
            return Err(Refusal::new(503, "authorization service unavailable"));
        }
    };
    match response.status().as_u16() {
        200 => {
            let answer = response.body().limit(MAX_ANSWER_BYTES).await.unwrap_or_default();
            if answer.iter().all(u8::is_ascii_whitespace) {
                return Ok(Access::Write);
            }
            let access = serde_json::from_slice::<Answer>(&answer).ok().map(|answer| answer.access);
            match access {
                Some(None) => Ok(Access::Write),
                Some(Some(text)) => Access::parse(&text).ok_or_else(|| unavailable("an unknown access")),
                None => Err(unavailable("a body that is not JSON")),
            }
        }
        status @ (401 | 403) => Err(Refusal::new(status, "refused by the authorization service")),
        status => {
            limited!(warn, status, "authorization webhook answered an unexpected status; refusing");
            Err(Refusal::new(503, "authorization service unavailable"))
        }
    }
}

fn unavailable(what: &str) -> Refusal {
    limited!(warn, "authorization webhook answered 200 with {what}; refusing");
    Refusal::new(503, "authorization service unavailable")
}

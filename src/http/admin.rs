//! The admin API under `/_partyd/`: off unless an admin token is configured; every request
//! must bear it (`Authorization: Bearer <token>`). Lists parties and rooms, dumps a room,
//! deletes a room, and writes to a room from the server.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use serde_json::value::RawValue;

use super::{read_body, AppState};
use crate::config::PartyConfig;
use crate::protocol::persister::parse_changes;
use crate::room::{RoomKey, ServerWriteResult};

/// The path every admin route starts with.
pub const ADMIN_PREFIX: &str = "/_partyd/";
/// Rooms listed per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Answers a request whose path starts with [`ADMIN_PREFIX`].
pub async fn handle(req: &HttpRequest, payload: web::Payload, state: &AppState) -> HttpResponse {
    let Some(token) = state.config.admin_token.as_deref() else {
        return HttpResponse::NotFound().body("not found");
    };
    if !bearer_matches(req, token) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .body("missing or wrong admin token");
    }
    let path = req.uri().path().strip_prefix(ADMIN_PREFIX).unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["parties"]) => parties(state),
        (Method::GET, ["parties", party, "rooms"]) => match state.config.party(party) {
            Some(party) => rooms(state, party, req.query_string()).await,
            None => HttpResponse::NotFound().body(format!("Party {party} not found")),
        },
        (Method::GET, ["parties", party, "rooms", room]) => match room_of(state, party, room) {
            Ok((party, key)) => dump(state, party, key).await,
            Err(refusal) => refusal.into(),
        },
        (Method::DELETE, ["parties", party, "rooms", room]) => match room_of(state, party, room) {
            Ok((party, key)) => delete(state, party, key).await,
            Err(refusal) => refusal.into(),
        },
        (Method::POST, ["parties", party, "rooms", room, "changes"]) => match room_of(state, party, room) {
            Ok((party, key)) => write(req, payload, state, party, key).await,
            Err(refusal) => refusal.into(),
        },
        _ => HttpResponse::NotFound().body("no such admin route"),
    }
}

/// Compares the bearer token without stopping at the first differing byte.
fn bearer_matches(req: &HttpRequest, token: &str) -> bool {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    given.is_some_and(|given| {
        given.len() == token.len()
            && given.bytes().zip(token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    })
}

/// An admin request that cannot be served, and the answer that says why.
enum Refusal {
    NotFound(String),
    BadRequest(String),
    Internal(String),
}

impl From<Refusal> for HttpResponse {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound(why) => HttpResponse::NotFound().body(why),
            Refusal::BadRequest(why) => HttpResponse::BadRequest().body(why),
            Refusal::Internal(why) => HttpResponse::InternalServerError().body(why),
        }
    }
}

fn room_of<'a>(state: &'a AppState, party: &str, room: &str) -> Result<(&'a PartyConfig, RoomKey), Refusal> {
    let party =
        state.config.party(party).ok_or_else(|| Refusal::NotFound(format!("Party {party} not found")))?;
    let key = RoomKey::new(&party.name, room)
        .map_err(|error| Refusal::BadRequest(format!("invalid room name: {error}")))?;
    Ok((party, key))
}

fn parties(state: &AppState) -> HttpResponse {
    let parties: Vec<_> = state
        .config
        .parties
        .values()
        .map(|party| {
            let summary = state.rooms.party_summary(&party.name);
            json!({"name": party.name, "kind": party.kind.to_string(), "live_rooms": summary.live_rooms, "connections": summary.connections})
        })
        .collect();
    HttpResponse::Ok().json(json!({ "parties": parties }))
}

/// The query of the room listing: `prefix`, `after`, `limit`.
struct RoomsQuery {
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
}

async fn rooms(state: &AppState, party: &PartyConfig, query: &str) -> HttpResponse {
    let query: RoomsQuery = match parse_rooms_query(query) {
        Ok(query) => query,
        Err(error) => return HttpResponse::BadRequest().body(format!("bad query: {error}")),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return HttpResponse::BadRequest().body(format!("limit must be 1 to {MAX_PAGE}"));
    }
    let (storage, name) = (state.storage.clone(), party.name.clone());
    let listed = state
        .rooms
        .storage_pool()
        .run("list rooms", move || storage.list_rooms(&name, &query.prefix, query.after.as_deref(), limit))
        .await;
    let stored = match listed {
        Ok(stored) => stored,
        Err(error) => return HttpResponse::ServiceUnavailable().body(error.to_string()),
    };
    let rooms: Vec<_> = stored
        .iter()
        .map(|stored| {
            let connections = RoomKey::new(&party.name, &stored.room)
                .ok()
                .and_then(|key| state.rooms.live_room(&key))
                .map_or(0, |handle| handle.connections());
            json!({"name": stored.room, "stored_bytes": stored.meta.stored_bytes, "connections": connections, "last_write_ms": stored.meta.written_at_ms})
        })
        .collect();
    let next = (stored.len() == limit).then(|| stored.last().map(|room| room.room.clone())).flatten();
    HttpResponse::Ok().json(json!({ "rooms": rooms, "next_after": next }))
}

fn parse_rooms_query(query: &str) -> Result<RoomsQuery, String> {
    let mut result = RoomsQuery { prefix: String::new(), after: None, limit: None };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "prefix" => result.prefix = value.into_owned(),
            "after" => result.after = Some(value.into_owned()),
            "limit" => {
                result.limit = Some(value.parse().map_err(|_| format!("limit {value:?} is not a number"))?)
            }
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(result)
}

/// Refuses rooms that have nothing stored (the index knows every room ever written).
async fn must_be_stored(state: &AppState, key: &RoomKey) -> Result<(), Refusal> {
    let (storage, asked) = (state.storage.clone(), key.clone());
    let stored = state
        .rooms
        .storage_pool()
        .run("look a room up", move || {
            storage.is_stored(crate::storage::RoomPath { party: asked.party(), room: asked.room() })
        })
        .await;
    match stored {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::NotFound("room not found".into())),
        Err(error) => Err(Refusal::Internal(error.to_string())),
    }
}

async fn dump(state: &AppState, party: &PartyConfig, key: RoomKey) -> HttpResponse {
    if let Err(refusal) = must_be_stored(state, &key).await {
        return refusal.into();
    }
    let room = match state.rooms.room(party, key.clone()) {
        Ok(room) => room,
        Err(unavailable) => return super::unavailable(&unavailable),
    };
    let inspection = match room.inspect().await {
        Ok(Some(inspection)) => inspection,
        Ok(None) => return HttpResponse::InternalServerError().body("room storage unavailable"),
        Err(_) => return super::shutting_down(),
    };
    let raw = |text: String| RawValue::from_string(text).ok();
    let entries: Vec<_> =
        inspection.reference_entries.into_iter().map(|(key, value)| json!([key, raw(value)])).collect();
    HttpResponse::Ok().json(json!({
        "party": key.party(),
        "room": key.room(),
        "kind": party.kind.to_string(),
        "content": inspection.content.and_then(raw),
        "entries": entries,
        "connections": inspection.connection_ids.len(),
        "connection_ids": inspection.connection_ids,
    }))
}

async fn delete(state: &AppState, party: &PartyConfig, key: RoomKey) -> HttpResponse {
    if let Err(refusal) = must_be_stored(state, &key).await {
        return refusal.into();
    }
    let room = match state.rooms.room(party, key.clone()) {
        Ok(room) => room,
        Err(unavailable) => return super::unavailable(&unavailable),
    };
    match room.delete().await {
        Ok(true) => {
            tracing::warn!(party = key.party(), room = key.room(), "room deleted by the admin API");
            HttpResponse::Ok().json(json!({"deleted": {"party": key.party(), "room": key.room()}}))
        }
        Ok(false) => HttpResponse::InternalServerError().body("storage error"),
        Err(_) => super::shutting_down(),
    }
}

async fn write(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    party: &PartyConfig,
    key: RoomKey,
) -> HttpResponse {
    if party.kind == crate::config::PartyKind::TinybaseSync {
        return HttpResponse::MethodNotAllowed()
            .body("server-side writes are not supported for tinybase-sync rooms");
    }
    let limit = party.limits.max_message_bytes;
    let body = match read_body(req, payload, limit, party.limits.request_body_timeout).await {
        Ok(body) => body,
        Err(error) => return error.response(limit),
    };
    let changes = match parse_changes(&body) {
        Ok(changes) => changes,
        Err(invalid) => return HttpResponse::BadRequest().body(invalid.to_string()),
    };
    let room = match state.rooms.room(party, key) {
        Ok(room) => room,
        Err(unavailable) => return super::unavailable(&unavailable),
    };
    let applied = match room.server_changes(changes).await {
        Ok(ServerWriteResult::Applied(payload)) => payload,
        Ok(ServerWriteResult::NothingAccepted) => "[{},{},1]".to_owned(),
        Ok(ServerWriteResult::NoStore) => return HttpResponse::NotFound().body("the room has no store"),
        Ok(ServerWriteResult::StorageFailed) => return super::storage_failed(state.storage.as_ref()),
        Err(_) => return super::shutting_down(),
    };
    HttpResponse::Ok().content_type("application/json").body(applied)
}

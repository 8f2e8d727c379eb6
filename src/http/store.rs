//! The store endpoint: for a `tinybase-persister` room PUT of the initial store, GET (and every
//! other method) of the whole store, OPTIONS as a CORS preflight; for a `tinybase-sync` room the
//! merged store as plain JSON (or with stamps and hashes), PUT refused.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use super::{read_body, AppState};
use crate::auth::Access;
use crate::config::{PartyConfig, PartyKind};
use crate::protocol::persister::parse_content;
use crate::room::{absent_room, GetResult, PutResult, RoomKey};

/// The content type of every GET answer, as TinyBase's server sends it.
const GET_CONTENT_TYPE: &str = "text/plain;charset=UTF-8";

/// Answers a request whose path ends with the party's store path (party headers added by the caller).
pub async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    party: &PartyConfig,
    key: RoomKey,
    access: Access,
) -> HttpResponse {
    if req.method() == Method::OPTIONS {
        return HttpResponse::NoContent().finish();
    }
    if party.kind == PartyKind::TinybaseSync {
        if req.method() == Method::PUT {
            tracing::info!("refusing a PUT to a tinybase-sync room");
            return HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "GET, HEAD, OPTIONS"))
                .body("tinybase-sync rooms are written through the synchronizer, not PUT");
        }
        let mergeable = form_urlencoded::parse(req.query_string().as_bytes())
            .any(|(name, value)| name == "format" && value == "mergeable");
        return get(state, party, key, mergeable).await;
    }
    if req.method() == Method::PUT {
        if access == Access::Read {
            tracing::info!("refusing a PUT from a read-only client");
            return HttpResponse::Forbidden().body("read-only access");
        }
        return put(req, payload, state, party, key).await;
    }
    get(state, party, key, false).await
}

async fn put(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    party: &PartyConfig,
    key: RoomKey,
) -> HttpResponse {
    let limit = party.limits.max_message_bytes;
    let body = match read_body(req, payload, limit, party.limits.request_body_timeout).await {
        Ok(body) => body,
        Err(error) => return error.response(limit),
    };
    let content = match parse_content(&body) {
        Ok(content) => content,
        Err(invalid) => {
            tracing::info!(reason = %invalid, "refusing an invalid PUT");
            return HttpResponse::BadRequest().body(invalid.to_string());
        }
    };
    let room = match state.rooms.room(party, key) {
        Ok(room) => room,
        Err(unavailable) => return super::unavailable(&unavailable),
    };
    match room.put(content).await {
        Ok(PutResult::Saved) => HttpResponse::Created().finish(),
        Ok(PutResult::AlreadyHasStore) => HttpResponse::ResetContent().finish(),
        Ok(PutResult::TooLarge) => HttpResponse::PayloadTooLarge()
            .body(format!("the store would be larger than {} bytes", party.limits.max_room_bytes)),
        Ok(PutResult::StorageFailed) => super::storage_failed(state.storage.as_ref()),
        Err(_) => super::shutting_down(),
    }
}

/// The whole store; `mergeable` asks a `tinybase-sync` room for its stamps and hashes too.
async fn get(state: &AppState, party: &PartyConfig, key: RoomKey, mergeable: bool) -> HttpResponse {
    let answer = match state.rooms.existing_room(party, key).await {
        Ok(Some(room)) if mergeable => room.get_mergeable().await,
        Ok(Some(room)) => room.get().await,
        Ok(None) => Ok(absent_room(party.kind, mergeable)),
        Err(unavailable) => return super::unavailable(&unavailable),
    };
    let body = match answer {
        Ok(GetResult::Store(body)) => body,
        Ok(GetResult::NoStore) => bytes::Bytes::new(),
        Ok(GetResult::StorageFailed) => {
            return HttpResponse::ServiceUnavailable().body("storage unavailable: the room could not be read")
        }
        Err(_) => return super::shutting_down(),
    };
    HttpResponse::Ok().insert_header((header::CONTENT_TYPE, GET_CONTENT_TYPE)).body(body)
}

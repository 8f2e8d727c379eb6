//! The HTTP side: one catch-all handler that routes by the raw path to a party's room, then
//! to the websocket upgrade or the store endpoint.

mod admin;
pub mod connections;
mod health;
mod route;
mod store;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::Instrument;

use actix_web::http::Method;
use bytes::BytesMut;
use futures_util::StreamExt as _;

use crate::auth::{self, Access};
use crate::config::{Config, PartyConfig, PartyKind};
use crate::log_limit::limited;
use crate::metrics::Metrics;
use crate::room::{RoomKey, Rooms, Unavailable};
use crate::storage::Storage;
use crate::ws;
pub use route::{room_route, RoomRoute};

/// What every handler shares.
pub struct AppState {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// The live rooms.
    pub rooms: Arc<Rooms>,
    /// The storage (read directly only by operator routes: listings, readiness).
    pub storage: Arc<dyn Storage>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
}

/// Registers partyd's routes on an actix-web app.
pub fn configure(app: &mut web::ServiceConfig) {
    app.default_service(web::to(dispatch));
}

async fn dispatch(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    // Only the path: query strings may carry tokens and are never logged.
    let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path());
    async move {
        let response = route_request(&req, payload, &state).await;
        let status = response.status();
        state.metrics.http_answered(status.as_u16());
        if status.is_server_error() {
            limited!(error, %status, "answered");
        } else if status.is_client_error() {
            tracing::info!(%status, "answered");
        } else {
            tracing::debug!(%status, "answered");
        }
        response
    }
    .instrument(span)
    .await
}

async fn route_request(req: &HttpRequest, payload: web::Payload, state: &AppState) -> HttpResponse {
    let path = req.uri().path();
    if path.starts_with(admin::ADMIN_PREFIX) {
        return admin::handle(req, payload, state).await;
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        match path {
            "/healthz" => return health::healthz(),
            "/readyz" => return health::readyz(state).await,
            "/metrics" => return health::metrics(state).await,
            _ => {}
        }
    }
    let upgrade = is_websocket_upgrade(req.headers());
    if let Some(party_name) = route::party_only(path).filter(|_| upgrade) {
        return multiplexed_websocket(req, state, party_name).await;
    }
    let Some(route) = room_route(path) else {
        return HttpResponse::NotFound().body("not found");
    };
    let Some(party) = state.config.party(route.party) else {
        return HttpResponse::NotFound().body(format!("Party {} not found", route.party));
    };
    let key = match RoomKey::new(&party.name, route.room) {
        Ok(key) => key,
        Err(error) => {
            return with_party_headers(
                HttpResponse::BadRequest().body(format!("invalid room name: {error}")),
                party,
            )
        }
    };
    let connection_id = match (upgrade, party.kind) {
        (false, _) => None,
        (true, PartyKind::TinybasePersister) => Some(connection_id(req.query_string())),
        (true, PartyKind::TinybaseSync) => match sync_client_id(req.headers()) {
            Ok(id) => Some(id),
            Err(refusal) => return with_party_headers(*refusal, party),
        },
    };
    // A CORS preflight carries no credentials; it learns nothing but the party's headers.
    let access = if req.method() == Method::OPTIONS && !upgrade {
        Access::Read
    } else {
        match authenticate(req, party, &key, connection_id.as_deref()).await {
            Ok(access) => access,
            Err(refusal) => return with_party_headers(refusal, party),
        }
    };
    if let Some(connection_id) = connection_id {
        return websocket(req, state, party, key, connection_id, access).await;
    }
    if !path.ends_with(party.store_path.as_str()) {
        return with_party_headers(HttpResponse::NotFound().finish(), party);
    }
    let response = store::handle(req, payload, state, party, key, access).await;
    with_party_headers(response, party)
}

/// Runs the party's authentication (and, for upgrades, its origin check).
async fn authenticate(
    req: &HttpRequest,
    party: &PartyConfig,
    key: &RoomKey,
    connection_id: Option<&str>,
) -> Result<Access, HttpResponse> {
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    if connection_id.is_some() && !auth::origin_allowed(party.allowed_origins.as_deref(), origin) {
        tracing::info!(origin, "refusing a websocket from an origin that is not allowed");
        return Err(HttpResponse::Forbidden().body("origin not allowed"));
    }
    let query_token = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, token)| token.into_owned());
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let facts = auth::RequestFacts {
        party: key.party(),
        room: key.room(),
        token: query_token.as_deref().or(header_token),
        connection_id,
        method: req.method().as_str(),
        path: req.uri().path(),
        origin,
    };
    auth::authorize(&party.auth, &facts).await.map_err(|refusal| {
        tracing::info!(status = refusal.status, reason = %refusal.reason, "refusing a request");
        let status = actix_web::http::StatusCode::from_u16(refusal.status)
            .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
        HttpResponse::build(status).body(refusal.reason)
    })
}

async fn websocket(
    req: &HttpRequest,
    state: &AppState,
    party: &PartyConfig,
    key: RoomKey,
    connection_id: Arc<str>,
    access: Access,
) -> HttpResponse {
    let peer = req.peer_addr().map(|addr| addr.ip());
    let ip_claim = match peer {
        Some(ip) => match state.rooms.claim_ip(&party.name, ip, party.limits.max_connections_per_ip) {
            Some(claim) => Some(claim),
            None => {
                tracing::info!(%ip, "refusing a websocket: too many connections from this address");
                return HttpResponse::TooManyRequests().body("too many connections from this address");
            }
        },
        None => None,
    };
    let room = match state.rooms.room(party, key) {
        Ok(room) => room,
        Err(why) => return unavailable(&why),
    };
    let connection = ws::Connection {
        room: Some(room),
        counters: state.metrics.party(&party.name),
        metrics: state.metrics.clone(),
        socket: state.rooms.next_socket_id(),
        connection_id,
        access,
        ip_claim,
        protocol: match party.kind {
            PartyKind::TinybasePersister => {
                ws::Protocol::Persister { message_prefix: party.message_prefix.as_str().into() }
            }
            PartyKind::TinybaseSync => ws::Protocol::Sync(Default::default()),
        },
        limits: party.limits.clone(),
        pacing: Default::default(),
    };
    ws::upgrade(req, connection).await
}

/// A multiplexed synchronizer socket on `/parties/<party>`: nothing is joined until the client
/// subscribes channels (rooms), each authorized on its own.
async fn multiplexed_websocket(req: &HttpRequest, state: &AppState, party_name: &str) -> HttpResponse {
    let Some(party) = state.config.party(party_name) else {
        return HttpResponse::NotFound().body(format!("Party {party_name} not found"));
    };
    if party.kind != PartyKind::TinybaseSync || !offers_multiplexing(req.headers()) {
        return with_party_headers(HttpResponse::NotFound().body("not found"), party);
    }
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    if !auth::origin_allowed(party.allowed_origins.as_deref(), origin) {
        tracing::info!(origin, "refusing a websocket from an origin that is not allowed");
        return with_party_headers(HttpResponse::Forbidden().body("origin not allowed"), party);
    }
    let Some(client_id) =
        headers.get(header::SEC_WEBSOCKET_KEY).and_then(|value| value.to_str().ok()).map(Arc::<str>::from)
    else {
        return HttpResponse::BadRequest().body("missing Sec-WebSocket-Key");
    };
    let query_token = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, token)| token.into_owned());
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let ip = req.peer_addr().map(|addr| addr.ip());
    let ip_claim = match ip {
        Some(ip) => match state.rooms.claim_ip(&party.name, ip, party.limits.max_connections_per_ip) {
            Some(claim) => Some(claim),
            None => return HttpResponse::TooManyRequests().body("too many connections from this address"),
        },
        None => None,
    };
    let (outbox, receiver) = ws::outbox::outbox(party.limits.outbound_buffer_bytes);
    let context = ws::multiplex::ChannelContext {
        party: Arc::new(party.clone()),
        rooms: state.rooms.clone(),
        outbox: outbox.clone(),
        token: query_token.or(header_token.map(str::to_owned)),
        origin: origin.map(str::to_owned),
        path: req.uri().path().to_owned(),
        ip,
    };
    let connection = ws::Connection {
        room: None,
        counters: state.metrics.party(&party.name),
        metrics: state.metrics.clone(),
        socket: state.rooms.next_socket_id(),
        connection_id: client_id,
        access: Access::Write,
        ip_claim,
        protocol: ws::Protocol::Multiplexed(
            ws::multiplex::Multiplexed::new(context).into(),
            Default::default(),
        ),
        limits: party.limits.clone(),
        pacing: Default::default(),
    };
    ws::upgrade_with(req, connection, outbox, receiver).await
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Whether the client offers the `tinybase` subprotocol (a multiplexed synchronizer socket).
fn offers_multiplexing(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == "tinybase")
}

/// A synchronizer socket's client id: its `Sec-WebSocket-Key`, as TinyBase's server uses it.
/// A multiplexed socket on a room's path is refused: its channels are the rooms, so it opens
/// `/parties/<party>`.
fn sync_client_id(headers: &HeaderMap) -> Result<Arc<str>, Box<HttpResponse>> {
    if offers_multiplexing(headers) {
        tracing::info!("refusing a multiplexed synchronizer socket on a room path");
        return Err(Box::new(HttpResponse::BadRequest().body(
            "a multiplexed socket (tinybase subprotocol) opens /parties/<party>; its channels are the rooms",
        )));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|value| value.to_str().ok())
        .map(Arc::from)
        .ok_or_else(|| Box::new(HttpResponse::BadRequest().body("missing Sec-WebSocket-Key")))
}

/// The connection id: the form-decoded `_pk` query parameter (partysocket's id), else a new UUID.
fn connection_id(query: &str) -> Arc<str> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "_pk")
        .map(|(_, id)| Arc::from(id.as_ref()))
        .unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()))
}

/// Puts the party's response headers (default: the three CORS headers) on an answer.
fn with_party_headers(mut response: HttpResponse, party: &PartyConfig) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in &party.response_headers {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::try_from(name.as_str()), header::HeaderValue::try_from(value.as_str()))
        {
            headers.insert(name, value);
        }
    }
    response
}

/// The answer when the server stops while a request waits on a room (503).
pub(crate) fn shutting_down() -> HttpResponse {
    unavailable(&Unavailable::ShuttingDown)
}

/// The answer to a write whose round storage could not make durable: 507 with "storage full"
/// while the disk is full (the write can be tried again once space returns), else 500.
pub(crate) fn storage_failed(storage: &dyn crate::storage::Storage) -> HttpResponse {
    match storage.write_failure() {
        Some(error) if error.is_full() => {
            HttpResponse::InsufficientStorage().body("storage full: writes are refused until space returns")
        }
        _ => HttpResponse::InternalServerError().body("storage error"),
    }
}

/// The answer when a room cannot be reached (503).
pub(crate) fn unavailable(unavailable: &Unavailable) -> HttpResponse {
    HttpResponse::ServiceUnavailable().body(unavailable.to_string())
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken(actix_web::error::PayloadError),
}

impl BodyError {
    /// The answer to a request whose body could not be read; `limit` is the size cap.
    fn response(self, limit: usize) -> HttpResponse {
        match self {
            Self::TooLarge => {
                HttpResponse::PayloadTooLarge().body(format!("body is larger than {limit} bytes"))
            }
            // Closed: the rest of the body may still come, and must not be read as a request.
            Self::TimedOut => HttpResponse::RequestTimeout().force_close().body("request body timed out"),
            Self::Broken(error) => HttpResponse::BadRequest().body(format!("cannot read body: {error}")),
        }
    }
}

/// Reads a request body, refusing it as soon as it is known to exceed `limit` bytes, or when it
/// has not all arrived within `timeout` (a client that stalls mid-body would otherwise hold its
/// connection, and a descriptor, for as long as it likes).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<BytesMut, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(BodyError::Broken)?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(Err(BodyError::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_form_decoded_and_generated_when_absent() {
        assert_eq!(&*connection_id("_pk=a%20b+c&token=x"), "a b c");
        assert_eq!(&*connection_id("x=1&_pk=id-1"), "id-1");
        let generated = connection_id("token=x");
        assert_eq!(generated.len(), 36);
        assert_ne!(generated, connection_id(""));
    }
}

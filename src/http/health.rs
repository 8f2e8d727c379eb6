//! Health endpoints: `/healthz` (the process answers) and `/readyz` (storage takes a write
//! and a flush).

use actix_web::HttpResponse;

use super::AppState;
use crate::log_limit::limited;
use crate::storage::RoomPath;

/// Where the readiness probe writes (a party name no configuration can declare: it has a '/').
const PROBE_ROOM: RoomPath<'static> = RoomPath { party: "/partyd", room: "readyz" };

/// The Prometheus text exposition of the server's metrics.
pub async fn metrics(state: &AppState) -> HttpResponse {
    state.metrics.live_rooms.set(state.rooms.live_count() as i64);
    let storage = state.storage.clone();
    match state.rooms.storage_pool().run("count stored rooms", move || storage.all_rooms()).await {
        Ok(rooms) => {
            let configured = rooms.iter().filter(|(party, _)| state.config.party(party).is_some()).count();
            state.metrics.stored_rooms.set(configured as i64);
        }
        Err(error) => limited!(error, %error, "cannot count stored rooms"),
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// The process is up.
pub fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Storage is open and writable: a write and a flush succeed.
pub async fn readyz(state: &AppState) -> HttpResponse {
    if let Some(error) = state.storage.write_failure() {
        return HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!("{error}\n"));
    }
    let storage = state.storage.clone();
    let pool = state.rooms.storage_pool();
    let written = pool.run("the readiness probe", move || storage.write(PROBE_ROOM, Vec::new(), 0)).await;
    let result = match written {
        Ok(()) => tokio::time::timeout(pool.timeout(), state.storage.durable()).await.unwrap_or_else(|_| {
            Err(crate::storage::StorageError::Stalled("the readiness probe's flush did not return".into()))
        }),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready\n"),
        Err(error) => {
            limited!(error, %error, "readiness probe failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body(format!("storage not writable: {error}\n"))
        }
    }
}

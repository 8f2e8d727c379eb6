//! Replays `tests/vectors/mergeable/transcripts/ws-persist.json` (recorded from TinyBase 10.0.1's
//! createWsServer with its participant `S` and DurableObject storage, by the generator beside it)
//! against partyd: every frame a client sent is sent, every frame the server sent must arrive on
//! the same socket, byte for byte once client keys, transaction ids and request suffixes are
//! mapped (partyd and the recording generate their own), and every storage snapshot must equal
//! partyd's entries.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use partyd::config::Config;
use serde_json::Value;

const ADMIN_TOKEN: &str = "transcript-admin";

/// Recorded ids and the ids partyd (or its clients' sockets) used in their place.
#[derive(Default)]
struct Ids {
    to_actual: HashMap<String, String>,
}

impl Ids {
    /// Records (or checks) that `recorded` is `actual` here.
    fn pair(&mut self, recorded: &str, actual: &str, what: &str) {
        let known = self.to_actual.entry(recorded.to_owned()).or_insert_with(|| actual.to_owned());
        assert_eq!(known, actual, "{what}: {recorded} was {known} before");
    }

    fn actual<'a>(&'a self, recorded: &'a str) -> &'a str {
        self.to_actual.get(recorded).map_or(recorded, String::as_str)
    }

    /// A recorded frame with every id this run knows replaced by its actual id.
    fn translate(&self, frame: &str) -> String {
        let (to, rest) = frame.split_once('\n').unwrap();
        let to = self.actual(to);
        match request_id(rest) {
            Some(id) => {
                let (tx, req) = id.split_once('.').map_or((id, None), |(tx, req)| (tx, Some(req)));
                let new_id = match req {
                    Some(req) => format!("{}.{}", self.actual(tx), self.actual(req)),
                    None => self.actual(tx).to_owned(),
                };
                format!("{to}\n[\"{new_id}\"{}", &rest[id.len() + 3..])
            }
            None => format!("{to}\n{rest}"),
        }
    }
}

/// The request id of `["id",…`, if it has one.
fn request_id(remainder: &str) -> Option<&str> {
    let rest = remainder.strip_prefix("[\"")?;
    rest.split_once('"').map(|(id, _)| id)
}

/// Compares a frame partyd sent with the recorded one, learning the ids it uses.
fn compare(ids: &mut Ids, recorded: &str, actual: &str, at: usize) {
    let (recorded_from, recorded_rest) = recorded.split_once('\n').unwrap();
    let (actual_from, actual_rest) =
        actual.split_once('\n').unwrap_or_else(|| panic!("event {at}: {actual:?}"));
    if recorded_from.is_empty() || recorded_from == "S" {
        assert_eq!(actual_from, recorded_from, "event {at}: sender");
    } else {
        ids.pair(recorded_from, actual_from, &format!("event {at}: client key"));
    }
    match (request_id(recorded_rest), request_id(actual_rest)) {
        (Some(recorded_id), Some(actual_id)) => {
            let split = |id: &str| {
                id.split_once('.')
                    .map_or((id.to_owned(), None), |(tx, req)| (tx.to_owned(), Some(req.to_owned())))
            };
            let ((recorded_tx, recorded_req), (actual_tx, actual_req)) =
                (split(recorded_id), split(actual_id));
            ids.pair(&recorded_tx, &actual_tx, &format!("event {at}: transaction id"));
            assert_eq!(recorded_req.is_some(), actual_req.is_some(), "event {at}: {recorded} vs {actual}");
            if let (Some(recorded_req), Some(actual_req)) = (recorded_req, actual_req) {
                ids.pair(&recorded_req, &actual_req, &format!("event {at}: request id"));
            }
            assert_eq!(
                &actual_rest[actual_id.len() + 3..],
                &recorded_rest[recorded_id.len() + 3..],
                "event {at}: {recorded} vs {actual}"
            );
        }
        _ => assert_eq!(actual_rest, recorded_rest, "event {at}"),
    }
}

/// The room's entries in TinyBase's layout, from the admin API's debug dump; `{}` while the room
/// has nothing stored (partyd writes nothing before a merge accepts something, where TinyBase
/// saves the two empty roots at start-up).
async fn admin_entries(addr: std::net::SocketAddr, room: &str) -> Value {
    let client = awc::Client::default();
    let mut response = client
        .get(format!("http://{addr}/_partyd/parties/sync/rooms/{room}"))
        .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
        .send()
        .await
        .unwrap();
    if response.status() == awc::http::StatusCode::NOT_FOUND {
        return Value::Object(Default::default());
    }
    let body: Value = serde_json::from_slice(&response.body().await.unwrap()).unwrap();
    let entries = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry[0].as_str().unwrap().to_owned(), entry[1].clone()));
    Value::Object(entries.collect())
}

/// A snapshot without the empty roots TinyBase saves before anything else.
fn without_empty_roots(entries: &Value) -> Value {
    let empty = serde_json::json!([0, "", 0]);
    let kept = entries
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, value)| **value != empty)
        .map(|(k, v)| (k.clone(), v.clone()));
    Value::Object(kept.collect())
}

#[actix_web::test]
async fn the_persistence_transcript_replays_frame_for_frame() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mergeable/transcripts/ws-persist.json");
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = data_dir();
    let text = "[server]\nidle_unload_seconds = 1\n\n[parties.sync]\nkind = \"tinybase-sync\"\n";
    let mut config = Config::from_toml_str(text, Path::new("transcript test")).unwrap();
    config.listen = ([127, 0, 0, 1], 0).into();
    config.data_dir = dir.path().to_path_buf();
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    let server = start_with(config);
    let addr = server.addr;
    let mut sockets: HashMap<String, Socket> = HashMap::new();
    let mut ids = Ids::default();
    let mut frames = 0;
    for (at, event) in transcript["events"].as_array().unwrap().iter().enumerate() {
        let conn = event["conn"].as_str().unwrap_or("");
        if event["ev"] == "open" {
            let room = event["url"].as_str().unwrap().trim_start_matches('/');
            sockets.insert(conn.to_owned(), connect_url(&format!("ws://{addr}/parties/sync/{room}")).await);
        } else if event["ev"] == "close" {
            drop(sockets.remove(conn));
            if sockets.is_empty() {
                // TinyBase discards the path's store when its last client leaves and reloads it
                // from storage (children then in key order): let partyd unload the room too.
                until("the room leaves memory", || async { server.server.live_rooms() == 0 }).await;
            }
        } else if let Some(frame) = event["in"].as_str() {
            sockets.get_mut(conn).unwrap().send(&ids.translate(frame)).await;
        } else if let Some(recorded) = event["out"].as_str() {
            let actual = sockets.get_mut(conn).unwrap().next_text().await;
            compare(&mut ids, recorded, &actual, at);
            frames += 1;
        } else if let Some(entries) = event.get("entries") {
            let expected = entries.clone();
            until(&format!("event {at}: storage as recorded"), || {
                let expected = expected.clone();
                async move {
                    let actual = admin_entries(addr, "room1").await;
                    actual == expected
                        || (actual.as_object().unwrap().is_empty()
                            && without_empty_roots(&expected).as_object().unwrap().is_empty())
                }
            })
            .await;
        }
    }
    assert_eq!(frames, 21, "every frame the server sent was compared");
    for (_, socket) in sockets.iter_mut() {
        assert!(socket.inbox.len() <= 21);
    }
    server.server.shutdown().await.unwrap();
}

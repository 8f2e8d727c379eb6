//! The admin API and the health endpoints, with bad input: no/wrong token, unknown party or
//! room, bad bodies and queries.

mod common;

use actix_web::http::StatusCode;
use bytes::Bytes;
use common::*;
use partyd::config::Config;

const TOKEN: &str = "s3cret-token";

async fn admin(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    admin_with(addr, method, path, body, Some(TOKEN)).await
}

async fn admin_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Answer {
    let client = awc::Client::default();
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send_body(Bytes::from(body.to_owned())).await.expect("request");
    let body = response.body().await.expect("body");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|error| panic!("{error}: {}", answer.body))
}

fn admin_server(dir: &std::path::Path) -> TestServer {
    let mut config = Config::conformance(dir.to_path_buf());
    config.admin_token = Some(TOKEN.to_owned());
    start_with(config)
}

#[actix_web::test]
async fn the_admin_api_is_off_without_a_token_and_refuses_wrong_tokens() {
    let dir = data_dir();
    let server = start(dir.path());
    assert_eq!(admin(server.addr, "GET", "/_partyd/parties", "").await.status, StatusCode::NOT_FOUND);
    server.server.shutdown().await.unwrap();

    let dir = data_dir();
    let server = admin_server(dir.path());
    for token in [None, Some("wrong"), Some("s3cret-toke"), Some("s3cret-token2")] {
        let answer = admin_with(server.addr, "GET", "/_partyd/parties", "", token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert_eq!(admin(server.addr, "GET", "/_partyd/nothing", "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin(server.addr, "PUT", "/_partyd/parties", "").await.status, StatusCode::NOT_FOUND);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn parties_and_rooms_are_listed_with_their_sizes_and_connections() {
    let dir = data_dir();
    let server = admin_server(dir.path());
    let addr = server.addr;
    for room in ["b", "a", "a-b", "c"] {
        assert_eq!(
            put(addr, &format!("/parties/main/{room}/store"), "[{},{\"v\":1}]").await,
            StatusCode::CREATED
        );
    }
    let _socket = connect(addr, "main", "a", "x").await;
    let parties = json(&admin(addr, "GET", "/_partyd/parties", "").await);
    assert_eq!(parties["parties"][1]["name"], "main");
    assert_eq!(parties["parties"][1]["kind"], "tinybase-persister");
    assert_eq!(parties["parties"][1]["connections"], 1);
    assert_eq!(parties["parties"][0]["name"], "custom");

    let page = json(&admin(addr, "GET", "/_partyd/parties/main/rooms?limit=2", "").await);
    let names: Vec<_> = page["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "a-b"]);
    assert_eq!(page["rooms"][0]["connections"], 1);
    assert!(page["rooms"][0]["stored_bytes"].as_u64().unwrap() > 0);
    assert!(page["rooms"][0]["last_write_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(page["next_after"], "a-b");
    let rest = json(&admin(addr, "GET", "/_partyd/parties/main/rooms?after=a-b", "").await);
    assert_eq!(rest["rooms"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next_after"], serde_json::Value::Null);
    let prefixed = json(&admin(addr, "GET", "/_partyd/parties/main/rooms?prefix=a", "").await);
    assert_eq!(prefixed["rooms"].as_array().unwrap().len(), 2);

    for bad in ["?limit=0", "?limit=x", "?limit=100000", "?bogus=1"] {
        assert_eq!(
            admin(addr, "GET", &format!("/_partyd/parties/main/rooms{bad}"), "").await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(admin(addr, "GET", "/_partyd/parties/nope/rooms", "").await.status, StatusCode::NOT_FOUND);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_room_is_dumped_in_tinybase_key_layout() {
    let dir = data_dir();
    let mut config = Config::from_toml_str(
        "[parties.main]\nkind = \"tinybase-persister\"\nstorage_prefix = \"app_\"\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.admin_token = Some(TOKEN.to_owned());
    let server = start_with(config);
    let addr = server.addr;
    assert_eq!(
        put(addr, "/parties/main/r/store", r#"[{"pets":{"fido":{"legs":4}}},{"open":true}]"#).await,
        StatusCode::CREATED
    );
    let _socket = connect(addr, "main", "r", "conn-1").await;
    let dump = json(&admin(addr, "GET", "/_partyd/parties/main/rooms/r", "").await);
    assert_eq!(dump["content"], serde_json::json!([{"pets": {"fido": {"legs": 4}}}, {"open": true}]));
    assert_eq!(
        dump["entries"],
        serde_json::json!([["app_hasStore", 1], ["app_t\"pets\",\"fido\",\"legs\"", 4], ["app_vopen", true]])
    );
    assert_eq!(dump["connection_ids"], serde_json::json!(["conn-1"]));
    assert_eq!(
        admin(addr, "GET", "/_partyd/parties/main/rooms/never", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(admin(addr, "GET", "/_partyd/parties/nope/rooms/r", "").await.status, StatusCode::NOT_FOUND);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn deleting_a_room_removes_its_data_and_closes_its_sockets_with_4000() {
    let dir = data_dir();
    let server = admin_server(dir.path());
    let addr = server.addr;
    assert_eq!(
        put(addr, "/parties/main/doomed/store", "[{\"t\":{\"r\":{\"c\":1}}},{}]").await,
        StatusCode::CREATED
    );
    assert_eq!(put(addr, "/parties/main/doomed2/store", "[{},{\"keep\":1}]").await, StatusCode::CREATED);
    let mut socket = connect(addr, "main", "doomed", "x").await;
    assert_eq!(admin(addr, "DELETE", "/_partyd/parties/main/rooms/doomed", "").await.status, StatusCode::OK);
    assert_eq!(socket.closed().await, Ended::Closed(Some(4000)));
    assert_eq!(get_body(addr, "/parties/main/doomed/store").await, "");
    assert_eq!(get_body(addr, "/parties/main/doomed2/store").await, "[{},{\"keep\":1}]");
    assert_eq!(
        admin(addr, "DELETE", "/_partyd/parties/main/rooms/doomed", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(addr, "/parties/main/doomed/store", "[{},{}]").await,
        StatusCode::CREATED,
        "the room starts afresh"
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_server_side_write_is_saved_and_broadcast_to_everyone() {
    let dir = data_dir();
    let server = admin_server(dir.path());
    let addr = server.addr;
    assert_eq!(
        put(addr, "/parties/main/w/store", "[{\"t\":{\"r\":{\"c\":1}}},{}]").await,
        StatusCode::CREATED
    );
    let mut a = connect(addr, "main", "w", "a").await;
    let mut b = connect(addr, "main", "w", "b").await;
    let answer = admin(
        addr,
        "POST",
        "/_partyd/parties/main/rooms/w/changes",
        "[{\"t\":{\"r\":{\"c\":\"\u{FFFC}\",\"d\":2},\"e\":{}}},{\"v\":-0},1]",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "[{\"t\":{\"r\":{\"c\":\"\u{FFFC}\",\"d\":2}}},{\"v\":0},1]");
    let frame = "s[{\"t\":{\"r\":{\"c\":\"\u{FFFC}\",\"d\":2}}},{\"v\":0},1]";
    assert_eq!(a.next_text().await, frame);
    assert_eq!(b.next_text().await, frame);
    assert_eq!(get_body(addr, "/parties/main/w/store").await, "[{\"t\":{\"r\":{\"d\":2}}},{\"v\":0}]");
    for bad in ["", "nope", "[{},{}]", "[{},{},2]", "[{\"t\":5},{},1]"] {
        assert_eq!(
            admin(addr, "POST", "/_partyd/parties/main/rooms/w/changes", bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad:?}"
        );
    }
    assert_eq!(
        admin(addr, "POST", "/_partyd/parties/main/rooms/nostore/changes", "[{},{\"v\":1},1]").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin(addr, "POST", "/_partyd/parties/nope/rooms/w/changes", "[{},{\"v\":1},1]").await.status,
        StatusCode::NOT_FOUND
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn health_and_readiness() {
    let dir = data_dir();
    let server = start(dir.path());
    let health = request(server.addr, "GET", "/healthz", "").await;
    assert_eq!((health.status, health.body.as_str()), (StatusCode::OK, "ok\n"));
    let ready = request(server.addr, "GET", "/readyz", "").await;
    assert_eq!((ready.status, ready.body.as_str()), (StatusCode::OK, "ready\n"));
    assert_eq!(request(server.addr, "POST", "/healthz", "").await.status, StatusCode::NOT_FOUND);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn metrics_count_connections_traffic_changes_closes_and_flushes() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/m/store", "[{},{}]").await, StatusCode::CREATED);
    let mut a = connect(addr, "main", "m", "a").await;
    let mut b = connect(addr, "main", "m", "b").await;
    a.send("s[{},{\"v\":1},1]").await;
    a.send("garbage").await;
    a.send("s[{},{},1]").await;
    a.barrier(&mut b).await;
    let metrics = request(addr, "GET", "/metrics", "").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body;
    for line in [
        "partyd_connections 2",
        "partyd_live_rooms 1",
        "partyd_stored_rooms 1",
        "partyd_messages_in_total{party=\"main\"} 4",
        "partyd_messages_out_total{party=\"main\"} 2",
        "partyd_changes_total{outcome=\"accepted\",party=\"main\",reason=\"\"} 2",
        "partyd_changes_total{outcome=\"ignored\",party=\"main\",reason=\"invalid\"} 1",
        "partyd_changes_total{outcome=\"ignored\",party=\"main\",reason=\"empty\"} 1",
        "partyd_http_requests_total{status=\"201\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("partyd_flush_seconds_count"), "{text}");
    assert!(text.contains("partyd_room_load_seconds_count 1"), "{text}");
    server.server.shutdown().await.unwrap();
    assert_eq!(a.closed().await, Ended::Closed(Some(1001)));
}

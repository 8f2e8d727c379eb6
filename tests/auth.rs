//! Authentication before any room work: JWT (query token or bearer header, exp, rooms, access),
//! the webhook (allow, read-only, refuse, fail closed), allowed origins, and tokens kept out of
//! the logs.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use common::process::Partyd;
use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use partyd::config::Config;

const SECRET: &str = "test-secret-of-at-least-32-bytes!!";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(claims: serde_json::Value) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn valid(extra: serde_json::Value) -> String {
    let mut claims = serde_json::json!({"exp": now() + 600});
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    token(claims)
}

fn config_with(text: &str, dir: &std::path::Path) -> Config {
    let mut config = Config::from_toml_str(text, std::path::Path::new("auth.toml")).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config
}

fn jwt_config(dir: &std::path::Path, env: &str) -> Config {
    std::env::set_var(env, SECRET);
    config_with(&format!("[parties.main]\nkind = \"tinybase-persister\"\nallowed_origins = [\"https://app.example\"]\n[parties.main.auth]\nmode = \"jwt\"\nsecret_env = \"{env}\"\n"), dir)
}

async fn get_with(addr: SocketAddr, path: &str, bearer: Option<&str>) -> StatusCode {
    let client = awc::Client::default();
    let mut request = client.get(format!("http://{addr}{path}"));
    if let Some(bearer) = bearer {
        request = request.insert_header(("Authorization", format!("Bearer {bearer}")));
    }
    request.send().await.unwrap().status()
}

async fn upgrade_status(url: &str, origin: Option<&str>) -> Result<(), StatusCode> {
    let client = awc::Client::default();
    let mut request = client.ws(url);
    if let Some(origin) = origin {
        request = request.origin(origin);
    }
    match request.connect().await {
        Ok(_) => Ok(()),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status),
        Err(other) => panic!("{other}"),
    }
}

#[actix_web::test]
async fn jwt_guards_every_request_before_the_room_is_touched() {
    let dir = data_dir();
    let server = start_with(jwt_config(dir.path(), "PARTYD_TEST_JWT_1"));
    let addr = server.addr;
    let store = "/parties/main/team-1/store";
    let good = valid(serde_json::json!({}));
    assert_eq!(get_with(addr, store, None).await, StatusCode::UNAUTHORIZED);
    for bad in [
        "garbage",
        &token(serde_json::json!({"exp": now() - 3600})),
        &token(serde_json::json!({"sub": "no exp"})),
        &encode(
            &Header::default(),
            &serde_json::json!({"exp": now() + 600}),
            &EncodingKey::from_secret(b"another secret"),
        )
        .unwrap(),
        &valid(serde_json::json!({"access": "admin"})),
    ] {
        assert_eq!(
            get_with(addr, &format!("{store}?token={bad}"), None).await,
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
        assert_eq!(get_with(addr, store, Some(bad)).await, StatusCode::UNAUTHORIZED, "{bad}");
    }
    assert_eq!(server.server.live_rooms(), 0, "refused requests load nothing");
    assert_eq!(get_with(addr, &format!("{store}?token={good}"), None).await, StatusCode::OK);
    assert_eq!(get_with(addr, store, Some(&good)).await, StatusCode::OK);
    let team_only = valid(serde_json::json!({"rooms": ["team-*", "lobby"]}));
    assert_eq!(get_with(addr, store, Some(&team_only)).await, StatusCode::OK);
    assert_eq!(get_with(addr, "/parties/main/lobby/store", Some(&team_only)).await, StatusCode::OK);
    assert_eq!(get_with(addr, "/parties/main/other/store", Some(&team_only)).await, StatusCode::FORBIDDEN);
    let answer = request(addr, "OPTIONS", store, "").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "a preflight needs no token");
    assert_eq!(
        upgrade_status(&format!("ws://{addr}/parties/main/team-1?_pk=a"), None).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        upgrade_status(&format!("ws://{addr}/parties/main/other?_pk=a&token={team_only}"), None).await,
        Err(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        upgrade_status(&format!("ws://{addr}/parties/main/team-1?_pk=a&token={good}"), None).await,
        Ok(())
    );
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_read_token_sees_updates_but_cannot_write() {
    let dir = data_dir();
    let server = start_with(jwt_config(dir.path(), "PARTYD_TEST_JWT_2"));
    let addr = server.addr;
    let (writer, reader) = (valid(serde_json::json!({})), valid(serde_json::json!({"access": "read"})));
    let store = "/parties/main/r/store";
    assert_eq!(
        request(addr, "PUT", &format!("{store}?token={reader}"), "[{},{}]").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        request(addr, "PUT", &format!("{store}?token={writer}"), "[{},{\"v\":1}]").await.status,
        StatusCode::CREATED
    );
    assert_eq!(get_with(addr, store, Some(&reader)).await, StatusCode::OK);
    let mut read_socket = connect_url(&format!("ws://{addr}/parties/main/r?_pk=reader&token={reader}")).await;
    let mut write_socket =
        connect_url(&format!("ws://{addr}/parties/main/r?_pk=writer&token={writer}")).await;
    read_socket.send("s[{},{\"v\":666},1]").await;
    write_socket.send("s[{},{\"v\":2},1]").await;
    assert_eq!(read_socket.next_text().await, "s[{},{\"v\":2},1]", "the reader receives broadcasts");
    read_socket.send("s[{},{\"v\":667},1]").await;
    write_socket.barrier(&mut read_socket).await;
    assert_eq!(
        request(addr, "GET", &format!("{store}?token={writer}"), "").await.body,
        "[{},{\"v\":2}]",
        "the reader's changes were dropped"
    );
    assert!(write_socket.inbox.is_empty(), "nothing of the reader was broadcast: {:?}", write_socket.inbox);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn websockets_from_origins_not_listed_are_refused() {
    let dir = data_dir();
    let server = start_with(jwt_config(dir.path(), "PARTYD_TEST_JWT_3"));
    let url = format!("ws://{}/parties/main/r?_pk=a&token={}", server.addr, valid(serde_json::json!({})));
    assert_eq!(upgrade_status(&url, Some("https://evil.example")).await, Err(StatusCode::FORBIDDEN));
    assert_eq!(upgrade_status(&url, Some("https://app.example")).await, Ok(()));
    assert_eq!(upgrade_status(&url, None).await, Ok(()), "non-browser clients send no Origin");
    server.server.shutdown().await.unwrap();
}

/// A webhook on 127.0.0.1:0 that answers by token and records what it was asked.
fn webhook(seen: Arc<Mutex<Vec<serde_json::Value>>>) -> (actix_web::dev::ServerHandle, SocketAddr) {
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/authorize",
            web::post().to(move |body: web::Json<serde_json::Value>| {
                let seen = seen.clone();
                async move {
                    let token = body["token"].as_str().unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(body.into_inner());
                    match token.as_str() {
                        "good" => HttpResponse::Ok().finish(),
                        "reader" => HttpResponse::Ok().json(serde_json::json!({"access": "read"})),
                        "nope" => HttpResponse::Forbidden().finish(),
                        "who" => HttpResponse::Unauthorized().finish(),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            HttpResponse::Ok().finish()
                        }
                        "weird" => HttpResponse::Ok().body("not json"),
                        _ => HttpResponse::InternalServerError().finish(),
                    }
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (handle, addr)
}

#[actix_web::test]
async fn the_webhook_decides_and_fails_closed() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (hook, hook_addr) = webhook(seen.clone());
    let dir = data_dir();
    let config = config_with(
        &format!("[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.auth]\nmode = \"webhook\"\nurl = \"http://{hook_addr}/authorize\"\ntimeout_ms = 500\n"),
        dir.path(),
    );
    let server = start_with(config);
    let addr = server.addr;
    let store = "/parties/main/w/store";
    assert_eq!(get_with(addr, &format!("{store}?token=good"), None).await, StatusCode::OK);
    assert_eq!(get_with(addr, store, Some("good")).await, StatusCode::OK);
    assert_eq!(
        request(addr, "PUT", &format!("{store}?token=reader"), "[{},{}]").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        request(addr, "PUT", &format!("{store}?token=good"), "[{},{}]").await.status,
        StatusCode::CREATED
    );
    for (token, status) in [("nope", 403), ("who", 401), ("slow", 503), ("weird", 503), ("crash", 503)] {
        assert_eq!(get_with(addr, &format!("{store}?token={token}"), None).await.as_u16(), status, "{token}");
    }
    assert_eq!(
        upgrade_status(
            &format!("ws://{addr}/parties/main/w/sub?_pk=conn-9&token=good"),
            Some("https://app.example")
        )
        .await,
        Ok(())
    );
    let asked = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        asked,
        serde_json::json!({"party": "main", "room": "w", "token": "good", "connection_id": "conn-9", "method": "GET", "path": "/parties/main/w/sub", "origin": "https://app.example"})
    );
    server.server.shutdown().await.unwrap();
    hook.stop(false).await;
}

#[actix_web::test]
async fn tokens_never_appear_in_the_logs() {
    let dir = data_dir();
    let env = "PARTYD_TEST_JWT_LOG";
    let toml = format!("[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.auth]\nmode = \"jwt\"\nsecret_env = \"{env}\"\n");
    let partyd = Partyd::spawn_with(dir.path(), &toml, &[("RUST_LOG", "debug"), (env, SECRET)]);
    let addr = partyd.addr;
    let good = valid(serde_json::json!({}));
    let expired = token(serde_json::json!({"exp": now() - 3600, "marker": "expired-token-marker"}));
    assert_eq!(get_with(addr, &format!("/parties/main/r/store?token={good}"), None).await, StatusCode::OK);
    assert_eq!(get_with(addr, "/parties/main/r/store", Some(&good)).await, StatusCode::OK);
    assert_eq!(
        get_with(addr, &format!("/parties/main/r/store?token={expired}"), None).await,
        StatusCode::UNAUTHORIZED
    );
    let mut socket = connect_url(&format!("ws://{addr}/parties/main/r?_pk=a&token={good}")).await;
    socket.send("s[{},{},1]").await;
    let _ =
        request(addr, "PUT", &format!("/parties/main/r/store?token={good}"), Bytes::from_static(b"[{},{}]"))
            .await;
    drop(socket);
    let log = partyd.log.clone();
    assert!(partyd.terminate().success());
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("refusing a request"), "the refusal was logged:\n{log}");
    for secret in [good.as_str(), expired.as_str(), SECRET] {
        assert!(!log.contains(secret), "a token or secret leaked into the log:\n{log}");
    }
}

#[actix_web::test]
async fn public_key_algorithms_verify_tokens_signed_with_their_private_keys() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let cases = [
        ("RS256", jsonwebtoken::Algorithm::RS256, "rs256"),
        ("ES256", jsonwebtoken::Algorithm::ES256, "es256"),
        ("EdDSA", jsonwebtoken::Algorithm::EdDSA, "eddsa"),
    ];
    for (name, algorithm, file) in cases {
        let dir = data_dir();
        let public = keys.join(format!("{file}-public.pem"));
        let toml = format!(
            "[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.auth]\nmode = \"jwt\"\nalgorithm = \"{name}\"\npublic_key_file = \"{}\"\naudience = \"app\"\nissuer = \"https://auth.example\"\n",
            public.display()
        );
        let server = start_with(config_with(&toml, dir.path()));
        let private = std::fs::read(keys.join(format!("{file}-private.pem"))).unwrap();
        let signing = match algorithm {
            jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(&private),
            jsonwebtoken::Algorithm::ES256 => EncodingKey::from_ec_pem(&private),
            _ => EncodingKey::from_ed_pem(&private),
        }
        .unwrap();
        let sign = |claims: serde_json::Value| encode(&Header::new(algorithm), &claims, &signing).unwrap();
        let good = sign(serde_json::json!({"exp": now() + 600, "aud": "app", "iss": "https://auth.example"}));
        let wrong_audience =
            sign(serde_json::json!({"exp": now() + 600, "aud": "other", "iss": "https://auth.example"}));
        let wrong_issuer =
            sign(serde_json::json!({"exp": now() + 600, "aud": "app", "iss": "https://evil.example"}));
        let hmac =
            token(serde_json::json!({"exp": now() + 600, "aud": "app", "iss": "https://auth.example"}));
        let store = "/parties/main/r/store";
        assert_eq!(get_with(server.addr, store, Some(&good)).await, StatusCode::OK, "{name}");
        for bad in [&wrong_audience, &wrong_issuer, &hmac] {
            assert_eq!(get_with(server.addr, store, Some(bad)).await, StatusCode::UNAUTHORIZED, "{name}");
        }
        server.server.shutdown().await.unwrap();
    }
}

#[actix_web::test]
async fn a_read_token_on_a_sync_room_may_ask_but_its_data_is_dropped() {
    std::env::set_var("PARTYD_TEST_JWT_SYNC", SECRET);
    let dir = data_dir();
    let server = start_with(config_with("[parties.sync]\nkind = \"tinybase-sync\"\n[parties.sync.auth]\nmode = \"jwt\"\nsecret_env = \"PARTYD_TEST_JWT_SYNC\"\n", dir.path()));
    let addr = server.addr;
    let (writer, reader) = (valid(serde_json::json!({})), valid(serde_json::json!({"access": "read"})));
    assert_eq!(
        upgrade_status(&format!("ws://{addr}/parties/sync/r"), None).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let mut read_socket = connect_url(&format!("ws://{addr}/parties/sync/r?token={reader}")).await;
    let mut write_socket = connect_url(&format!("ws://{addr}/parties/sync/r?token={writer}")).await;
    let change = |value: u32| {
        format!("\n[\"c{value}\",3,[[{{}}],[{{\"v\":[{value},\"NjEtLV-----67WE{value}\"]}}],1]]")
    };
    read_socket.send(&change(6)).await;
    read_socket.send("\n[\"h\",2,[1,2]]").await;
    // A request from the reader is relayed; the data it sent before never reaches the writer.
    read_socket.send("\n[\"last\",1,\"\"]").await;
    loop {
        let frame = write_socket.next_text().await;
        if frame.ends_with("\n[\"last\",1,\"\"]") {
            break;
        }
        assert!(frame.starts_with("S\n"), "only S spoke before: {frame}");
    }
    write_socket.send(&change(2)).await;
    // The reader receives the writer's change, and may still ask S.
    loop {
        if read_socket.next_text().await.ends_with(&change(2)[1..]) {
            break;
        }
    }
    read_socket.send("S\n[\"ask\",1,\"\"]").await;
    loop {
        if read_socket.next_text().await.starts_with("S\n[\"ask\",0,") {
            break;
        }
    }
    assert_eq!(
        request(addr, "GET", &format!("/parties/sync/r/store?token={writer}"), "").await.body,
        "[{},{\"v\":2}]"
    );
    server.server.shutdown().await.unwrap();
}

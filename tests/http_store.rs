//! The store endpoint over real HTTP, beyond the shared conformance suite: limits, routing
//! corners, headers, exact bytes, and malformed input.

mod common;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

#[actix_web::test]
async fn get_put_and_exact_bytes() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let answer = request(addr, "GET", "/parties/main/r1/store", "").await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(answer.header("content-type"), Some("text/plain;charset=UTF-8"));
    let body = r#"[{"b":{"10":{"z":-0,"a":1E21},"9":{"c":"\u0001\"é\u2028"}},"a b":{"r":{"c":5.000}},"a":{"r":{"c":[1e400,{"k":0.000001}]}}},{"v":9007199254740993,"":1.5e-7}]"#;
    assert_eq!(put(addr, "/parties/main/r1/store", body).await, StatusCode::CREATED);
    assert_eq!(
        get_body(addr, "/parties/main/r1/store").await,
        "[{\"a b\":{\"r\":{\"c\":5}},\"a\":{\"r\":{\"c\":[null,{\"k\":0.000001}]}},\"b\":{\"9\":{\"c\":\"\\u0001\\\"é\u{2028}\"},\"10\":{\"a\":1e+21,\"z\":0}}},{\"\":1.5e-7,\"v\":9007199254740992}]"
    );
    assert_eq!(put(addr, "/parties/main/r1/store", "[{},{}]").await, StatusCode::RESET_CONTENT);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn bad_bodies_answer_400_with_a_reason_and_never_touch_the_store() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/r/store", "[{},{\"v\":1}]").await, StatusCode::CREATED);
    for bad in ["", "nope", "[{},{}", "[{\"t\":5},{}]", "[{},{\"v\":1e999}]", "\u{feff}[{},{}]"] {
        let answer = request(addr, "PUT", "/parties/main/r/store", bad.to_owned()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "PUT {bad:?}");
        assert!(!answer.body.is_empty(), "a 400 says why: {bad:?}");
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }
    let invalid_utf8 = request(addr, "PUT", "/parties/main/other/store", vec![b'[', 0xff, b']']).await;
    assert_eq!(invalid_utf8.status, StatusCode::BAD_REQUEST);
    assert_eq!(get_body(addr, "/parties/main/r/store").await, "[{},{\"v\":1}]");
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn bodies_over_the_limit_answer_413_and_the_room_goes_on() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.max_message_bytes = 1024;
    });
    let server = start_with(config);
    let addr = server.addr;
    let big = format!("[{{}},{{\"v\":\"{}\"}}]", "x".repeat(2000));
    let answer = request(addr, "PUT", "/parties/main/r/store", big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(put(addr, "/parties/main/r/store", "[{},{\"v\":1}]").await, StatusCode::CREATED);
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn routing_corners() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    // /party/<room> is the main party.
    assert_eq!(put(addr, "/party/short/store", "[{},{\"via\":\"party\"}]").await, StatusCode::CREATED);
    assert_eq!(get_body(addr, "/parties/main/short/store").await, "[{},{\"via\":\"party\"}]");
    // The room named `store`.
    assert_eq!(put(addr, "/parties/main/store", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(get_body(addr, "/parties/main/store/store").await, "[{},{}]");
    // Unknown party and non-room paths: 404, no CORS headers.
    for path in ["/", "/parties/nope/r/store", "/parties/MAIN/r/store", "/parties/main", "/elsewhere"] {
        let answer = request(addr, "GET", path, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.header("access-control-allow-origin"), None, "{path}");
    }
    // Bad room names: 400 with the reason.
    let long = format!("/parties/main/{}/store", "x".repeat(257));
    for path in [long.as_str(), "/parties/main//store"] {
        let answer = request(addr, "GET", path, "").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(answer.body.contains("room name"), "{path}: {}", answer.body);
    }
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn options_is_a_preflight_and_head_has_no_body() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let options = request(addr, "OPTIONS", "/parties/main/r/store", "").await;
    assert_eq!(options.status, StatusCode::NO_CONTENT);
    for name in
        ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"]
    {
        assert_eq!(options.header(name), Some("*"), "{name}");
    }
    assert_eq!(put(addr, "/parties/main/r/store", "[{},{\"v\":1}]").await, StatusCode::CREATED);
    let head = request(addr, "HEAD", "/parties/main/r/store", "").await;
    assert_eq!((head.status, head.body.as_str()), (StatusCode::OK, ""));
    let post = request(addr, "POST", "/parties/main/r/store", "ignored").await;
    assert_eq!((post.status, post.body.as_str()), (StatusCode::OK, "[{},{\"v\":1}]"));
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn response_headers_replace_the_default_cors_headers() {
    let dir = data_dir();
    let text = "[parties.main]\nkind = \"tinybase-persister\"\nresponse_headers = { \"Access-Control-Allow-Origin\" = \"https://app.example\", \"X-Extra\" = \"1\" }\n";
    let mut config = Config::from_toml_str(text, std::path::Path::new("test.toml")).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    let server = start_with(config);
    let answer = request(server.addr, "GET", "/parties/main/r/store", "").await;
    assert_eq!(answer.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(answer.header("x-extra"), Some("1"));
    assert_eq!(answer.header("access-control-allow-methods"), None, "the defaults are replaced, not merged");
    let missing = request(server.addr, "GET", "/parties/main/r/nothing", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("x-extra"), Some("1"));
    server.server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn racing_puts_on_a_new_room_make_exactly_one_store() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let puts = (0..8).map(|i| {
        put(
            addr,
            "/parties/main/race/store",
            Box::leak(
                format!("[{{\"t\":{{\"r\":{{\"c\":{i},\"d\":{i}}}}}}},{{\"i\":{i}}}]").into_boxed_str(),
            ),
        )
    });
    let statuses = futures_util::future::join_all(puts).await;
    let winners: Vec<usize> =
        statuses.iter().enumerate().filter(|(_, s)| **s == StatusCode::CREATED).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::RESET_CONTENT));
    let i = winners[0];
    assert_eq!(
        get_body(addr, "/parties/main/race/store").await,
        format!("[{{\"t\":{{\"r\":{{\"c\":{i},\"d\":{i}}}}}}},{{\"i\":{i}}}]")
    );
    server.server.shutdown().await.unwrap();
}

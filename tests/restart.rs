//! A graceful restart (SIGTERM-style shutdown, then start on the same data dir) keeps every
//! room byte for byte.

mod common;

use actix_web::http::StatusCode;
use common::*;

#[actix_web::test]
async fn a_graceful_restart_keeps_every_store_byte_for_byte() {
    let dir = data_dir();
    let server = start(dir.path());
    let addr = server.addr;
    let content = r#"[{"pets":{"fido":{"species":"dog","legs":4},"felix":{"species":"cat"}},"9":{"1":{"x":[1,{"y":null}]}}},{"open":true,"price":1.5,"é":"\u2028"}]"#;
    assert_eq!(put(addr, "/parties/main/kept/store", content).await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/custom/kept/my_tinybase", "[{},{}]").await, StatusCode::CREATED);
    assert_eq!(put(addr, "/parties/main/flagged/store", "[{\"t\":{\"r\":{\"c\":1}}},{}]").await, StatusCode::CREATED);
    let mut a = connect(addr, "main", "kept", "a").await;
    let mut b = connect(addr, "main", "kept", "b").await;
    a.send("s[{\"pets\":{\"felix\":\"\u{FFFC}\",\"rex\":{\"legs\":3}}},{\"price\":-0,\"new\":\"v\"},1]").await;
    b.next_text().await;
    let mut c = connect(addr, "main", "flagged", "c").await;
    let mut d = connect(addr, "main", "flagged", "d").await;
    c.send("s[{\"t\":\"\u{FFFC}\"},{},1]").await;
    d.next_text().await;
    let before = (
        get_body(addr, "/parties/main/kept/store").await,
        get_body(addr, "/parties/custom/kept/my_tinybase").await,
        get_body(addr, "/parties/main/flagged/store").await,
    );
    assert_eq!(before.2, "[{},{}]", "deleting every cell keeps the store");
    server.server.shutdown().await.unwrap();

    let server = start(dir.path());
    let addr = server.addr;
    let after = (
        get_body(addr, "/parties/main/kept/store").await,
        get_body(addr, "/parties/custom/kept/my_tinybase").await,
        get_body(addr, "/parties/main/flagged/store").await,
    );
    assert_eq!(after, before);
    assert_eq!(put(addr, "/parties/main/flagged/store", "[{},{}]").await, StatusCode::RESET_CONTENT, "the store flag survived");
    assert_eq!(get_body(addr, "/parties/main/never/store").await, "");
    server.server.shutdown().await.unwrap();
}

//! Permissions and schemas over real sockets: refused parts are dropped, the accepted rest is
//! saved and broadcast, and the sender alone is sent what restores it to the stored truth.

mod common;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;

const PARTY_TOML: &str = r#"
[parties.main]
kind = "tinybase-persister"
[parties.main.permissions]
read_only_tables = ["config"]
read_only_values = ["version"]
no_delete_tables = ["log"]
[parties.main.schema.tables.todos]
text = "string"
done = "boolean"
[parties.main.schema.values]
open = "boolean"
version = "number"
"#;

#[actix_web::test]
async fn refused_parts_are_restored_on_the_sender_only() {
    let dir = data_dir();
    let mut config = Config::from_toml_str(PARTY_TOML, std::path::Path::new("perm.toml")).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    let server = start_with(config);
    let addr = server.addr;
    let initial = r#"[{"config":{"theme":{"color":"blue"}},"log":{"e1":{"msg":"start"}},"todos":{"t1":{"text":"a","done":false,"bad":1}}},{"version":1,"open":true,"extra":2}]"#;
    assert_eq!(put(addr, "/parties/main/p/store", initial).await, StatusCode::CREATED);
    let stored = r#"[{"config":{"theme":{"color":"blue"}},"log":{"e1":{"msg":"start"}},"todos":{"t1":{"done":false,"text":"a"}}},{"open":true,"version":1}]"#;
    assert_eq!(
        get_body(addr, "/parties/main/p/store").await,
        stored,
        "the PUT may fill read-only parts; the schema applies"
    );

    let mut sender = connect(addr, "main", "p", "sender").await;
    let mut other = connect(addr, "main", "p", "other").await;
    sender.send("s[{\"config\":\"\u{FFFC}\",\"log\":{\"e1\":\"\u{FFFC}\",\"e2\":{\"msg\":\"more\"}},\"todos\":{\"t1\":{\"done\":\"yes\",\"text\":\"b\"}}},{\"version\":2,\"open\":false},1]").await;
    assert_eq!(
        other.next_text().await,
        "s[{\"log\":{\"e2\":{\"msg\":\"more\"}},\"todos\":{\"t1\":{\"text\":\"b\"}}},{\"open\":false},1]"
    );
    assert_eq!(
        sender.next_text().await,
        "s[{\"config\":{\"theme\":{\"color\":\"blue\"}},\"log\":{\"e1\":{\"msg\":\"start\"}},\"todos\":{\"t1\":{\"done\":false}}},{\"version\":1},1]",
        "the sender gets the refused parts back as stored"
    );
    sender.barrier(&mut other).await;
    assert_eq!(other.inbox.len(), 2, "the other client got only the accepted part: {:?}", other.inbox);
    assert_eq!(
        get_body(addr, "/parties/main/p/store").await,
        r#"[{"config":{"theme":{"color":"blue"}},"log":{"e1":{"msg":"start"},"e2":{"msg":"more"}},"todos":{"t1":{"done":false,"text":"b"}}},{"open":false,"version":1}]"#
    );
    server.server.shutdown().await.unwrap();
}

#[test]
fn bad_permission_config_names_the_key() {
    let text = "[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.schema.tables.todos]\ntext = \"text\"\n";
    let message = Config::from_toml_str(text, std::path::Path::new("perm.toml")).unwrap_err().to_string();
    assert!(message.contains("parties.main.schema.tables.todos.text"), "{message}");
    let text =
        "[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.permissions]\nread_only = [\"x\"]\n";
    let message = Config::from_toml_str(text, std::path::Path::new("perm.toml")).unwrap_err().to_string();
    assert!(message.contains("read_only"), "{message}");
}

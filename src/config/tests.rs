//! Tests of the configuration: defaults, the conformance file, overrides and every error.

use super::*;
use crate::storage::Pacing;
use clap::{CommandFactory as _, Parser as _};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new("party.toml"))
}

fn error(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn an_empty_file_means_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(config.limits, Limits::default());
    assert!(config.parties.is_empty());
    assert_eq!(config.listen_backlog, DEFAULT_LISTEN_BACKLOG);
    let limits = &config.limits;
    assert_eq!(
        (limits.request_head_timeout, limits.request_body_timeout, limits.max_http_connections_per_ip),
        (Duration::from_secs(5), Duration::from_secs(30), 256)
    );
}

#[test]
fn the_conformance_file_loads_as_it_is() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-party.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        panic!("{} must exist in the repository", path.display());
    };
    let config = Config::from_toml_str(&text, &path).unwrap();
    let main = config.party("main").unwrap();
    assert_eq!((main.store_path.as_str(), main.message_prefix.as_str()), ("/store", ""));
    assert_eq!(main.response_headers, default_response_headers());
    let custom = config.party("custom").unwrap();
    assert_eq!((custom.store_path.as_str(), custom.message_prefix.as_str()), ("/my_tinybase", "tb:"));
    assert_eq!(custom.response_headers, default_response_headers());
    let built_in = Config::conformance(PathBuf::from("d"));
    assert_eq!(built_in.parties, config.parties);
}

#[test]
fn every_key_is_read() {
    let config = parse(
        r#"
        [server]
        listen = "0.0.0.0:8080"
        data_dir = "/var/lib/partyd"
        max_message_bytes = 1000
        outbound_buffer_bytes = 2000
        slow_consumer_timeout_seconds = 4
        ping_interval_seconds = 5
        idle_timeout_seconds = 15
        close_grace_seconds = 7
        room_queue = 8
        idle_unload_seconds = 30
        group_commit_window_us = 2500
        listen_backlog = 4096
        request_head_timeout_seconds = 3
        request_body_timeout_seconds = 9
        max_http_connections_per_ip = 12
        [parties.app]
        kind = "tinybase-persister"
        store_path = "/db"
        message_prefix = "x:"
        storage_prefix = "app_"
        response_headers = { "Access-Control-Allow-Origin" = "https://app.example" }
        "#,
    )
    .unwrap();
    assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/partyd"));
    assert_eq!(config.group_commit, Pacing::scaled(Duration::from_micros(2500)));
    assert_eq!(config.listen_backlog, 4096);
    assert_eq!(
        parse("[server]\ngroup_commit_window_us = 0").unwrap().group_commit.window,
        Duration::ZERO,
        "0 turns waiting off"
    );
    assert_eq!(parse("").unwrap().group_commit, Pacing::scaled(crate::storage::DEFAULT_GROUP_COMMIT_WINDOW));
    assert_eq!(
        config.limits,
        Limits {
            max_message_bytes: 1000,
            outbound_buffer_bytes: 2000,
            slow_consumer_timeout_seconds: 4,
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            close_grace: Duration::from_secs(7),
            room_queue: 8,
            idle_unload: Duration::from_secs(30),
            request_head_timeout: Duration::from_secs(3),
            request_body_timeout: Duration::from_secs(9),
            max_http_connections_per_ip: 12,
            ..Limits::default()
        }
    );
    let app = config.party("app").unwrap();
    assert_eq!(app.limits.request_body_timeout, Duration::from_secs(9), "parties read bodies too");
    assert_eq!(app.kind, PartyKind::TinybasePersister);
    assert_eq!(
        (app.store_path.as_str(), app.message_prefix.as_str(), app.storage_prefix.as_str()),
        ("/db", "x:", "app_")
    );
    assert_eq!(
        app.response_headers,
        vec![("Access-Control-Allow-Origin".to_owned(), "https://app.example".to_owned())]
    );
}

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\ndata_dir = \"from-file\"\n").unwrap();
    let cli = Cli::try_parse_from([
        "partyd",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "from-flag",
    ])
    .unwrap();
    let config = Config::load(&cli).unwrap();
    assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("from-flag"));
    let cli = Cli::try_parse_from(["partyd", "--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(Config::load(&cli).unwrap().data_dir, PathBuf::from("from-file"));
}

#[test]
fn a_missing_file_is_named() {
    let cli = Cli::try_parse_from(["partyd", "--config", "/nonexistent/party.toml"]).unwrap();
    let message = Config::load(&cli).unwrap_err().to_string();
    assert!(message.contains("/nonexistent/party.toml") && message.contains("--config"), "{message}");
}

#[test]
fn a_missing_default_file_says_where_it_looked() {
    let missing = ConfigError::Read {
        path: PathBuf::from(DEFAULT_CONFIG_FILE),
        source: std::io::ErrorKind::NotFound.into(),
    };
    let message = missing.to_string();
    let looked = std::env::current_dir().unwrap().join("party.toml");
    assert!(
        message.starts_with("./party.toml: ")
            && message.contains(&format!("looked for {}", looked.display())),
        "{message}"
    );
    assert!(message.contains("--config") && message.contains("PARTYD_CONFIG"), "{message}");
    let cli = Cli::try_parse_from(["partyd", "--config", "no-such-dir/party.toml"]).unwrap();
    let message = Config::load(&cli).unwrap_err().to_string();
    let looked = std::env::current_dir().unwrap().join("no-such-dir/party.toml");
    assert!(message.contains(&looked.display().to_string()), "{message}");
}

#[test]
fn every_flag_has_a_partyd_env_var() {
    let command = Cli::command();
    let flags: Vec<_> =
        command.get_arguments().filter(|arg| !["help", "version"].contains(&arg.get_id().as_str())).collect();
    for arg in &flags {
        let env = arg.get_env().and_then(|env| env.to_str());
        assert!(env.is_some_and(|env| env.starts_with("PARTYD_")), "--{} has env {env:?}", arg.get_id());
    }
    let ids: Vec<_> = flags.iter().map(|arg| arg.get_id().as_str()).collect();
    assert!(["config", "listen", "data_dir"].iter().all(|id| ids.contains(id)), "{ids:?}");
}

/// Set in the child process of the environment test.
const ENV_CHILD: &str = "PARTYD_CONFIG_TEST_ENV_CHILD";

#[test]
fn the_environment_feeds_the_flags_and_the_flags_beat_it() {
    // clap reads the environment while parsing and the tests share one process, so the checks run
    // in a child (this same test) with its own environment.
    if std::env::var_os(ENV_CHILD).is_some() {
        let config = Config::load(&Cli::try_parse_from(["partyd"]).unwrap()).unwrap();
        assert_eq!(config.source, PathBuf::from(std::env::var_os("PARTYD_CONFIG").unwrap()));
        assert_eq!(
            (config.listen, config.data_dir),
            ("127.0.0.1:0".parse().unwrap(), PathBuf::from("from-env"))
        );
        let cli =
            Cli::try_parse_from(["partyd", "--listen", "127.0.0.1:7", "--data-dir", "from-flag"]).unwrap();
        let config = Config::load(&cli).unwrap();
        assert_eq!(
            (config.listen, config.data_dir),
            ("127.0.0.1:7".parse().unwrap(), PathBuf::from("from-flag"))
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\ndata_dir = \"from-file\"\n").unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["config::tests::the_environment_feeds_the_flags_and_the_flags_beat_it", "--exact"])
        .env(ENV_CHILD, "1")
        .env("PARTYD_CONFIG", &file)
        .env("PARTYD_LISTEN", "127.0.0.1:0")
        .env("PARTYD_DATA_DIR", "from-env")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    // "1 passed" also catches a renamed test, which would otherwise run nothing and succeed.
    assert!(
        output.status.success() && report.contains("1 passed"),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn party_names_are_checked() {
    let party = |name: &str| format!("[parties.\"{name}\"]\nkind = \"tinybase-persister\"\n");
    let longest = "x".repeat(MAX_PARTY_NAME_BYTES);
    assert!(parse(&party(&longest)).unwrap().party(&longest).is_some());
    for name in ["", "a/b", "a\\u0007b", &"x".repeat(MAX_PARTY_NAME_BYTES + 1)] {
        let message = error(&party(name));
        assert!(
            message.starts_with("party.toml: parties.") && message.contains("party name"),
            "{name:?}: {message}"
        );
    }
}

#[test]
fn bad_input_names_the_file_and_the_key() {
    let cases = [
        ("surprise = 1", "surprise"),
        ("[server]\nlisten_on = \"x\"", "listen_on"),
        ("[parties.main]\nkind = \"tinybase-persister\"\nstorepath = \"/x\"", "storepath"),
        ("[parties.main]\nkind = \"tinybase-persisted\"", "tinybase-persisted"),
        ("[parties.main]\nstore_path = \"/x\"", "kind"),
        ("[parties.main]\nkind = \"tinybase-sync\"\nmessage_prefix = \"x\"", "parties.main.message_prefix"),
        (
            "[parties.main]\nkind = \"tinybase-sync\"\n[parties.main.schema.tables.t]\nc = \"string\"",
            "parties.main.schema",
        ),
        ("[server]\nlisten = \"localhost\"", "server.listen"),
        ("[server]\nmax_message_bytes = 0", "server.max_message_bytes"),
        ("[server]\nmax_message_bytes = \"big\"", "max_message_bytes"),
        ("[server]\nidle_timeout_seconds = 0", "server.idle_timeout_seconds"),
        ("[server]\nclose_grace_seconds = 0", "server.close_grace_seconds"),
        ("[server]\nworkers = 0", "server.workers"),
        ("[server]\nlisten_backlog = 0", "server.listen_backlog"),
        ("[server]\nlisten_backlog = 65536", "server.listen_backlog"),
        ("[server]\nrequest_head_timeout_seconds = 0", "server.request_head_timeout_seconds"),
        ("[server]\nrequest_body_timeout_seconds = 0", "server.request_body_timeout_seconds"),
        ("[server]\nmax_http_connections_per_ip = 0", "server.max_http_connections_per_ip"),
        (
            "[parties.main]\nkind = \"tinybase-persister\"\nrequest_body_timeout_seconds = 1",
            "request_body_timeout_seconds",
        ),
        ("[server]\ngroup_commit_window_us = 100001", "server.group_commit_window_us"),
        ("[server]\ngroup_commit_window_us = -1", "group_commit_window_us"),
        ("[parties.main]\nkind = \"tinybase-persister\"\nstore_path = \"store\"", "parties.main.store_path"),
        ("[parties.main]\nkind = \"tinybase-persister\"\nstore_path = \"/\"", "parties.main.store_path"),
        (
            "[parties.main]\nkind = \"tinybase-persister\"\nresponse_headers = { \"Bad Header\" = \"1\" }",
            "parties.main.response_headers",
        ),
        ("[parties.\"a/b\"]\nkind = \"tinybase-persister\"", "parties.a/b"),
    ];
    for (text, key) in cases {
        let message = error(text);
        assert!(message.starts_with("party.toml: "), "{text:?}: {message}");
        assert!(message.contains(key), "{text:?} should name {key:?}: {message}");
    }
}

#[test]
fn auth_sections_are_checked_at_startup() {
    std::env::set_var("PARTYD_CONFIG_TEST_SECRET", "s3cret");
    let party =
        |auth: &str| format!("[parties.main]\nkind = \"tinybase-persister\"\n[parties.main.auth]\n{auth}\n");
    let jwt = parse(&party("mode = \"jwt\"\nsecret_env = \"PARTYD_CONFIG_TEST_SECRET\"\naudience = \"app\""))
        .unwrap();
    assert!(matches!(jwt.party("main").unwrap().auth, AuthConfig::Jwt(_)));
    let hook = parse(&party("mode = \"webhook\"\nurl = \"http://127.0.0.1:3000/authorize\"")).unwrap();
    let AuthConfig::Webhook(webhook) = &hook.party("main").unwrap().auth else { panic!() };
    assert_eq!(webhook.timeout, Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS));
    assert_eq!(parse(&party("mode = \"none\"")).unwrap().party("main").unwrap().auth, AuthConfig::None);
    let cases = [
        ("mode = \"magic\"", "parties.main.auth.mode"),
        ("mode = \"jwt\"", "parties.main.auth.secret_env"),
        ("mode = \"jwt\"\nsecret_env = \"PARTYD_CONFIG_TEST_UNSET\"", "PARTYD_CONFIG_TEST_UNSET"),
        (
            "mode = \"jwt\"\nalgorithm = \"none\"\nsecret_env = \"PARTYD_CONFIG_TEST_SECRET\"",
            "parties.main.auth.algorithm",
        ),
        ("mode = \"jwt\"\nalgorithm = \"RS256\"", "parties.main.auth.public_key_file"),
        ("mode = \"jwt\"\nalgorithm = \"RS256\"\npublic_key_file = \"/nonexistent.pem\"", "/nonexistent.pem"),
        (
            "mode = \"jwt\"\nsecret_env = \"PARTYD_CONFIG_TEST_SECRET\"\nurl = \"http://x\"",
            "parties.main.auth.url",
        ),
        ("mode = \"webhook\"", "parties.main.auth.url"),
        ("mode = \"webhook\"\nurl = \"https://auth.example\"", "parties.main.auth.url"),
        ("mode = \"webhook\"\nurl = \"http://x\"\ntimeout_ms = 0", "parties.main.auth.timeout_ms"),
        ("mode = \"none\"\nurl = \"http://x\"", "parties.main.auth.mode"),
        ("mode = \"jwt\"\nsecretenv = \"X\"", "secretenv"),
    ];
    for (auth, key) in cases {
        let message = error(&party(auth));
        assert!(
            message.starts_with("party.toml: ") && message.contains(key),
            "{auth:?} should name {key:?}: {message}"
        );
    }
}

#[test]
fn allowed_origins_apply_per_party_or_from_the_server() {
    let config = parse("[server]\nallowed_origins = [\"https://a\"]\n[parties.one]\nkind = \"tinybase-persister\"\n[parties.two]\nkind = \"tinybase-persister\"\nallowed_origins = [\"https://b\"]\n").unwrap();
    assert_eq!(config.party("one").unwrap().allowed_origins, Some(vec!["https://a".to_owned()]));
    assert_eq!(config.party("two").unwrap().allowed_origins, Some(vec!["https://b".to_owned()]));
    assert_eq!(
        parse("[parties.one]\nkind = \"tinybase-persister\"").unwrap().party("one").unwrap().allowed_origins,
        None
    );
}

#[test]
fn limits_are_set_by_the_server_and_overridden_per_party() {
    let config = parse("[server]\nmax_room_bytes = 5000\nmessages_per_second = 7\n[parties.one]\nkind = \"tinybase-persister\"\n[parties.two]\nkind = \"tinybase-persister\"\nmax_room_bytes = 100\nmax_connections_per_room = 3\n").unwrap();
    assert_eq!((config.limits.max_room_bytes, config.limits.messages_per_second), (5000, 7));
    let one = &config.party("one").unwrap().limits;
    assert_eq!(
        (one.max_room_bytes, one.messages_per_second, one.max_connections_per_room),
        (5000, 7, DEFAULT_MAX_CONNECTIONS_PER_ROOM)
    );
    let two = &config.party("two").unwrap().limits;
    assert_eq!((two.max_room_bytes, two.messages_per_second, two.max_connections_per_room), (100, 7, 3));
    for (text, key) in [
        ("[server]\nmax_live_rooms = 0", "server.max_live_rooms"),
        (
            "[parties.p]\nkind = \"tinybase-persister\"\nmax_connections_per_ip = 0",
            "parties.p.max_connections_per_ip",
        ),
        ("[parties.p]\nkind = \"tinybase-persister\"\nmax_rooom_bytes = 1", "max_rooom_bytes"),
        ("[server]\nmax_rooom_bytes = 1", "max_rooom_bytes"),
    ] {
        let message = error(text);
        assert!(message.contains(key), "{text:?} should name {key:?}: {message}");
    }
}

//! Configuration: the command line (with `PARTYD_*` env), `party.toml`, and every default and
//! limit of the server. Nothing else reads the environment or hard-codes a tunable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::persister::Permissions;

mod auth;
#[macro_use]
mod limits;
mod permissions;
pub use auth::{AuthConfig, JwtConfig, WebhookConfig, DEFAULT_WEBHOOK_TIMEOUT_MS};
use limits::OverridableLimits;
pub use limits::*;

/// Where partyd listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1999";
/// Where partyd keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The configuration file read unless `--config` says otherwise.
pub const DEFAULT_CONFIG_FILE: &str = "./party.toml";
/// The store path of a party that does not set one (TinyBase's default).
pub const DEFAULT_STORE_PATH: &str = "/store";
/// The longest party name accepted, in bytes.
pub const MAX_PARTY_NAME_BYTES: usize = 256;
/// How long storage calls may take unless `storage_timeout_seconds` says otherwise.
pub const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest group-commit window a configuration may ask for (100 ms).
pub const MAX_GROUP_COMMIT_WINDOW_US: u64 = 100_000;

/// `partyd [--config FILE] [--listen ADDR] [--data-dir DIR] [COMMAND]`: the global flags are
/// accepted before or after the command, as people type them (`partyd export --data-dir DIR`).
#[derive(Debug, clap::Parser)]
#[command(
    name = "partyd",
    version,
    about = "A self-hosted, PartyKit-compatible room server for TinyBase apps"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "PARTYD_CONFIG", default_value = DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,
    /// Address to listen on (IP:PORT; port 0 picks a free port), overriding `server.listen`.
    #[arg(long, global = true, env = "PARTYD_LISTEN")]
    pub listen: Option<String>,
    /// Directory of the database, overriding `server.data_dir`.
    #[arg(long, global = true, env = "PARTYD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Enables the admin API (`/_partyd/…`) for requests bearing this token.
    #[arg(long, global = true, env = "PARTYD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Log format: `pretty` for people, `json` for machines (default: pretty on a terminal, else json).
    #[arg(long, global = true, env = "PARTYD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// An offline command instead of serving (the data dir must not be in use).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Offline commands on the data dir.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Writes every room (or those chosen) as JSON lines `{"party","room","kind","content"}` to stdout.
    Export {
        /// Only this party.
        #[arg(long)]
        party: Option<String>,
        /// Only this room (of every exported party).
        #[arg(long)]
        room: Option<String>,
    },
    /// Reads JSON lines made by `export` from stdin into the data dir.
    Import {
        /// Overwrite rooms that already exist instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// Prints one room as a JSON line.
    Dump {
        /// The party.
        party: String,
        /// The room.
        room: String,
    },
    /// Salvages a journal that stops startup: replays every record that can be read into the
    /// database, reports what is lost, moves the journal files into `<data dir>/damaged-<unix
    /// seconds>/` and leaves the data dir so that partyd starts. Changes nothing when there is
    /// nothing to recover.
    Recover,
    /// Checks the configuration file (and the flags) and exits: 0 and a summary when it is
    /// valid, 2 and what is wrong when it is not. Opens no storage.
    CheckConfig,
}

/// The server's whole configuration, with every default applied.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages).
    pub source: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// Limits and timings.
    pub limits: Limits,
    /// The parties, by name.
    pub parties: BTreeMap<String, PartyConfig>,
    /// The admin API's bearer token; `None` keeps the admin API off.
    pub admin_token: Option<String>,
    /// Connections the kernel may queue before they are accepted.
    pub listen_backlog: u32,
    /// HTTP worker threads. Each room lives on the worker that loaded it and every delivery to
    /// a socket on another worker crosses threads, so one worker is the default.
    pub workers: usize,
    /// How group commits wait under load: longer the busier the server, up to
    /// `group_commit_window_us` (zero: never wait).
    pub group_commit: crate::storage::Pacing,
    /// Free space kept under the data dir: below it writes are refused ("storage full") rather
    /// than risking the database on a full disk (zero: no check).
    pub storage_reserve_bytes: u64,
    /// The longest a room, a probe or an operator route waits for a storage call (a stalled
    /// disk): past it the call is reported as failed and the thread goes on serving.
    pub storage_timeout: Duration,
}

/// One party: a named kind of room with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyConfig {
    /// The name in `/parties/<name>/…`.
    pub name: String,
    /// The protocol its rooms speak.
    pub kind: PartyKind,
    /// Suffix of the HTTP path of the store.
    pub store_path: String,
    /// Starts every websocket frame, both directions.
    pub message_prefix: String,
    /// Prefix of the keys of a dump in TinyBase's layout (no wire effect).
    pub storage_prefix: String,
    /// Headers on every answer of the party's rooms.
    pub response_headers: Vec<(String, String)>,
    /// How requests are authenticated.
    pub auth: AuthConfig,
    /// Origins a websocket upgrade may come from; `None` means any.
    pub allowed_origins: Option<Vec<String>>,
    /// The server's limits with the party's overrides.
    pub limits: Limits,
    /// What clients may write (TinyBase's hooks as rules).
    pub permissions: Permissions,
}

/// The protocols a party can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum PartyKind {
    /// TinyBase's `createPartyKitPersister` protocol.
    #[serde(rename = "tinybase-persister")]
    TinybasePersister,
    /// TinyBase's MergeableStore synchronizer (`createWsSynchronizer`), with the server's own
    /// merged, durable replica.
    #[serde(rename = "tinybase-sync")]
    TinybaseSync,
}

impl std::fmt::Display for PartyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TinybasePersister => "tinybase-persister",
            Self::TinybaseSync => "tinybase-sync",
        })
    }
}

/// The configuration cannot be used; every message names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (a relative path is also shown resolved, so a wrong working
    /// directory is plain to see).
    #[error("{path}: cannot read the configuration file{}: {source} (pass another with --config or PARTYD_CONFIG)", looked_for(.path))]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML for partyd (the toml crate's message names the key and line).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A key has a value partyd cannot use.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    parties: BTreeMap<String, PartySection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    outbound_buffer_bytes: Option<usize>,
    slow_consumer_timeout_seconds: Option<u32>,
    ping_interval_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    close_grace_seconds: Option<u64>,
    room_queue: Option<usize>,
    idle_unload_seconds: Option<u64>,
    workers: Option<usize>,
    group_commit_window_us: Option<u64>,
    storage_reserve_bytes: Option<u64>,
    storage_timeout_seconds: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    max_message_bytes: Option<usize>,
    max_room_bytes: Option<usize>,
    max_connections_per_room: Option<usize>,
    max_connections_per_ip: Option<usize>,
    messages_per_second: Option<u32>,
    max_live_rooms: Option<usize>,
    listen_backlog: Option<u32>,
    request_head_timeout_seconds: Option<u64>,
    request_body_timeout_seconds: Option<u64>,
    max_http_connections_per_ip: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartySection {
    kind: PartyKind,
    store_path: Option<String>,
    message_prefix: Option<String>,
    storage_prefix: Option<String>,
    response_headers: Option<BTreeMap<String, String>>,
    auth: Option<auth::AuthSection>,
    allowed_origins: Option<Vec<String>>,
    permissions: Option<permissions::PermissionsSection>,
    schema: Option<permissions::SchemaSection>,
    max_message_bytes: Option<usize>,
    max_room_bytes: Option<usize>,
    max_connections_per_room: Option<usize>,
    max_connections_per_ip: Option<usize>,
    messages_per_second: Option<u32>,
    max_live_rooms: Option<usize>,
}

impl Config {
    /// Reads the file named by the command line and applies the flag/env overrides.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(&cli.config)
            .map_err(|source| ConfigError::Read { path: cli.config.clone(), source })?;
        let mut config = Self::from_toml_str(&text, &cli.config)?;
        if let Some(listen) = &cli.listen {
            config.listen = parse_listen(listen, &cli.config, "--listen")?;
        }
        if let Some(data_dir) = &cli.data_dir {
            config.data_dir = data_dir.clone();
        }
        config.admin_token = cli.admin_token.clone().filter(|token| !token.is_empty());
        Ok(config)
    }

    /// Parses a configuration file's text; `source` names it in messages.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text)
            .map_err(|error| ConfigError::Parse { path: source.to_path_buf(), message: error.to_string() })?;
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            path: source.to_path_buf(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        let server = file.server;
        let listen =
            parse_listen(server.listen.as_deref().unwrap_or(DEFAULT_LISTEN), source, "server.listen")?;
        let defaults = Limits::default();
        let positive = |value: Option<usize>, default: usize, key: &str| match value {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        let seconds = |value: Option<u64>, default: Duration, key: &str| match value {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(value) => Ok(Duration::from_secs(value)),
            None => Ok(default),
        };
        let limits = Limits {
            outbound_buffer_bytes: positive(
                server.outbound_buffer_bytes,
                defaults.outbound_buffer_bytes,
                "server.outbound_buffer_bytes",
            )?,
            slow_consumer_timeout_seconds: match server.slow_consumer_timeout_seconds {
                Some(0) => {
                    return Err(invalid("server.slow_consumer_timeout_seconds", "must be greater than 0"))
                }
                Some(seconds) => seconds,
                None => defaults.slow_consumer_timeout_seconds,
            },
            ping_interval: seconds(
                server.ping_interval_seconds,
                defaults.ping_interval,
                "server.ping_interval_seconds",
            )?,
            idle_timeout: seconds(
                server.idle_timeout_seconds,
                defaults.idle_timeout,
                "server.idle_timeout_seconds",
            )?,
            close_grace: seconds(
                server.close_grace_seconds,
                defaults.close_grace,
                "server.close_grace_seconds",
            )?,
            room_queue: positive(server.room_queue, defaults.room_queue, "server.room_queue")?,
            idle_unload: seconds(
                server.idle_unload_seconds,
                defaults.idle_unload,
                "server.idle_unload_seconds",
            )?,
            request_head_timeout: seconds(
                server.request_head_timeout_seconds,
                defaults.request_head_timeout,
                "server.request_head_timeout_seconds",
            )?,
            request_body_timeout: seconds(
                server.request_body_timeout_seconds,
                defaults.request_body_timeout,
                "server.request_body_timeout_seconds",
            )?,
            max_http_connections_per_ip: positive(
                server.max_http_connections_per_ip,
                defaults.max_http_connections_per_ip,
                "server.max_http_connections_per_ip",
            )?,
            ..defaults.clone()
        };
        let limits = overridable_limits!(server).apply(&limits, source, "server")?;
        let mut parties = BTreeMap::new();
        for (name, section) in file.parties {
            let party =
                party_config(name.clone(), section, server.allowed_origins.as_ref(), &limits, source)?;
            parties.insert(name, party);
        }
        Ok(Self {
            source: source.to_path_buf(),
            listen,
            data_dir: server.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            limits,
            parties,
            admin_token: None,
            listen_backlog: match server.listen_backlog {
                Some(backlog @ 1..=65535) => backlog,
                Some(_) => return Err(invalid("server.listen_backlog", "must be 1 to 65535")),
                None => DEFAULT_LISTEN_BACKLOG,
            },
            workers: match server.workers {
                Some(workers @ 1..=256) => workers,
                Some(_) => return Err(invalid("server.workers", "must be 1 to 256")),
                None => 1,
            },
            group_commit: crate::storage::Pacing::scaled(match server.group_commit_window_us {
                Some(micros @ 0..=MAX_GROUP_COMMIT_WINDOW_US) => Duration::from_micros(micros),
                Some(_) => {
                    return Err(invalid("server.group_commit_window_us", "must be 0 to 100000 (100 ms)"))
                }
                None => crate::storage::DEFAULT_GROUP_COMMIT_WINDOW,
            }),
            storage_reserve_bytes: server
                .storage_reserve_bytes
                .unwrap_or(crate::storage::DEFAULT_RESERVE_BYTES),
            storage_timeout: seconds(
                server.storage_timeout_seconds,
                DEFAULT_STORAGE_TIMEOUT,
                "server.storage_timeout_seconds",
            )?,
        })
    }

    /// Changes the server's limits and every party's alike (for tests and tools).
    pub fn with_limits(mut self, change: impl Fn(&mut Limits)) -> Self {
        change(&mut self.limits);
        self.parties.values_mut().for_each(|party| change(&mut party.limits));
        self
    }

    /// The party named `name`, if configured.
    pub fn party(&self, name: &str) -> Option<&PartyConfig> {
        self.parties.get(name)
    }

    /// The parties the shared conformance suite expects, on 127.0.0.1:0 with `data_dir`:
    /// `main` with every default, `custom` with store path `/my_tinybase` and prefix `tb:`.
    pub fn conformance(data_dir: PathBuf) -> Self {
        let text = "[parties.main]\nkind = \"tinybase-persister\"\n\n[parties.custom]\nkind = \"tinybase-persister\"\nstore_path = \"/my_tinybase\"\nmessage_prefix = \"tb:\"\n";
        let mut config = Self::from_toml_str(text, Path::new("conformance party.toml"))
            .expect("the built-in conformance config is valid");
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = data_dir;
        config
    }
}

/// ` (looked for /abs/path)` when `path` is relative, else nothing.
fn looked_for(path: &Path) -> String {
    match std::path::absolute(path) {
        Ok(absolute) if path.is_relative() => format!(" (looked for {})", absolute.display()),
        _ => String::new(),
    }
}

fn parse_listen(text: &str, source: &Path, key: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| ConfigError::Invalid {
        path: source.to_path_buf(),
        key: key.to_owned(),
        message: format!("{text:?} is not an IP:PORT address (e.g. 127.0.0.1:1999)"),
    })
}

fn party_config(
    name: String,
    section: PartySection,
    server_origins: Option<&Vec<String>>,
    server_limits: &Limits,
    source: &Path,
) -> Result<PartyConfig, ConfigError> {
    let key = |field: &str| {
        if field.is_empty() {
            format!("parties.{name}")
        } else {
            format!("parties.{name}.{field}")
        }
    };
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: source.to_path_buf(),
        key: key(field),
        message,
    };
    if name.is_empty()
        || name.len() > MAX_PARTY_NAME_BYTES
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            "",
            format!(
                "a party name must be 1 to {MAX_PARTY_NAME_BYTES} bytes, without '/' or control characters"
            ),
        ));
    }
    if section.kind == PartyKind::TinybaseSync {
        // The synchronizer has no message prefix, and its writes are CRDT merges a schema
        // filter would make diverge between replicas.
        for (field, set) in [
            ("message_prefix", section.message_prefix.is_some()),
            ("permissions", section.permissions.is_some()),
            ("schema", section.schema.is_some()),
        ] {
            if set {
                return Err(invalid(field, "is not supported by kind \"tinybase-sync\"".into()));
            }
        }
    }
    let store_path = section.store_path.unwrap_or_else(|| DEFAULT_STORE_PATH.to_owned());
    if !store_path.starts_with('/') || store_path.len() < 2 {
        return Err(invalid(
            "store_path",
            format!("{store_path:?} must start with \"/\" and name something after it"),
        ));
    }
    let response_headers = match section.response_headers {
        None => default_response_headers(),
        Some(headers) => {
            for (header, value) in &headers {
                if actix_web::http::header::HeaderName::try_from(header.as_str()).is_err() {
                    return Err(invalid(
                        "response_headers",
                        format!("{header:?} is not a valid header name"),
                    ));
                }
                if actix_web::http::header::HeaderValue::try_from(value.as_str()).is_err() {
                    return Err(invalid(
                        "response_headers",
                        format!("the value of {header:?} is not a valid header value"),
                    ));
                }
            }
            headers.into_iter().collect()
        }
    };
    let auth = section.auth.unwrap_or_default().resolve(source, &key("auth"))?;
    let allowed_origins = section.allowed_origins.or_else(|| server_origins.cloned());
    let limits = overridable_limits!(section).apply(server_limits, source, &format!("parties.{name}"))?;
    let permissions =
        permissions::resolve(section.permissions, section.schema, source, &format!("parties.{name}"))?;
    Ok(PartyConfig {
        permissions,
        limits,
        auth,
        allowed_origins,
        name,
        kind: section.kind,
        store_path,
        message_prefix: section.message_prefix.unwrap_or_default(),
        storage_prefix: section.storage_prefix.unwrap_or_default(),
        response_headers,
    })
}

/// TinyBase's default response headers: CORS open to everyone.
fn default_response_headers() -> Vec<(String, String)> {
    ["Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"]
        .into_iter()
        .map(|name| (name.to_owned(), "*".to_owned()))
        .collect()
}

#[cfg(test)]
mod tests;

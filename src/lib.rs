//! partyd: a self-hosted, PartyKit-compatible room server for TinyBase apps.
//!
//! Layout (the module map and the path of a change are in `docs/architecture.md`):
//! - [`config`] — command line, `PARTYD_*` env and `party.toml`; every tunable lives there.
//! - [`http`] — the route table: store endpoint, websocket upgrades, admin API, health.
//! - [`auth`] — authentication before any room work: JWT, webhook, origins.
//! - [`metrics`] — Prometheus metrics.
//! - [`ws`] — one websocket connection: reader loop, limits, heartbeat, bounded outbound queue.
//! - [`room`] — room names, the registry of live rooms, the task that owns each room.
//! - [`protocol`] — pure wire formats and validation, exact with TinyBase.
//! - [`storage`] — the one sled database: key layout, atomic batches, group-commit flushing.
//! - [`cli`] — the offline commands: export, import, dump.
//! - [`systemd`] — the readiness notification of a `Type=notify` service.
//! - [`log_limit`] — at most a few lines a minute from each place that logs per request.
//!
//! [`start`] serves a configuration on its listen address; [`RunningServer::shutdown`] stops it
//! gracefully. `main.rs` only wires these to the command line and signals.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod log_limit;
pub mod metrics;
pub mod protocol;
pub mod room;
pub mod storage;
pub mod systemd;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::rc::Rc;

use actix_http::HttpService;
use actix_server::ServerHandle;
use actix_service::{fn_factory, fn_service, map_config, IntoServiceFactory as _};
use actix_web::dev::{AppConfig, ServiceFactory};
use actix_web::{web, App};

use crate::config::Config;
use crate::error::StartError;
use crate::room::Rooms;
use crate::storage::Storage;

/// How long a graceful stop waits for open HTTP connections after the rooms have closed their
/// sockets, before dropping them.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A server accepting connections, until [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    handle: ServerHandle,
    rooms: Arc<Rooms>,
    storage: Arc<dyn Storage>,
    socket_tasks: ws::tasks::SocketTasks,
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// Binds the configured listen address and starts serving. Must run inside an actix System
/// (`actix_web::rt::System`, or `#[actix_web::test]`).
pub fn start(config: Config, storage: Arc<dyn Storage>) -> Result<RunningServer, StartError> {
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let metrics = metrics::Metrics::new();
    let observed = metrics.clone();
    storage.observe_flushes(Arc::new(move |elapsed, waiters| {
        observed.flush_seconds.observe(elapsed.as_secs_f64());
        observed.flush_batch.observe(waiters as f64);
    }));
    let rooms = Arc::new(Rooms::new(storage.clone(), &config.limits, metrics.clone()));
    let workers = config.workers;
    let state = web::Data::new(http::AppState {
        config: Arc::new(config),
        rooms: rooms.clone(),
        storage: storage.clone(),
        metrics,
    });
    let socket_tasks = ws::tasks::SocketTasks::default();
    let tasks = socket_tasks.clone();
    let app = move || App::new().app_data(state.clone()).configure(http::configure);
    // What actix-web's HttpServer builds, plus the upgrade service that takes websockets off
    // actix-http (`ws::takeover`), which HttpServer has no place for.
    let server = actix_server::Server::build()
        .disable_signals()
        .workers(workers)
        .shutdown_timeout(HTTP_SHUTDOWN_GRACE.as_secs())
        .listen("partyd", listener, move || {
            let (upgrade_app, tasks) = (app.clone(), tasks.clone());
            let upgrade = fn_factory(move || {
                let factory = upgrade_app().into_factory();
                let tasks = tasks.clone();
                async move {
                    let service = Rc::new(factory.new_service(AppConfig::default()).await.map_err(|_| ())?);
                    Ok::<_, ()>(fn_service(move |(request, framed)| {
                        ws::takeover::serve(service.clone(), tasks.clone(), request, framed)
                    }))
                }
            });
            HttpService::build()
                .local_addr(addr)
                .client_disconnect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .upgrade(upgrade)
                .finish(map_config(app().into_factory(), |_| AppConfig::default()))
                .tcp()
        })
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
    let handle = server.handle();
    let server = actix_web::rt::spawn(server);
    Ok(RunningServer { addr, handle, rooms, storage, socket_tasks, server })
}

impl RunningServer {
    /// The address the server is bound to (the real port when the config said port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many rooms are in memory now.
    pub fn live_rooms(&self) -> usize {
        self.rooms.live_count()
    }

    /// Graceful stop: stop accepting, let every room finish its queued work and close its
    /// sockets with 1001, wait for their closing handshakes, stop the HTTP server, then flush
    /// storage.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.handle.pause().await;
        self.rooms.shutdown().await;
        if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, self.socket_tasks.all_ended()).await.is_err() {
            tracing::warn!(
                left = self.socket_tasks.live(),
                "websockets still closing at the end of the grace period are dropped"
            );
        }
        self.handle.stop(true).await;
        let _ = self.server.await;
        self.storage.flush().map_err(StartError::Storage)
    }
}

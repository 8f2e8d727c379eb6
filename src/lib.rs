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
//! - [`rlimit`] — the limit of open files, raised at start.
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
pub mod rlimit;
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

/// How long a graceful stop waits for the HTTP requests in flight to be answered, and then for
/// the websockets' closing handshakes, before dropping what is left.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A server accepting connections, until [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    handle: ServerHandle,
    rooms: Arc<Rooms>,
    storage: Arc<dyn Storage>,
    socket_tasks: ws::tasks::SocketTasks,
    connections: http::connections::Connections,
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// Binds the configured listen address and starts serving. Must run inside an actix System
/// (`actix_web::rt::System`, or `#[actix_web::test]`).
pub fn start(config: Config, storage: Arc<dyn Storage>) -> Result<RunningServer, StartError> {
    let listener = bind(config.listen, config.listen_backlog)
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let metrics = metrics::Metrics::new();
    let observed = metrics.clone();
    storage.observe_flushes(Arc::new(move |elapsed, waiters| {
        observed.flush_seconds.observe(elapsed.as_secs_f64());
        observed.flush_batch.observe(waiters as f64);
    }));
    let pool = storage::StoragePool::start(config.storage_timeout).map_err(StartError::Threads)?;
    let rooms = Arc::new(Rooms::new(storage.clone(), pool, &config.limits, metrics.clone()));
    let workers = config.workers;
    let head_timeout = config.limits.request_head_timeout;
    let connections =
        http::connections::Connections::new(config.limits.max_http_connections_per_ip, metrics.clone());
    let state = web::Data::new(http::AppState {
        config: Arc::new(config),
        rooms: rooms.clone(),
        storage: storage.clone(),
        metrics,
    });
    let socket_tasks = ws::tasks::SocketTasks::default();
    let tasks = socket_tasks.clone();
    let counted = connections.clone();
    let app = move || App::new().app_data(state.clone()).configure(http::configure);
    // What actix-web's HttpServer builds, plus the upgrade service that takes websockets off
    // actix-http (`ws::takeover`), which HttpServer has no place for, and the count of the
    // connections in front of actix-http (`http::connections`).
    let server = actix_server::Server::build()
        .disable_signals()
        .workers(workers)
        .shutdown_timeout(HTTP_SHUTDOWN_GRACE.as_secs())
        .listen("partyd", listener, move || {
            let (upgrade_app, tasks, counted) = (app.clone(), tasks.clone(), counted.clone());
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
            let drained = counted.clone();
            counted.count(
                HttpService::build()
                    .local_addr(addr)
                    .client_request_timeout(head_timeout)
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .graceful_shutdown_signal(move || drained.drained())
                    .upgrade(upgrade)
                    .finish(map_config(app().into_factory(), |_| AppConfig::default()))
                    .tcp(),
            )
        })
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
    let handle = server.handle();
    let server = actix_web::rt::spawn(server);
    Ok(RunningServer { addr, handle, rooms, storage, socket_tasks, connections, server })
}

/// The listening socket, with `backlog` connections queued at most before they are accepted
/// (std's `TcpListener::bind` always asks for 128, which a burst of reconnecting clients fills).
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server binds again while its old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
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

    /// Graceful stop: stop accepting, close idle HTTP connections and wait for the requests in
    /// flight to be answered, let every room finish its queued work and close its sockets with
    /// 1001, wait for their closing handshakes, stop the HTTP server, then flush storage.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.handle.pause().await;
        // Idle keep-alive connections (every browser that loaded a store keeps one) close now
        // rather than at their keep-alive timeout; the others after their answer. The rooms
        // stay up meanwhile, so that a request in flight is answered as usual, not with 503.
        self.connections.drain();
        if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, self.connections.all_closed()).await.is_err() {
            tracing::warn!(
                left = self.connections.live(),
                "HTTP connections still open at the end of the grace period are dropped"
            );
        }
        self.rooms.shutdown().await;
        if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, self.socket_tasks.all_ended()).await.is_err() {
            tracing::warn!(
                left = self.socket_tasks.live(),
                "websockets still closing at the end of the grace period are dropped"
            );
        }
        // A connection still open has had its grace period: dropped now, where a graceful stop
        // would wait for it as long again.
        self.handle.stop(self.connections.live() == 0).await;
        let _ = self.server.await;
        let storage = self.storage.clone();
        let flushed = self.rooms.storage_pool().run("the final flush", move || storage.flush()).await;
        flushed.map_err(StartError::Storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_queues_the_configured_backlog() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 777).unwrap();
        let port = listener.local_addr().unwrap().port();
        // `ss` shows a listening socket's backlog as its Send-Q.
        let Ok(output) =
            std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output()
        else {
            eprintln!("skipped: no ss to read the backlog with");
            return;
        };
        let line = String::from_utf8_lossy(&output.stdout).into_owned();
        let send_queue = line.split_whitespace().nth(2);
        assert_eq!(send_queue, Some("777"), "{line}");
    }
}

//! The open HTTP connections, counted at the TCP level in front of actix-http: one client
//! address may hold only so many (one more is answered 429 and closed, so that one address
//! cannot take every descriptor), and a graceful stop tells them to drain (an idle keep-alive
//! connection closes at once, one with a request in flight after its answer) and waits for
//! them. A websocket leaves the count when it is taken over (`ws::takeover`): from then on
//! `ws::tasks` and the per-party websocket limit count it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_service::{fn_factory, fn_service, Service, ServiceFactory};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use crate::metrics::Metrics;

/// The answer to a connection over its address's cap.
const REFUSAL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 38\r\nconnection: close\r\n\r\ntoo many connections from this address";
/// How long a refused connection may take to send its request and read the answer; it holds a
/// descriptor meanwhile.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Refusals being answered at once; past it a refused connection is closed without an answer,
/// so that a flood of refused connections holds a bounded number of descriptors.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// At most one log line about refusals this often (a flood would otherwise flood the log).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The open HTTP connections of a server; cheap to clone.
#[derive(Clone)]
pub struct Connections(Arc<Inner>);

struct Inner {
    max_per_ip: usize,
    live: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    none_left: Notify,
    draining: watch::Sender<bool>,
    refusing: AtomicUsize,
    refusal_log: Mutex<RefusalLog>,
    metrics: Arc<Metrics>,
}

/// When refusals were last logged, and how many since.
#[derive(Default)]
struct RefusalLog {
    logged: Option<Instant>,
    unlogged: u64,
}

/// Held while one connection is open.
struct Guard {
    connections: Connections,
    ip: Option<IpAddr>,
}

impl Connections {
    /// No connections yet; at most `max_per_ip` at once from one client address.
    pub fn new(max_per_ip: usize, metrics: Arc<Metrics>) -> Self {
        Self(Arc::new(Inner {
            max_per_ip,
            live: AtomicUsize::new(0),
            per_ip: Mutex::default(),
            none_left: Notify::new(),
            draining: watch::channel(false).0,
            refusing: AtomicUsize::new(0),
            refusal_log: Mutex::default(),
            metrics,
        }))
    }

    /// How many connections are open now.
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::Acquire)
    }

    /// Tells every connection, open or yet to come, to close once it has no request in flight.
    pub fn drain(&self) {
        self.0.draining.send_replace(true);
    }

    /// Resolves once [`Connections::drain`] has been called (actix-http's graceful shutdown
    /// signal, asked for once per connection).
    pub fn drained(&self) -> impl Future<Output = ()> + 'static {
        let mut draining = self.0.draining.subscribe();
        async move {
            if draining.wait_for(|draining| *draining).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Returns once no connection is open.
    pub async fn all_closed(&self) {
        loop {
            let notified = self.0.none_left.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Counts a connection from `ip` in, unless its address holds its cap already.
    fn admit(&self, ip: Option<IpAddr>) -> Option<Guard> {
        // An IPv4 client of a dual-stack listener is one address, however it is written.
        let ip = ip.map(|ip| ip.to_canonical());
        if let Some(ip) = ip {
            let mut per_ip = self.0.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let count = per_ip.entry(ip).or_default();
            if *count >= self.0.max_per_ip {
                return None;
            }
            *count += 1;
        }
        self.0.live.fetch_add(1, Ordering::AcqRel);
        Some(Guard { connections: self.clone(), ip })
    }

    /// Answers a connection over its address's cap with 429 and closes it.
    async fn refuse(&self, mut stream: TcpStream, ip: Option<IpAddr>) {
        self.0.metrics.http_answered(429);
        self.log_refusal(ip);
        if self.0.refusing.fetch_add(1, Ordering::AcqRel) < MAX_REFUSALS_IN_FLIGHT {
            let answer = async {
                // The request is read before the answer, and the rest of it after: closing with
                // bytes unread would reset the connection, and a reset can lose the answer.
                let mut sink = [0; 1024];
                let _ = stream.read(&mut sink).await?;
                stream.write_all(REFUSAL).await?;
                stream.shutdown().await?;
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer).await;
        }
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Logs a refusal, with those not logged since the last line, at most once an interval.
    fn log_refusal(&self, ip: Option<IpAddr>) {
        let mut log = self.0.refusal_log.lock().unwrap_or_else(PoisonError::into_inner);
        log.unlogged += 1;
        if log.logged.is_some_and(|logged| logged.elapsed() < REFUSAL_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            ip = ip.map(|ip| ip.to_string()),
            max = self.0.max_per_ip,
            refused = log.unlogged,
            "refusing connections with 429: too many HTTP connections from one address \
             (max_http_connections_per_ip; refused counts those since the last such line)"
        );
        *log = RefusalLog { logged: Some(Instant::now()), unlogged: 0 };
    }

    /// `factory` (actix-http's service over TCP) with every connection it serves counted, and
    /// those over their address's cap refused.
    pub fn count<F>(
        &self,
        factory: F,
    ) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = F::Error, InitError = F::InitError>
    where
        F: ServiceFactory<TcpStream, Config = (), Response = ()>,
        F::Service: 'static,
        F::Future: 'static,
    {
        let connections = self.clone();
        fn_factory(move || {
            let service = factory.new_service(());
            let connections = connections.clone();
            async move {
                let service = Rc::new(service.await?);
                Ok(fn_service(move |stream: TcpStream| {
                    let (service, connections) = (service.clone(), connections.clone());
                    async move {
                        let ip = stream.peer_addr().ok().map(|peer| peer.ip());
                        let Some(_open) = connections.admit(ip) else {
                            connections.refuse(stream, ip).await;
                            return Ok(());
                        };
                        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                        service.call(stream).await
                    }
                }))
            }
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let inner = &self.connections.0;
        if let Some(ip) = self.ip {
            let mut per_ip = inner.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        if inner.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            inner.none_left.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(max_per_ip: usize) -> Connections {
        Connections::new(max_per_ip, Metrics::new())
    }

    #[actix_web::test]
    async fn waiting_ends_when_the_last_connection_closes_and_drained_resolves_on_drain() {
        let connections = connections(10);
        connections.all_closed().await;
        let (first, second) = (connections.admit(None), connections.admit(None));
        let waiter = actix_web::rt::spawn({
            let connections = connections.clone();
            async move { connections.all_closed().await }
        });
        drop(first);
        actix_web::rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();

        let before = actix_web::rt::spawn(connections.drained());
        actix_web::rt::task::yield_now().await;
        assert!(!before.is_finished());
        connections.drain();
        tokio::time::timeout(Duration::from_secs(5), before).await.unwrap().unwrap();
        connections.drained().await;
    }

    #[test]
    fn one_address_holds_at_most_its_cap_and_gets_room_back_as_connections_close() {
        let connections = connections(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let first = connections.admit(Some(a)).unwrap();
        let _second = connections.admit(Some(mapped)).unwrap();
        assert!(connections.admit(Some(a)).is_none(), "the mapped address is the same client");
        let _other = connections.admit(Some("127.0.0.2".parse().unwrap())).unwrap();
        drop(first);
        let _again = connections.admit(Some(a)).unwrap();
        assert_eq!(connections.live(), 3, "the refused ones are not counted");
    }

    #[test]
    fn the_refusal_is_framed_by_its_length() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())), "{head}");
    }
}

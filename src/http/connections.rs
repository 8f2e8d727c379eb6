//! The open HTTP connections, counted at the TCP level in front of actix-http: a graceful stop
//! tells them to drain (an idle keep-alive connection closes at once, one with a request in
//! flight after its answer) and waits for them. A websocket leaves the count when it is taken
//! over (`ws::takeover`): from then on `ws::tasks` counts it.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_service::{fn_factory, fn_service, Service, ServiceFactory};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

/// The open HTTP connections of a server; cheap to clone.
#[derive(Clone)]
pub struct Connections(Arc<Inner>);

struct Inner {
    live: AtomicUsize,
    none_left: Notify,
    draining: watch::Sender<bool>,
}

/// Held while one connection is open.
struct Guard(Connections);

impl Default for Connections {
    fn default() -> Self {
        Self(Arc::new(Inner {
            live: AtomicUsize::new(0),
            none_left: Notify::new(),
            draining: watch::channel(false).0,
        }))
    }
}

impl Connections {
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

    fn enter(&self) -> Guard {
        self.0.live.fetch_add(1, Ordering::AcqRel);
        Guard(self.clone())
    }

    /// `factory` (actix-http's service over TCP) with every connection it serves counted.
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
                        let _open = connections.enter();
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
        if self.0 .0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0 .0.none_left.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn waiting_ends_when_the_last_connection_closes_and_drained_resolves_on_drain() {
        let connections = Connections::default();
        connections.all_closed().await;
        let (first, second) = (connections.enter(), connections.enter());
        let waiter = actix_web::rt::spawn({
            let connections = connections.clone();
            async move { connections.all_closed().await }
        });
        drop(first);
        actix_web::rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();

        let before = actix_web::rt::spawn(connections.drained());
        actix_web::rt::task::yield_now().await;
        assert!(!before.is_finished());
        connections.drain();
        tokio::time::timeout(std::time::Duration::from_secs(5), before).await.unwrap().unwrap();
        connections.drained().await;
    }
}

//! The connection tasks alive on the bare streams: actix-server no longer sees those sockets, so
//! a graceful stop waits here for their closing handshakes before the workers go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts live connection tasks; cheap to clone.
#[derive(Clone, Default)]
pub struct SocketTasks(Arc<Inner>);

#[derive(Default)]
struct Inner {
    live: AtomicUsize,
    none_left: Notify,
}

/// Held by one connection task for as long as it runs.
pub struct TaskGuard(SocketTasks);

impl SocketTasks {
    /// Counts a task in until the guard drops.
    pub fn enter(&self) -> TaskGuard {
        self.0.live.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.clone())
    }

    /// How many tasks run now.
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::Acquire)
    }

    /// Returns once no task is running.
    pub async fn all_ended(&self) {
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
}

impl Drop for TaskGuard {
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
    async fn waiting_ends_when_the_last_task_ends() {
        let tasks = SocketTasks::default();
        tasks.all_ended().await;
        let (first, second) = (tasks.enter(), tasks.enter());
        let waiter = actix_web::rt::spawn({
            let tasks = tasks.clone();
            async move { tasks.all_ended().await }
        });
        drop(first);
        actix_web::rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(tasks.live(), 0);
    }
}

//! The threads where blocking storage calls run, so that a stalled disk never stops a thread
//! that serves sockets or HTTP: loads, listings, deletes, images, the readiness probe and the
//! final flush are sent here, and their callers wait at most the storage timeout.
//!
//! A fixed number of threads and a bounded queue, rather than tokio's blocking pool: a disk
//! that never answers holds each thread that calls it, so an unbounded pool would grow by one
//! thread per request until its cap of hundreds. Here a stall holds [`THREADS`] threads and a
//! queue of [`QUEUE`] jobs; beyond that calls are refused at once.

use std::future::Future;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::StorageError;

/// Threads that make blocking storage calls. sled serves reads from its cache and many threads
/// at once; four keep a few slow cold loads from queueing the rest behind them.
const THREADS: usize = 4;
/// Calls that may wait for a thread; more are refused ("storage busy").
const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs blocking storage calls on threads of its own, each awaited with a deadline.
#[derive(Clone)]
pub struct StoragePool {
    jobs: SyncSender<Job>,
    timeout: Duration,
}

impl StoragePool {
    /// Starts the threads; every call is answered within `timeout` (by its result or an error).
    pub fn start(timeout: Duration) -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("partyd-storage-{index}"))
                .spawn(move || run_jobs(&queue))?;
        }
        Ok(Self { jobs, timeout })
    }

    /// How long a call may take before its caller is told storage did not answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `call` on a storage thread. Past the timeout the caller gets an error (the call
    /// itself goes on, and its result is dropped); with every thread busy and the queue full it
    /// gets one at once.
    pub fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StorageError>> {
        let (answer, answered) = oneshot::channel();
        let queued = self.jobs.try_send(Box::new(move || drop(answer.send(call()))));
        let timeout = self.timeout;
        async move {
            match queued {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    return Err(StorageError::Stalled(format!("{what}: every storage thread is busy").into()))
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(StorageError::Io("the storage threads have stopped".into()))
                }
            }
            match tokio::time::timeout(timeout, answered).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(StorageError::Io(format!("{what}: the storage call panicked").into())),
                Err(_) => Err(StorageError::Stalled(
                    format!("{what}: no answer within {} s", timeout.as_secs_f64()).into(),
                )),
            }
        }
    }
}

fn run_jobs(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_answer_and_a_call_that_never_returns_is_cut_off_without_holding_the_others() {
        let pool = StoragePool::start(Duration::from_millis(200)).unwrap();
        assert_eq!(pool.run("add", || Ok(1 + 1)).await.unwrap(), 2);
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = Arc::new(Mutex::new(stuck));
        let started = std::time::Instant::now();
        let blocked = pool.run("stall", move || {
            let _ = stuck.lock().unwrap().recv();
            Ok(())
        });
        let error = blocked.await.unwrap_err();
        assert!(matches!(error, StorageError::Stalled(_)), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(pool.run("after", || Ok("still answers")).await.unwrap(), "still answers");
        release.send(()).unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = StoragePool::start(Duration::from_secs(5)).unwrap();
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = Arc::new(Mutex::new(stuck));
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stall = |stuck: Arc<Mutex<Receiver<()>>>, started: Arc<std::sync::atomic::AtomicUsize>| {
            move || {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stuck.lock().unwrap().recv();
                Ok(())
            }
        };
        let mut waiting = Vec::new();
        for _ in 0..THREADS {
            waiting.push(pool.run("stall", stall(stuck.clone(), started.clone())));
        }
        while started.load(std::sync::atomic::Ordering::SeqCst) < THREADS {
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..QUEUE {
            waiting.push(pool.run("queued", stall(stuck.clone(), started.clone())));
        }
        let refused = pool.run("one more", || Ok(())).await.unwrap_err();
        assert!(refused.to_string().contains("busy"), "{refused}");
        drop(waiting);
        for _ in 0..(THREADS + QUEUE) {
            let _ = release.send(());
        }
    }
}

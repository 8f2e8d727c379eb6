//! Group commit: one thread owns writing and flushing. Every caller queues its work (writes, or
//! nothing for a plain `durable()`) with a waiter; the thread takes everything queued so far,
//! commits it as one unit (one write and one flush), answers every waiter, and repeats. Work
//! queued while a commit runs waits for the next one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, PoisonError, RwLock};
use std::time::Duration;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{DurableTicket, StorageError};

type Waiter = oneshot::Sender<Result<(), StorageError>>;


/// Told the duration and the number of waiters of every flush (for metrics).
pub type FlushObserver = Arc<dyn Fn(Duration, usize) + Send + Sync>;

/// Counters of the flusher, for metrics and benchmark reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Flushes run.
    pub flushes: u64,
    /// Tickets answered by those flushes.
    pub tickets: u64,
    /// Microseconds the last flush took.
    pub last_flush_micros: u64,
}

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    tickets: AtomicU64,
    last_flush_micros: AtomicU64,
    observer: RwLock<Option<FlushObserver>>,
}

/// The handle to the flushing thread; dropping it answers pending waiters and stops the thread.
pub struct Flusher<W: Send + 'static = ()> {
    jobs: Option<mpsc::Sender<(W, Waiter)>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl<W: Send + 'static> Flusher<W> {
    /// Starts the thread; `commit` applies the queued work of a round, in queue order, and
    /// makes it durable.
    pub fn start<F>(mut commit: F) -> std::io::Result<Self>
    where
        F: FnMut(Vec<W>) -> Result<(), StorageError> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel::<(W, Waiter)>();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("partyd-flusher".into())
            .spawn(move || run(&receiver, &mut commit, &thread_counters))?;
        Ok(Self { jobs: Some(sender), counters, thread: Some(thread) })
    }

    /// Queues `work`; the ticket is answered once the commit that includes it is durable.
    pub fn submit(&self, work: W) -> DurableTicket {
        let (waiter, answer) = oneshot::channel();
        if let Some(jobs) = &self.jobs {
            // If the thread is gone the waiter is dropped and the ticket reports an error.
            let _ = jobs.send((work, waiter));
        }
        DurableTicket::new(answer)
    }

    /// A ticket answered by the next commit that starts after this call.
    pub fn durable(&self) -> DurableTicket
    where
        W: Default,
    {
        self.submit(W::default())
    }

    /// Calls `observer` after every flush from now on.
    pub fn observe(&self, observer: FlushObserver) {
        *self.counters.observer.write().unwrap_or_else(PoisonError::into_inner) = Some(observer);
    }

    /// The counters so far.
    pub fn stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            tickets: self.counters.tickets.load(Ordering::Relaxed),
            last_flush_micros: self.counters.last_flush_micros.load(Ordering::Relaxed),
        }
    }
}

impl<W: Send + 'static> Drop for Flusher<W> {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run<W>(receiver: &mpsc::Receiver<(W, Waiter)>, commit: &mut dyn FnMut(Vec<W>) -> Result<(), StorageError>, counters: &Counters) {
    while let Ok(first) = receiver.recv() {
        let (work, batch): (Vec<W>, Vec<Waiter>) = std::iter::once(first).chain(receiver.try_iter()).unzip();
        let started = Instant::now();
        let result = commit(work);
        let elapsed = started.elapsed();
        counters.last_flush_micros.store(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Some(observer) = counters.observer.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
            observer(elapsed, batch.len());
        }
        counters.flushes.fetch_add(1, Ordering::Relaxed);
        counters.tickets.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Err(error) = &result {
            tracing::error!(%error, "flush failed");
        }
        for waiter in batch {
            let _ = waiter.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn many_waiters_share_few_flushes_and_all_are_answered() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let counted = flushes.clone();
        let flusher = Flusher::start(move |_: Vec<()>| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        let tickets: Vec<_> = (0..100).map(|_| flusher.durable()).collect();
        for ticket in tickets {
            ticket.await.unwrap();
        }
        let stats = flusher.stats();
        assert_eq!(stats.tickets, 100);
        assert!(stats.flushes < 100, "{stats:?}");
        assert_eq!(stats.flushes as usize, flushes.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_failed_flush_is_reported_to_its_waiters() {
        let flusher = Flusher::start(|_: Vec<()>| Err(StorageError::Io("disk on fire".into()))).unwrap();
        let error = flusher.durable().await.unwrap_err();
        assert!(error.to_string().contains("disk on fire"));
    }
}

//! Group commit: one thread owns writing and flushing. Every caller queues its work (writes, or
//! nothing for a plain `durable()`) with a waiter; the thread takes everything queued so far,
//! commits it as one unit (one write and one flush), answers every waiter, and repeats. Work
//! queued while a commit runs waits for the next one.
//!
//! Under load the thread also waits a little before a commit, to gather a bigger group: a
//! commit costs about the same whatever it carries (here ~100 µs of CPU: a journal write, a
//! device flush, the wake-ups), and so does each room's round it ends (one send to each of the
//! room's sockets), so fewer, bigger ones cost less. See [`Pacer`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{DurableTicket, StorageError};

type Waiter = oneshot::Sender<Result<(), StorageError>>;

/// How group commits wait under load: a wait that grows with the arrival rate of messages, up
/// to a window. See [`Pacer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// The longest a commit waits to gather more work (zero: never wait).
    pub window: Duration,
    /// How the wait grows with the arrival rate: seconds of wait per message a second.
    pub wait_per_rate: f64,
}

impl Pacing {
    /// The wait grows with the rate ([`WAIT_PER_RATE`]) up to `window`.
    pub fn scaled(window: Duration) -> Self {
        Self { window, wait_per_rate: WAIT_PER_RATE }
    }

    /// The whole `window` as soon as it would gather two messages, whatever the rate (for tests
    /// that need a round to stay open for a known time).
    pub fn fixed(window: Duration) -> Self {
        Self { window, wait_per_rate: f64::INFINITY }
    }
}

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
    /// Starts the thread; `commit` applies the queued work of a round, in queue order, makes
    /// it durable and says how many messages that work came from. Under load commits wait as
    /// `pacing` says, by the rate of those messages.
    pub fn start<F>(pacing: Pacing, mut commit: F) -> std::io::Result<Self>
    where
        F: FnMut(Vec<W>) -> Result<usize, StorageError> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel::<(W, Waiter)>();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("partyd-flusher".into())
            .spawn(move || run(&receiver, &mut commit, &thread_counters, Pacer::new(pacing)))?;
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

fn run<W>(
    receiver: &mpsc::Receiver<(W, Waiter)>,
    commit: &mut dyn FnMut(Vec<W>) -> Result<usize, StorageError>,
    counters: &Counters,
    mut pacer: Pacer,
) {
    loop {
        // Busy: the window is waited out before looking for work, so a job queued meanwhile
        // finds no thread to wake (a futex call on each side saved).
        let now = Instant::now();
        if let Some(start_at) = pacer.start_at(now) {
            std::thread::sleep(start_at - now);
        }
        let Ok(first) = receiver.recv() else { break };
        let (work, batch): (Vec<W>, Vec<Waiter>) = std::iter::once(first).chain(receiver.try_iter()).unzip();
        let started = Instant::now();
        let result = commit(work);
        let elapsed = started.elapsed();
        let carried = match &result {
            Ok(messages) => *messages,
            // A failed commit says nothing of its messages; each waiter counts as one.
            Err(_) => batch.len(),
        };
        pacer.started(started, carried);
        let result = result.map(drop);
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

/// Decides whether a commit waits, and how long. The wait grows with the recent arrival rate of
/// messages, [`WAIT_PER_RATE`] for each message a second, up to the window; a commit waits only
/// when that wait is expected to gather [`BUSY_GROUP`] messages or more, and then only until
/// that long after the previous commit started. So a quiet server commits at once, and the
/// busier it is the fewer commits it makes, down to one a window: each commit, and each room's
/// round in it, costs about the same CPU whatever it carries, which matters most when the
/// server is short of CPU, and no message waits longer than a window for it.
///
/// Messages, not rooms' rounds, measure the load: once every busy room is in every commit, the
/// rate of rounds is the rate of commits times the rooms, whatever the messages, and a wait
/// paced by it settles where it barely gathers more.
struct Pacer {
    pacing: Pacing,
    /// Messages of recent commits, each counted less as time passes (halved about every 35 ms).
    recent_messages: f64,
    last_start: Option<Instant>,
}

/// The messages a wait must be expected to gather before commits wait at all.
const BUSY_GROUP: f64 = 2.0;
/// How far back the arrival rate looks (the time constant of its decay).
const RATE_MEMORY: Duration = Duration::from_millis(50);
/// Seconds of wait per message a second of arrival rate: commits wait from ~1,400 messages/s
/// (1.4 ms, two messages a wait) and the default 8 ms window is reached at 8,000 messages/s
/// (64). Here a fan-out of ~7,200 deliveries/s brings ~800 messages/s (no wait); ~29,500/s
/// ~3,300 (3.3 ms); ~72,000/s 8,000 (8 ms). Fewer commits mean fewer sends: a room's round
/// sends once to each socket of its room, however many messages it carries.
pub const WAIT_PER_RATE: f64 = 1.0e-6;

impl Pacer {
    fn new(pacing: Pacing) -> Self {
        Self { pacing, recent_messages: 0.0, last_start: None }
    }

    /// When the next commit may start, if not at once.
    fn start_at(&self, now: Instant) -> Option<Instant> {
        let start_at = self.last_start? + self.busy_wait()?;
        (start_at > now).then_some(start_at)
    }

    /// The wait after a commit's start before the next, when the server is busy.
    fn busy_wait(&self) -> Option<Duration> {
        let rate = self.recent_messages / RATE_MEMORY.as_secs_f64();
        let window = self.pacing.window.as_secs_f64();
        let scaled = rate * self.pacing.wait_per_rate;
        // NaN (a zero rate times an infinite slope) takes the window, which then gathers nothing.
        let wait = if scaled < window { Duration::from_secs_f64(scaled) } else { self.pacing.window };
        (rate * wait.as_secs_f64() >= BUSY_GROUP).then_some(wait)
    }

    /// A commit of `messages` messages started at `at`.
    fn started(&mut self, at: Instant, messages: usize) {
        let elapsed = self.last_start.map_or(Duration::MAX, |last| at.saturating_duration_since(last));
        let decay = (-elapsed.as_secs_f64() / RATE_MEMORY.as_secs_f64()).exp();
        self.recent_messages = self.recent_messages * decay + messages as f64;
        self.last_start = Some(at);
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
        let flusher = Flusher::start(Pacing::scaled(Duration::ZERO), move |batch: Vec<()>| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            Ok(batch.len())
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

    /// Runs a pacer through `commits` commits of `messages` messages every `every`, from
    /// `start`; returns when the last one started.
    fn steady(pacer: &mut Pacer, start: Instant, every: Duration, messages: usize, commits: u32) -> Instant {
        let mut at = start;
        for _ in 0..commits {
            pacer.started(at, messages);
            at += every;
        }
        at - every
    }

    #[test]
    fn a_quiet_server_commits_at_once() {
        let window = Duration::from_millis(1);
        let mut pacer = Pacer::new(Pacing::scaled(window));
        let start = Instant::now();
        assert_eq!(pacer.start_at(start), None, "the first commit never waits");
        // 800 messages a second, one a commit: the wait (0.8 ms) would gather 0.64 of them.
        let last = steady(&mut pacer, start, Duration::from_micros(1250), 1, 400);
        assert_eq!(pacer.start_at(last + Duration::from_micros(100)), None);
    }

    #[test]
    fn a_busy_server_commits_at_most_once_a_window_and_no_longer_once_it_quiets() {
        let window = Duration::from_millis(1);
        let mut pacer = Pacer::new(Pacing::scaled(window));
        // 8,000 messages a second: two every 250 µs.
        let last = steady(&mut pacer, Instant::now(), Duration::from_micros(250), 2, 400);
        let now = last + Duration::from_micros(300);
        assert_eq!(pacer.start_at(now), Some(last + window));
        assert_eq!(pacer.start_at(last + window), None, "a window after the last start: at once");
        // After half a second with one lone message the rate has decayed: no wait.
        let later = last + Duration::from_millis(500);
        pacer.started(later, 1);
        assert_eq!(pacer.start_at(later + Duration::from_micros(100)), None);
    }

    #[test]
    fn the_wait_grows_with_the_arrival_rate_up_to_the_window() {
        let window = super::super::DEFAULT_GROUP_COMMIT_WINDOW;
        let wait_at = |messages_per_second: u64| {
            let mut pacer = Pacer::new(Pacing::scaled(window));
            // Two messages a commit, at the given rate, for two seconds (the rate is steady by
            // then).
            let every = Duration::from_nanos(2_000_000_000 / messages_per_second);
            let last = steady(&mut pacer, Instant::now(), every, 2, (messages_per_second / 2) as u32 * 2);
            pacer.start_at(last).map(|start_at| start_at - last)
        };
        assert_eq!(wait_at(1_200), None, "1.2 ms would gather 1.4 messages: no wait");
        let around = |wait: Option<Duration>, expected: Duration| {
            let wait = wait.expect("a busy server waits");
            assert!(wait.abs_diff(expected) < Duration::from_micros(50), "{wait:?}, expected {expected:?}");
        };
        around(wait_at(2_000), Duration::from_millis(2));
        around(wait_at(3_000), Duration::from_millis(3));
        around(wait_at(4_000), Duration::from_millis(4));
        assert_eq!(window, Duration::from_millis(8));
        around(wait_at(8_000), window);
        around(wait_at(20_000), window);
    }

    #[test]
    fn a_zero_window_never_waits() {
        let mut pacer = Pacer::new(Pacing::scaled(Duration::ZERO));
        let last = steady(&mut pacer, Instant::now(), Duration::from_micros(10), 50, 1000);
        assert_eq!(pacer.start_at(last), None);
    }

    #[tokio::test]
    async fn a_busy_flusher_waits_for_its_window_and_answers_everyone() {
        let window = Duration::from_millis(5);
        let flusher = Flusher::start(Pacing::scaled(window), |batch: Vec<()>| Ok(batch.len())).unwrap();
        // Make the flusher busy: 40,000 messages in a few commits. The wait stays the whole
        // window until the rate falls under 5,000 messages/s, so through a stall of up to ~250 ms.
        // Then time two more commits.
        for _ in 0..8 {
            let tickets: Vec<_> = (0..5_000).map(|_| flusher.durable()).collect();
            for ticket in tickets {
                ticket.await.unwrap();
            }
        }
        let before = flusher.stats().flushes;
        let started = Instant::now();
        flusher.durable().await.unwrap();
        flusher.durable().await.unwrap();
        assert!(started.elapsed() >= window, "two commits a window apart");
        assert_eq!(flusher.stats().flushes, before + 2);
    }

    #[tokio::test]
    async fn commits_are_paced_by_the_messages_they_report_not_by_their_waiters() {
        let window = Duration::from_millis(20);
        // One waiter a commit, but each commit says it carried 1,000 messages: after the
        // first, the rate (1,000 in the last ~50 ms) calls for the whole window. Counted by
        // waiters, the rate would be one commit's worth and nothing would wait.
        let flusher = Flusher::start(Pacing::scaled(window), |_: Vec<()>| Ok(1_000)).unwrap();
        let started = Instant::now();
        flusher.durable().await.unwrap();
        flusher.durable().await.unwrap();
        assert!(started.elapsed() >= window, "the second commit waited for the window");
    }

    #[tokio::test]
    async fn a_failed_flush_is_reported_to_its_waiters() {
        let flusher = Flusher::start(Pacing::scaled(Duration::ZERO), |_: Vec<()>| {
            Err(StorageError::Io("disk on fire".into()))
        })
        .unwrap();
        let error = flusher.durable().await.unwrap_err();
        assert!(error.to_string().contains("disk on fire"));
    }
}

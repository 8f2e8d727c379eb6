//! How long this thread's event loop did not run. A watchdog task on each worker thread wakes
//! every [`TICK`]; a gap between two observations much longer than that is time in which
//! nothing on the thread ran (the process was stopped, its machine frozen, or the loop held up
//! by one long task), so nothing read what clients were sending meanwhile. The message-rate
//! limit (`super::rate`) gives that time back to the connections that were sending.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the watchdog wakes.
pub const TICK: Duration = Duration::from_millis(100);
/// A gap longer than this between observations is a stall. Timer lateness and scheduling
/// under load stay far below it; a stall shorter than it leaves a backlog smaller than a
/// second's messages, which the rate limit's burst (two seconds' worth) absorbs anyway.
const STALL: Duration = Duration::from_millis(300);
/// Stalls are remembered this long: a connection is credited a stall when it finds itself over
/// its rate while it reads what piled up, which is right after the stall ends. A stall long
/// forgotten is not saved up to be spent on a flood later.
pub const RECENT: Duration = Duration::from_secs(60);

/// The stalls of one thread.
#[derive(Debug)]
pub struct StallClock {
    /// When the thread was last seen running.
    last_seen: Instant,
    /// Recent stalls: when each was seen to end, and how long nothing ran.
    stalls: VecDeque<(Instant, Duration)>,
}

impl StallClock {
    /// A clock that has seen the thread run at `now`.
    pub fn new(now: Instant) -> Self {
        Self { last_seen: now, stalls: VecDeque::new() }
    }

    /// Notes that the thread runs at `now`. A gap since the last note longer than [`STALL`]
    /// was a stall that ends now; it lasted the gap less the tick the watchdog slept anyway.
    pub fn observe(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_seen);
        if gap > STALL {
            self.stalls.push_back((now, gap - TICK));
        }
        self.last_seen = self.last_seen.max(now);
        while self.stalls.front().is_some_and(|&(end, _)| now.saturating_duration_since(end) > RECENT) {
            self.stalls.pop_front();
        }
    }

    /// How long the recent stalls that ended after `after` lasted, together.
    pub fn stalled_since(&self, after: Instant) -> Duration {
        self.stalls.iter().filter(|&&(end, _)| end > after).map(|&(_, lasted)| lasted).sum()
    }
}

thread_local! {
    /// This thread's clock while its watchdog runs.
    static CLOCK: RefCell<Option<StallClock>> = const { RefCell::new(None) };
}

/// Starts this thread's watchdog unless it runs already. Call from the thread's event loop
/// (actix's workers run a tokio `LocalSet`); it runs as long as that loop does.
pub fn watch() {
    if CLOCK.with_borrow(Option::is_some) {
        return;
    }
    CLOCK.set(Some(StallClock::new(Instant::now())));
    actix_web::rt::spawn(async {
        /// Without a watchdog, every gap would look like a stall: the clock goes with it.
        struct Stopped;
        impl Drop for Stopped {
            fn drop(&mut self) {
                let _ = CLOCK.try_with(|clock| clock.take());
            }
        }
        let _stopped = Stopped;
        loop {
            tokio::time::sleep(TICK).await;
            CLOCK.with_borrow_mut(|clock| clock.as_mut().map(|clock| clock.observe(Instant::now())));
        }
    });
}

/// How long this thread did not run in the recent stalls that ended after `after`, a stall
/// ending at `now` included (the watchdog may not have woken yet to see it: the first task to
/// run after a stop may be a connection reading its backlog). Zero where no watchdog runs.
pub fn stalled_since(after: Instant, now: Instant) -> Duration {
    CLOCK.with_borrow_mut(|clock| {
        clock.as_mut().map_or(Duration::ZERO, |clock| {
            clock.observe(now);
            clock.stalled_since(after)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn gaps_longer_than_a_stall_are_counted_less_a_tick_and_forgotten_after_a_while() {
        let start = Instant::now();
        let mut clock = StallClock::new(start);
        let mut now = start;
        for _ in 0..10 {
            now += TICK + 5 * MS;
            clock.observe(now);
        }
        assert_eq!(clock.stalled_since(start), Duration::ZERO, "a late tick is no stall");
        let before_stop = now;
        now += Duration::from_secs(6);
        clock.observe(now);
        assert_eq!(clock.stalled_since(start), Duration::from_secs(6) - TICK);
        assert_eq!(clock.stalled_since(now), Duration::ZERO, "counted for those credited before it ended");
        assert_eq!(clock.stalled_since(before_stop), Duration::from_secs(6) - TICK);
        now += 50 * MS;
        clock.observe(now);
        assert_eq!(clock.stalled_since(start), Duration::from_secs(6) - TICK, "seen once");
        now += 2 * STALL;
        clock.observe(now);
        assert_eq!(clock.stalled_since(start), Duration::from_secs(6) - TICK + 2 * STALL - TICK);
        // A minute later (itself a gap: nothing was observed meanwhile) the old ones are gone.
        clock.observe(now + RECENT + MS);
        assert_eq!(clock.stalled_since(start), RECENT + MS - TICK, "old stalls are forgotten");
    }

    #[test]
    fn a_thread_without_a_watchdog_has_no_stalls() {
        let start = Instant::now();
        assert_eq!(stalled_since(start, start + Duration::from_secs(10)), Duration::ZERO);
    }
}

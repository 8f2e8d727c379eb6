//! The per-connection message rate: `messages_per_second`, in bursts of twice that, counted
//! by when the client could have sent the messages rather than by when the server read them.
//!
//! A server that does not run for a while (stopped, its machine frozen, its loop held up) reads
//! what its clients sent meanwhile all at once: after 30 s, a client at 100 messages a second
//! within its 1,000 has 3,000 waiting, more than any burst, and every client was closed 1008
//! for the server's own stall. Three ways to count what the client sent were weighed:
//!
//! - Kernel receive timestamps (`SO_TIMESTAMP` with `recvmsg`): a TCP read reports one time,
//!   the newest segment's, for everything it returns, so a backlog still arrives in as many
//!   instants as reads (a 16 KiB read of 35-byte changes is ~470 messages at once); reads would
//!   have to stay small, and the times are wall-clock time, which steps.
//! - Only closing when the rate over a long window is exceeded: tolerates a stall only as long
//!   as the window, and lets a flooder send a whole window's worth at once.
//! - Credit for the time the server itself did not run (chosen). A watchdog on each event loop
//!   (`super::stall`) measures the gaps in which nothing ran. A message over the limit asks
//!   how long the recent stalls since the connection opened lasted, and the limit tolerates that
//!   much more than a burst: what was read late by at most that long, having been sent within
//!   the rate, is within it so counted. So a client within its rate is never closed for a stall,
//!   however long, however slowly or unevenly the server then drains what piled up; and a client
//!   over its rate is still closed: its sustained rate stays the limit, and in the minute after
//!   a stall ([`super::stall::RECENT`]) it may get ahead by the stall's worth of messages more
//!   than a burst, which is what it could have sent at its rate while the server did not read.
//!   Between stalls nothing changes: the stall clock is asked only on the refusing path, and
//!   the watchdog costs one wake-up per worker thread every 100 ms.

use std::time::{Duration, Instant};

/// GCRA (a leaky bucket kept as one time): each message moves the theoretical arrival time
/// on by one interval; a message is over the limit when that time gets more than a burst
/// ahead of now, or more than a burst and the credited stall time while there is credit.
#[derive(Debug)]
pub struct MessageRate {
    /// Time between messages at the limit.
    interval: Duration,
    /// How far ahead of now the arrival time may get: a burst's worth of intervals.
    burst: Duration,
    /// When the next message would be due at the limit (`None` before the first).
    due: Option<Instant>,
    /// Stall time tolerated beyond the burst; it lapses once the client is back within a
    /// burst, and is asked for again (while the stall is recent) if it goes over again.
    credit: Duration,
    /// When the connection opened: stalls before it are not its.
    opened: Instant,
}

impl MessageRate {
    /// A limit of `per_second` messages a second with bursts of twice that, for a connection
    /// opened at `now`.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        let burst = interval.saturating_mul(per_second.saturating_mul(2));
        Self { interval, burst, due: None, credit: Duration::ZERO, opened: now }
    }

    /// The time between messages at the limit.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Counts one message read at `now`: false if it is over the limit. Only then is
    /// `stalled_since(opened, now)` asked how long the recent stalls since the connection
    /// opened lasted (see [`super::stall::stalled_since`]), and that time is tolerated.
    pub fn admit(&mut self, now: Instant, stalled_since: impl FnOnce(Instant, Instant) -> Duration) -> bool {
        let next = self.due.map_or(now, |due| due.max(now)) + self.interval;
        let ahead = next - now;
        if ahead > self.burst + self.credit {
            self.credit = self.credit.max(stalled_since(self.opened, now));
            if ahead > self.burst + self.credit {
                return false;
            }
        } else if ahead <= self.burst {
            self.credit = Duration::ZERO;
        }
        self.due = Some(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_STALL: fn(Instant, Instant) -> Duration = |_, _| Duration::ZERO;
    const MS: Duration = Duration::from_millis(1);

    /// A stall of `lasted` that ended at `end`, as the stall clock reports it (one minute).
    fn stall(end: Instant, lasted: Duration) -> impl Fn(Instant, Instant) -> Duration {
        move |after, now| {
            let recent = now.saturating_duration_since(end) <= super::super::stall::RECENT;
            if end > after && recent {
                lasted
            } else {
                Duration::ZERO
            }
        }
    }

    /// How many of `count` messages read at `now` pass.
    fn admitted(
        rate: &mut MessageRate,
        count: usize,
        now: Instant,
        stalls: impl Fn(Instant, Instant) -> Duration,
    ) -> usize {
        (0..count).take_while(|_| rate.admit(now, &stalls)).count()
    }

    #[test]
    fn bursts_of_twice_the_rate_pass_and_the_rate_refills() {
        let start = Instant::now();
        let mut rate = MessageRate::new(5, start);
        assert_eq!(admitted(&mut rate, 50, start, NO_STALL), 10);
        let mut rate = MessageRate::new(5, start);
        let steady = (0..1000).all(|n| rate.admit(start + 200 * MS * n, NO_STALL));
        assert!(steady, "a client at exactly its rate always passes");
        let mut rate = MessageRate::new(5, start);
        let fast = (0..1000).take_while(|&n| rate.admit(start + 150 * MS * n, NO_STALL));
        assert_eq!(fast.count(), 37, "a client 4/3 over its rate is refused once its burst is used up");
    }

    #[test]
    fn what_piled_up_while_the_server_stalled_passes_however_it_is_read() {
        let start = Instant::now();
        let lasted = Duration::from_secs(6);
        let resumed = start + Duration::from_secs(1) + lasted;
        let stalls = stall(resumed, lasted);
        // 150 a second (bursts of 300); a client at 100 a second sent 600 while nothing read.
        let mut rate = MessageRate::new(150, start);
        assert_eq!(admitted(&mut rate, 600, resumed, &stalls), 600);
        let after = (1..200).all(|n| rate.admit(resumed + 10 * MS * n, &stalls));
        assert!(after, "and it goes on at its rate");
        assert_eq!(admitted(&mut MessageRate::new(150, start), 600, resumed, NO_STALL), 300, "uncredited");
        // 800 piled up, read unevenly: 400 at once, 200 slower than the rate (the client gets
        // back within a burst meanwhile), then the rest at once.
        let mut rate = MessageRate::new(150, start);
        assert_eq!(admitted(&mut rate, 400, resumed, &stalls), 400);
        let slow = (1..=200).all(|n| rate.admit(resumed + 10 * MS * n, &stalls));
        assert!(slow);
        assert_eq!(admitted(&mut rate, 200, resumed + 2000 * MS, &stalls), 200);
        // A client at 99 % of its rate works the stall off slowly, for longer than a minute.
        let mut rate = MessageRate::new(100, start);
        let near = (0..20_000).all(|n| {
            let sent = start + Duration::from_micros(10_101) * n;
            rate.admit(if sent < resumed { resumed } else { sent }, &stalls)
        });
        assert!(near, "a client just within its rate is not closed when the stall is forgotten");
    }

    #[test]
    fn a_flood_after_a_stall_gets_ahead_by_the_stall_at_most_and_is_closed() {
        let start = Instant::now();
        let lasted = Duration::from_secs(6);
        let resumed = start + Duration::from_secs(7);
        let stalls = stall(resumed, lasted);
        let mut flood = MessageRate::new(150, start);
        assert_eq!(admitted(&mut flood, 5000, resumed, &stalls), 300 + 900);
        let later = resumed + Duration::from_secs(1);
        assert_eq!(admitted(&mut flood, 5000, later, &stalls), 150, "a second's worth, no more");
        // Its sustained rate is the limit: waiting the stall off and flooding again gains nothing.
        let mut flood = MessageRate::new(150, start);
        let mut passed = 0;
        for second in 0..60 {
            passed += admitted(&mut flood, 5000, resumed + Duration::from_secs(second), &stalls);
        }
        assert_eq!(passed, 300 + 900 + 59 * 150);
        // A minute on, the stall is forgotten: a burst again.
        let much_later = resumed + Duration::from_secs(200);
        assert_eq!(admitted(&mut MessageRate::new(150, start), 5000, much_later, &stalls), 300);
        // Stalls before the connection opened are not its.
        assert_eq!(admitted(&mut MessageRate::new(150, resumed), 5000, resumed, &stalls), 300);
    }

    #[test]
    fn extreme_rates_neither_overflow_nor_refuse_everything() {
        let start = Instant::now();
        let mut fastest = MessageRate::new(u32::MAX, start);
        assert!((0..10_000).all(|_| fastest.admit(start, NO_STALL)));
        let mut slowest = MessageRate::new(0, start);
        assert_eq!(admitted(&mut slowest, 10, start, NO_STALL), 2);
    }
}

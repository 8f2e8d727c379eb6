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
//!   (`super::stall`) measures the gaps in which nothing ran. A message over the limit first
//!   asks for the stall time that ended since the connection was last credited; it is given
//!   back to the limiter, as if the messages read now had been read while the server did not
//!   run. A client within its rate is then never closed for a stall of any length (what it sent
//!   during it is at most the stall's time at its rate), and a client over its rate is still
//!   closed: it gains at most the stall's worth of messages, once, within a minute of the stall
//!   ([`super::stall::RECENT`]), which is what it could have sent at its rate while the server
//!   did not read. Between stalls nothing changes: the stall clock is only asked on the
//!   refusing path, and the watchdog costs one wake-up per worker thread every 100 ms.

use std::time::{Duration, Instant};

/// GCRA (a leaky bucket kept as one time): each message moves the theoretical arrival time
/// on by one interval; a message is over the limit when that time gets more than a burst
/// ahead of now. Credited stall time lets it get that much further ahead, until the client is
/// back within a burst.
#[derive(Debug)]
pub struct MessageRate {
    /// Time between messages at the limit.
    interval: Duration,
    /// How far ahead of now the arrival time may get: a burst's worth of intervals.
    burst: Duration,
    /// When the next message would be due at the limit (`None` before the first).
    due: Option<Instant>,
    /// Stall time credited and not yet worked off.
    credit: Duration,
    /// Stall time that ended up to this instant has been credited already.
    credited_until: Instant,
}

impl MessageRate {
    /// A limit of `per_second` messages a second with bursts of twice that, for a connection
    /// opened at `now` (stalls before it are not its).
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        let burst = interval.saturating_mul(per_second.saturating_mul(2));
        Self { interval, burst, due: None, credit: Duration::ZERO, credited_until: now }
    }

    /// Counts one message read at `now`: false if it is over the limit. Only then is
    /// `stalled_since(after, now)` asked how long the server did not run in stalls that ended
    /// after `after` (see [`super::stall::stalled_since`]), and that time is credited.
    pub fn admit(&mut self, now: Instant, stalled_since: impl FnOnce(Instant, Instant) -> Duration) -> bool {
        let next = self.due.map_or(now, |due| due.max(now)) + self.interval;
        let ahead = next - now;
        if ahead > self.burst + self.credit {
            self.credit += stalled_since(self.credited_until, now);
            self.credited_until = now;
            if ahead > self.burst + self.credit {
                return false;
            }
        }
        if ahead <= self.burst {
            // Back within a burst: whatever credit is left is not saved up for later.
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

    /// How many of `count` messages read at `now` pass, after a stall of `stalled` that ended
    /// at `now` (credited to those not credited since).
    fn admitted(rate: &mut MessageRate, count: usize, now: Instant, stalled: Duration) -> usize {
        let stalls = |after: Instant, _| if after < now { stalled } else { Duration::ZERO };
        (0..count).take_while(|_| rate.admit(now, stalls)).count()
    }

    #[test]
    fn bursts_of_twice_the_rate_pass_and_the_rate_refills() {
        let start = Instant::now();
        let mut rate = MessageRate::new(5, start);
        assert_eq!((0..50).take_while(|_| rate.admit(start, NO_STALL)).count(), 10);
        let mut rate = MessageRate::new(5, start);
        let steady = (0..1000).all(|n| rate.admit(start + Duration::from_millis(200) * n, NO_STALL));
        assert!(steady, "a client at exactly its rate always passes");
        let mut rate = MessageRate::new(5, start);
        let fast = (0..1000).take_while(|&n| rate.admit(start + Duration::from_millis(150) * n, NO_STALL));
        assert_eq!(fast.count(), 37, "a client 4/3 over its rate is refused once its burst is used up");
    }

    #[test]
    fn what_piled_up_while_the_server_stalled_passes_and_a_flood_does_not() {
        let start = Instant::now();
        let stall = Duration::from_secs(6);
        // 150 a second (bursts of 300); a client at 100 a second sent 600 while nothing read.
        let mut rate = MessageRate::new(150, start);
        let resumed = start + Duration::from_secs(1) + stall;
        assert_eq!(admitted(&mut rate, 600, resumed, stall), 600);
        let after = (1..200).all(|n| rate.admit(resumed + Duration::from_millis(10) * n, NO_STALL));
        assert!(after, "and it goes on at its rate");
        // Without the credit, the backlog is over the burst.
        assert_eq!(admitted(&mut MessageRate::new(150, start), 600, resumed, Duration::ZERO), 300);
        // A flood gains the stall's worth of messages at most, once.
        let mut flood = MessageRate::new(150, start);
        assert_eq!(admitted(&mut flood, 5000, resumed, stall), 300 + 900);
        let mut flood = MessageRate::new(150, start);
        assert_eq!(admitted(&mut flood, 300, resumed, stall), 300);
        let mut asked = Vec::new();
        let later = resumed + Duration::from_secs(1);
        let passed = (0..5000)
            .take_while(|_| {
                flood.admit(later, |after, _| {
                    asked.push(after);
                    // Credited only for stalls that ended after `after`.
                    if after < resumed {
                        stall
                    } else {
                        Duration::ZERO
                    }
                })
            })
            .count();
        assert_eq!(passed, 150 + 900, "a second's refill and the stall");
        assert_eq!(asked, [start, later], "asked once for the stall, then for nothing newer");
    }

    #[test]
    fn extreme_rates_neither_overflow_nor_refuse_everything() {
        let start = Instant::now();
        let mut fastest = MessageRate::new(u32::MAX, start);
        assert!((0..10_000).all(|_| fastest.admit(start, NO_STALL)));
        let mut slowest = MessageRate::new(0, start);
        assert_eq!((0..10).take_while(|_| slowest.admit(start, NO_STALL)).count(), 2);
    }
}

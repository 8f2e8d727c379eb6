//! Bounded logging of lines a client can make the server repeat, such as one refusal per
//! request: each place in the code writes at most [`LINES_PER_INTERVAL`] of them per
//! [`INTERVAL`]; the rest are counted, and the next line written from that place comes after one
//! that says how many were left out. A flood of 100,000 refused requests then costs a few
//! lines a minute instead of two lines each (~700 bytes of JSON). What was refused is still
//! counted in full by the metrics.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines one place may write per [`INTERVAL`].
pub const LINES_PER_INTERVAL: u32 = 10;
/// The window the limit counts in.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// The limit of one place in the code (a `static` that [`limited!`] makes per call site).
pub struct LogLimit {
    window: Mutex<Window>,
}

struct Window {
    /// When the current window began; `None` before the first line.
    started: Option<Instant>,
    /// Lines written in the current window.
    written: u32,
    /// Lines left out since the last one written.
    left_out: u64,
}

impl LogLimit {
    /// A limit that has written nothing yet.
    pub const fn new() -> Self {
        Self { window: Mutex::new(Window { started: None, written: 0, left_out: 0 }) }
    }

    /// Whether a line may be written at `now`: `Some(n)` if it may, `n` being how many were
    /// left out before it (to be said first when not 0); `None` if it is left out.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.started.is_none_or(|started| now.saturating_duration_since(started) >= INTERVAL) {
            window.started = Some(now);
            window.written = 0;
        }
        if window.written >= LINES_PER_INTERVAL {
            window.left_out += 1;
            return None;
        }
        window.written += 1;
        Some(std::mem::take(&mut window.left_out))
    }
}

impl Default for LogLimit {
    fn default() -> Self {
        Self::new()
    }
}

/// `tracing::<level>!(...)`, limited per call site by [`LogLimit`]: `limited!(warn, field = %x,
/// "message")`. When lines were left out, a line at the same level saying how many comes first.
macro_rules! limited {
    ($level:ident, $($line:tt)+) => {{
        static LIMIT: $crate::log_limit::LogLimit = $crate::log_limit::LogLimit::new();
        if let Some(left_out) = LIMIT.admit(::std::time::Instant::now()) {
            if left_out > 0 {
                ::tracing::$level!(
                    left_out,
                    "{left_out} lines like the next were left out (at most {} a minute from one place)",
                    $crate::log_limit::LINES_PER_INTERVAL
                );
            }
            ::tracing::$level!($($line)+);
        }
    }};
}
pub(crate) use limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_writes_its_quota_per_interval_then_says_how_many_it_left_out() {
        let limit = LogLimit::new();
        let start = Instant::now();
        let admitted = (0..1000).filter_map(|_| limit.admit(start)).collect::<Vec<_>>();
        assert_eq!(admitted, vec![0; LINES_PER_INTERVAL as usize], "the first lines, nothing left out yet");
        let almost = start + INTERVAL - Duration::from_millis(1);
        assert_eq!(limit.admit(almost), None, "still the same window");
        let next = start + INTERVAL;
        assert_eq!(limit.admit(next), Some(1000 - LINES_PER_INTERVAL as u64 + 1), "the count comes once");
        assert_eq!(limit.admit(next), Some(0));
        // A quiet interval, then one line: nothing to report, and the quota is whole again.
        let later = next + INTERVAL * 3;
        let admitted = (0..20).filter_map(|_| limit.admit(later)).count();
        assert_eq!(admitted, LINES_PER_INTERVAL as usize);
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Written(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_call_site_writes_its_own_quota() {
        let written = Written::default();
        let sink = written.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || sink.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..100 {
                limited!(warn, n, "from the first place");
                limited!(error, n, "from the second place");
            }
        });
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let count = |what: &str| text.lines().filter(|line| line.contains(what)).count();
        let quota = LINES_PER_INTERVAL as usize;
        assert_eq!((count("first place"), count("second place")), (quota, quota), "{text}");
        assert_eq!(count("WARN"), quota);
        assert!(text.contains("n=9") && !text.contains("n=10"), "the first lines are the ones written");
    }
}

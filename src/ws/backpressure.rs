//! Backpressure on writers: a socket that floods a room is read only as fast as the room's
//! readers take what it sends, instead of the readers being cut off for the writer's speed.
//!
//! Why: a reader that reads steadily, only slower than a writer, used to be closed 1013 as a slow
//! consumer as soon as the writer's burst outgrew its outbound buffer (a `ws` client that parsed
//! each 64 KiB message got 61 of a burst of 400, then was closed). The bound was right for a
//! client that stops reading and wrong for one that reads: the room took the writer's bytes as
//! fast as the writer sent them, and only the readers could give. Now the writer gives: TCP
//! already slows a client the server does not read, so the server stops reading it.
//!
//! The policy, per room:
//! - **The pause mark.** An outbox ([`super::outbox`]) holding more than half of
//!   `outbound_buffer_bytes` unsent *holds* the [`Pressure`] of the room whose frame took it over
//!   the mark (and of any other room that sends it frames while it is over). It lets go once its
//!   connection has written it down to a quarter (so writers resume for a good batch, not frame
//!   by frame), or when it is closed or gone.
//! - **The pause.** A connection reads its next message only when no room it is in is held (any
//!   member may write; a multiplexed socket waits for all its channels' rooms) and its own
//!   questions are answered (below): see [`Pacing`] and `Connection::until_rooms_have_room`.
//!   Meanwhile it goes on writing its own frames, pinging and obeying close orders; the client's
//!   bytes wait in the kernel and TCP slows the client down. A paused writer is not closed for
//!   it: its idle timeout does not run while it is paused, and for two heartbeats after a pause
//!   messages over its message rate (what it sent meanwhile arrives at once) are paced, not
//!   refused.
//! - **Bytes in flight.** The mark stops a writer only for its next message: what it sent before
//!   is still queued in the room (up to `room_queue` commands) and will be broadcast. So that this
//!   stays small, a connection asks each room it wrote to, every [`ASK_EVERY_FRACTION`]th of
//!   `outbound_buffer_bytes` it sends, to answer once everything before is delivered
//!   (`Command::Handled`), and reads on only while at most [`UNANSWERED`] questions are open: one
//!   writer adds at most about 3/16 of the buffer (plus a message a question) past the mark.
//! - **A reader that stops** is still closed 1013: when its outbox is over the mark and its
//!   socket has taken no byte for `slow_consumer_timeout_seconds` (it counts as taking bytes when
//!   the kernel reports room to write again), and, at once as before, when a frame would take it
//!   over `outbound_buffer_bytes` (which one writer cannot do while its readers read: mark plus
//!   its bytes in flight stay under it).
//!
//! The price: a flooded room goes at the pace of its slowest reader that still reads. That is
//! the choice: a reader that keeps reading is never cut off for a writer's speed, and a writer
//! loses nothing by waiting (a per-connection byte rate would slow writers when nobody is
//! behind, and still cut readers slower than it off).
//!
//! Memory: an outbox never holds more than `outbound_buffer_bytes` (a room: that times its
//! sockets); with writers paused it holds about half of it plus their bytes in flight.
//!
//! Cost when no outbox is near the mark: a delivery compares the outbox's byte count with the
//! mark under the lock it takes anyway; a message read loads one counter of its room (written
//! only when an outbox crosses a mark, so the cache line is not contended); and once every
//! sixteenth of `outbound_buffer_bytes` a writer's room handles one more command. The room task
//! never waits on any of it: pausing is each connection's own.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{oneshot, Notify};

use crate::room::RoomHandle;

/// A writer asks its rooms for an answer every `outbound_buffer_bytes / ASK_EVERY_FRACTION`
/// bytes it sends.
pub const ASK_EVERY_FRACTION: usize = 16;
/// A writer reads on while at most this many of its questions are unanswered.
pub const UNANSWERED: usize = 2;
/// After a pause, messages over the rate are paced, not refused, until this many heartbeats
/// have passed unpaused.
const CATCH_UP_HEARTBEATS: u8 = 2;

/// The pause mark of an outbox bounded by `limit` bytes: over it, the room's writers wait.
pub fn pause_mark(limit: usize) -> usize {
    limit / 2
}

/// The mark an outbox over [`pause_mark`] must get down to before its rooms' writers go on.
pub fn resume_mark(limit: usize) -> usize {
    limit / 4
}

/// One room's gate: how many outboxes of its members hold more than the pause mark. Writers read
/// it before every message; it changes only when an outbox crosses a mark.
#[derive(Debug, Default)]
pub struct Pressure {
    held: AtomicUsize,
    opened: Notify,
}

impl Pressure {
    /// True when no outbox of the room is over the mark.
    pub fn is_open(&self) -> bool {
        self.held.load(Ordering::Acquire) == 0
    }

    /// Returns once no outbox of the room is over the mark.
    pub async fn opened(&self) {
        loop {
            let opened = self.opened.notified();
            let mut opened = std::pin::pin!(opened);
            opened.as_mut().enable();
            if self.is_open() {
                return;
            }
            opened.await;
        }
    }

    /// How many outboxes are over the mark.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// One more outbox over the mark.
    pub(super) fn hold(&self) {
        self.held.fetch_add(1, Ordering::AcqRel);
    }

    /// One outbox fewer over the mark; the last one lets the writers go on.
    pub(super) fn release(&self) {
        if self.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.opened.notify_waiters();
        }
    }
}

/// What one connection has sent its rooms and they may not have broadcast yet, counted in
/// questions (see the module doc). Allocated on the first message a socket sends: a socket that
/// only reads pays one pointer (in a `Cell`, not a `RefCell`: a borrow flag would be 8 bytes more
/// of every idle socket).
#[derive(Default)]
pub struct Pacing(Cell<Option<Box<InFlight>>>);

#[derive(Default)]
struct InFlight {
    /// Bytes sent since the last question, and the rooms they went to.
    unasked: usize,
    rooms: Vec<RoomHandle>,
    /// Answers still to come, oldest first: each question is one answer per room it went to.
    answers: VecDeque<Vec<oneshot::Receiver<()>>>,
    /// Heartbeats left, not paused, before messages over the rate are refused again.
    catching_up: u8,
}

impl Pacing {
    /// Runs `f` on the state (which `f` must not reach again through `self`).
    fn with<R>(&self, f: impl FnOnce(&mut Option<Box<InFlight>>) -> R) -> R {
        let mut in_flight = self.0.take();
        let result = f(&mut in_flight);
        self.0.set(in_flight);
        result
    }

    fn with_in_flight<R>(&self, f: impl FnOnce(&mut InFlight) -> R) -> R {
        self.with(|in_flight| f(in_flight.get_or_insert_with(Box::default)))
    }

    /// Counts `bytes` sent to `room`; when they make a question due (every `ask_every` bytes),
    /// the rooms to ask.
    pub fn sent(&self, room: &RoomHandle, bytes: usize, ask_every: usize) -> Option<Vec<RoomHandle>> {
        self.with_in_flight(|in_flight| {
            if !in_flight.rooms.iter().any(|known| known.same_room(room)) {
                in_flight.rooms.push(room.clone());
            }
            in_flight.unasked += bytes;
            if in_flight.unasked < ask_every {
                return None;
            }
            in_flight.unasked = 0;
            Some(std::mem::take(&mut in_flight.rooms))
        })
    }

    /// Keeps the answers to one question.
    pub fn asked(&self, answers: Vec<oneshot::Receiver<()>>) {
        if !answers.is_empty() {
            self.with_in_flight(|in_flight| in_flight.answers.push_back(answers));
        }
    }

    /// Ready once at most [`UNANSWERED`] questions are open. Cancel-safe: an answer is dropped
    /// only once it has come (a room gone answers too).
    fn poll_answered(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.with(|in_flight| {
            let Some(in_flight) = in_flight else { return Poll::Ready(()) };
            while in_flight.answers.len() > UNANSWERED {
                let Some(oldest) = in_flight.answers.front_mut() else { break };
                while let Some(answer) = oldest.last_mut() {
                    match Pin::new(answer).poll(cx) {
                        Poll::Ready(_) => drop(oldest.pop()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                in_flight.answers.pop_front();
            }
            Poll::Ready(())
        })
    }

    /// Returns once at most [`UNANSWERED`] questions are open.
    pub async fn answered(&self) {
        poll_fn(|cx| self.poll_answered(cx)).await
    }

    /// True while more than [`UNANSWERED`] questions are open.
    pub fn too_much_in_flight(&self) -> bool {
        self.with(|in_flight| {
            in_flight.as_ref().is_some_and(|in_flight| in_flight.answers.len() > UNANSWERED)
        })
    }

    /// Notes that the connection paused. What its client sent meanwhile comes in a burst once
    /// it reads again, so until it has gone [`CATCH_UP_HEARTBEATS`] heartbeats unpaused (at
    /// least one whole ping interval), messages over its rate are paced rather than refused.
    pub fn paused(&self) {
        // A socket that has sent nothing has no backlog to pace (and a room's readers pause with
        // its writers: they should not all allocate for it).
        self.with(|in_flight| {
            if let Some(in_flight) = in_flight {
                in_flight.catching_up = CATCH_UP_HEARTBEATS;
            }
        });
    }

    /// True while the connection catches up on what its client sent while it was paused.
    pub fn catching_up(&self) -> bool {
        self.with(|in_flight| in_flight.as_ref().is_some_and(|in_flight| in_flight.catching_up > 0))
    }

    /// Counts a heartbeat; `held` while the connection is paused.
    pub fn tick(&self, held: bool) {
        self.with(|in_flight| {
            if let Some(in_flight) = in_flight.as_mut().filter(|_| !held) {
                in_flight.catching_up = in_flight.catching_up.saturating_sub(1);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_outbox_to_let_go_opens_the_gate() {
        let pressure = std::sync::Arc::new(Pressure::default());
        pressure.hold();
        pressure.hold();
        assert!(!pressure.is_open());
        let waiting = tokio::spawn({
            let pressure = pressure.clone();
            async move { pressure.opened().await }
        });
        tokio::task::yield_now().await;
        pressure.release();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one outbox is still over the mark");
        pressure.release();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(pressure.is_open());
    }

    #[tokio::test]
    async fn a_writer_reads_on_while_at_most_two_questions_are_open() {
        let pacing = Pacing::default();
        let mut rooms = Vec::new();
        for _ in 0..=UNANSWERED {
            let (answer, answered) = oneshot::channel::<()>();
            rooms.push(answer);
            pacing.asked(vec![answered]);
        }
        assert!(pacing.too_much_in_flight());
        let mut waiting = std::pin::pin!(pacing.answered());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        drop(rooms.remove(0)); // a room gone answers too
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        assert!(!pacing.too_much_in_flight());
    }
}

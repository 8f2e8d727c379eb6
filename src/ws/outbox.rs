//! The outbound queue of one websocket connection, bounded by pending bytes.
//!
//! The room task never awaits a socket: it pushes frames with [`Outbox::send`], which refuses
//! (instead of blocking or growing) once the connection has too many unsent bytes. The room then
//! cuts that connection off with [`Outbox::close`], which the connection task sees at once, ahead
//! of any frames still queued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytestring::ByteString;
use tokio::sync::{mpsc, watch};

/// Why and how a connection is being closed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseOrder {
    /// The websocket close code (1001, 1009, 1011, 1013, ...).
    pub code: u16,
    /// A short human-readable reason sent in the close frame.
    pub reason: &'static str,
}

/// The frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection already holds its limit of unsent bytes: a slow consumer.
    Full,
    /// The connection task has gone away.
    Gone,
}

/// The room's end: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Outbox {
    frames: mpsc::UnboundedSender<ByteString>,
    pending: Arc<AtomicUsize>,
    limit: usize,
    close: Arc<watch::Sender<Option<CloseOrder>>>,
}

/// The connection's end.
pub struct OutboxReceiver {
    frames: mpsc::UnboundedReceiver<ByteString>,
    pending: Arc<AtomicUsize>,
    close: watch::Receiver<Option<CloseOrder>>,
}

/// Creates a queue that refuses frames once `limit` bytes are queued but not yet sent.
pub fn outbox(limit: usize) -> (Outbox, OutboxReceiver) {
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    let (close_tx, close_rx) = watch::channel(None);
    let pending = Arc::new(AtomicUsize::new(0));
    let sender = Outbox { frames: frames_tx, pending: pending.clone(), limit, close: Arc::new(close_tx) };
    let receiver = OutboxReceiver { frames: frames_rx, pending, close: close_rx };
    (sender, receiver)
}

impl Outbox {
    /// Queues a text frame unless that would put the connection over its byte limit.
    pub fn send(&self, frame: ByteString) -> Result<(), SendError> {
        let len = frame.len();
        let before = self.pending.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > self.limit {
            self.pending.fetch_sub(len, Ordering::AcqRel);
            return Err(SendError::Full);
        }
        self.frames.send(frame).map_err(|_| {
            self.pending.fetch_sub(len, Ordering::AcqRel);
            SendError::Gone
        })
    }

    /// Orders the connection closed with `code`/`reason`, ahead of any queued frames.
    /// The first order wins; later ones are ignored.
    pub fn close(&self, code: u16, reason: &'static str) {
        self.close.send_if_modified(|order| {
            if order.is_some() {
                return false;
            }
            *order = Some(CloseOrder { code, reason });
            true
        });
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn pending_bytes(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// What the connection task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this frame, then call [`OutboxReceiver::sent`].
    Frame(ByteString),
    /// Close the socket with this order.
    Close(CloseOrder),
    /// The room dropped every sender: the connection is no longer a member.
    Detached,
}

impl OutboxReceiver {
    /// Waits for the next thing to do; a close order always comes before queued frames.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(order) = self.close_order() {
                return Next::Close(order);
            }
            tokio::select! {
                biased;
                changed = self.close.changed() => {
                    if changed.is_err() {
                        // Every Outbox is gone, so no order can come: drain what is queued.
                        return self.frames.recv().await.map_or(Next::Detached, Next::Frame);
                    }
                }
                frame = self.frames.recv() => return frame.map_or(Next::Detached, Next::Frame),
            }
        }
    }

    /// The next queued frame if there is one and no close order.
    pub fn try_frame(&mut self) -> Option<ByteString> {
        if self.close_order().is_some() {
            return None;
        }
        self.frames.try_recv().ok()
    }

    /// The close order, if the room has given one.
    pub fn close_order(&self) -> Option<CloseOrder> {
        self.close.borrow().clone()
    }

    /// Waits until the room orders a close (never returns if it never does).
    pub async fn closed(&mut self) -> CloseOrder {
        loop {
            if let Some(order) = self.close_order() {
                return order;
            }
            if self.close.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Marks `len` bytes of a frame as handed to the socket.
    pub fn sent(&self, len: usize) {
        self.pending.fetch_sub(len, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_frames_over_the_byte_limit_and_frees_room_when_sent() {
        let (outbox, mut receiver) = outbox(10);
        assert_eq!(outbox.send("123456".into()), Ok(()));
        assert_eq!(outbox.send("12345".into()), Err(SendError::Full));
        assert_eq!(outbox.pending_bytes(), 6);
        assert_eq!(receiver.next().await, Next::Frame("123456".into()));
        receiver.sent(6);
        assert_eq!(outbox.send("1234567890".into()), Ok(()));
    }

    #[tokio::test]
    async fn a_close_order_overtakes_queued_frames_and_the_first_order_wins() {
        let (outbox, mut receiver) = outbox(100);
        outbox.send("queued".into()).unwrap();
        outbox.close(1013, "slow consumer");
        outbox.close(1001, "going away");
        assert_eq!(receiver.next().await, Next::Close(CloseOrder { code: 1013, reason: "slow consumer" }));
    }

    #[tokio::test]
    async fn dropping_every_sender_detaches_after_the_queued_frames() {
        let (outbox, mut receiver) = outbox(100);
        outbox.send("last".into()).unwrap();
        drop(outbox);
        assert_eq!(receiver.next().await, Next::Frame("last".into()));
        assert_eq!(receiver.next().await, Next::Detached);
    }

    #[tokio::test]
    async fn sending_to_a_gone_connection_says_so_and_counts_nothing() {
        let (outbox, receiver) = outbox(100);
        drop(receiver);
        assert_eq!(outbox.send("x".into()), Err(SendError::Gone));
        assert_eq!(outbox.pending_bytes(), 0);
    }
}

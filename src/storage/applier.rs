//! Journaled operations on their way into sled. sled writes and syncs its log buffer on every
//! batch (about 0.2 ms of device time and a wake-up of its I/O threads each), so once the
//! journal has made a round durable its operations wait here and a thread of their own applies
//! them as one batch every [`APPLY_INTERVAL`]. Every read, direct write, checkpoint and flush
//! settles first, so nobody ever sees sled without an acknowledged round.

use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use super::ops::Ops;
use super::StorageError;

/// How long journaled operations may wait before they are applied to sled when nobody reads.
/// Longer batches more rounds into one sled batch (a batch writes each key once, so a room's
/// index entry and hot cells are written once per batch, not once per round, and sled's log
/// write and I/O thread wake-ups come once per batch); shorter keeps less in memory. At 10 ms
/// the applier and sled's I/O threads took ~20 % of the server's CPU at 7,200 deliveries/s.
const APPLY_INTERVAL: Duration = Duration::from_millis(100);

/// Journaled operations not yet in sled, and the one way into sled for everything else.
pub struct Applier {
    db: sled::Db,
    pending: Mutex<Ops>,
    /// Held while operations are being applied, so a reader waits for a batch in flight.
    applying: Mutex<()>,
}

/// Wakes the applying thread; dropping every clone stops it (after a last settle).
#[derive(Clone)]
pub struct Nudge(mpsc::Sender<()>);

impl Applier {
    /// Starts the applying thread.
    pub fn start(db: sled::Db) -> std::io::Result<(Arc<Self>, Nudge)> {
        let applier = Arc::new(Self { db, pending: Mutex::new(Ops::new()), applying: Mutex::new(()) });
        let (nudge, nudged) = mpsc::channel();
        let worker = applier.clone();
        std::thread::Builder::new().name("partyd-applier".into()).spawn(move || {
            while nudged.recv().is_ok() {
                std::thread::sleep(APPLY_INTERVAL);
                while nudged.try_recv().is_ok() {}
                if let Err(error) = worker.settle() {
                    tracing::error!(%error, "applying journaled writes to sled failed");
                }
            }
            let _ = worker.settle();
        })?;
        Ok((applier, Nudge(nudge)))
    }

    /// Queues journaled operations (in commit order) and wakes the thread if it sleeps.
    pub fn queue(&self, ops: Ops, nudge: &Nudge) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = pending.is_empty();
        pending.extend(ops);
        drop(pending);
        if was_empty {
            let _ = nudge.0.send(());
        }
    }

    /// Applies everything queued so far, then `ops` (if any), as one atomic batch.
    pub fn apply(&self, ops: Ops) -> Result<(), StorageError> {
        let _applying = self.applying.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        all.extend(ops);
        if all.is_empty() {
            return Ok(());
        }
        apply(&self.db, all)
    }

    /// Applies everything queued so far: sled then holds every acknowledged round.
    pub fn settle(&self) -> Result<(), StorageError> {
        self.apply(Ops::new())
    }

    /// Settles, then makes sled durable.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.settle()?;
        self.db.flush().map(drop).map_err(engine_error)
    }
}

/// Applies operations to sled as one atomic batch.
pub fn apply(db: &sled::Db, ops: Ops) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    for (key, value) in ops {
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    db.apply_batch(batch).map_err(engine_error)
}

/// sled's error as ours.
pub fn engine_error(error: sled::Error) -> StorageError {
    StorageError::Io(error.to_string().into())
}

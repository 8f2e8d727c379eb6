//! Journaled operations on their way into sled. sled writes and syncs its log buffer on every
//! batch (about 0.2 ms of device time and a wake-up of its I/O threads each), so once the
//! journal has made a round durable its operations wait here and a thread of their own applies
//! them as one batch every [`APPLY_INTERVAL`]. Every read, direct write, checkpoint and flush
//! settles first, so nobody ever sees sled without an acknowledged round.
//!
//! A batch sled cannot take stays queued, in order, and is tried again: journaled operations
//! are acknowledged writes and are never dropped. Meanwhile reads merge the queue over what sled
//! holds ([`Applier::overlay`]), so they stay exact. sled 0.34 treats any I/O error of its log as
//! fatal for the whole `Db` (a "global error" until the process reopens it), so a batch is not
//! even offered to sled unless the file system has room for it beyond a reserve
//! ([`SpaceGuard`]): on a filling disk sled is kept healthy and partyd recovers by itself once
//! space returns.

use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// How long the applying thread waits before it tries again a batch sled could not take.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Journaled operations not yet in sled, and the one way into sled for everything else.
pub struct Applier {
    db: sled::Db,
    pending: Mutex<Ops>,
    /// Held while operations are being applied, so a reader waits for a batch in flight.
    applying: Mutex<()>,
    space: SpaceGuard,
    /// Why the last batch could not be applied; `None` once one was.
    failure: Mutex<Option<StorageError>>,
}

/// Refuses sled writes the file system may not have room for: sled must never meet ENOSPC.
pub struct SpaceGuard {
    dir: PathBuf,
    reserve_bytes: std::sync::atomic::AtomicU64,
}

impl SpaceGuard {
    /// Keeps `reserve_bytes` free under `dir` (zero: no check).
    pub fn new(dir: PathBuf, reserve_bytes: u64) -> Self {
        Self { dir, reserve_bytes: reserve_bytes.into() }
    }

    /// `Ok` when at least the reserve plus `headroom` bytes are free for unprivileged writes.
    pub fn check(&self, headroom: u64) -> Result<(), StorageError> {
        let reserve_bytes = self.reserve_bytes.load(std::sync::atomic::Ordering::Relaxed);
        if reserve_bytes == 0 {
            return Ok(());
        }
        let free = free_bytes(&self.dir).map_err(|error| {
            StorageError::Io(format!("free space of {}: {error}", self.dir.display()).into())
        })?;
        let needed = reserve_bytes.saturating_add(headroom);
        if free < needed {
            return Err(StorageError::Full(
                format!(
                    "{} has {} KiB free, below the {} KiB kept in reserve plus {} KiB to write",
                    self.dir.display(),
                    free / 1024,
                    reserve_bytes / 1024,
                    headroom / 1024
                )
                .into(),
            ));
        }
        Ok(())
    }
}

/// Bytes an unprivileged process may still write under `dir` (statvfs's `f_bavail`).
fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stat` is written by statvfs before it is read.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What sled may write for a batch of `ops`: its log holds each key and value with a header,
/// and segment cleaning may copy them once more, so twice their size and a margin.
fn headroom(ops: &Ops) -> u64 {
    let bytes: usize =
        ops.iter().map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len) + 64).sum();
    2 * bytes as u64 + (1 << 20)
}

/// Wakes the applying thread; dropping every clone stops it (after a last settle).
#[derive(Clone)]
pub struct Nudge(mpsc::Sender<()>);

impl Applier {
    /// Starts the applying thread.
    pub fn start(db: sled::Db, space: SpaceGuard) -> std::io::Result<(Arc<Self>, Nudge)> {
        let applier = Arc::new(Self {
            db,
            pending: Mutex::new(Ops::new()),
            applying: Mutex::new(()),
            space,
            failure: Mutex::new(None),
        });
        let (nudge, nudged) = mpsc::channel();
        let worker = applier.clone();
        std::thread::Builder::new().name("partyd-applier".into()).spawn(move || {
            let mut failing = false;
            loop {
                // While a batch waits for sled, wake up to try again even if nobody nudges.
                let woken = match failing {
                    false => nudged.recv().map_err(|_| ()),
                    true => match nudged.recv_timeout(RETRY_INTERVAL) {
                        Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                        _ => Ok(()),
                    },
                };
                if woken.is_err() {
                    break;
                }
                if !failing {
                    std::thread::sleep(APPLY_INTERVAL);
                }
                while nudged.try_recv().is_ok() {}
                failing = worker.settle().is_err();
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

    /// Applies everything queued so far, then `ops` (if any), as one atomic batch. When sled
    /// cannot take it, the queued operations stay queued (in front of any queued meanwhile) and
    /// `ops`, which no journal holds, are dropped: the caller reports the failure.
    pub fn apply(&self, ops: Ops) -> Result<(), StorageError> {
        let _applying = self.applying.lock().unwrap_or_else(PoisonError::into_inner);
        let queued = std::mem::take(&mut *self.lock_pending());
        if queued.is_empty() && ops.is_empty() {
            return Ok(());
        }
        let queued_len = queued.len();
        let mut all = queued;
        all.extend(ops);
        let result = self.space.check(headroom(&all)).and_then(|()| apply_batch(&self.db, &all));
        if result.is_err() {
            all.truncate(queued_len);
            let mut pending = self.lock_pending();
            let newer = std::mem::replace(&mut *pending, all);
            pending.extend(newer);
        }
        self.record(&result);
        result
    }

    /// Applies everything queued so far: sled then holds every acknowledged round.
    pub fn settle(&self) -> Result<(), StorageError> {
        self.apply(Ops::new())
    }

    /// Settles, then makes sled durable.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.settle()?;
        let result = self.space.check(0).and_then(|()| self.db.flush().map(drop).map_err(engine_error));
        self.record(&result);
        result
    }

    /// Changes the reserve: tests make the disk "full" and free again with it.
    #[cfg(test)]
    pub fn set_reserve_bytes(&self, bytes: u64) {
        self.space.reserve_bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Why sled is refusing batches now, if it is.
    pub fn failure(&self) -> Option<StorageError> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The queued operations under `prefix` (whole keys), the last of each key winning: what a
    /// read must lay over sled's entries while sled cannot take the queue.
    pub fn overlay(&self, prefix: &[u8]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let pending = self.lock_pending();
        pending
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Ops> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the outcome of a batch or flush, logging each change of state once.
    fn record(&self, result: &Result<(), StorageError>) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match (result, failure.is_some()) {
            (Ok(()), true) => tracing::warn!("sled takes writes again; the queued ones are applied"),
            (Err(error), false) => {
                tracing::error!(%error, "sled cannot take writes; they stay queued and readable, retried every second")
            }
            _ => {}
        }
        *failure = result.as_ref().err().cloned();
    }
}

/// Applies operations to sled as one atomic batch.
pub fn apply_batch(db: &sled::Db, ops: &Ops) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    for (key, value) in ops {
        match value {
            Some(value) => batch.insert(key.as_slice(), value.as_slice()),
            None => batch.remove(key.as_slice()),
        }
    }
    db.apply_batch(batch).map_err(engine_error)
}

/// sled's error as ours; a full file system is told apart.
pub fn engine_error(error: sled::Error) -> StorageError {
    match &error {
        sled::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
            StorageError::Full(error.to_string().into())
        }
        _ => StorageError::Io(error.to_string().into()),
    }
}

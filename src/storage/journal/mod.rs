//! The write-ahead journal that makes a group commit durable with one synchronous block write
//! instead of an engine flush. Two preallocated files take turns: records go to the active one;
//! when it is full the other (already empty) becomes active and a checkpointer thread makes the
//! engine durable (one engine flush for the whole file's worth of rounds), then empties the full
//! file by starting a new epoch in its header. At open, records of both files are replayed in
//! epoch order. Replaying is idempotent: every record holds whole key writes and removals.
//!
//! A journal that cannot be replayed whole (see [`survey`]) stops the open before anything is
//! written; `partyd recover` ([`super::recover`]) salvages it.

mod file;
pub mod survey;

use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use file::{AlignedBuffer, JournalFile};
use survey::Survey;

use super::{ops, StorageError};

pub use file::BLOCK;

/// Makes the engine durable (everything applied to it so far survives a crash).
pub type Checkpoint = Box<dyn Fn() -> Result<(), StorageError> + Send + 'static>;

/// Commits waiting this long for a checkpoint at a file switch are worth a warning: the disk
/// cannot keep up with sled's flushes at this write rate.
const CHECKPOINT_WAIT_WARNING: std::time::Duration = std::time::Duration::from_millis(1);

/// The journal files' names under the data dir.
pub const FILE_NAMES: [&str; 2] = ["partyd-journal-0", "partyd-journal-1"];

/// What the writer and the checkpointer share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// The epoch each file's header names.
    epochs: [u64; 2],
    /// Whether each file holds no record that is not yet checkpointed.
    empty: [bool; 2],
    /// The next epoch to hand out.
    next_epoch: u64,
    /// The last checkpoint's failure, reported to the writer that waits for it.
    failure: Option<StorageError>,
}

/// The writing side, owned by the group-commit thread.
pub struct Journal {
    files: [Arc<JournalFile>; 2],
    active: usize,
    /// The next free block of the active file.
    next_block: usize,
    /// The sequence number of the next record of the active file.
    next_seq: u64,
    buffer: AlignedBuffer,
    payload: Vec<u8>,
    /// The last record write failed, so the block at `next_block` may hold part of a record
    /// nobody was told is durable (the next record is written over it).
    unfinished: bool,
    shared: Arc<Shared>,
    retire: Option<mpsc::Sender<usize>>,
    checkpointer: Option<JoinHandle<()>>,
}

/// Why a round was not journaled.
#[derive(Debug)]
pub enum AppendError {
    /// The round is bigger than a journal file: make it durable through the engine instead.
    TooLarge,
    /// Writing failed, or the checkpoint the writer waited for did.
    Storage(StorageError),
}

impl Journal {
    /// Replays every record found under `dir` (oldest first, through `replay`), checkpoints
    /// when there were any, then empties both files and starts the checkpointer. A journal that
    /// cannot be replayed whole is an error naming each file and what is wrong, and nothing is
    /// changed; `engine_holds_data` says whether missing files can be those of a new data dir.
    pub fn open(
        dir: &Path,
        blocks: usize,
        engine_holds_data: bool,
        mut replay: impl FnMut(ops::Ops) -> Result<(), StorageError>,
        checkpoint: Checkpoint,
    ) -> Result<Self, StorageError> {
        let io =
            |error: std::io::Error| StorageError::Io(format!("journal in {}: {error}", dir.display()).into());
        let paths = FILE_NAMES.map(|name| dir.join(name));
        let survey = Survey::read(dir).map_err(io)?;
        let problems = survey.problems(engine_holds_data);
        if !problems.is_empty() {
            return Err(StorageError::Journal { path: dir.to_owned(), detail: problems.join("; ") });
        }
        for (name, torn) in survey.torn() {
            tracing::warn!(
                "{name}: record {} at block {} is incomplete or damaged and nothing valid follows it: the \
                 write the crash interrupted, which never returned, so none of it was acknowledged; \
                 replaying the {} records before it in that file",
                torn.seq,
                torn.block,
                torn.seq
            );
        }
        let last_epoch = survey.last_epoch();
        let mut replayed = 0usize;
        for record in survey.into_records() {
            replay(record.ops)?;
            replayed += 1;
        }
        if replayed > 0 {
            checkpoint()?;
            tracing::info!(records = replayed, "journal replayed");
        }
        let mut buffer = AlignedBuffer::default();
        let files = [0, 1].map(|index| JournalFile::create_or_open(&paths[index], blocks).map(Arc::new));
        let [first, second] = files;
        let files = [first.map_err(io)?, second.map_err(io)?];
        let epochs = [last_epoch + 1, last_epoch + 2];
        for (file, epoch) in files.iter().zip(epochs) {
            file.reset(epoch, &mut buffer).map_err(io)?;
        }
        let shared = Arc::new(Shared {
            // File 0 is the active one from the start.
            state: Mutex::new(State {
                epochs,
                empty: [false, true],
                next_epoch: last_epoch + 3,
                failure: None,
            }),
            changed: Condvar::new(),
        });
        let (retire, requests) = mpsc::channel();
        let checkpointer = {
            let (files, shared) = (files.clone(), shared.clone());
            std::thread::Builder::new()
                .name("partyd-checkpoint".into())
                .spawn(move || run_checkpointer(&requests, &files, &shared, &checkpoint))
                .map_err(io)?
        };
        Ok(Self {
            files,
            active: 0,
            next_block: 1,
            next_seq: 0,
            buffer,
            payload: Vec::new(),
            unfinished: false,
            shared,
            retire: Some(retire),
            checkpointer: Some(checkpointer),
        })
    }

    /// Makes `ops` durable as one record; returns once it is on the device.
    pub fn append(&mut self, ops: &ops::Ops) -> Result<(), AppendError> {
        self.payload.clear();
        ops::encode(ops, &mut self.payload);
        let needed = file::blocks_for(self.payload.len());
        let capacity = self.files[self.active].blocks();
        if needed >= capacity {
            return Err(AppendError::TooLarge);
        }
        if self.next_block + needed > capacity {
            self.switch().map_err(AppendError::Storage)?;
        }
        let epoch = self.lock().epochs[self.active];
        let file = &self.files[self.active];
        let written =
            file.write_record(self.next_block, epoch, self.next_seq, &self.payload, &mut self.buffer);
        self.unfinished = written.is_err();
        written.map_err(|error| AppendError::Storage(io_failure("write", &error)))?;
        self.next_block += needed;
        self.next_seq += 1;
        Ok(())
    }

    /// After the engine was made durable by someone else: waits for a pending checkpoint, then
    /// empties both files (the active one first, so epochs keep the order of use), so that no
    /// record older than that flush is ever replayed over writes that bypassed the journal.
    pub fn everything_checkpointed(&mut self) -> Result<(), StorageError> {
        let other = 1 - self.active;
        self.wait_empty(other)?;
        for index in [self.active, other] {
            let epoch = take_epoch(&mut self.lock());
            self.files[index].reset(epoch, &mut self.buffer).map_err(|error| io_failure("reset", &error))?;
            self.lock().epochs[index] = epoch;
        }
        self.next_block = 1;
        self.next_seq = 0;
        self.unfinished = false;
        Ok(())
    }

    /// The active file is full: hand it to the checkpointer and continue in the other one.
    fn switch(&mut self) -> Result<(), StorageError> {
        if self.unfinished {
            // A failed write may have left part of a record where this file's records end; left
            // there, records in the other file would make it look like an acknowledged record
            // damaged since, and the next open would refuse to start.
            self.files[self.active]
                .clear(self.next_block, &mut self.buffer)
                .map_err(|error| io_failure("write", &error))?;
            self.unfinished = false;
        }
        let other = 1 - self.active;
        let started = std::time::Instant::now();
        self.wait_empty(other)?;
        let waited = started.elapsed();
        if waited > CHECKPOINT_WAIT_WARNING {
            tracing::warn!(
                waited_ms = waited.as_millis() as u64,
                "journal full: commits waited for the checkpoint of the other file"
            );
        }
        self.lock().empty[other] = false;
        if let Some(retire) = &self.retire {
            let _ = retire.send(self.active);
        }
        self.active = other;
        self.next_block = 1;
        self.next_seq = 0;
        Ok(())
    }

    /// Waits until file `index` is empty. While its checkpoint is failing (the checkpointer
    /// retries it by itself) the failure is reported at once: commits are refused, not held.
    fn wait_empty(&self, index: usize) -> Result<(), StorageError> {
        let mut state = self.lock();
        loop {
            if state.empty[index] {
                return Ok(());
            }
            if let Some(error) = &state.failure {
                return Err(error.clone());
            }
            state = self.shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        drop(self.retire.take());
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

/// Creates both journal files afresh under `dir` (where neither is now), empty, in epochs after
/// `last_epoch`: for `partyd recover`, once the damaged ones are moved aside.
pub fn recreate(dir: &Path, blocks: usize, last_epoch: u64) -> Result<(), StorageError> {
    let mut buffer = AlignedBuffer::default();
    let paths = FILE_NAMES.map(|name| dir.join(name));
    for (path, epoch) in paths.iter().zip([last_epoch + 1, last_epoch + 2]) {
        JournalFile::create_or_open(path, blocks)
            .and_then(|file| file.reset(epoch, &mut buffer))
            .map_err(|error| io_failure("create", &error))?;
    }
    Ok(())
}

/// A journal file's write (`what`: write, reset or create) failed.
fn io_failure(what: &str, error: &std::io::Error) -> StorageError {
    let message = format!("journal {what}: {error}").into();
    match error.raw_os_error() {
        Some(libc::ENOSPC) => StorageError::Full(message),
        _ => StorageError::Io(message),
    }
}

/// The next epoch: larger than any a file has had.
fn take_epoch(state: &mut State) -> u64 {
    state.next_epoch += 1;
    state.next_epoch - 1
}

/// How long the checkpointer waits before it tries a failed checkpoint again.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Empties the files it is handed: engine checkpoint first, then a new epoch in the header. A
/// checkpoint that fails (a full disk) is tried again every [`CHECKPOINT_RETRY`] until it
/// succeeds or the journal closes; the file keeps its records meanwhile.
fn run_checkpointer(
    requests: &mpsc::Receiver<usize>,
    files: &[Arc<JournalFile>; 2],
    shared: &Shared,
    checkpoint: &Checkpoint,
) {
    let mut buffer = AlignedBuffer::default();
    let mut queued = std::collections::VecDeque::new();
    loop {
        let next = match queued.front() {
            Some(&index) => Some(index),
            None => requests.recv().ok(),
        };
        let Some(index) = next else { return };
        queued.pop_front();
        let epoch = take_epoch(&mut shared.state.lock().unwrap_or_else(PoisonError::into_inner));
        let started = std::time::Instant::now();
        let result = checkpoint().and_then(|()| {
            files[index].reset(epoch, &mut buffer).map_err(|error| io_failure("reset", &error))
        });
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                tracing::debug!(
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "journal file checkpointed"
                );
                if state.failure.take().is_some() {
                    tracing::warn!("journal checkpoint succeeded again; commits resume");
                }
                state.epochs[index] = epoch;
                state.empty[index] = true;
                shared.changed.notify_all();
            }
            Err(error) => {
                if state.failure.is_none() {
                    tracing::error!(%error, "journal checkpoint failed; commits are refused until it succeeds (retried every second)");
                }
                state.failure = Some(error);
                shared.changed.notify_all();
                drop(state);
                queued.push_front(index);
                match requests.recv_timeout(CHECKPOINT_RETRY) {
                    Ok(other) if other != index => queued.push_back(other),
                    Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

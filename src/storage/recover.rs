//! `partyd recover`: on the operator's word, salvages a journal that a start refuses to replay.
//! Every record that can be read is replayed into sled (damaged ones skipped) and sled is
//! flushed; then the journal files are moved, whole, into `<data dir>/damaged-<unix seconds>/`
//! (never deleted: they are the evidence) and empty ones are created, so the next start goes
//! through. The report says what was wrong, what was replayed and what is lost. On a journal a
//! start would replay, it changes nothing. Each step is safe to repeat: stopped half-way, a
//! second run finds the journal as damaged as before, or both files gone, and finishes.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::applier::{apply_batch, engine_error};
use super::journal::{self, survey::Survey, FILE_NAMES};
use super::leftovers;
use super::sled_store::{open_db, JOURNAL_BLOCKS};
use super::StorageError;

/// What `partyd recover` found and did.
#[derive(Debug)]
pub struct Report {
    /// The data dir.
    pub dir: PathBuf,
    /// What is wrong with the journal, one line each; empty: there was nothing to recover.
    pub problems: Vec<String>,
    /// Records replayed into sled.
    pub replayed: usize,
    /// Where the replayed records came from, one line per file.
    pub replayed_from: Vec<String>,
    /// What could not be replayed, one line each.
    pub lost: Vec<String>,
    /// Where the journal files were moved (`None`: there were none to move).
    pub moved_to: Option<PathBuf>,
}

impl Report {
    fn nothing(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            problems: Vec::new(),
            replayed: 0,
            replayed_from: Vec::new(),
            lost: Vec::new(),
            moved_to: None,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            return writeln!(
                f,
                "nothing to recover: the journal in {} can be replayed whole; nothing was changed",
                self.dir.display()
            );
        }
        writeln!(f, "the journal in {} could not be replayed whole:", self.dir.display())?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        let records = if self.replayed == 1 { "record" } else { "records" };
        write!(f, "replayed {} {records} into sled", self.replayed)?;
        if !self.replayed_from.is_empty() {
            write!(f, " ({})", self.replayed_from.join(", "))?;
        }
        writeln!(f)?;
        if self.lost.is_empty() {
            writeln!(f, "lost: nothing")?;
        }
        for lost in &self.lost {
            writeln!(f, "lost: {lost}")?;
        }
        if let Some(moved_to) = &self.moved_to {
            writeln!(f, "the journal files were moved to {}", moved_to.display())?;
        }
        writeln!(f, "new empty journal files are in place: partyd will start on {}", self.dir.display())
    }
}

/// Recovers the journal under `dir` (which no server may hold).
pub fn recover(dir: &Path) -> Result<Report, StorageError> {
    if !dir.is_dir() {
        return Err(StorageError::Io(format!("{}: there is no data dir there", dir.display()).into()));
    }
    let io = |error: std::io::Error| StorageError::Io(format!("{}: {error}", dir.display()).into());
    // A first look under the dir's lock without opening sled, which writes as it opens: a
    // journal a start would replay is left exactly as it is. Only missing journal files need
    // sled's word (whether it holds data).
    {
        let _lock = leftovers::lock(dir)?;
        let survey = Survey::read(dir).map_err(io)?;
        let needs_sled = survey.both_missing() && dir.join("db").exists();
        if !needs_sled && survey.problems(false).is_empty() {
            return Ok(Report::nothing(dir));
        }
    }
    let db = open_db(dir)?;
    let engine_holds_data = db.first().map_err(engine_error)?.is_some();
    // Read again: now under sled's lock.
    let survey = Survey::read(dir).map_err(io)?;
    let problems = survey.problems(engine_holds_data);
    if problems.is_empty() {
        return Ok(Report::nothing(dir));
    }
    let last_epoch = survey.last_epoch();
    let salvage = survey.salvage();
    let replayed = salvage.replay.len();
    for ops in salvage.replay {
        apply_batch(&db, &ops)?;
    }
    db.flush().map_err(engine_error)?;
    drop(db);
    let moved_to = move_aside(dir).map_err(io)?;
    journal::recreate(dir, JOURNAL_BLOCKS, last_epoch)?;
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    Ok(Report {
        dir: dir.to_owned(),
        problems,
        replayed,
        replayed_from: salvage.replayed,
        lost: salvage.lost,
        moved_to,
    })
}

/// Moves the journal files there are into a new `damaged-<unix seconds>` dir under `dir`
/// (a rename: no copy, no space needed on a full disk).
fn move_aside(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let present: Vec<&str> = FILE_NAMES.into_iter().filter(|name| dir.join(name).exists()).collect();
    if present.is_empty() {
        return Ok(None);
    }
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut aside = dir.join(format!("damaged-{seconds}"));
    let mut attempt = 1;
    while let Err(error) = std::fs::create_dir(&aside) {
        if error.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(error);
        }
        attempt += 1;
        aside = dir.join(format!("damaged-{seconds}-{attempt}"));
    }
    for name in present {
        std::fs::rename(dir.join(name), aside.join(name))?;
    }
    File::open(&aside)?.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(Some(aside))
}

//! What the two journal files under a data dir hold, read without changing anything, and what
//! follows from it. A start replays only a journal that can be read whole: a torn last record
//! is the one expected damage (the crash interrupted its write, so nothing in it was ever
//! acknowledged); anything else means acknowledged writes cannot be replayed, and the start is
//! refused with each file and what is wrong with it. `partyd recover` replays whatever can be
//! read and says what is lost.

use std::io;
use std::path::Path;

use super::file::{self, Header, Position, Record, Scan};
use super::FILE_NAMES;
use crate::storage::ops::Ops;

/// Both journal files, by index.
#[derive(Debug)]
pub struct Survey {
    files: [Scan; 2],
}

/// What `partyd recover` can replay, and what it cannot.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Every readable record, oldest first.
    pub replay: Vec<Ops>,
    /// One line for each file that had records replayed.
    pub replayed: Vec<String>,
    /// One line for each thing lost or left unreplayed.
    pub lost: Vec<String>,
}

impl Survey {
    /// Reads both files under `dir`.
    pub fn read(dir: &Path) -> io::Result<Self> {
        Ok(Self { files: [file::scan(&dir.join(FILE_NAMES[0]))?, file::scan(&dir.join(FILE_NAMES[1]))?] })
    }

    /// Neither file is there.
    pub fn both_missing(&self) -> bool {
        self.files.iter().all(|scan| scan.header == Header::Missing)
    }

    /// Why the journal cannot be replayed whole, one line per thing wrong, each naming its file
    /// (none: a start may replay it). `engine_holds_data`: sled has keys, so missing journal
    /// files are not those of a new data dir.
    pub fn problems(&self, engine_holds_data: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if self.both_missing() {
            if engine_holds_data {
                problems.push(
                    "both journal files are missing while sled holds data: the writes they held cannot be \
                     known"
                        .to_owned(),
                );
            }
            return problems;
        }
        for index in [0, 1] {
            let (name, scan) = (FILE_NAMES[index], &self.files[index]);
            let (other_name, other) = (FILE_NAMES[1 - index], &self.files[1 - index]);
            match scan.header {
                // The files are created one after the other in the first open: an all-zero
                // other file means that open never got further.
                Header::Missing if other.header != Header::Unused => {
                    problems.push(format!(
                        "{name} is missing ({other_name} is there): what it held cannot be known"
                    ));
                }
                Header::Damaged => {
                    problems.push(format!("{name}: the header is damaged ({})", holding(scan)))
                }
                _ => {}
            }
            if let Some(&(first, _)) = scan.gaps.first() {
                let missing: u64 = scan.gaps.iter().map(|&(_, count)| count).sum();
                let after = scan.records.len() - first.seq as usize;
                problems.push(format!(
                    "{name}: {} damaged and {after} valid records follow",
                    damaged(first, missing, "is", "are")
                ));
            }
            // The other file is switched to only after the last write to this one returned, so
            // a damaged last record here, with records written after it there, was acknowledged.
            if let Some(torn) = scan.torn {
                if scan.header != Header::Damaged && self.written_after(index) {
                    problems.push(format!(
                        "{name}: record {} at block {} is damaged and {other_name} holds {} records written \
                         after it",
                        torn.seq,
                        torn.block,
                        other.records.len()
                    ));
                }
            }
        }
        problems
    }

    /// Whether the other file holds records of a newer epoch than file `index`'s.
    fn written_after(&self, index: usize) -> bool {
        let other = &self.files[1 - index];
        matches!((self.files[index].epoch, other.epoch), (Some(mine), Some(theirs)) if theirs > mine)
            && !other.records.is_empty()
    }

    /// Torn last records a start replays up to, as (file name, where).
    pub fn torn(&self) -> impl Iterator<Item = (&'static str, Position)> + '_ {
        (0..2).filter_map(|index| self.files[index].torn.map(|torn| (FILE_NAMES[index], torn)))
    }

    /// The newest epoch any header or record names.
    pub fn last_epoch(&self) -> u64 {
        self.files.iter().filter_map(|scan| scan.epoch).max().unwrap_or(0)
    }

    /// File indexes in the order they were written: by epoch.
    fn in_epoch_order(&self) -> [usize; 2] {
        if self.files[1].epoch < self.files[0].epoch {
            [1, 0]
        } else {
            [0, 1]
        }
    }

    /// Every record, oldest first, for a start (call only without problems).
    pub fn into_records(self) -> impl Iterator<Item = Record> {
        let order = self.in_epoch_order();
        let [first, second] = self.files;
        let mut files = [Some(first), Some(second)];
        order
            .into_iter()
            .flat_map(move |index| files[index].take().map(|scan| scan.records).unwrap_or_default())
    }

    /// What `partyd recover` replays: every valid record, skipping damaged ones; a file with a
    /// damaged header only when its records are known not to have been emptied since.
    pub fn salvage(self) -> Salvage {
        let mut salvage = Salvage::default();
        if self.both_missing() {
            salvage
                .lost
                .push("both journal files are missing: the writes they held cannot be known".to_owned());
            return salvage;
        }
        let order = self.in_epoch_order();
        let live = [0, 1].map(|index| self.live_despite_damaged_header(index));
        let mut files = self.files.map(Some);
        for index in order {
            let scan = files[index].take().expect("each file once");
            let name = FILE_NAMES[index];
            if scan.header == Header::Missing {
                salvage.lost.push(format!("{name} is missing: what it held cannot be known"));
                continue;
            }
            if scan.header == Header::Damaged && !scan.records.is_empty() && !live[index] {
                salvage.lost.push(format!(
                    "{name}: its header is damaged and its {} records of epoch {} were not replayed: they may \
                     be older writes the file had been emptied of (kept with the file)",
                    scan.records.len(),
                    scan.epoch.unwrap_or_default()
                ));
                continue;
            }
            for &(first, count) in &scan.gaps {
                salvage.lost.push(format!(
                    "{name}: {} could not be read ({count} {}: lost unless sled already had {})",
                    damaged(first, count, "", ""),
                    if count == 1 { "record" } else { "records" },
                    if count == 1 { "its writes" } else { "their writes" }
                ));
            }
            if let Some(torn) = scan.torn {
                salvage.lost.push(format!(
                    "{name}: record {} at block {} is incomplete (if it was the last write, it never returned)",
                    torn.seq, torn.block
                ));
            }
            if !scan.records.is_empty() {
                salvage.replayed.push(format!(
                    "{name}: {} records of epoch {}",
                    scan.records.len(),
                    scan.epoch.unwrap_or_default()
                ));
            }
            salvage.replay.extend(scan.records.into_iter().map(|record| record.ops));
        }
        salvage
    }

    /// With file `index`'s header damaged, whether the records of the newest epoch found in it
    /// were not yet emptied from it (replaying records the file had been emptied of could undo
    /// later writes that bypassed the journal). The epoch a file is switched to is always newer
    /// than the other's, and emptying a file gives it a newer epoch still; so the records are
    /// live when the other file's epoch is older (this file was switched to after it), or newer
    /// by exactly one (the other was emptied once, after this file's epoch began, and this one
    /// not since: emptying this one would have taken that next epoch first).
    fn live_despite_damaged_header(&self, index: usize) -> bool {
        let (scan, other) = (&self.files[index], &self.files[1 - index]);
        match (scan.header, scan.epoch, other.header) {
            (Header::Damaged, Some(mine), Header::Epoch(theirs)) => theirs < mine || theirs == mine + 1,
            _ => false,
        }
    }
}

/// What a file with a damaged header holds.
fn holding(scan: &Scan) -> String {
    match scan.epoch {
        Some(epoch) => format!("it holds {} valid records of epoch {epoch}", scan.records.len()),
        None => "it holds no valid record".to_owned(),
    }
}

/// "record 3 at block 7 is" / "records 3-5 from block 7 are".
fn damaged(first: Position, count: u64, one: &str, many: &str) -> String {
    let words = if count == 1 {
        format!("record {} at block {} {one}", first.seq, first.block)
    } else {
        format!("records {}-{} from block {} {many}", first.seq, first.seq + count - 1, first.block)
    };
    words.trim_end().to_owned()
}

//! One journal file: a fixed-size, zero-filled file whose first block names its epoch, followed
//! by records, each starting on a block boundary. Records are written with `O_DIRECT | O_DSYNC`
//! where the file system allows it (a write returns once the device has it), else `O_DSYNC`.
//!
//! Why preallocated and zero-filled: overwriting blocks that already exist changes no file
//! metadata, so a synchronous write costs one device write and no file-system journal commit.
//! On this project's disks that is ~0.1 ms at the median and ~0.3 ms at p99, where `fdatasync`
//! after an append takes ~0.15 ms and 3-4 ms.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::storage::ops;

/// The unit of every write and of record placement; O_DIRECT needs buffers, offsets and lengths
/// aligned to the device's logical block, and 4096 covers both 512-byte and 4 KiB devices.
pub const BLOCK: usize = 4096;
const HEADER_MAGIC: u32 = 0x504A_4E4C; // "PJNL"
const HEADER_VERSION: u32 = 1;
const RECORD_MAGIC: u32 = 0x5052_4543; // "PREC"
/// magic u32, epoch u64, seq u64, payload length u32, crc32 u32.
const RECORD_HEADER: usize = 28;

/// What a journal file's first block says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// There is no file.
    Missing,
    /// The file is all zeros: created, but its header never written (a crash in the first open).
    Unused,
    /// The header names this epoch.
    Epoch(u64),
    /// The header cannot be read, yet the file holds something: it was damaged.
    Damaged,
}

/// A valid record: magic, epoch, sequence number, length and checksum all agree, and its
/// payload decodes.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    /// The block it starts at.
    pub block: usize,
    /// How many blocks it takes.
    pub blocks: usize,
    pub ops: ops::Ops,
}

impl Record {
    /// The block after it.
    pub fn end(&self) -> usize {
        self.block + self.blocks
    }
}

/// Where a record should have been and is not readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub block: usize,
}

/// What a journal file holds, read without changing anything.
#[derive(Debug)]
pub struct Scan {
    pub header: Header,
    /// The epoch whose records were read: the header's; with a damaged header, the newest
    /// epoch among the file's valid records (`None`: no valid record at all).
    pub epoch: Option<u64>,
    /// The valid records of that epoch in sequence order: the unbroken run from sequence 0,
    /// then any found after a record that could not be read.
    pub records: Vec<Record>,
    /// Records missing between valid ones (damaged: a later record's write began only after
    /// theirs had returned), each run as its first position and how many.
    pub gaps: Vec<(Position, u64)>,
    /// Where reading ended, when that block holds a record of this epoch that is incomplete or
    /// damaged (rather than zeros or an older epoch's leftovers).
    pub torn: Option<Position>,
}

impl Scan {
    fn new(header: Header) -> Self {
        Self { header, epoch: None, records: Vec::new(), gaps: Vec::new(), torn: None }
    }
}

/// Reads what a journal file holds (a missing file holds nothing).
pub fn scan(path: &Path) -> io::Result<Scan> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Scan::new(Header::Missing)),
        Err(error) => return Err(error),
    };
    if bytes.iter().all(|&byte| byte == 0) {
        return Ok(Scan::new(Header::Unused));
    }
    let (header, epoch) = match parse_header(&bytes) {
        Some(epoch) => (Header::Epoch(epoch), Some(epoch)),
        None => (Header::Damaged, newest_record_epoch(&bytes)),
    };
    let mut scan = Scan { epoch, ..Scan::new(header) };
    if let Some(epoch) = epoch {
        read_records(&bytes, epoch, &mut scan);
    }
    Ok(scan)
}

/// Blocks from the first record slot on (block 0 is the header).
fn blocks(bytes: &[u8]) -> impl Iterator<Item = usize> {
    1..bytes.len().div_ceil(BLOCK)
}

fn at(bytes: &[u8], block: usize) -> &[u8] {
    &bytes[(block * BLOCK).min(bytes.len())..]
}

/// The newest epoch of any valid record in the file: with the header gone, the epoch the file
/// was last written in (records are only ever written in the header's epoch, and a header's
/// epoch only grows).
fn newest_record_epoch(bytes: &[u8]) -> Option<u64> {
    blocks(bytes).filter_map(|block| parse_any_record(at(bytes, block)).map(|(epoch, ..)| epoch)).max()
}

/// Reads the records of `epoch`: the run from sequence 0 block after block, then, from where
/// that run stops, every block, for valid records with later sequence numbers.
fn read_records(bytes: &[u8], epoch: u64, scan: &mut Scan) {
    let mut block = 1;
    while let Some(record) = parse_record(at(bytes, block), epoch, scan.records.len() as u64, block) {
        block = record.end();
        scan.records.push(record);
    }
    let mut expected = Position { seq: scan.records.len() as u64, block };
    let mut candidate = block;
    while candidate < bytes.len().div_ceil(BLOCK) {
        // Only blocks naming this epoch and a later sequence number are worth a checksum.
        let later = peek(at(bytes, candidate)).filter(|&(e, seq)| e == epoch && seq > expected.seq);
        match later.and_then(|(_, seq)| parse_record(at(bytes, candidate), epoch, seq, candidate)) {
            Some(record) => {
                let seq = record.seq;
                scan.gaps.push((expected, seq - expected.seq));
                expected = Position { seq: seq + 1, block: record.end() };
                candidate = record.end();
                scan.records.push(record);
                // The records after a gap follow one another as the first run did.
                while let Some(next) = parse_record(at(bytes, candidate), epoch, expected.seq, candidate) {
                    expected = Position { seq: expected.seq + 1, block: next.end() };
                    candidate = next.end();
                    scan.records.push(next);
                }
            }
            None => candidate += 1,
        }
    }
    if is_torn(at(bytes, expected.block), epoch, expected.block) {
        scan.torn = Some(expected);
    }
}

/// Whether the block where reading ended holds a record of `epoch` that is incomplete or
/// damaged, rather than an end: zeros, or what an older epoch left there (a record of another
/// epoch, or the middle of one). Block 1 is where every epoch's first record starts, so
/// anything there but zeros or a record header is damage.
fn is_torn(bytes: &[u8], epoch: u64, block: usize) -> bool {
    match bytes.get(..RECORD_HEADER) {
        None => false,
        Some(head) if head.iter().all(|&byte| byte == 0) => false,
        Some(head) => match peek(head) {
            Some((record_epoch, _)) => record_epoch == epoch,
            None => block == 1,
        },
    }
}

/// The epoch and sequence number a block names if it starts with the record magic (nothing
/// checked beyond that).
fn peek(bytes: &[u8]) -> Option<(u64, u64)> {
    if u32::from_le_bytes(word(bytes, 0)?) != RECORD_MAGIC {
        return None;
    }
    Some((u64::from_le_bytes(word(bytes, 4)?), u64::from_le_bytes(word(bytes, 12)?)))
}

/// Blocks a record with a payload of `len` bytes occupies.
pub fn blocks_for(len: usize) -> usize {
    (RECORD_HEADER + len).div_ceil(BLOCK)
}

fn word<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

fn parse_header(bytes: &[u8]) -> Option<u64> {
    let magic = u32::from_le_bytes(word(bytes, 0)?);
    let version = u32::from_le_bytes(word(bytes, 4)?);
    let epoch = u64::from_le_bytes(word(bytes, 8)?);
    let crc = u32::from_le_bytes(word(bytes, 16)?);
    (magic == HEADER_MAGIC && version == HEADER_VERSION && crc == crc32fast::hash(&bytes[..16]))
        .then_some(epoch)
}

/// Record `seq` of `epoch`, if the block starts one that is whole and decodes.
fn parse_record(bytes: &[u8], epoch: u64, seq: u64, block: usize) -> Option<Record> {
    match parse_any_record(bytes)? {
        (record_epoch, record_seq, blocks, ops) if record_epoch == epoch && record_seq == seq => {
            Some(Record { seq, block, blocks, ops })
        }
        _ => None,
    }
}

/// The epoch, sequence number, size in blocks and operations of the record the block starts,
/// if it is whole.
fn parse_any_record(bytes: &[u8]) -> Option<(u64, u64, usize, ops::Ops)> {
    let magic = u32::from_le_bytes(word(bytes, 0)?);
    if magic != RECORD_MAGIC {
        return None;
    }
    let epoch = u64::from_le_bytes(word(bytes, 4)?);
    let seq = u64::from_le_bytes(word(bytes, 12)?);
    let len = u32::from_le_bytes(word(bytes, 20)?) as usize;
    let crc = u32::from_le_bytes(word(bytes, 24)?);
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER + len)?;
    if crc != record_crc(&bytes[4..24], payload) {
        return None;
    }
    Some((epoch, seq, blocks_for(len), ops::decode(payload)?))
}

fn record_crc(fields: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fields);
    hasher.update(payload);
    hasher.finalize()
}

/// A block-aligned scratch buffer (O_DIRECT writes need aligned memory); grows as needed.
#[derive(Default)]
pub struct AlignedBuffer {
    bytes: Vec<u8>,
}

impl AlignedBuffer {
    /// `len` zeroed bytes starting on a block boundary.
    fn zeroed(&mut self, len: usize) -> &mut [u8] {
        if self.bytes.len() < len + BLOCK {
            self.bytes = vec![0; len + BLOCK];
        }
        let start = self.bytes.as_ptr().align_offset(BLOCK);
        let slice = &mut self.bytes[start..start + len];
        slice.fill(0);
        slice
    }
}

/// A journal file open for writing.
pub struct JournalFile {
    file: File,
    path: PathBuf,
    blocks: usize,
}

impl JournalFile {
    /// Opens the file for synchronous writes, first creating it zero-filled at `blocks` blocks
    /// when it is missing or of another size. Call only once its contents are checkpointed.
    pub fn create_or_open(path: &Path, blocks: usize) -> io::Result<Self> {
        let bytes = (blocks * BLOCK) as u64;
        if std::fs::metadata(path).map(|meta| meta.len()).ok() != Some(bytes) {
            zero_fill(path, bytes)?;
        }
        let file = open_synchronous(path)?;
        Ok(Self { file, path: path.to_owned(), blocks })
    }

    /// Its capacity in blocks, the header block included.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Starts a new epoch: every record in the file from before is no longer valid.
    pub fn reset(&self, epoch: u64, buffer: &mut AlignedBuffer) -> io::Result<()> {
        let block = buffer.zeroed(BLOCK);
        block[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        block[4..8].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        block[8..16].copy_from_slice(&epoch.to_le_bytes());
        let crc = crc32fast::hash(&block[..16]);
        block[16..20].copy_from_slice(&crc.to_le_bytes());
        self.write_at(block, 0)
    }

    /// Writes record `seq` of `epoch` at block `at`; returns once it is on the device.
    pub fn write_record(
        &self,
        at: usize,
        epoch: u64,
        seq: u64,
        payload: &[u8],
        buffer: &mut AlignedBuffer,
    ) -> io::Result<()> {
        let blocks = blocks_for(payload.len());
        let bytes = buffer.zeroed(blocks * BLOCK);
        bytes[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes[4..12].copy_from_slice(&epoch.to_le_bytes());
        bytes[12..20].copy_from_slice(&seq.to_le_bytes());
        bytes[20..24].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = record_crc(&bytes[4..24], payload);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        bytes[RECORD_HEADER..RECORD_HEADER + payload.len()].copy_from_slice(payload);
        self.write_at(bytes, at)
    }

    /// Zeroes block `at`: whatever part of a record a failed write left there is gone.
    pub fn clear(&self, at: usize, buffer: &mut AlignedBuffer) -> io::Result<()> {
        self.write_at(buffer.zeroed(BLOCK), at)
    }

    fn write_at(&self, bytes: &[u8], block: usize) -> io::Result<()> {
        self.file
            .write_all_at(bytes, (block * BLOCK) as u64)
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", self.path.display())))
    }
}

/// Opens with O_DIRECT | O_DSYNC, or O_DSYNC alone where O_DIRECT is refused (tmpfs).
fn open_synchronous(path: &Path) -> io::Result<File> {
    let open = |flags| OpenOptions::new().write(true).custom_flags(flags).open(path);
    open(libc::O_DIRECT | libc::O_DSYNC).or_else(|error| {
        if error.raw_os_error() == Some(libc::EINVAL) {
            open(libc::O_DSYNC)
        } else {
            Err(error)
        }
    })
}

/// Writes the file whole with zeros (through a temporary name, so a crash leaves either no file
/// or a whole one) and makes it and its directory entry durable.
fn zero_fill(path: &Path, bytes: u64) -> io::Result<()> {
    let temporary = path.with_extension("new");
    let mut file = File::create(&temporary)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..chunk])?;
        left -= chunk as u64;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

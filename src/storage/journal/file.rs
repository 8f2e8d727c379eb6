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

/// The unit of every write and of record placement; O_DIRECT needs buffers, offsets and lengths
/// aligned to the device's logical block, and 4096 covers both 512-byte and 4 KiB devices.
pub const BLOCK: usize = 4096;
const HEADER_MAGIC: u32 = 0x504A_4E4C; // "PJNL"
const HEADER_VERSION: u32 = 1;
const RECORD_MAGIC: u32 = 0x5052_4543; // "PREC"
/// magic u32, epoch u64, seq u64, payload length u32, crc32 u32.
const RECORD_HEADER: usize = 28;

/// What a journal file held when it was opened.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// The epoch its header names; `None` when the file is missing or its header is unreadable
    /// (a header is only ever rewritten after everything before it was checkpointed).
    pub epoch: Option<u64>,
    /// The payloads of its valid records, in order: those of the header's epoch with
    /// consecutive sequence numbers and a matching checksum, up to the first that is not.
    pub records: Vec<Vec<u8>>,
}

/// Reads what a journal file holds (a missing file holds nothing).
pub fn read(path: &Path) -> io::Result<Contents> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(error) => return Err(error),
    };
    let Some(epoch) = parse_header(&bytes) else { return Ok(Contents::default()) };
    let mut records = Vec::new();
    let mut offset = BLOCK;
    while let Some(payload) = parse_record(&bytes[offset.min(bytes.len())..], epoch, records.len() as u64) {
        offset += blocks_for(payload.len()) * BLOCK;
        records.push(payload.to_vec());
    }
    Ok(Contents { epoch: Some(epoch), records })
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

fn parse_record(bytes: &[u8], epoch: u64, seq: u64) -> Option<&[u8]> {
    let magic = u32::from_le_bytes(word(bytes, 0)?);
    let record_epoch = u64::from_le_bytes(word(bytes, 4)?);
    let record_seq = u64::from_le_bytes(word(bytes, 12)?);
    let len = u32::from_le_bytes(word(bytes, 20)?) as usize;
    let crc = u32::from_le_bytes(word(bytes, 24)?);
    if magic != RECORD_MAGIC || record_epoch != epoch || record_seq != seq {
        return None;
    }
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER + len)?;
    (crc == record_crc(&bytes[4..24], payload)).then_some(payload)
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

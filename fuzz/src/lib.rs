//! What the fuzz targets share: an allocator that records the largest allocation (to hold the
//! parsers to their size limits), cutting input into chunks, and client frames as a browser
//! sends them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, recording the largest single allocation (or reallocation) since
/// [`Largest::reset`]. A target makes it its `#[global_allocator]`.
pub struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

impl Largest {
    /// Forgets the allocations so far.
    pub fn reset() {
        LARGEST.store(0, Ordering::Relaxed);
    }

    /// The largest allocation since the last reset, in bytes.
    pub fn get() -> usize {
        LARGEST.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Cuts `bytes` into chunks whose lengths cycle through `lengths` (a zero length means one
/// byte; no lengths means one chunk), as reads from a socket would.
pub fn chunks<'a>(bytes: &'a [u8], lengths: &[u8]) -> Vec<&'a [u8]> {
    if lengths.is_empty() {
        return vec![bytes];
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    for length in lengths.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(usize::from(*length).clamp(1, rest.len()));
        out.push(chunk);
        rest = after;
    }
    out
}

/// How a frame writes its payload length (RFC 6455 §5.2): in the 7 bits of the second byte,
/// in 16 bits after it (126), or in 64 bits (127). A sender should use the shortest, but the
/// server accepts any that holds the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthForm {
    Short,
    Medium,
    Long,
}

impl LengthForm {
    /// The shortest form for `length`.
    pub fn shortest(length: usize) -> Self {
        match length {
            0..=125 => Self::Short,
            126..=0xFFFF => Self::Medium,
            _ => Self::Long,
        }
    }
}

/// A client frame: the first byte as given (FIN, RSV, opcode), the payload length in `form`
/// with the mask bit set when `mask` is given, then the payload masked with it.
pub fn client_frame(first: u8, form: LengthForm, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match form {
        LengthForm::Short => out.push(masked | payload.len() as u8),
        LengthForm::Medium => {
            out.push(masked | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        LengthForm::Long => {
            out.push(masked | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

//! What an interrupted open of sled can leave in the data dir that would stop the next open, and
//! the data dir's lock taken without opening sled (to look at the dir while no server uses it).
//!
//! sled 0.34 writes a snapshot only while it opens (`PageCache::start` → `read_snapshot_or_default`
//! → `advance_snapshot` → `write_snapshot`, in `src/pagecache/snapshot.rs`): it writes
//! `snap.<lsn>.generating`, syncs it, renames it to `snap.<lsn>`, and only then removes older
//! snapshots. `read_snapshot` takes the last of every `snap.*` file name in sorted order, the
//! `.generating` ones included (`Config::get_snapshot_files` leaves out only `.in___motion`), and
//! reports corruption when that file is 12 bytes or shorter or its crc32 does not match. A start
//! stopped before the rename (a full disk failing the write, a crash) leaves an incomplete
//! `.generating` file that names a newer position than the complete snapshot, so it sorts last
//! and every later open fails as "corrupt". Such a file was never anything sled relied on: the
//! rename is what makes a snapshot count, the complete one before it is still there, and the
//! open that wrote it had read exactly that snapshot and the log (sled rebuilds the same from
//! them). sled itself removes leftover snapshot files after its next successful snapshot. So an
//! incomplete `.generating` file is removed; a complete one is what sled reads anyway, and stays.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd as _;
use std::path::Path;

use super::StorageError;

/// The trailer sled puts after a snapshot: its length (u64) and its crc32 (u32).
const SNAPSHOT_TRAILER: usize = 12;

/// Takes the lock sled takes (an exclusive `flock` on `<dir>/db`) while the returned file is
/// open; `None` when there is no sled database there. A second `flock` in this process is
/// refused like any other, so drop it before sled opens the dir.
pub fn lock(dir: &Path) -> Result<Option<File>, StorageError> {
    let file = match File::open(dir.join("db")) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(dir, &error)),
    };
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return Err(StorageError::Locked { path: dir.to_owned() });
        }
        return Err(io_error(dir, &error));
    }
    Ok(Some(file))
}

/// Removes every incomplete `snap.*.generating` under `dir` (see the module's comment), under
/// the dir's lock so that no sled open elsewhere is writing one; returns their names.
pub fn remove_incomplete_snapshots(dir: &Path) -> Result<Vec<String>, StorageError> {
    let Some(_lock) = lock(dir)? else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|error| io_error(dir, &error))? {
        let entry = entry.map_err(|error| io_error(dir, &error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("snap.") && name.ends_with(".generating")) {
            continue;
        }
        let bytes = std::fs::read(entry.path()).map_err(|error| io_error(dir, &error))?;
        if is_complete_snapshot(&bytes) {
            continue;
        }
        std::fs::remove_file(entry.path()).map_err(|error| io_error(dir, &error))?;
        tracing::warn!(
            "removed {name} from {}: an incomplete snapshot sled was writing when an earlier start was \
             interrupted (the complete snapshot before it is what sled reads)",
            dir.display()
        );
        removed.push(name);
    }
    if !removed.is_empty() {
        File::open(dir).and_then(|dir| dir.sync_all()).map_err(|error| io_error(dir, &error))?;
    }
    Ok(removed)
}

/// sled's own test in `read_snapshot`: longer than the trailer, and the crc32 of everything
/// before the trailer matches the one in it.
fn is_complete_snapshot(bytes: &[u8]) -> bool {
    let Some(body_len) = bytes.len().checked_sub(SNAPSHOT_TRAILER).filter(|&len| len > 0) else {
        return false;
    };
    let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    crc32fast::hash(&bytes[..body_len]) == crc
}

fn io_error(dir: &Path, error: &io::Error) -> StorageError {
    StorageError::Io(format!("{}: {error}", dir.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(body: &[u8]) -> Vec<u8> {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        bytes
    }

    #[test]
    fn only_incomplete_generating_snapshots_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        let whole = snapshot(b"a snapshot's bytes");
        let mut torn = whole.clone();
        torn.truncate(whole.len() - 3);
        let files = [
            ("snap.0000000000000010", whole.clone()),
            ("snap.0000000000000020.generating", Vec::new()),
            ("snap.0000000000000030.generating", torn),
            ("snap.0000000000000040.generating", whole),
            ("snap.0000000000000050.generating", vec![0; SNAPSHOT_TRAILER]),
        ];
        for (name, bytes) in &files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let mut removed = remove_incomplete_snapshots(dir.path()).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                "snap.0000000000000020.generating",
                "snap.0000000000000030.generating",
                "snap.0000000000000050.generating"
            ]
        );
        assert!(dir.path().join("snap.0000000000000010").exists());
        assert!(dir.path().join("snap.0000000000000040.generating").exists(), "sled reads a complete one");
    }

    #[test]
    fn nothing_is_removed_while_another_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        std::fs::write(dir.path().join("snap.0000000000000020.generating"), b"").unwrap();
        let _held = lock(dir.path()).unwrap().unwrap();
        let error = remove_incomplete_snapshots(dir.path()).unwrap_err();
        assert!(matches!(error, StorageError::Locked { .. }), "{error}");
        assert!(dir.path().join("snap.0000000000000020.generating").exists());
    }
}

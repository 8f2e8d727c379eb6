//! Room images on the way out of memory: a room big enough to be slow to load by scanning its
//! entries leaves an image of them in storage (see `Storage::save_image`) when it unloads or the
//! server stops, so its next load, after a restart too, reads one value.

use std::sync::Arc;
use std::time::Instant;

use super::persisted::room_path;
use super::RoomKey;
use crate::storage::{Storage, StoragePool};

/// Rooms storing less than this (about a thousand small cells) load by scanning in a few
/// milliseconds; an image would only double their disk use.
const IMAGE_MIN_STORED_BYTES: u64 = 32 * 1024;

/// Saves the room's image off the room's thread (it reads every entry) and waits for it, so the
/// room, its only writer, writes nothing meanwhile. Failures are logged: the room then simply
/// loads by scanning.
pub async fn save_image(pool: &StoragePool, storage: &Arc<dyn Storage>, key: &RoomKey, stored_bytes: u64) {
    if stored_bytes < IMAGE_MIN_STORED_BYTES {
        return;
    }
    let (storage, key) = (storage.clone(), key.clone());
    let started = Instant::now();
    match pool.run("save a room image", move || storage.save_image(room_path(&key))).await {
        Ok(()) => tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "room image saved"),
        Err(error) => tracing::warn!(%error, "cannot save the room's image; it will load by scanning"),
    }
}

//! Rooms: validated names, the registry of live rooms, and the one task per room that owns
//! its state. HTTP handlers and websocket connections reach a room only through a
//! [`RoomHandle`]; only the room task touches the room's store and storage.

mod handle;
mod image;
pub mod names;
pub(crate) mod persisted;
mod registry;
mod sync;
pub(crate) mod sync_persisted;
mod task;

pub use handle::{
    GetResult, Inspection, JoinOutcome, PutResult, RoomGone, RoomHandle, ServerWriteResult, SocketId,
};
pub use names::{NameError, RoomKey};
pub use registry::{IpClaim, PartySummary, Rooms, Unavailable};
pub use sync::now_ms;

use crate::config::PartyKind;

/// What a read of a room that does not exist answers, exactly as the room would if it were
/// loaded: no store for a persister room, the empty merged store for a sync room.
pub fn absent_room(kind: PartyKind, mergeable: bool) -> GetResult {
    match kind {
        PartyKind::TinybasePersister => GetResult::NoStore,
        PartyKind::TinybaseSync => {
            let store = crate::protocol::mergeable::tree::MergeableStore::new("");
            let body = if mergeable { store.encoded_content() } else { store.plain_content() };
            GetResult::Store(body.into())
        }
    }
}

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

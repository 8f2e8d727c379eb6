//! TinyBase's MergeableStore, for the `tinybase-sync` kind (issue 3), ported from
//! `../shared/spec/tinybase-sync.md` and checked against the vectors generated from tinybase
//! 10.0.1. So far: the hash (§2.1), the hybrid logical clock (§2.2), the stamp tree with its
//! merge (§2.3–§2.6), local writes (§2.7), the reads (§2.8) and message validation (§3.1). The
//! relay, the server participant and the websocket framing come next.

pub mod hash;
pub mod hlc;
pub mod message;
pub mod reads;
pub mod writes;
pub mod tree;

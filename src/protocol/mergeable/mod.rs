//! TinyBase's MergeableStore, for the `tinybase-sync` kind (issue 3), ported from
//! `../shared/spec/tinybase-sync.md` and checked against the vectors generated from tinybase
//! 10.0.1. So far: the hash (§2.1), the hybrid logical clock (§2.2), the stamp tree with its
//! merge (§2.3–§2.6) and the reads of the pull (§2.8). Local writes, transaction changes and the
//! synchronizer protocol come next.

pub mod hash;
pub mod hlc;
pub mod reads;
pub mod tree;

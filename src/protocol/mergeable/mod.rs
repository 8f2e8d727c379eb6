//! TinyBase's MergeableStore and synchronizer protocol, for the `tinybase-sync` kind, ported from
//! the protocol notes `tinybase-sync.md` (the section numbers below are theirs) and checked
//! against the vectors in `tests/vectors/mergeable/`, generated from tinybase 10.0.1: the hash
//! (§2.1), the hybrid logical clock (§2.2), the stamp tree with its merge (§2.3–§2.6), local
//! writes (§2.7), the reads (§2.8), messages (§3.1), legacy framing and fragments (§4.2–§4.3)
//! and the server's own participant `S` (§3.3, §5).

pub mod frame;
pub mod hash;
pub mod hlc;
#[cfg(test)]
mod merge_laws;
pub mod message;
pub mod participant;
pub mod reads;
#[cfg(test)]
mod tests_surrogates;
pub mod tree;
pub mod writes;

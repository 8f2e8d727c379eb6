//! Wire formats, pure: bytes and text in, typed values out. No async, no I/O, no clock.
//! This is where exactness with TinyBase lives.

pub mod ids;
pub mod json;
pub mod mergeable;
pub mod persister;

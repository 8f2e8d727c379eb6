//! Errors that stop the server from starting or stopping cleanly. Errors of one request or
//! one connection live beside the code that answers them (a status or a close code).

use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::storage::StorageError;

/// Why partyd could not start, or could not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be opened or flushed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A thread of the server could not be started.
    #[error("cannot start threads: {0}")]
    Threads(std::io::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

//! systemd's readiness protocol (`Type=notify`): one datagram to `$NOTIFY_SOCKET` when partyd
//! listens and one when it begins to stop. Without `$NOTIFY_SOCKET` (not under systemd) nothing
//! is sent.
//!
//! The protocol is one `sendto` of `KEY=VALUE` lines on a Unix datagram socket whose path the
//! service manager passes in the environment (`@name` for the abstract namespace), so it is
//! written here rather than taken from a crate.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The variable systemd sets for `Type=notify` services.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells systemd the service is ready: it listens and serves.
pub fn notify_ready() {
    notify("READY=1\nSTATUS=serving");
}

/// Tells systemd the service is stopping (draining rooms and connections).
pub fn notify_stopping() {
    notify("STOPPING=1\nSTATUS=stopping");
}

/// Sends `state` when `$NOTIFY_SOCKET` is set; a failure is logged, never fatal: partyd serves
/// the same with or without a service manager listening.
fn notify(state: &str) {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET) else { return };
    if let Err(error) = send(&path, state) {
        tracing::warn!(%error, socket = ?path, "could not notify the service manager");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &address)?
        }
        None => socket.send_to(state.as_bytes(), path)?,
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
    }
    Ok(())
}

//! When storage fails on a write, nothing of it is acknowledged or broadcast: the room's
//! sockets are closed with 1011, PUTs answer 500, and the room is reloaded from disk.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use common::*;
use partyd::config::Config;
use partyd::storage::{
    DurableTicket, EntryWrite, FlushObserver, FlushStats, RoomEntries, RoomPath, SledStorage, Storage,
    StorageError, StoredRoom,
};

/// Real storage whose writes fail while `failing` is set.
struct Flaky {
    inner: Arc<SledStorage>,
    failing: AtomicBool,
}

impl Storage for Flaky {
    fn load_room(&self, room: RoomPath<'_>) -> Result<RoomEntries, StorageError> {
        self.inner.load_room(room)
    }
    fn write(
        &self,
        room: RoomPath<'_>,
        writes: Vec<EntryWrite>,
        stored_bytes: u64,
    ) -> Result<(), StorageError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StorageError::Io("injected failure".into()));
        }
        self.inner.write(room, writes, stored_bytes)
    }
    fn delete_room(&self, room: RoomPath<'_>) -> Result<(), StorageError> {
        self.inner.delete_room(room)
    }
    fn durable(&self) -> DurableTicket {
        self.inner.durable()
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
    fn list_rooms(
        &self,
        party: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRoom>, StorageError> {
        self.inner.list_rooms(party, prefix, after, limit)
    }
    fn all_rooms(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.inner.all_rooms()
    }
    fn flush_stats(&self) -> FlushStats {
        self.inner.flush_stats()
    }
    fn observe_flushes(&self, observer: FlushObserver) {
        self.inner.observe_flushes(observer)
    }
}

#[actix_web::test]
async fn a_failed_write_closes_the_rooms_sockets_with_1011_and_reloads_it() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf());
    let flaky =
        Arc::new(Flaky { inner: SledStorage::open(dir.path()).unwrap(), failing: AtomicBool::new(false) });
    let server = partyd::start(config, flaky.clone()).unwrap();
    let addr = server.addr();
    assert_eq!(put(addr, "/parties/main/r/store", "[{},{\"v\":1}]").await, StatusCode::CREATED);
    let mut a = connect(addr, "main", "r", "a").await;
    let mut b = connect(addr, "main", "r", "b").await;

    flaky.failing.store(true, Ordering::SeqCst);
    a.send("s[{},{\"v\":2},1]").await;
    assert_eq!(b.closed().await, Ended::Closed(Some(1011)), "nothing was broadcast; the socket was closed");
    assert_eq!(a.closed().await, Ended::Closed(Some(1011)));
    let answer = request(addr, "PUT", "/parties/main/other/store", "[{},{}]").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);

    flaky.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        get_body(addr, "/parties/main/r/store").await,
        "[{},{\"v\":1}]",
        "the room was reloaded from disk"
    );
    assert_eq!(get_body(addr, "/parties/main/other/store").await, "", "the failed PUT left no store");
    assert_eq!(put(addr, "/parties/main/other/store", "[{},{}]").await, StatusCode::CREATED);
    let mut c = connect(addr, "main", "r", "c").await;
    let mut d = connect(addr, "main", "r", "d").await;
    c.send("s[{},{\"v\":3},1]").await;
    assert_eq!(d.next_text().await, "s[{},{\"v\":3},1]");
    server.shutdown().await.unwrap();
}

#[actix_web::test]
async fn a_silent_client_is_closed_and_a_live_one_is_kept() {
    let dir = data_dir();
    let config = Config::conformance(dir.path().to_path_buf()).with_limits(|limits| {
        limits.ping_interval = Duration::from_millis(200);
        limits.idle_timeout = Duration::from_millis(1500);
    });
    let server = start_with(config);
    let addr = server.addr;
    assert_eq!(put(addr, "/parties/main/idle/store", "[{},{}]").await, StatusCode::CREATED);
    let mut silent = connect(addr, "main", "idle", "silent").await;
    let mut live = connect(addr, "main", "idle", "live").await;
    // `live` answers pings while it waits (next_event does); `silent` reads nothing meanwhile.
    let waited = tokio::time::timeout(Duration::from_millis(2500), live.next_event()).await;
    assert!(waited.is_err(), "nothing was sent to live; it just answered pings");
    assert_eq!(silent.closed().await, Ended::Closed(Some(1000)), "closed after the idle timeout");
    let mut sender = connect(addr, "main", "idle", "sender").await;
    sender.send("s[{},{\"still\":\"here\"},1]").await;
    assert_eq!(live.next_text().await, "s[{},{\"still\":\"here\"},1]");
    server.server.shutdown().await.unwrap();
}

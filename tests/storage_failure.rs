//! When storage fails on a write, nothing of it is acknowledged or broadcast: the room's
//! sockets are closed with 1011, PUTs answer 500, and the room is reloaded from disk. When a
//! storage call never returns, only the rooms that wait for it notice, and only until the
//! storage timeout.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::{Condvar, Mutex};
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

/// Real storage whose reads of rooms named `stuck…` never return until `release` (a disk that
/// stalls on some blocks).
struct Stalling {
    inner: Arc<SledStorage>,
    released: Mutex<bool>,
    release: Condvar,
}

impl Stalling {
    fn wait_if_stuck(&self, room: RoomPath<'_>) {
        if room.room.starts_with("stuck") {
            let mut released = self.released.lock().unwrap();
            while !*released {
                released = self.release.wait(released).unwrap();
            }
        }
    }
}

impl Storage for Stalling {
    fn load_room(&self, room: RoomPath<'_>) -> Result<RoomEntries, StorageError> {
        self.wait_if_stuck(room);
        self.inner.load_room(room)
    }
    fn is_stored(&self, room: RoomPath<'_>) -> Result<bool, StorageError> {
        self.wait_if_stuck(room);
        self.inner.is_stored(room)
    }
    fn write(&self, room: RoomPath<'_>, writes: Vec<EntryWrite>, bytes: u64) -> Result<(), StorageError> {
        self.inner.write(room, writes, bytes)
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

/// What a deadline that passed says: `what` waited for the stalled storage.
fn bounded<T>(what: &'static str) -> impl FnOnce(tokio::time::error::Elapsed) -> T {
    move |_| panic!("{what} waited for the stalled storage")
}

#[actix_web::test]
async fn a_storage_call_that_never_returns_stops_neither_health_nor_other_rooms() {
    let dir = data_dir();
    let mut config = Config::conformance(dir.path().to_path_buf());
    config.storage_timeout = Duration::from_secs(2);
    let stalling = Arc::new(Stalling {
        inner: SledStorage::open(dir.path()).unwrap(),
        released: Mutex::new(false),
        release: Condvar::new(),
    });
    let server = partyd::start(config, stalling.clone()).unwrap();
    let addr = server.addr();
    assert_eq!(put(addr, "/parties/main/live/store", "[{},{\"v\":1}]").await, StatusCode::CREATED);
    let mut a = connect(addr, "main", "live", "a").await;
    let mut b = connect(addr, "main", "live", "b").await;

    // One worker thread serves every room and request here: the stuck loads must not hold it.
    // Three: fewer than the storage threads, so another room's load finds a free one.
    let stuck: Vec<_> = ["stuck-1", "stuck-2", "stuck-3"]
        .into_iter()
        .map(|room| {
            let path = format!("/parties/main/{room}/store");
            actix_web::rt::spawn(async move { request(addr, "GET", &path, "").await })
        })
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let health = tokio::time::timeout(Duration::from_secs(1), request(addr, "GET", "/healthz", ""))
        .await
        .unwrap_or_else(bounded("/healthz"));
    assert_eq!(health.status, StatusCode::OK);
    a.send("s[{},{\"v\":2},1]").await;
    let relayed = tokio::time::timeout(Duration::from_secs(1), b.next_text())
        .await
        .unwrap_or_else(bounded("a loaded room's broadcast"));
    assert_eq!(relayed, "s[{},{\"v\":2},1]");
    let other = tokio::time::timeout(
        Duration::from_secs(1),
        request(addr, "PUT", "/parties/main/fresh/store", "[{},{}]"),
    )
    .await
    .unwrap_or_else(bounded("another room's cold load"));
    assert_eq!(other.status, StatusCode::CREATED);

    for answer in stuck {
        let answer = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .unwrap_or_else(bounded("a stuck room's reader (past the storage timeout)"))
            .unwrap();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    }
    *stalling.released.lock().unwrap() = true;
    stalling.release.notify_all();
    assert_eq!(
        get_body(addr, "/parties/main/stuck-1/store").await,
        "",
        "once storage answers, the room loads"
    );
    server.shutdown().await.unwrap();
}

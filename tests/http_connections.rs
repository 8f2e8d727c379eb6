//! HTTP connections of the real binary, spoken raw over TCP: a graceful stop closes idle
//! keep-alive connections at once and lets a request in flight finish; stalled request heads
//! and bodies are answered 408 and closed, one client address holds only so many connections,
//! and neither exhausts the server's file descriptors.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use common::process::{Partyd, PARTY_TOML};

/// How long a test waits on one socket before it fails.
const SOCKET_DEADLINE: Duration = Duration::from_secs(10);

/// A blocking connection to partyd with the test's deadlines.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, SOCKET_DEADLINE).expect("connect");
    stream.set_read_timeout(Some(SOCKET_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(SOCKET_DEADLINE)).unwrap();
    stream
}

/// Reads one answer: its status and body (framed by Content-Length).
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buffer = Vec::new();
    let mut byte = [0; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).into_owned();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A connection from another loopback address than 127.0.0.1.
fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&local.parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.connect_timeout(&addr.into(), SOCKET_DEADLINE).expect("connect");
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(SOCKET_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(SOCKET_DEADLINE)).unwrap();
    stream
}

/// A PUT that declares 1000 bytes of body, sends 10 and stops.
fn stalled_body(addr: SocketAddr, room: &str) -> TcpStream {
    let mut stream = connect(addr);
    write!(
        stream,
        "PUT /parties/main/{room}/store HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n[{{}},{{\"a\":1"
    )
    .unwrap();
    stream
}

/// A request head that stops halfway.
fn stalled_head(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    stream.write_all(b"PUT /parties/main/head/store HTTP/1.1\r\nHost: local").unwrap();
    stream
}

/// Asserts the connection is answered `status` and then closed.
fn assert_answered_and_closed(stream: &mut TcpStream, status: u16, what: &str) {
    assert_eq!(read_response(stream).map(|answer| answer.0).ok(), Some(status), "{what}");
    let mut rest = [0; 64];
    assert!(matches!(stream.read(&mut rest), Ok(0) | Err(_)), "{what}: then closed");
}

/// The soft and hard `Max open files` of a process.
fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// Sets this process's soft limit of open files to its hard limit, which it returns.
fn raise_own_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_max;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    limit.rlim_max
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

#[test]
fn a_stop_closes_idle_keep_alive_connections_at_once_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let partyd = Partyd::spawn(dir.path());
    let addr = partyd.addr;
    // Browsers that loaded a store keep their connections open, idle.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(get_request("/parties/main/idle/store").as_bytes()).unwrap();
            assert_eq!(read_response(&mut stream).unwrap().0, 200);
            stream
        })
        .collect();
    // A PUT whose body is still arriving when the stop begins.
    let content = "[{\"t\":{\"r\":{\"c\":1}}},{}]";
    let mut in_flight = connect(addr);
    write!(
        in_flight,
        "PUT /parties/main/in-flight/store HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{}",
        content.len(),
        &content[..5]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let child = partyd.child.id();
    let status = std::thread::spawn(move || partyd.terminate());
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(&content.as_bytes()[5..]).unwrap();
    assert_eq!(read_response(&mut in_flight).unwrap().0, 201, "the PUT in flight is stored");
    let status = status.join().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "SIGTERM ends partyd {child} with status 0, not {status:?}");
    assert!(took < Duration::from_millis(2500), "the stop took {took:?}");
    for mut stream in idle {
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap_or(0), 0, "an idle connection was closed");
    }

    let partyd = Partyd::spawn_with(dir.path(), PARTY_TOML, &[]);
    let mut stream = connect(partyd.addr);
    stream.write_all(get_request("/parties/main/in-flight/store").as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream).unwrap(), (200, content.to_owned()), "and kept");
    assert!(partyd.terminate().success());
}

#[test]
fn stalled_bodies_are_answered_408_and_never_starve_a_server_started_under_1024_descriptors() {
    const STALLED: usize = 1100;
    let hard = raise_own_open_files_limit();
    if hard < 4 * STALLED as u64 {
        eprintln!(
            "skipped: the hard limit of open files ({hard}) leaves no room for {STALLED} stalled clients"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nrequest_head_timeout_seconds = 2\nrequest_body_timeout_seconds = 2\nmax_http_connections_per_ip = 2000\n\n{PARTY_TOML}"
    );
    // The common default soft limit, the hard limit kept: partyd must raise it itself.
    let partyd = Partyd::spawn_command(dir.path(), &toml, &[("RUST_LOG", "info")], |command| unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = 1024;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    let addr = partyd.addr;
    assert_eq!(
        open_files_limits(partyd.child.id()),
        (hard, hard),
        "the soft limit was raised to the hard one"
    );
    assert!(
        partyd
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("1024") && line.contains(&hard.to_string())),
        "the start logs both limits"
    );

    let opened = Instant::now();
    let mut bodies: Vec<TcpStream> =
        (0..STALLED).map(|i| stalled_body(addr, &format!("stalled-{i}"))).collect();
    let mut heads: Vec<TcpStream> = (0..20).map(|_| stalled_head(addr)).collect();

    let fresh = Instant::now();
    let content = "[{\"t\":{\"r\":{\"c\":1}}},{}]";
    let mut stream = connect(addr);
    write!(
        stream,
        "PUT /parties/main/fresh/store HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{content}",
        content.len()
    )
    .unwrap();
    assert_eq!(read_response(&mut stream).unwrap().0, 201);
    let mut stream = connect(addr);
    stream.write_all(get_request("/parties/main/fresh/store").as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream).unwrap(), (200, content.to_owned()));
    let took = fresh.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "a fresh PUT and GET beside {STALLED} stalled bodies took {took:?}"
    );

    for stream in &mut heads {
        assert_answered_and_closed(stream, 408, "a stalled head");
    }
    for stream in &mut bodies {
        assert_answered_and_closed(stream, 408, "a stalled body");
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(8),
        "stalled requests answered after {waited:?}, for a timeout of 2 s"
    );
    assert!(partyd.terminate().success());
}

#[test]
fn an_address_over_its_connection_cap_is_answered_429_and_other_addresses_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nrequest_body_timeout_seconds = 2\nmax_http_connections_per_ip = 4\n\n{PARTY_TOML}"
    );
    let partyd = Partyd::spawn_with(dir.path(), &toml, &[("RUST_LOG", "info")]);
    let addr = partyd.addr;
    let mut held: Vec<TcpStream> = (0..4).map(|i| stalled_body(addr, &format!("held-{i}"))).collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        let started = Instant::now();
        let mut stream = connect(addr);
        stream.write_all(get_request("/parties/main/r/store").as_bytes()).unwrap();
        let answer = read_response(&mut stream).unwrap();
        assert_eq!(answer, (429, "too many connections from this address".to_owned()));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let mut other = connect_from("127.0.0.2:0", addr);
    other.write_all(get_request("/parties/main/r/store").as_bytes()).unwrap();
    assert_eq!(read_response(&mut other).unwrap().0, 200, "another address is served");
    let refusals = partyd
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("too many HTTP connections from one address"))
        .count();
    assert_eq!(refusals, 1, "twenty refusals in a row are logged once");

    for stream in &mut held {
        assert_answered_and_closed(stream, 408, "a stalled body");
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut again = connect(addr);
    again.write_all(get_request("/parties/main/r/store").as_bytes()).unwrap();
    assert_eq!(read_response(&mut again).unwrap().0, 200, "the address has room again");
    assert!(partyd.terminate().success());
}

//! HTTP connections of the real binary, spoken raw over TCP: a graceful stop closes idle
//! keep-alive connections at once and lets a request in flight finish.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
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

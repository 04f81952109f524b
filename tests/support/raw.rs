//! Servers on raw sockets, for what a hyper server will not do: never send
//! 100, answer and close, send a late 100.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What a raw server received on one connection: the head, and the body
/// bytes that came after it.
#[derive(Default)]
pub struct Got {
    pub heads: Vec<String>,
    pub bodies: Vec<Vec<u8>>,
}

impl Got {
    pub fn record(got: &Mutex<Self>, head: String, body: Vec<u8>) {
        let mut got = got.lock().unwrap();
        got.heads.push(head);
        got.bodies.push(body);
    }
}

/// A server on a raw socket: for each connection, `serve` reads and writes
/// as it likes (a server that never sends 100, or answers and closes).
pub fn raw_server(
    serve: impl Fn(TcpStream, &Mutex<Got>) + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Got>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Got::default()));
    let (shared, serve) = (Arc::clone(&got), Arc::new(serve));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (got, serve) = (Arc::clone(&shared), Arc::clone(&serve));
            std::thread::spawn(move || serve(stream, &got));
        }
    });
    (addr, got)
}

/// Read into `buf` until `done` says so, the peer closes, or a read fails
/// (a read timeout ends it too).
pub fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let mut chunk = vec![0u8; 64 * 1024];
    while !done(buf) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request head, and whatever came with it.
pub fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    read_until(stream, &mut buf, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the connection closed before the head ended");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    (head, buf[end + 4..].to_vec())
}

pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// A 307 to `location` that closes the connection.
pub fn redirect_and_close(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\
         connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Close `stream` with a reset (RST), not a FIN: `SO_LINGER` 0, as haproxy
/// does right after its `http-request redirect`.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// A server that answers every request with a 307 to `location` as soon as
/// its head is in (after 100 ms for body bytes that a client that does not
/// wait would send), then `close`s the connection: haproxy's
/// `http-request redirect code 307`. Records the head and those bytes.
pub fn redirect_at_head(location: &str, close: fn(TcpStream)) -> (SocketAddr, Arc<Mutex<Got>>) {
    let answer = redirect_and_close(location);
    raw_server(move |mut stream, got| {
        let (head, mut early) = read_head(&mut stream);
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        read_until(&mut stream, &mut early, |_| false);
        Got::record(got, head, early);
        stream.write_all(&answer).unwrap();
        close(stream);
    })
}

/// A server that never sends 100: it reads the whole body (of the
/// request's `content-length`) when it comes, records it, then answers 200.
pub fn never_100() -> (SocketAddr, Arc<Mutex<Got>>) {
    raw_server(|mut stream, got| {
        let (head, mut body) = read_head(&mut stream);
        let len = content_length(&head);
        read_until(&mut stream, &mut body, |b| b.len() >= len);
        // Recorded before the answer: the test reads it once answered.
        Got::record(got, head, body);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .unwrap();
    })
}

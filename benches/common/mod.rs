//! The benchmarks' server: lean, so that it costs both sides the same.
//! `/hop/N` answers 307 to `/hop/N-1`, and 200 at `/hop/0`; every body is
//! read to the end and dropped.
#![allow(dead_code)] // each benchmark uses its own part

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// When the first body byte of the last `/first/...` request arrived.
pub(crate) static FIRST_BYTE: OnceLock<Mutex<Option<Instant>>> = OnceLock::new();
/// Body bytes the server has read (to check that a run really sent them).
pub(crate) static READ_BYTES: AtomicU64 = AtomicU64::new(0);
/// Connections the server has accepted.
pub(crate) static ACCEPTED: AtomicU64 = AtomicU64::new(0);
/// SHA-256 of each `/digest/hop/N` request's body, by N.
pub(crate) static DIGESTS: Mutex<BTreeMap<u32, String>> = Mutex::new(BTreeMap::new());

/// The piece size of a streamed pattern body.
pub(crate) const PATTERN_CHUNK: usize = 64 * 1024;

/// The pattern's byte at `i`.
pub(crate) fn pattern_byte(i: usize) -> u8 {
    u8::try_from((i * 31 + i / 251) % 251).unwrap_or(0)
}

/// `len` bytes of the benches' pattern from `offset` on: each byte depends on
/// its position, so that a lost, duplicated or reordered chunk changes the
/// digest (a constant byte would not show it).
pub(crate) fn pattern_chunk(offset: usize, len: usize) -> Bytes {
    (offset..offset + len)
        .map(pattern_byte)
        .collect::<Vec<u8>>()
        .into()
}

/// The SHA-256 of the first `len` bytes of the pattern, in hex.
pub(crate) fn pattern_digest(len: usize) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut at = 0;
    while at < len {
        let n = (len - at).min(1 << 20);
        hasher.update(pattern_chunk(at, n));
        at += n;
    }
    hex(&hasher.finalize())
}

/// Both hops of a `/digest/hop/1` chain (the 307 and the replay) had the
/// first `len` bytes of the pattern, exactly; the expected digest, in hex.
pub(crate) fn assert_both_hops_got_the_pattern(len: usize) -> String {
    let expected = pattern_digest(len);
    let digests = DIGESTS.lock().unwrap().clone();
    assert_eq!(
        digests.get(&1),
        Some(&expected),
        "the first hop's body differs"
    );
    assert_eq!(
        digests.get(&0),
        Some(&expected),
        "the replayed body differs"
    );
    expected
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// `/hop/N...`: 307 to `/hop/N-1...`, and 200 at `/hop/0`. The body is read
/// to the end and dropped. `/first/...` also notes the first byte's arrival;
/// `/digest/...` keeps each hop's SHA-256 in [`DIGESTS`]; `/early/...`
/// answers a 307 without reading the body (so hyper sends no 100 to a
/// request with `Expect: 100-continue`).
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    use sha2::Digest as _;
    let path = req.uri().path().to_owned();
    let first = path.starts_with("/first/");
    let mut digest = path.starts_with("/digest/").then(sha2::Sha256::new);
    let (prefix, rest) = path.split_once("/hop/").unwrap_or(("", "0"));
    let n: u32 = rest.split('/').next().unwrap_or("0").parse().unwrap_or(0);
    let early = path.starts_with("/early/") && n > 0;
    let body = req.into_body();
    let mut noted = false;
    if early {
        drop(body);
    } else {
        let mut body = body;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if first && !noted && !data.is_empty() {
                    *FIRST_BYTE.get_or_init(Default::default).lock().unwrap() =
                        Some(Instant::now());
                    noted = true;
                }
                if let Some(hasher) = digest.as_mut() {
                    hasher.update(&data);
                }
                READ_BYTES.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
    }
    if let Some(hasher) = digest {
        DIGESTS.lock().unwrap().insert(n, hex(&hasher.finalize()));
    }
    let mut response = if n == 0 {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    } else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        r.headers_mut().insert(
            "location",
            format!("{prefix}/hop/{}", n - 1).parse().unwrap(),
        );
        r
    };
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().unwrap());
    Ok(response)
}

/// The server, on a runtime thread of its own (one worker: the machine has
/// two cores, one for each side).
pub(crate) fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // The listener is registered inside the runtime, not before it.
        rt.block_on(async move {
            serve(tokio::net::TcpListener::from_std(listener).unwrap()).await;
        });
    });
    addr
}

/// Accept connections on `listener` for ever, each served on a task of its
/// own.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

/// The same server as a task of the current runtime, for instruction
/// counts: on a current-thread runtime, client and server then take turns
/// on one thread in an order that does not depend on the machine, so that a
/// count is the same from one run to the next (with a server thread of its
/// own, how many partial writes a 1 MiB send takes depends on when that
/// thread reads, and the counts vary by thousands).
pub(crate) async fn serve_here() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}

/// CPU time of the runtime's worker thread so far, in ns, read from
/// `/proc/thread-self/schedstat` by a task on that worker. The client's
/// work (this crate, reqwest, hyper's connection tasks) all runs there.
pub(crate) async fn worker_cpu_ns() -> u64 {
    tokio::spawn(async {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

/// The median (sorts `values`).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// "lowest – highest" of per-round ratios.
pub(crate) fn spread(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    format!("{lo:.3} – {hi:.3}")
}

/// The head of the `Expect: 100-continue` latency table (benches `tower` and
/// `ureq`).
pub(crate) fn print_expect_latency_head(rounds: usize) {
    println!("A 16 MiB PUT from memory, no redirect, {rounds} rounds of 10 pairs alternating:\n");
    println!(
        "| server | with `Expect: 100-continue` (default) | without | with ÷ without (spread) |"
    );
    println!("|---|---:|---:|---|");
}

/// The head of the table of bytes a 64 MiB stream puts on the wire through
/// a 307 answered unread (benches `tower` and `ureq`).
pub(crate) fn print_expect_bytes_head() {
    println!("A 64 MiB stream (unknown length) through a 307 answered before the body is read:\n");
    println!(
        "| | outcome | body bytes sent to the redirecting server | bytes read at the target |"
    );
    println!("|---|---|---:|---:|");
}

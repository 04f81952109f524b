//! Issue "A redirected upload sends its body once", on the tower layer over
//! hyper-util's HTTP/1.1 client: `Expect: 100-continue`, the body held back
//! until hyper reports the 100. Over real sockets; each case asserts what
//! every server received, and where a connection is answered before its
//! 100, that it is closed, never left half-written.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redirect_policy::{FollowRedirect, FollowRedirectLayer, History, Policy, ReplayBody};
use support::raw::{never_100, raw_server, read_head, redirect_at_head, reset, Got};
use support::{pattern, upload_stream, BodyEnd, Read, Reply, Server, Upload};
use tower::ServiceExt as _;
use tower_layer::Layer as _;

const MIB: usize = 1024 * 1024;

type Inner = hyper_util::client::legacy::Client<HttpConnector, ReplayBody<Upload>>;

fn service(policy: Policy, h2: bool) -> FollowRedirect<Inner> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http();
    FollowRedirectLayer::new(policy).layer(client)
}

/// A stream of unknown length: it qualifies whatever its size.
fn stream(data: &[u8]) -> Upload {
    upload_stream(data.to_vec(), 64 * 1024, Duration::ZERO)
}

fn full(data: &[u8]) -> Upload {
    Upload::new(Full::new(Bytes::copy_from_slice(data)))
}

async fn send(
    service: &FollowRedirect<Inner>,
    method: Method,
    url: String,
    body: Upload,
) -> Response<Incoming> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap();
    service.clone().oneshot(request).await.unwrap()
}

fn hops(response: &Response<Incoming>) -> usize {
    response
        .extensions()
        .get::<History>()
        .map_or(0, History::len)
}

/// The default policy: a stream goes with the expectation; hyper's server
/// sends 100 when its handler reads, and the body follows, whole.
#[tokio::test]
async fn a_100_then_the_body() {
    let server = Server::start();
    let data = pattern(2 * MIB);
    let service = service(Policy::standard(), false);
    let response = send(&service, Method::PUT, server.url("/up"), stream(&data)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.one_at("/up");
    assert_eq!(seen.header("expect"), Some("100-continue"));
    assert!(seen.body == data, "{} bytes", seen.body.len());
}

/// A body in memory under the threshold goes without it; one at the
/// threshold with it; `no_expect_continue` never; no body, never.
#[tokio::test]
async fn the_threshold_decides_and_the_policy_can_turn_it_off() {
    let server = Server::start();
    for (len, policy, expected) in [
        (MIB - 1, Policy::standard(), None),
        (MIB, Policy::standard(), Some("100-continue")),
        (MIB, Policy::standard().no_expect_continue(), None),
        (0, Policy::standard(), None),
    ] {
        server.clear();
        let data = pattern(len);
        let service = service(policy, false);
        let response = send(&service, Method::POST, server.url("/p"), full(&data)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen = server.one_at("/p");
        assert_eq!(seen.header("expect"), expected, "{len} bytes");
        assert!(seen.body == data);
    }
}

/// A 307 before the 100: no body byte to the redirecting server; the target
/// gets all of it from the source, past a 64 KiB replay cap; the next hop
/// asks again.
#[tokio::test]
async fn a_307_before_the_100_uploads_nothing_and_the_next_hop_sends_it_all() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Nothing));
    let data = pattern(4 * MIB);
    let service = service(Policy::standard().max_replay_body(64 * 1024), false);
    let response = send(&service, Method::PUT, a.url("/a"), stream(&data)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hops(&response), 1);
    let first = a.one_at("/a");
    assert_eq!(first.header("expect"), Some("100-continue"));
    assert!(first.body.is_empty(), "{} bytes", first.body.len());
    let second = b.one_at("/b");
    assert_eq!(second.method, Method::PUT);
    assert_eq!(second.header("expect"), Some("100-continue"));
    assert!(second.body == data, "{} bytes", second.body.len());
    assert_eq!(second.end(), Some(BodyEnd::Complete));
}

/// A body in memory answered 307 before its 100: nothing reaches the
/// redirecting server, and the history says so (0 bytes sent on the first
/// hop, the whole body on the second, all of it replayed from memory).
#[tokio::test]
async fn a_body_in_memory_held_back_counts_nothing_sent() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Nothing));
    let data = pattern(2 * MIB);
    let service = service(Policy::standard(), false);
    let response = send(&service, Method::POST, a.url("/a"), full(&data)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(a.one_at("/a").body.is_empty());
    assert!(b.one_at("/b").body == data);
    let history = response.extensions().get::<History>().unwrap();
    assert_eq!(history.hops()[0].body_bytes_sent(), 0);
}

/// A 401 before the 100: returned, its body whole; nothing uploaded.
#[tokio::test]
async fn a_401_before_the_100_is_returned_with_nothing_uploaded() {
    let server = Server::start();
    server.route(
        "/secret",
        Reply::status(401).read(Read::Nothing).body("who are you?"),
    );
    let service = service(Policy::standard(), false);
    let response = send(
        &service,
        Method::POST,
        server.url("/secret"),
        stream(&pattern(2 * MIB)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(hops(&response), 0);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "who are you?");
    let seen = server.one_at("/secret");
    assert!(seen.body.is_empty(), "{} bytes", seen.body.len());
}

/// What a raw server that answers before the 100 and then keeps the
/// connection open saw after its answer: the bytes, and whether the client
/// closed the connection (within 20 s).
type After = Arc<Mutex<Option<(Vec<u8>, bool)>>>;

fn answer_and_wait(answer: &'static [u8]) -> (String, After) {
    let after: After = Arc::default();
    let seen = Arc::clone(&after);
    let (addr, _) = raw_server(move |mut stream: TcpStream, _: &Mutex<Got>| {
        let _ = read_head(&mut stream);
        stream.write_all(answer).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (mut bytes, mut chunk) = (Vec::new(), [0u8; 4096]);
        let closed = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        *seen.lock().unwrap() = Some((bytes, closed));
    });
    (format!("http://{addr}/secret"), after)
}

/// (Async: the test's runtime must go on running the connection's task.)
async fn closed_with_nothing_sent(after: &After) {
    let until = Instant::now() + Duration::from_secs(25);
    while after.lock().unwrap().is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (bytes, closed) = after.lock().unwrap().take().expect("the server saw no end");
    assert!(bytes.is_empty(), "{} body bytes were sent", bytes.len());
    assert!(closed, "the connection was left half-written");
}

/// A final answer with no body, from a server that keeps the connection
/// open: the client closes it at once (nothing to read), never half-written.
#[tokio::test]
async fn a_final_answer_without_a_body_closes_the_connection() {
    let (url, after) = answer_and_wait(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
    let service = service(Policy::standard(), false);
    let started = Instant::now();
    let response = send(&service, Method::PUT, url, stream(&pattern(2 * MIB))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    closed_with_nothing_sent(&after).await;
    eprintln!("closed after {:?}", started.elapsed());
}

/// A final answer with a body: the caller reads it whole; the connection
/// is closed after the linger (30 waits: 1.5 s here), nothing sent.
#[tokio::test]
async fn a_final_answer_with_a_body_is_read_whole_then_the_connection_closes() {
    let (url, after) =
        answer_and_wait(b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 9\r\n\r\ntoo large");
    let policy = Policy::standard().expect_continue(MIB as u64, Duration::from_millis(50));
    let service = service(policy, false);
    let response = send(&service, Method::PUT, url, stream(&pattern(2 * MIB))).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Read a moment later: the body is not cut by the held request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "too large");
    closed_with_nothing_sent(&after).await;
}

/// A server that never sends 100: the wait passes and the body follows.
#[tokio::test]
async fn a_server_that_never_sends_100_gets_the_body_after_the_wait() {
    let (addr, got) = never_100();
    let data = pattern(2 * MIB);
    let policy = Policy::standard().expect_continue(MIB as u64, Duration::from_millis(200));
    let service = service(policy, false);
    let response = send(
        &service,
        Method::PUT,
        format!("http://{addr}/up"),
        full(&data),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let got = got.lock().unwrap();
    assert!(got.heads[0]
        .to_ascii_lowercase()
        .contains("expect: 100-continue"));
    assert!(got.bodies[0] == data, "{} bytes", got.bodies[0].len());
}

/// A 417: once more without the expectation, the body whole.
#[tokio::test]
async fn a_417_sends_the_request_once_more_without_the_expectation() {
    let server = Server::start();
    server.route_seq(
        "/strict",
        vec![Reply::status(417).read(Read::Nothing), Reply::ok()],
    );
    let data = pattern(2 * MIB);
    let service = service(Policy::standard(), false);
    let response = send(&service, Method::PUT, server.url("/strict"), stream(&data)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.seen_at("/strict");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("expect"), Some("100-continue"));
    assert!(seen[0].body.is_empty());
    assert_eq!(seen[1].header("expect"), None);
    assert!(seen[1].body == data, "{} bytes", seen[1].body.len());
}

/// A 100 and then an early 307 mid-body: the prefix-then-rest rule; the
/// target gets the body whole, the first hop whole or aborted.
#[tokio::test]
async fn a_100_then_an_early_307_mid_body_sends_the_rest_from_the_source() {
    let server = Server::start();
    server.route(
        "/a",
        Reply::early_307("/b", 64 * 1024, Duration::from_millis(100)),
    );
    let data = pattern(2 * MIB);
    let service = service(Policy::standard(), false);
    let response = send(&service, Method::POST, server.url("/a"), stream(&data)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = server.one_at("/a");
    assert_eq!(first.header("expect"), Some("100-continue"));
    assert!(support::wait_until(Duration::from_secs(10), || first
        .end()
        .is_some()));
    first.assert_whole_or_aborted(&data, "the first hop");
    assert!(server.one_at("/b").body == data);
}

/// A 307 to the head and at once `close` (haproxy's `http-request redirect
/// code 307`): no body byte was written, so there is no broken pipe to
/// report; the 307 is followed and the target gets the body whole, five
/// uploads in a row.
async fn a_307_to_the_head_then(close: fn(TcpStream)) {
    let target = Server::start();
    let (addr, got) = redirect_at_head(&target.url("/landing"), close);
    let data = pattern(4 * MIB);
    let service = service(Policy::standard(), false);
    for _ in 0..5 {
        target.clear();
        let response = send(
            &service,
            Method::PUT,
            format!("http://{addr}/v1/upload"),
            stream(&data),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let landed = target.one_at("/landing");
        assert!(landed.body == data, "{} bytes", landed.body.len());
    }
    let got = got.lock().unwrap();
    assert_eq!(got.bodies.len(), 5);
    assert!(got.bodies.iter().all(Vec::is_empty));
}

#[tokio::test]
async fn a_307_to_the_head_and_a_close_is_followed() {
    a_307_to_the_head_then(drop).await;
}

#[tokio::test]
async fn a_307_to_the_head_and_a_reset_is_followed() {
    a_307_to_the_head_then(reset).await;
}

/// Over HTTP/2 (h2c, `http2_only`) hyper reports no 1xx: the first request
/// carries the header (the request's version does not say HTTP/2) but its
/// body does not wait (hyper drops the 1xx callback as it sends the head);
/// from the first HTTP/2 answer on, the service asks no more. The wait is
/// ten minutes: a body held for it would stall the test, which fails at
/// 60 s instead.
#[tokio::test]
async fn over_http2_no_body_waits_and_the_layer_stops_asking() {
    let server = Server::start();
    let data = pattern(2 * MIB);
    let policy = Policy::standard().expect_continue(MIB as u64, Duration::from_secs(600));
    let service = service(policy, true);
    for _ in 0..2 {
        let sent = send(&service, Method::PUT, server.url("/h2"), stream(&data));
        let response = tokio::time::timeout(Duration::from_secs(10), sent)
            .await
            .expect("a body was held back over HTTP/2");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_2);
    }
    let seen = server.seen_at("/h2");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("expect"), Some("100-continue"));
    assert_eq!(seen[1].header("expect"), None);
    assert!(seen.iter().all(|s| s.body == data));
}

//! The blocking client: same engine, no async in the caller.
#![cfg(feature = "blocking")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use http::{Method, StatusCode};
use redirect_policy::{blocking, ErrorKind, Policy};
use support::{Reply, Server};

#[test]
fn blocking_client_replays_and_strips_like_the_async_one() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    let client = blocking::Client::new(Policy::standard());
    let response = client
        .put(a.url("/a"))
        .bearer_auth("secret")
        .body(support::pattern(100_000))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.history().unwrap().len(), 1);
    assert_eq!(response.text().unwrap(), "ok");
    let seen = b.one_at("/b");
    assert_eq!(seen.method, Method::PUT);
    assert_eq!(seen.body, support::pattern(100_000));
    assert_eq!(seen.header("authorization"), None);
}

#[test]
fn blocking_client_reports_typed_errors() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/a"));
    let err = blocking::Client::new(Policy::standard())
        .get(a.url("/a"))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectLoop);
}

/// Issue "The chain's deadline", item 2: a 307, then a 200 whose body stalls
/// past the request's timeout. `bytes()` and `text()` fail as `Timeout` (not
/// `Request`), with the chain's history. Loose timing: only that it ended
/// well before the stall would have.
#[test]
fn a_stalled_final_body_is_a_timeout_with_the_history() {
    use std::time::{Duration, Instant};
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    a.route(
        "/b",
        Reply::ok()
            .body("0123456789")
            .body_after(Duration::from_secs(5)),
    );
    let client = blocking::Client::new(Policy::standard());
    for read in ["bytes", "text"] {
        let started = Instant::now();
        let response = client
            .get(a.url("/a"))
            .timeout(Duration::from_secs(1))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let err = match read {
            "bytes" => response.bytes().map(|_| ()).unwrap_err(),
            _ => response.text().map(|_| ()).unwrap_err(),
        };
        assert_eq!(err.kind(), ErrorKind::Timeout, "{read}: {err}");
        assert!(err.is_timeout(), "{read}");
        assert_eq!(err.history().len(), 1, "{read}: the chain's history");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{read}: ended at the deadline"
        );
    }
}

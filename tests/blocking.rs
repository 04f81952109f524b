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

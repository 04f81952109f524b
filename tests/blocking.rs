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

/// A reader of unknown length (chunked) through a 308: read on the blocking
/// threads as it goes out, kept, and replayed whole (with its length, known
/// by then).
#[test]
fn a_reader_goes_through_a_308_whole() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(308, b.url("/b")));
    let data = support::pattern(700_000);
    let response = blocking::Client::new(Policy::standard())
        .post(a.url("/a"))
        .body(blocking::Body::new(std::io::Cursor::new(data.clone())))
        .send()
        .unwrap();
    assert_eq!(response.history().unwrap().len(), 1);
    for seen in [a.one_at("/a"), b.one_at("/b")] {
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.body.len(), data.len());
        assert!(seen.body == data, "{}", support::sha256(&seen.body));
    }
    // The first hop does not know the length; the replay does, whole.
    assert_eq!(a.one_at("/a").header("transfer-encoding"), Some("chunked"));
    assert_eq!(b.one_at("/b").header("content-length"), Some("700000"));
}

/// A sized reader is sent with its Content-Length at every hop; one that
/// ends short fails the request, and no hop gets a truncated body framed as
/// whole.
#[test]
fn a_sized_reader_keeps_its_length_and_a_short_one_fails() {
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    let client = blocking::Client::new(Policy::standard());
    let data = support::pattern(100_000);
    client
        .put(a.url("/a"))
        .body(blocking::Body::sized(
            std::io::Cursor::new(data.clone()),
            100_000,
        ))
        .send()
        .unwrap();
    for path in ["/a", "/b"] {
        let seen = a.one_at(path);
        assert_eq!(seen.body, data, "{path}");
        assert_eq!(seen.header("content-length"), Some("100000"), "{path}");
    }
    a.clear();
    let err = client
        .put(a.url("/a"))
        .body(blocking::Body::sized(
            std::io::Cursor::new(data.clone()),
            200_000,
        ))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request, "{err:?}");
    assert!(
        a.seen_at("/b").is_empty(),
        "nothing is replayed after a short body"
    );
}

#[test]
fn the_response_is_read_with_read_and_says_its_length() {
    use std::io::Read as _;
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    a.route("/b", Reply::ok().body(support::pattern(200_000)));
    let mut response = blocking::Client::new(Policy::standard())
        .get(a.url("/a"))
        .send()
        .unwrap();
    assert_eq!(response.content_length(), Some(200_000));
    let mut head = [0; 10];
    response.read_exact(&mut head).unwrap();
    let mut rest = Vec::new();
    response.read_to_end(&mut rest).unwrap();
    let mut whole = head.to_vec();
    whole.extend_from_slice(&rest);
    assert!(whole == support::pattern(200_000));

    // copy_to, and bytes() after a partial read, give the rest.
    let mut response = blocking::Client::new(Policy::standard())
        .get(a.url("/b"))
        .send()
        .unwrap();
    response.read_exact(&mut head).unwrap();
    let mut sink = Vec::new();
    assert_eq!(response.copy_to(&mut sink).unwrap(), 199_990);
    assert!(sink == support::pattern(200_000)[10..]);
}

#[test]
fn error_for_status_on_a_404_after_a_redirect() {
    let a = Server::start();
    a.route("/a", Reply::redirect(301, "/missing"));
    a.route("/missing", Reply::status(404));
    let client = blocking::Client::new(Policy::standard());
    let response = client.get(a.url("/a")).send().unwrap();
    assert!(response.error_for_status_ref().is_err());
    let err = response.error_for_status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.history().len(), 1);
    assert_eq!(err.url().unwrap().path(), "/missing");
    let ok = client.get(a.url("/b")).send().unwrap();
    assert_eq!(ok.error_for_status().unwrap().text().unwrap(), "ok");
}

#[cfg(feature = "json")]
#[test]
fn blocking_json_both_ways() {
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    a.route("/b", Reply::ok().body(r#"{"id":1}"#));
    let client = blocking::Client::new(Policy::standard());
    let builder = client
        .post(a.url("/a"))
        .json(&serde_json::json!({"x": [1, 2]}));
    let copy = builder.try_clone().unwrap();
    let value: serde_json::Value = builder.send().unwrap().json().unwrap();
    assert_eq!(value["id"], 1);
    assert_eq!(a.one_at("/b").body, br#"{"x":[1,2]}"#);
    let err = copy.send().unwrap().json::<Vec<u8>>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.history().len(), 1);
    // A reader cannot be cloned.
    let reader = client
        .post(a.url("/a"))
        .body(blocking::Body::new(std::io::empty()));
    assert!(reader.try_clone().is_none());
}

/// A body read that times out through `Read` is an `io::Error` of kind
/// `TimedOut` wrapping the crate's `Timeout`, with the history.
#[test]
fn a_stalled_body_read_through_read_times_out() {
    use std::io::Read as _;
    use std::time::Duration;
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    a.route(
        "/b",
        Reply::ok()
            .header("content-length", "4")
            .body("late")
            .body_after(Duration::from_secs(5)),
    );
    let mut response = blocking::Client::new(Policy::standard())
        .get(a.url("/a"))
        .timeout(Duration::from_millis(700))
        .send()
        .unwrap();
    let mut buf = Vec::new();
    let err = response.read_to_end(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    let inner = err.into_inner().unwrap();
    let inner = inner.downcast::<redirect_policy::Error>().unwrap();
    assert_eq!(inner.kind(), ErrorKind::Timeout);
    assert_eq!(inner.history().len(), 1);
}

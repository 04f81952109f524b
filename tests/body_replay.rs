//! Spec §3 on a real server: streamed bodies replayed through 307/308, the
//! early 3xx, the replay cap, and failed streams.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::{BodyAction, Client, ErrorKind, History, Policy, UnreplayableBody};
use support::{pattern, slow_stream, Read, Reply, Server};

#[tokio::test]
async fn streamed_body_is_replayed_byte_identical_through_307_and_308() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    server.route("/b", Reply::redirect(308, "/c"));
    let body = pattern(1024 * 1024 + 17);
    let response = Client::new(Policy::standard())
        .post(server.url("/a"))
        .header("content-type", "application/octet-stream")
        .body(slow_stream(body.clone(), 16 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for path in ["/a", "/b", "/c"] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::POST, "{path}");
        assert_eq!(seen.body.len(), body.len(), "{path}");
        assert!(seen.body == body, "{path}: body differs");
        assert_eq!(
            seen.header("content-type"),
            Some("application/octet-stream")
        );
    }
    let history = response.extensions().get::<History>().unwrap();
    assert!(history.iter().all(|h| h.body() == BodyAction::Replayed));
}

#[tokio::test]
async fn plain_reqwest_returns_the_307_for_a_streamed_body() {
    // The gap this crate closes: reqwest cannot replay a stream, so it hands
    // the 307 back as if it were the answer.
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let response = reqwest::Client::new()
        .post(server.url("/a"))
        .body(slow_stream(pattern(4096), 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(server.seen_at("/b").is_empty());
}

#[tokio::test]
async fn early_3xx_replays_the_sent_prefix_then_the_unsent_rest() {
    let server = Server::start();
    // The server reads 64 KiB of a slow 4 MiB upload, then answers 307.
    server.route(
        "/a",
        Reply::redirect(307, "/b").read(Read::Prefix(64 * 1024)),
    );
    let body = pattern(4 * 1024 * 1024);
    let response = Client::new(Policy::standard())
        .put(server.url("/a"))
        .body(slow_stream(
            body.clone(),
            32 * 1024,
            Duration::from_millis(2),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = server.one_at("/a");
    assert!(first.body.len() < body.len(), "the server stopped early");
    assert_eq!(first.body[..], body[..first.body.len()]);
    let landed = server.one_at("/b");
    assert_eq!(landed.method, Method::PUT);
    assert_eq!(landed.body.len(), body.len());
    assert!(landed.body == body, "no byte lost, duplicated or reordered");
}

#[tokio::test]
async fn early_3xx_before_any_byte_was_read() {
    let server = Server::start();
    server.route("/a", Reply::redirect(308, "/b").read(Read::Prefix(0)));
    let body = pattern(3 * 1024 * 1024 + 5);
    Client::new(Policy::standard())
        .post(server.url("/a"))
        .body(slow_stream(
            body.clone(),
            64 * 1024,
            Duration::from_millis(1),
        ))
        .send()
        .await
        .unwrap();
    let landed = server.one_at("/b");
    assert!(landed.body == body);
}

#[tokio::test]
async fn stream_over_the_cap_is_a_typed_error_and_nothing_truncated_is_sent() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let body = pattern(256 * 1024);
    let err = Client::new(Policy::standard().max_replay_body(64 * 1024))
        .post(server.url("/a"))
        .body(slow_stream(body.clone(), 16 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyNotReplayable);
    assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));
    assert_eq!(err.location().unwrap(), "/b");
    assert_eq!(err.url().unwrap().path(), "/b");
    let text = err.to_string();
    assert!(text.contains("max_replay_body"), "{text}");
    assert_eq!(server.one_at("/a").body, body, "the first send was whole");
    assert!(server.seen_at("/b").is_empty(), "no empty or cut body sent");
}

#[tokio::test]
async fn stream_over_the_cap_can_return_the_redirect_instead() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let policy = Policy::standard()
        .max_replay_body(0)
        .unreplayable_body(UnreplayableBody::ReturnRedirect);
    let response = Client::new(policy)
        .post(server.url("/a"))
        .body(slow_stream(pattern(1000), 100, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(server.seen_at("/b").is_empty());
}

#[tokio::test]
async fn stream_over_the_cap_is_fine_when_the_hop_drops_the_body() {
    let server = Server::start();
    server.route("/a", Reply::redirect(303, "/b"));
    let response = Client::new(Policy::standard().max_replay_body(10))
        .post(server.url("/a"))
        .body(slow_stream(pattern(1000), 100, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let landed = server.one_at("/b");
    assert_eq!(landed.method, Method::GET);
    assert!(landed.body.is_empty());
}

#[tokio::test]
async fn stream_exactly_at_the_cap_is_replayed() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let body = pattern(4096);
    Client::new(Policy::standard().max_replay_body(4096))
        .post(server.url("/a"))
        .body(slow_stream(body.clone(), 1000, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(server.one_at("/b").body, body);
}

#[tokio::test]
async fn failed_stream_is_never_replayed() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b").read(Read::Prefix(0)));
    let stream = futures_util::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"first")),
        Err(std::io::Error::other("disk gone")),
    ]);
    let result = Client::new(Policy::standard())
        .post(server.url("/a"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // Either the send itself fails (the stream error aborts it) or the 307
    // arrives first and the replay is refused; never a truncated body at /b.
    let err = result.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BodyNotReplayable | ErrorKind::Request
        ),
        "{err:?}"
    );
    assert!(server.seen_at("/b").is_empty());
}

#[tokio::test]
async fn in_memory_bodies_of_every_kind_are_replayed() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let client = Client::new(Policy::standard());
    let json = serde_like_json();
    let cases: Vec<(&str, reqwest::Body, Vec<u8>)> = vec![
        (
            "bytes",
            bytes::Bytes::from_static(b"b").into(),
            b"b".to_vec(),
        ),
        ("string", String::from("s").into(), b"s".to_vec()),
        ("vec", vec![0u8, 255, 1].into(), vec![0, 255, 1]),
        ("static", "static".into(), b"static".to_vec()),
        ("empty", Vec::<u8>::new().into(), Vec::new()),
        ("json", json.clone().into(), json.into_bytes()),
    ];
    for (name, body, expected) in cases {
        server.clear();
        client
            .post(server.url("/a"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(server.one_at("/b").body, expected, "{name}");
    }
    server.clear();
    client
        .post(server.url("/a"))
        .with_reqwest(|b| b.json(&[1, 2, 3]))
        .send()
        .await
        .unwrap();
    let landed = server.one_at("/b");
    assert_eq!(landed.body, b"[1,2,3]");
    assert_eq!(landed.header("content-type"), Some("application/json"));
}

fn serde_like_json() -> String {
    r#"{"k":"v","n":[1,2,3]}"#.to_owned()
}

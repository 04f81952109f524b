//! Replays over HTTP/2 (h2c with prior knowledge): same bytes, same rules.
#![cfg(feature = "http2")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{Method, StatusCode, Version};
use redirect_policy::{Client, History, Policy};
use support::{pattern, slow_stream, Read, Reply, Server};

fn h2_client() -> Client {
    Client::from_builder(
        reqwest::Client::builder().http2_prior_knowledge(),
        Policy::standard(),
    )
    .unwrap()
}

#[tokio::test]
async fn streamed_body_through_307_and_308_over_http2() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    b.route("/b", Reply::redirect(308, "/c"));
    let body = pattern(2 * 1024 * 1024 + 3);
    let response = h2_client()
        .post(a.url("/a"))
        .bearer_auth("secret")
        .body(slow_stream(body.clone(), 64 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.extensions().get::<History>().unwrap().len(), 2);
    for (server, path) in [(&b, "/b"), (&b, "/c")] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::POST);
        assert!(seen.body == body, "{path}: body differs");
        assert_eq!(seen.header("authorization"), None);
    }
}

#[tokio::test]
async fn early_3xx_over_http2_replays_prefix_then_rest() {
    let a = Server::start();
    a.route(
        "/a",
        Reply::redirect(307, "/b").read(Read::Prefix(64 * 1024)),
    );
    let body = pattern(4 * 1024 * 1024);
    let response = h2_client()
        .put(a.url("/a"))
        .body(slow_stream(
            body.clone(),
            32 * 1024,
            Duration::from_millis(2),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        a.one_at("/a").body.len() < body.len(),
        "the server stopped early"
    );
    let landed = a.one_at("/b");
    assert_eq!(landed.method, Method::PUT);
    assert!(landed.body == body, "no byte lost, duplicated or reordered");
}

#[tokio::test]
async fn post_to_get_over_http2_drops_body_and_its_headers() {
    let a = Server::start();
    a.route("/a", Reply::redirect(303, "/b"));
    h2_client()
        .post(a.url("/a"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    let landed = a.one_at("/b");
    assert_eq!(landed.method, Method::GET);
    assert!(landed.body.is_empty());
    assert_eq!(landed.header("content-type"), None);
}

//! Spec §6 and hostile input on real servers: loops, limits, long chains,
//! big redirect bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::StatusCode;
use redirect_policy::{Client, ErrorKind, History, Policy};
use support::{Reply, Server};

#[tokio::test]
async fn a_proven_loop_fails_fast() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b"));
    server.route("/b", Reply::redirect(302, "/a"));
    let err = Client::new(Policy::standard().max_redirects(1000))
        .get(server.url("/a"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectLoop);
    assert!(err.to_string().contains("redirect loop"), "{err}");
    assert_eq!(err.history().len(), 2);
    assert_eq!(
        server.seen().len(),
        3,
        "a -> b -> a, then stop: not 1000 requests"
    );
}

#[tokio::test]
async fn a_cookie_setting_self_redirect_is_not_a_loop() {
    // A login pattern: the same URL redirects to itself while it sets cookies.
    let server = Server::start();
    server.route(
        "/login",
        Reply::redirect(302, "/login").header("set-cookie", "step=1"),
    );
    let err = Client::new(Policy::standard().max_redirects(4))
        .get(server.url("/login"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects, "{err}");
    assert_eq!(err.history().len(), 4);
    assert_eq!(server.seen().len(), 5);
}

#[tokio::test]
async fn default_limit_is_ten() {
    let server = Server::start();
    for i in 0..20 {
        server.route(
            &format!("/{i}"),
            Reply::redirect(307, format!("/{}", i + 1)),
        );
    }
    let err = Client::new(Policy::default())
        .get(server.url("/0"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(err.history().len(), 10);
    assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));
    assert_eq!(err.location().unwrap(), "/11");
    let ok = Client::new(Policy::default())
        .get(server.url("/10"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.extensions().get::<History>().unwrap().len(), 10);
}

#[tokio::test]
async fn a_3xx_with_a_large_body_is_followed_without_reading_it() {
    let server = Server::start();
    server.route(
        "/a",
        Reply::redirect(307, "/b").body(vec![b'x'; 16 * 1024 * 1024]),
    );
    let response = Client::new(Policy::standard())
        .post(server.url("/a"))
        .body("payload")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(server.one_at("/b").body, b"payload");
}

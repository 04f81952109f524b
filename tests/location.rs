//! Spec §5 on a real server: how a Location becomes the next request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use http::{Method, StatusCode};
use redirect_policy::{Client, ErrorKind, History, Policy};
use support::{Reply, Server};

fn client() -> Client {
    Client::new(Policy::standard())
}

async fn landed_target(location: &[u8]) -> String {
    let server = Server::start();
    server.route("/dir/sub/start?x=1", Reply::redirect(302, location));
    let response = client()
        .get(server.url("/dir/sub/start?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        location.escape_ascii()
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    seen[1].target.clone()
}

#[tokio::test]
async fn relative_locations_resolve_against_the_url_that_answered() {
    let cases: [(&[u8], &str); 7] = [
        (b"/abs", "/abs"),
        (b"rel", "/dir/sub/rel"),
        (b"../up", "/dir/up"),
        (b"../../../../../root", "/root"),
        (b"?q=2", "/dir/sub/start?q=2"),
        (b"./same?x=%20y", "/dir/sub/same?x=%20y"),
        (b"/a b", "/a%20b"),
    ];
    for (location, want) in cases {
        assert_eq!(
            landed_target(location).await,
            want,
            "{}",
            location.escape_ascii()
        );
    }
}

#[tokio::test]
async fn non_ascii_bytes_are_percent_encoded_not_rejected() {
    assert_eq!(landed_target(b"/caf\xff").await, "/caf%FF");
    assert_eq!(landed_target("/☃".as_bytes()).await, "/%E2%98%83");
    assert_eq!(landed_target(b"/q?\xe9=1").await, "/q?%E9=1");
}

#[tokio::test]
async fn scheme_relative_and_triple_slash_forms_reach_the_named_host() {
    let a = Server::start();
    let b = Server::start();
    a.route(
        "/1",
        Reply::redirect(302, format!("//127.0.0.1:{}/two", b.port())),
    );
    a.route(
        "/2",
        Reply::redirect(302, format!("http:///127.0.0.1:{}/three", b.port())),
    );
    for path in ["/1", "/2"] {
        let response = client().get(a.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(b.one_at("/two").method, Method::GET);
    assert_eq!(b.one_at("/three").method, Method::GET);
}

#[tokio::test]
async fn missing_or_empty_location_returns_the_3xx_with_history() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/missing"));
    server.route("/missing", Reply::status(302));
    server.route("/b", Reply::redirect(301, "/empty"));
    server.route("/empty", Reply::redirect(302, ""));
    for (start, last) in [("/a", "/missing"), ("/b", "/empty")] {
        let response = client().get(server.url(start)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.url().path(), last);
        let history = response.extensions().get::<History>().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history.last().unwrap().next_url().path(), last);
    }
}

#[tokio::test]
async fn identical_duplicate_locations_are_followed() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b").location("/b"));
    let response = client().get(server.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.one_at("/b").method, Method::GET);
}

#[tokio::test]
async fn different_duplicate_locations_are_invalid() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b").location("/c"));
    let err = client().get(server.url("/a")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidLocation);
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    assert!(err.to_string().contains("several fields"), "{err}");
    assert_eq!(err.url().unwrap().path(), "/a");
    assert_eq!(server.seen().len(), 1, "nothing more was sent");
}

#[tokio::test]
async fn unparseable_location_is_invalid_and_shows_the_raw_value_escaped() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, b"http://[::1\xff"));
    let err = client().get(server.url("/a")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidLocation);
    assert_eq!(err.location().unwrap().as_bytes(), b"http://[::1\xff");
    let text = err.to_string();
    assert!(text.contains(r#""http://[::1\xff""#), "{text}");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn fragment_is_inherited_reported_and_never_sent() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b"));
    server.route("/c", Reply::redirect(302, "/d#own"));
    let response = client().get(server.url("/a#frag")).send().await.unwrap();
    assert_eq!(response.url().path(), "/b");
    assert_eq!(response.url().fragment(), Some("frag"));
    assert_eq!(server.one_at("/b").target, "/b");
    let response = client().get(server.url("/c#frag")).send().await.unwrap();
    assert_eq!(response.url().fragment(), Some("own"));
    assert_eq!(server.one_at("/d").target, "/d");
}

#[tokio::test]
async fn userinfo_in_a_location_is_removed() {
    let server = Server::start();
    server.route(
        "/a",
        Reply::redirect(
            302,
            format!("http://user:pass@127.0.0.1:{}/b", server.port()),
        ),
    );
    let response = client().get(server.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.url().username(), "");
    let landed = server.one_at("/b");
    assert_eq!(
        landed.header("authorization"),
        None,
        "no credentials from the Location"
    );
}

#[tokio::test]
async fn a_60_kib_location_is_followed() {
    let server = Server::start();
    let long = format!("/b?{}", "a".repeat(60 * 1024));
    server.route("/a", Reply::redirect(302, long.as_bytes()));
    let response = client().get(server.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.one_at("/b").target, long);
}

#[tokio::test]
async fn a_64_kib_location_is_too_long_to_send_and_says_so() {
    let server = Server::start();
    let long = format!("/b?{}", "a".repeat(64 * 1024));
    server.route("/a", Reply::redirect(302, long.as_bytes()));
    let err = client().get(server.url("/a")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidLocation);
    let text = err.to_string();
    assert!(text.contains("longer than"), "{text}");
    assert!(
        text.len() < 1024,
        "the message stays readable: {} bytes",
        text.len()
    );
    assert!(format!("{err:?}").len() < 1024);
    assert_eq!(server.seen().len(), 1, "nothing more was sent");
}

#[tokio::test]
async fn other_schemes_are_refused_and_nothing_more_is_sent() {
    let server = Server::start();
    let targets = [
        "file:///etc/passwd",
        "data:text/plain,hi",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "custom-app://open",
    ];
    for (i, target) in targets.iter().enumerate() {
        server.route(&format!("/s{i}"), Reply::redirect(307, *target));
    }
    for (i, target) in targets.iter().enumerate() {
        server.clear();
        let err = client()
            .post(server.url(&format!("/s{i}")))
            .body("secret body")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SchemeNotAllowed, "{target}");
        assert!(err.to_string().contains("only http and https"), "{err}");
        assert_eq!(server.seen().len(), 1, "{target}");
    }
}

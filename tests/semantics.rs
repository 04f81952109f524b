//! Spec §1 and §2 on a real server: method and body per status, for every
//! preset, and the body headers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use http::{Method, StatusCode};
use redirect_policy::{BodyAction, Client, History, MethodRule, Policy};
use support::spec::{keeps, methods, STATUSES};
use support::{Reply, Server};

#[tokio::test]
async fn spec_table_for_every_preset_status_and_method() {
    let server = Server::start();
    for status in STATUSES {
        server.route(&format!("/s{status}"), Reply::redirect(status, "/landed"));
    }
    let presets = [
        ("standard", Policy::standard()),
        ("strict", Policy::strict()),
        ("legacy", Policy::legacy()),
    ];
    let mut checked = 0;
    for (name, policy) in presets {
        let client = Client::new(policy);
        for status in STATUSES {
            for method in methods() {
                server.clear();
                let body = format!("body of {method} through {status} ({name})").into_bytes();
                let response = client
                    .request(method.clone(), server.url(&format!("/s{status}")))
                    .header("content-type", "text/x-test")
                    .header("content-language", "en")
                    .header("x-keep", "1")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let first = server.one_at(&format!("/s{status}"));
                assert_eq!(first.method, method);
                assert_eq!(first.body, body);

                let landed = server.one_at("/landed");
                let history = response.extensions().get::<History>().unwrap();
                let hop = history.iter().next().unwrap();
                let case = format!("{name} {status} {method}");
                if keeps(name, status, &method) {
                    assert_eq!(landed.method, method, "{case}");
                    assert_eq!(landed.body, body, "{case}: body replayed byte for byte");
                    assert_eq!(landed.header("content-type"), Some("text/x-test"), "{case}");
                    assert_eq!(
                        landed.header("content-length"),
                        Some(body.len().to_string().as_str())
                    );
                    assert_eq!(hop.body(), BodyAction::Replayed, "{case}");
                } else {
                    assert_eq!(landed.method, Method::GET, "{case}");
                    assert!(landed.body.is_empty(), "{case}: body dropped");
                    for name in [
                        "content-type",
                        "content-language",
                        "content-length",
                        "transfer-encoding",
                    ] {
                        assert_eq!(landed.header(name), None, "{case}: {name} dropped");
                    }
                    assert_eq!(hop.body(), BodyAction::Dropped, "{case}");
                    assert!(hop.stripped_headers().iter().any(|h| h == "content-type"));
                }
                assert_eq!(
                    landed.header("x-keep"),
                    Some("1"),
                    "{case}: other headers stay"
                );
                assert_eq!(hop.status().as_u16(), status);
                assert_eq!(hop.method(), method);
                assert_eq!(*hop.next_method(), landed.method);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 9);
}

#[tokio::test]
async fn methods_compare_byte_exact() {
    let server = Server::start();
    server.route("/s302", Reply::redirect(302, "/landed"));
    let lower_post = Method::from_bytes(b"post").unwrap();
    let client = Client::new(Policy::standard());
    client
        .request(lower_post.clone(), server.url("/s302"))
        .body("kept")
        .send()
        .await
        .unwrap();
    let landed = server.one_at("/landed");
    assert_eq!(landed.method, lower_post, "`post` is not `POST`");
    assert_eq!(landed.body, b"kept");
}

#[tokio::test]
async fn other_3xx_are_returned_as_they_are() {
    let server = Server::start();
    for status in [300u16, 304, 305, 306, 399] {
        server.route(&format!("/s{status}"), Reply::redirect(status, "/landed"));
    }
    let client = Client::new(Policy::standard());
    for status in [300u16, 304, 305, 306, 399] {
        let response = client
            .post(server.url(&format!("/s{status}")))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.extensions().get::<History>().unwrap().len(), 0);
    }
    assert!(server.seen_at("/landed").is_empty());
}

#[tokio::test]
async fn policy_none_returns_the_first_redirect() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/landed"));
    let response = Client::new(Policy::none())
        .post(server.url("/a"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.headers()["location"], "/landed");
    assert!(server.seen_at("/landed").is_empty());
}

#[tokio::test]
async fn per_status_override_reproduces_curl_post302() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/landed"));
    let policy = Policy::standard().rule(StatusCode::FOUND, MethodRule::Preserve);
    Client::new(policy)
        .post(server.url("/a"))
        .body("form=1")
        .send()
        .await
        .unwrap();
    let landed = server.one_at("/landed");
    assert_eq!(landed.method, Method::POST);
    assert_eq!(landed.body, b"form=1");
}

#[tokio::test]
async fn dropped_body_never_comes_back_on_later_hops() {
    let server = Server::start();
    // POST -> 303 -> GET∅, then 307 and 308 keep GET and must not revive the body.
    server.route("/a", Reply::redirect(303, "/b"));
    server.route("/b", Reply::redirect(307, "/c"));
    server.route("/c", Reply::redirect(308, "/d"));
    let response = Client::new(Policy::standard())
        .post(server.url("/a"))
        .header("content-type", "application/json")
        .body(r#"{"secret":"payload"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for path in ["/b", "/c", "/d"] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::GET, "{path}");
        assert!(seen.body.is_empty(), "{path}");
        assert_eq!(seen.header("content-type"), None, "{path}");
        assert_eq!(seen.header("content-length"), None, "{path}");
    }
    let history = response.extensions().get::<History>().unwrap();
    let actions: Vec<_> = history.iter().map(redirect_policy::Hop::body).collect();
    assert_eq!(
        actions,
        [
            BodyAction::Dropped,
            BodyAction::Dropped,
            BodyAction::Dropped
        ]
    );
}

#[tokio::test]
async fn replay_survives_a_multi_hop_chain_of_307_and_308() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    server.route("/b", Reply::redirect(308, "/c"));
    server.route("/c", Reply::redirect(301, "/d")); // PUT is kept on 301 (standard)
    let body = support::pattern(256 * 1024);
    Client::new(Policy::standard())
        .put(server.url("/a"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    for path in ["/a", "/b", "/c", "/d"] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::PUT, "{path}");
        assert_eq!(seen.body, body, "{path}");
    }
}

#[tokio::test]
async fn body_headers_listed_in_the_spec_are_all_dropped() {
    let server = Server::start();
    server.route("/a", Reply::redirect(303, "/b"));
    let body_headers = [
        ("content-type", "text/plain"),
        ("content-encoding", "identity"),
        ("content-language", "en"),
        ("content-location", "/x"),
        ("digest", "sha-256=abc"),
        ("content-digest", "sha-256=:abc:"),
        ("repr-digest", "sha-256=:abc:"),
    ];
    let mut request = Client::new(Policy::standard())
        .post(server.url("/a"))
        .body("abc");
    for (name, value) in body_headers {
        request = request.header(name, value);
    }
    request.header("x-trace", "t1").send().await.unwrap();
    let first = server.one_at("/a");
    let landed = server.one_at("/b");
    for (name, value) in body_headers {
        assert_eq!(first.header(name), Some(value));
        assert_eq!(landed.header(name), None, "{name}");
    }
    assert_eq!(landed.header("x-trace"), Some("t1"));
}

//! The tower layer over hyper-util's client, on real servers: the same rules
//! and the same body guarantees as the reqwest path, checked at every hop.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redirect_policy::{
    BodyAction, BoxError, Error, ErrorKind, FollowRedirect, FollowRedirectLayer, History, Policy,
    ReplayBody,
};
use support::spec::{keeps, methods, STATUSES};
use support::{pattern, upload_stream as stream, Read, Reply, Server, Upload};
use tower::{ServiceBuilder, ServiceExt as _};

type Inner = hyper_util::client::legacy::Client<HttpConnector, ReplayBody<Upload>>;

fn hyper_client(h2: bool) -> Inner {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http()
}

fn service(policy: Policy) -> FollowRedirect<Inner> {
    ServiceBuilder::new()
        .layer(FollowRedirectLayer::new(policy))
        .service(hyper_client(false))
}

fn full(body: impl Into<Bytes>) -> Upload {
    Upload(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    )
}

fn request(method: Method, url: String, body: Upload) -> Request<Upload> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap()
}

async fn call(
    service: &FollowRedirect<Inner>,
    request: Request<Upload>,
) -> Result<Response<Incoming>, Error> {
    service.clone().oneshot(request).await
}

fn history(response: &Response<Incoming>) -> &History {
    response.extensions().get::<History>().unwrap()
}

#[tokio::test]
async fn spec_table_for_every_preset_status_and_method() {
    let server = Server::start();
    for status in STATUSES {
        server.route(&format!("/s{status}"), Reply::redirect(status, "/landed"));
    }
    let mut checked = 0;
    for (name, policy) in [
        ("standard", Policy::standard()),
        ("strict", Policy::strict()),
        ("legacy", Policy::legacy()),
    ] {
        let service = service(policy);
        for status in STATUSES {
            for method in methods() {
                server.clear();
                let body = format!("body of {method} through {status} ({name})").into_bytes();
                let mut req = request(
                    method.clone(),
                    server.url(&format!("/s{status}")),
                    full(body.clone()),
                );
                req.headers_mut()
                    .insert("content-type", "text/x-test".parse().unwrap());
                req.headers_mut().insert("x-keep", "1".parse().unwrap());
                let response = call(&service, req).await.unwrap();
                let case = format!("{name} {status} {method}");
                assert_eq!(response.status(), StatusCode::OK, "{case}");
                let first = server.one_at(&format!("/s{status}"));
                assert_eq!(first.method, method, "{case}");
                assert_eq!(first.body, body, "{case}");
                let landed = server.one_at("/landed");
                let hop = history(&response).iter().next().unwrap();
                if keeps(name, status, &method) {
                    assert_eq!(landed.method, method, "{case}");
                    assert_eq!(landed.body, body, "{case}: body replayed byte for byte");
                    assert_eq!(landed.header("content-type"), Some("text/x-test"), "{case}");
                    assert_eq!(hop.body(), BodyAction::Replayed, "{case}");
                } else {
                    assert_eq!(landed.method, Method::GET, "{case}");
                    assert!(landed.body.is_empty(), "{case}");
                    assert_eq!(landed.header("content-type"), None, "{case}");
                    assert_eq!(hop.body(), BodyAction::Dropped, "{case}");
                }
                assert_eq!(landed.header("x-keep"), Some("1"), "{case}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 9);
}

#[tokio::test]
async fn streamed_put_and_post_through_307_308_and_back_are_identical_at_every_hop() {
    let a = Server::start();
    let b = Server::start();
    // A -307-> B -308-> A: cross-origin both ways, a stream all along.
    a.route("/a", Reply::redirect(307, b.url("/b")));
    b.route("/b", Reply::redirect(308, a.url("/c")));
    let body = pattern(1024 * 1024 + 17);
    for method in [Method::PUT, Method::POST] {
        a.clear();
        b.clear();
        let mut req = request(
            method.clone(),
            a.url("/a"),
            stream(body.clone(), 16 * 1024, Duration::ZERO),
        );
        req.headers_mut()
            .insert("authorization", "Bearer secret".parse().unwrap());
        req.headers_mut()
            .insert("cookie", "session=1".parse().unwrap());
        req.headers_mut()
            .insert("proxy-authorization", "Basic eA==".parse().unwrap());
        let response = call(&service(Policy::standard()), req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        for (server, path) in [(&a, "/a"), (&b, "/b"), (&a, "/c")] {
            let seen = server.one_at(path);
            assert_eq!(seen.method, method, "{path}");
            assert_eq!(seen.body.len(), body.len(), "{path}");
            assert!(seen.body == body, "{path}: body differs");
            if path != "/a" {
                // Stripped on the way to B, and never back (sticky).
                for name in ["authorization", "cookie", "proxy-authorization"] {
                    assert_eq!(seen.header(name), None, "{path} {name}");
                }
            }
        }
        let hops: Vec<_> = history(&response)
            .iter()
            .map(|h| (h.status().as_u16(), h.url().path().to_owned()))
            .collect();
        assert_eq!(hops, [(307, "/a".to_owned()), (308, "/b".to_owned())]);
    }
}

#[tokio::test]
async fn a_to_b_to_b_sends_no_credentials_to_b() {
    let a = Server::start();
    let b = Server::start();
    a.route("/1", Reply::redirect(302, b.url("/2")));
    b.route("/2", Reply::redirect(302, "/3"));
    let mut req = request(Method::GET, a.url("/1"), full(Bytes::new()));
    for (name, value) in [
        ("authorization", "Bearer a-token"),
        ("cookie", "a=1"),
        ("proxy-authorization", "Basic eA=="),
        ("x-api-key", "k"),
    ] {
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    let policy = Policy::standard().sensitive_header(http::HeaderName::from_static("x-api-key"));
    let response = call(&service(policy), req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        a.one_at("/1").header("authorization"),
        Some("Bearer a-token")
    );
    for path in ["/2", "/3"] {
        let seen = b.one_at(path);
        for name in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
        ] {
            assert_eq!(seen.header(name), None, "{path} {name}");
        }
    }
    assert_eq!(history(&response).len(), 2);
}

#[tokio::test]
async fn trusted_origin_keeps_credentials() {
    let a = Server::start();
    let b = Server::start();
    a.route("/1", Reply::redirect(307, b.url("/2")));
    let mut req = request(Method::GET, a.url("/1"), full(Bytes::new()));
    req.headers_mut()
        .insert("authorization", "Bearer t".parse().unwrap());
    let policy = Policy::standard().trust_origin(&url::Url::parse(&b.base()).unwrap());
    call(&service(policy), req).await.unwrap();
    assert_eq!(b.one_at("/2").header("authorization"), Some("Bearer t"));
}

#[tokio::test]
async fn early_307_after_256_kib_of_a_slow_4_mib_stream_replays_it_whole() {
    let server = Server::start();
    server.route(
        "/a",
        Reply::redirect(307, "/b").read(Read::Prefix(256 * 1024)),
    );
    let body = pattern(4 * 1024 * 1024);
    let req = request(
        Method::PUT,
        server.url("/a"),
        stream(body.clone(), 32 * 1024, Duration::from_millis(1)),
    );
    let response = call(&service(Policy::standard()), req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = server.one_at("/a");
    first.assert_whole_or_aborted(&body, "/a");
    let landed = server.one_at("/b");
    assert_eq!(landed.method, Method::PUT);
    assert!(landed.body == body, "no byte lost, duplicated or reordered");
}

#[tokio::test]
async fn per_request_policy_none_returns_the_307() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let mut req = request(Method::POST, server.url("/a"), full("x"));
    req.extensions_mut().insert(Policy::none());
    let response = call(&service(Policy::standard()), req).await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(server.seen_at("/b").is_empty());
}

#[tokio::test]
async fn stream_over_the_cap_is_body_not_replayable_and_nothing_short_is_sent() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let body = pattern(256 * 1024);
    let req = request(
        Method::POST,
        server.url("/a"),
        stream(body.clone(), 16 * 1024, Duration::ZERO),
    );
    let err = call(&service(Policy::standard().max_replay_body(64 * 1024)), req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyNotReplayable);
    assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));
    assert_eq!(err.location().unwrap(), "/b");
    server.one_at("/a").assert_whole_or_aborted(&body, "/a");
    assert!(server.seen_at("/b").is_empty());
}

#[tokio::test]
async fn a_location_fragment_is_never_sent_and_its_query_is() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b?x=1#frag"));
    server.route("/b?x=1", Reply::redirect(308, "/c#other"));
    let response = call(
        &service(Policy::standard()),
        request(Method::PUT, server.url("/a"), full(pattern(1000))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let targets: Vec<_> = server.seen().iter().map(|s| s.target.clone()).collect();
    assert_eq!(targets, ["/a", "/b?x=1", "/c"]);
    for seen in server.seen() {
        assert_eq!(seen.method, Method::PUT);
        assert_eq!(seen.body, pattern(1000), "at {}", seen.target);
    }
    let history = history(&response);
    assert_eq!(history.hops()[0].next_url().fragment(), Some("frag"));
    assert_eq!(history.hops()[1].next_url().fragment(), Some("other"));
}

#[tokio::test]
async fn file_location_is_scheme_not_allowed() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "file:///etc/passwd"));
    let err = call(
        &service(Policy::standard()),
        request(Method::GET, server.url("/a"), full(Bytes::new())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemeNotAllowed);
}

#[tokio::test]
async fn loops_and_limits_carry_their_history() {
    let server = Server::start();
    server.route("/loop", Reply::redirect(302, "/loop"));
    let err = call(
        &service(Policy::standard()),
        request(Method::GET, server.url("/loop"), full(Bytes::new())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectLoop);
    for i in 0..4 {
        server.route(
            &format!("/n{i}"),
            Reply::redirect(302, format!("/n{}", i + 1)),
        );
    }
    let err = call(
        &service(Policy::standard().max_redirects(2)),
        request(Method::GET, server.url("/n0"), full(Bytes::new())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(err.history().len(), 2);
}

#[tokio::test]
async fn streams_over_h2c() {
    let a = Server::start();
    a.route(
        "/a",
        Reply::redirect(307, "/b").read(Read::Prefix(64 * 1024)),
    );
    a.route("/b", Reply::redirect(308, "/c"));
    let body = pattern(2 * 1024 * 1024 + 3);
    let service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new(Policy::standard()))
        .service(hyper_client(true));
    let req = request(
        Method::POST,
        a.url("/a"),
        stream(body.clone(), 64 * 1024, Duration::ZERO),
    );
    let response = service.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    for path in ["/b", "/c"] {
        let seen = a.one_at(path);
        assert!(seen.body == body, "{path}: body differs");
    }
}

#[tokio::test]
async fn sixteen_concurrent_chains_through_one_service_each_with_its_own_bytes() {
    let a = Server::start();
    let b = Server::start();
    for i in 0..16 {
        a.route(
            &format!("/up{i}"),
            Reply::redirect(307, b.url(&format!("/up{i}"))),
        );
    }
    let service = service(Policy::standard());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let service = service.clone();
            let url = a.url(&format!("/up{i}"));
            tokio::spawn(async move {
                let body = format!("task {i} ").repeat(10_000 + i).into_bytes();
                let req = request(
                    Method::PUT,
                    url,
                    stream(body.clone(), 8 * 1024, Duration::ZERO),
                );
                let response = service.oneshot(req).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                (i, body)
            })
        })
        .collect();
    for task in tasks {
        let (i, body) = task.await.unwrap();
        let at_a = a.one_at(&format!("/up{i}"));
        assert!(at_a.body == body, "task {i}: another task's bytes at A");
        let at_b = b.one_at(&format!("/up{i}"));
        assert!(at_b.body == body, "task {i}: another task's bytes at B");
    }
}

#[tokio::test]
async fn inner_error_mid_chain_is_request_with_the_history_so_far() {
    let a = Server::start();
    // A port nobody listens on: bind one, then let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    a.route(
        "/a",
        Reply::redirect(307, format!("http://127.0.0.1:{port}/gone")),
    );
    let err = call(
        &service(Policy::standard()),
        request(Method::POST, a.url("/a"), full("x")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert_eq!(err.history().len(), 1);
    assert_eq!(err.url().unwrap().path(), "/gone");
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn inner_error_on_the_first_hop_is_request_with_its_url() {
    // The layer polls the first call itself and hands a failure to the
    // loop: the same typed error as on a later hop, with an empty history.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = call(
        &service(Policy::standard()),
        request(
            Method::POST,
            format!("http://127.0.0.1:{port}/first"),
            full("x"),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert!(err.history().is_empty());
    assert_eq!(err.url().unwrap().path(), "/first");
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn relative_request_uri_is_a_clear_builder_error() {
    let err = call(
        &service(Policy::standard()),
        request(Method::GET, "/relative".to_owned(), full(Bytes::new())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder);
    assert!(
        err.to_string().contains("could not build the request"),
        "{err}"
    );
}

#[tokio::test]
async fn hook_may_edit_the_next_request() {
    use redirect_policy::{HookAction, Redirect};
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    let policy = Policy::standard().hook(|mut redirect: Redirect| async move {
        redirect
            .next_mut()
            .headers_mut()
            .insert("x-signature", "signed-for-b".parse().unwrap());
        Ok::<_, BoxError>(HookAction::Follow(redirect.next().clone()))
    });
    let response = call(
        &service(policy),
        request(Method::PUT, a.url("/a"), full("payload")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = b.one_at("/b");
    assert_eq!(seen.header("x-signature"), Some("signed-for-b"));
    assert_eq!(seen.body, b"payload");
}

#[tokio::test]
async fn permanent_redirects_are_remembered() {
    let server = Server::start();
    server.route("/old", Reply::redirect(301, "/new"));
    let policy = Policy::standard().permanent_redirects(redirect_policy::PermanentRedirects::new(
        16,
        Duration::from_secs(60),
    ));
    let service = service(policy);
    for _ in 0..3 {
        let response = call(
            &service,
            request(Method::GET, server.url("/old"), full(Bytes::new())),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(server.seen_at("/old").len(), 1);
    assert_eq!(server.seen_at("/new").len(), 3);
}

/// tower's contract, held by a real tower middleware: `ConcurrencyLimit`
/// panics when it is called without a `poll_ready` first. Each hop must go
/// to a service made ready: the first to the one the caller readied, each
/// later one (and a remembered redirect's first) to a clone made ready.
#[tokio::test]
async fn every_hop_goes_to_a_service_made_ready() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    server.route("/b", Reply::redirect(308, "/c"));
    server.route("/old", Reply::redirect(308, "/new"));
    let memory = redirect_policy::PermanentRedirects::new(16, Duration::from_secs(60));
    let service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new(
            Policy::standard().permanent_redirects(memory),
        ))
        .concurrency_limit(1)
        .service(hyper_client(false));
    for path in ["/a", "/old", "/old", "/c"] {
        let response = service
            .clone()
            .oneshot(request(Method::PUT, server.url(path), full(pattern(100))))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // The second `/old` went straight to `/new` (remembered), and nothing
    // was lost on the way.
    assert_eq!(server.seen_at("/old").len(), 1);
    assert_eq!(server.seen_at("/new").len(), 2);
    for seen in server.seen() {
        assert_eq!(seen.method, Method::PUT);
        assert_eq!(seen.body, pattern(100), "at {}", seen.target);
    }
    // 16 chains at once through one limit of 1: each waits its turn.
    let chains: Vec<_> = (0..16)
        .map(|_| {
            let service = service.clone();
            let url = server.url("/a");
            tokio::spawn(async move {
                service
                    .oneshot(request(Method::POST, url, full(pattern(64))))
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for chain in chains {
        assert_eq!(chain.await.unwrap(), StatusCode::OK);
    }
    // Every hop of the 16 chains arrived with its whole body (3 hops each).
    let posts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    assert_eq!(posts.len(), 16 * 3);
    for seen in posts {
        assert_eq!(seen.body, pattern(64), "at {}", seen.target);
    }
}

#[tokio::test]
async fn the_future_is_send_and_the_types_are_clone() {
    fn send<T: Send>(_: &T) {}
    fn clone<T: Clone>() {}
    clone::<FollowRedirectLayer>();
    clone::<FollowRedirect<Inner>>();
    let service = service(Policy::standard());
    let future = service.clone().oneshot(request(
        Method::GET,
        "http://127.0.0.1:9/".to_owned(),
        full(""),
    ));
    send(&future);
}

/// A hyper-util client over TLS that trusts `cert` only (and speaks plain
/// http too).
fn tls_service(
    cert: &support::TestCert,
    policy: Policy,
) -> FollowRedirect<
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<HttpConnector>,
        ReplayBody<Upload>,
    >,
> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            cert.cert_der.clone(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    FollowRedirect::new(client, policy)
}

#[tokio::test]
async fn https_to_http_is_refused_and_allowed_only_by_opt_in_with_credentials_stripped() {
    let cert = support::TestCert::new();
    let secure = Server::start_tls(&cert);
    let plain = Server::start();
    secure.route("/a", Reply::redirect(307, plain.url("/b")));
    let make = || {
        let mut req = request(Method::PUT, secure.url("/a"), full("secret body"));
        req.headers_mut()
            .insert("authorization", "Bearer t".parse().unwrap());
        req
    };
    let err = tls_service(&cert, Policy::standard())
        .oneshot(make())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsecureRedirect);
    assert_eq!(secure.one_at("/a").body, b"secret body");
    assert!(plain.seen().is_empty(), "nothing reached the plain server");

    let policy = Policy::standard().https_downgrade(redirect_policy::Downgrade::Allow);
    let response = tls_service(&cert, policy).oneshot(make()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let landed = plain.one_at("/b");
    assert_eq!(landed.body, b"secret body");
    assert_eq!(landed.header("authorization"), None, "still stripped");
}

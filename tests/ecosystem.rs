//! Issue 4 on real servers: the middleware (with reqwest-retry), per-request
//! policies, the redirect hook, tracing and permanent-redirect memory.
#![cfg(all(feature = "middleware", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::{
    BoxError, Client, ErrorKind, FollowRedirectsMiddleware, History, HookAction,
    PermanentRedirects, Policy, Redirect,
};
use reqwest_middleware::ClientBuilder;
use reqwest_retry::{policies::ExponentialBackoff, RetryTransientMiddleware};
use support::{pattern, Reply, Server};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn middleware_follows_with_the_same_semantics() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    let client = ClientBuilder::new(no_redirects())
        .with(FollowRedirectsMiddleware::new(Policy::standard()))
        .build();
    let body = pattern(64 * 1024);
    let response = client
        .post(a.url("/a"))
        .bearer_auth("token")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.extensions().get::<History>().unwrap().len(), 1);
    let seen = b.one_at("/b");
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.body, body);
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn retry_after_the_redirect_middleware_retries_one_hop_with_the_same_body() {
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    // The second hop fails once with 503, then succeeds.
    a.route_seq("/b", vec![Reply::status(503), Reply::ok()]);
    let retry = RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
            .build_with_max_retries(3),
    );
    let client = ClientBuilder::new(no_redirects())
        .with(FollowRedirectsMiddleware::new(Policy::standard()))
        .with(retry)
        .build();
    let body = pattern(200_000);
    let response = client
        .put(a.url("/a"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let hops = a.seen_at("/b");
    assert_eq!(hops.len(), 2, "one 503 and one retry");
    for seen in hops {
        assert_eq!(seen.method, Method::PUT);
        assert!(seen.body == body, "byte-identical on the retry too");
    }
    assert_eq!(a.seen_at("/a").len(), 1, "the first hop was not repeated");
}

#[tokio::test]
async fn redirect_errors_from_the_middleware_downcast_to_the_crate_error() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/a"));
    let client = ClientBuilder::new(no_redirects())
        .with(FollowRedirectsMiddleware::new(Policy::standard()))
        .build();
    let err = client.get(a.url("/a")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(inner) = err else {
        panic!("expected a middleware error, got {err:?}");
    };
    let ours = inner.downcast_ref::<redirect_policy::Error>().unwrap();
    assert_eq!(ours.kind(), ErrorKind::RedirectLoop);
    assert_eq!(ours.history().len(), 1);
}

#[tokio::test]
async fn per_request_policy_with_the_middleware() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    let client = ClientBuilder::new(no_redirects())
        .with(FollowRedirectsMiddleware::new(Policy::standard()))
        .build();
    let response = client
        .post(a.url("/a"))
        .with_extension(Policy::none())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(a.seen_at("/b").is_empty());
    let response = client
        .post(a.url("/a"))
        .with_extension(Policy::strict())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let landed = a.one_at("/b");
    assert_eq!(landed.method, Method::POST, "strict keeps POST on 302");
    assert_eq!(landed.body, b"x");
}

#[tokio::test]
async fn per_request_policy_with_the_client() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    let client = Client::new(Policy::standard());
    let response = client
        .post(a.url("/a"))
        .policy(Policy::none())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    client
        .post(a.url("/a"))
        .policy(Policy::strict())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(a.one_at("/b").method, Method::POST);
    client.post(a.url("/a")).body("x").send().await.unwrap();
    assert_eq!(
        a.seen_at("/b")[1].method,
        Method::GET,
        "the client's own policy"
    );
}

#[tokio::test]
async fn hook_sees_the_3xx_head_and_edits_the_next_request() {
    let a = Server::start();
    let b = Server::start();
    a.route(
        "/a",
        Reply::redirect(307, b.url("/b")).header("x-amz-bucket-region", "eu-west-9"),
    );
    let seen_by_hook = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen_by_hook);
    let policy = Policy::standard().hook(move |mut redirect: Redirect| {
        let log = Arc::clone(&log);
        async move {
            let region = redirect.response_headers()["x-amz-bucket-region"]
                .to_str()?
                .to_owned();
            log.lock()
                .unwrap()
                .push((redirect.status(), region.clone()));
            let headers = redirect.next_mut().headers_mut();
            headers.insert("x-region", region.parse()?);
            headers.insert("authorization", "Signed for b".parse()?);
            Ok::<_, BoxError>(redirect.follow())
        }
    });
    Client::new(policy)
        .put(a.url("/a"))
        .header("authorization", "Signed for a")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(
        *seen_by_hook.lock().unwrap(),
        [(StatusCode::TEMPORARY_REDIRECT, "eu-west-9".to_owned())]
    );
    let seen = b.one_at("/b");
    assert_eq!(seen.header("x-region"), Some("eu-west-9"));
    assert_eq!(seen.header("authorization"), Some("Signed for b"));
    assert_eq!(seen.body, b"data");
}

#[tokio::test]
async fn hook_can_change_the_url() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, "/elsewhere"));
    let target = url::Url::parse(&b.url("/chosen")).unwrap();
    let policy = Policy::standard().hook(move |mut redirect: Redirect| {
        let target = target.clone();
        async move {
            redirect.next_mut().set_url(target);
            Ok::<_, BoxError>(redirect.follow())
        }
    });
    let response = Client::new(policy).get(a.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(b.one_at("/chosen").method, Method::GET);
    assert!(a.seen_at("/elsewhere").is_empty());
    let history = response.extensions().get::<History>().unwrap();
    assert_eq!(history.last().unwrap().next_url().path(), "/chosen");
}

#[tokio::test]
async fn hook_can_stop_and_return_the_3xx() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    let policy = Policy::standard()
        .hook(|_redirect: Redirect| async { Ok::<_, BoxError>(HookAction::Stop) });
    let response = Client::new(policy).get(a.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(response.extensions().get::<History>().unwrap().is_empty());
    assert!(a.seen_at("/b").is_empty());
}

#[tokio::test]
async fn hook_errors_fail_the_chain_with_their_source() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    let policy = Policy::standard().hook(|_redirect: Redirect| async {
        Err::<HookAction, BoxError>("signing key expired".into())
    });
    let err = Client::new(policy)
        .get(a.url("/a"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Hook);
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, "signing key expired");
    assert!(a.seen_at("/b").is_empty());
}

#[tokio::test]
async fn hook_may_not_leave_http() {
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    let policy = Policy::standard().hook(|mut redirect: Redirect| async move {
        redirect
            .next_mut()
            .set_url(url::Url::parse("file:///etc/passwd").unwrap());
        Ok::<_, BoxError>(redirect.follow())
    });
    let err = Client::new(policy)
        .get(a.url("/a"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemeNotAllowed);
}

#[tokio::test]
async fn permanent_redirects_are_remembered_and_save_a_round_trip() {
    let a = Server::start();
    a.route("/old", Reply::redirect(301, "/new"));
    a.route("/moved", Reply::redirect(308, "/there"));
    a.route("/temp", Reply::redirect(307, "/here"));
    let memory = PermanentRedirects::new(16, Duration::from_secs(60));
    let client = Client::new(Policy::standard().permanent_redirects(memory.clone()));

    for _ in 0..3 {
        let response = client.get(a.url("/old")).send().await.unwrap();
        assert_eq!(response.url().path(), "/new");
    }
    assert_eq!(a.seen_at("/old").len(), 1, "later requests skip the 301");
    assert_eq!(a.seen_at("/new").len(), 3);

    for _ in 0..2 {
        client.put(a.url("/moved")).body("b").send().await.unwrap();
    }
    assert_eq!(a.seen_at("/moved").len(), 1);
    let there = a.seen_at("/there");
    assert!(there
        .iter()
        .all(|s| s.method == Method::PUT && s.body == b"b"));

    for _ in 0..2 {
        client.get(a.url("/temp")).send().await.unwrap();
    }
    assert_eq!(a.seen_at("/temp").len(), 2, "a 307 is never remembered");
    assert_eq!(memory.len(), 2);

    let response = client.get(a.url("/old")).send().await.unwrap();
    let hop = response.extensions().get::<History>().unwrap().hops()[0].clone();
    assert!(hop.is_remembered());
    assert_eq!(hop.status(), StatusCode::MOVED_PERMANENTLY);
}

#[tokio::test]
async fn a_hook_sees_every_permanent_redirect_even_with_a_memory() {
    let a = Server::start();
    a.route("/old", Reply::redirect(301, "/new"));
    let calls = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&calls);
    let policy = Policy::standard()
        .permanent_redirects(PermanentRedirects::new(8, Duration::from_secs(60)))
        .hook(move |redirect: Redirect| {
            *counter.lock().unwrap() += 1;
            async move { Ok::<_, BoxError>(redirect.follow()) }
        });
    let client = Client::new(policy);
    for _ in 0..2 {
        client.get(a.url("/old")).send().await.unwrap();
    }
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(a.seen_at("/old").len(), 2, "no shortcut past the hook");
}

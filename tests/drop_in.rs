//! Issue "A drop-in for reqwest code": reqwest code moves over by changing
//! one type. `?` works across `send()` and the body methods, the whole
//! builder is there, and a client built elsewhere is checked. Each test
//! asserts what arrived at the server at every hop.
#![cfg(all(
    feature = "json",
    feature = "form",
    feature = "query",
    feature = "multipart"
))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use redirect_policy::{Client, Error, ErrorKind, History, Policy};
use support::{Reply, Server};

#[derive(serde::Serialize)]
struct Order {
    id: u32,
    items: Vec<&'static str>,
}

fn hops(response: &reqwest::Response) -> usize {
    response
        .extensions()
        .get::<History>()
        .map_or(0, History::len)
}

/// The issue's program: `.json()`, then `?` across `send()` and `text()`.
#[tokio::test]
async fn json_goes_through_a_307_and_question_mark_works_across_the_request() -> Result<(), Error> {
    let a = Server::start();
    let b = Server::start();
    a.route("/orders", Reply::redirect(307, b.url("/v2/orders")));
    b.route("/v2/orders", Reply::ok().body("created"));
    let client = Client::new(Policy::standard());
    let order = Order {
        id: 7,
        items: vec!["tea", "milk"],
    };
    let resp = client.post(a.url("/orders")).json(&order).send().await?;
    assert_eq!(hops(&resp), 1);
    let text = resp.text().await?;
    assert_eq!(text, "created");
    let expected = br#"{"id":7,"items":["tea","milk"]}"#;
    for seen in [a.one_at("/orders"), b.one_at("/v2/orders")] {
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.body, expected);
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(seen.header("content-length"), Some("31"));
    }
    Ok(())
}

#[tokio::test]
async fn form_goes_through_a_307_and_is_dropped_by_a_303() {
    let a = Server::start();
    a.route("/login", Reply::redirect(307, "/login2"));
    a.route("/login2", Reply::redirect(303, "/home"));
    let client = Client::new(Policy::standard());
    let resp = client
        .post(a.url("/login"))
        .form(&[("user", "ann"), ("note", "a&b=c")])
        .send()
        .await
        .unwrap();
    assert_eq!(hops(&resp), 2);
    for path in ["/login", "/login2"] {
        let seen = a.one_at(path);
        assert_eq!(seen.method, Method::POST, "{path}");
        assert_eq!(seen.body, b"user=ann&note=a%26b%3Dc", "{path}");
        assert_eq!(
            seen.header("content-type"),
            Some("application/x-www-form-urlencoded"),
            "{path}"
        );
    }
    let home = a.one_at("/home");
    assert_eq!(home.method, Method::GET);
    assert!(home.body.is_empty());
    assert_eq!(home.header("content-type"), None);
}

/// `.query()` sets the first URL's query; a relative Location is resolved
/// against it (RFC 3986): a query-only reference replaces the query, a
/// path-only one drops it, a fragment-only one keeps it.
#[tokio::test]
async fn query_is_resolved_by_relative_locations() {
    let a = Server::start();
    a.route_seq(
        "/search",
        vec![
            Reply::redirect(307, "?q=tea&page=2"),
            Reply::redirect(308, "results"),
        ],
    );
    a.route("/results", Reply::ok());
    let resp = Client::new(Policy::standard())
        .get(a.url("/search"))
        .query(&[("q", "tea"), ("page", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let targets: Vec<String> = a.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        ["/search?q=tea&page=1", "/search?q=tea&page=2", "/results"]
    );
}

/// A multipart form is a stream: teed as it is sent, replayed whole.
#[tokio::test]
async fn multipart_of_300_kb_arrives_identical_at_both_hops() {
    let a = Server::start();
    let b = Server::start();
    a.route("/upload", Reply::redirect(307, b.url("/store")));
    let file = support::pattern(300_000);
    let form = reqwest::multipart::Form::new()
        .text("title", "holiday")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(file.clone()).file_name("p.bin"),
        );
    let resp = Client::new(Policy::standard())
        .post(a.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = a.one_at("/upload");
    let second = b.one_at("/store");
    assert!(first.body.len() > 300_000, "{}", first.body.len());
    assert!(first
        .body
        .windows(file.len())
        .any(|window| window == file.as_slice()));
    assert_eq!(second.method, Method::POST);
    assert_eq!(second.body.len(), first.body.len());
    assert!(
        second.body == first.body,
        "the replay differs from the first hop"
    );
    let content_type = first.header("content-type").unwrap();
    assert!(content_type.starts_with("multipart/form-data; boundary="));
    assert_eq!(second.header("content-type"), Some(content_type));
}

#[tokio::test]
async fn try_clone_is_some_in_memory_and_none_for_a_stream() {
    let a = Server::start();
    let client = Client::new(Policy::standard());
    let builder = client.post(a.url("/x")).json(&[1, 2, 3]);
    let copy = builder.try_clone().expect("an in-memory builder clones");
    copy.send().await.unwrap();
    builder.send().await.unwrap();
    let seen = a.seen_at("/x");
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body == b"[1,2,3]"));

    let stream = support::slow_stream(vec![1; 10], 5, Duration::ZERO);
    assert!(client.post(a.url("/x")).body(stream).try_clone().is_none());
}

#[tokio::test]
async fn build_split_and_from_parts_round_trip() {
    let a = Server::start();
    a.route("/a", Reply::redirect(308, "/b"));
    let client = Client::new(Policy::standard());
    let (client, request) = client.put(a.url("/a")).body("v").build_split();
    let mut request = request.unwrap();
    request
        .headers_mut()
        .insert("x-added", http::HeaderValue::from_static("1"));
    let resp = redirect_policy::RequestBuilder::from_parts(client.clone(), request)
        .send()
        .await
        .unwrap();
    assert_eq!(hops(&resp), 1);
    let seen = a.one_at("/b");
    assert_eq!(seen.body, b"v");
    assert_eq!(seen.header("x-added"), Some("1"));
    client
        .execute(client.get(a.url("/b")).build().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn from_reqwest_follows_307_then_308() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    b.route("/b", Reply::redirect(308, a.url("/c")));
    let built = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = Client::from_reqwest(built, Policy::standard());
    let body = support::pattern(50_000);
    let stream = support::slow_stream(body.clone(), 8192, Duration::from_millis(1));
    let resp = client
        .patch(a.url("/a"))
        .bearer_auth("t")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(hops(&resp), 2);
    for seen in [a.one_at("/a"), b.one_at("/b"), a.one_at("/c")] {
        assert_eq!(seen.method, Method::PATCH);
        assert_eq!(seen.body, body);
    }
    assert_eq!(a.one_at("/a").header("authorization"), Some("Bearer t"));
    assert_eq!(b.one_at("/b").header("authorization"), None);
    // Sticky: back on the first origin, still stripped.
    assert_eq!(a.one_at("/c").header("authorization"), None);
}

/// A built client left with reqwest's default redirect policy follows by
/// itself, past the crate's rules. Caught on the first redirect, with a
/// message that says how to build it.
#[tokio::test]
async fn a_client_that_follows_by_itself_is_a_builder_error() {
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    let client = Client::from_reqwest(reqwest::Client::new(), Policy::standard());
    let err = client.post(a.url("/a")).body("x").send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder);
    assert!(err.is_builder());
    let text = err.to_string();
    assert!(
        text.contains(".redirect(reqwest::redirect::Policy::none())"),
        "{text}"
    );
    assert!(text.contains("/a") && text.contains("/b"), "{text}");

    // reqwest giving up on a loop of its own is the same mistake.
    a.route("/loop", Reply::redirect(302, "/loop"));
    let err = client.get(a.url("/loop")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err}");
    assert!(err.to_string().contains("Policy::none()"), "{err}");
}

#[tokio::test]
async fn a_json_decode_error_converts_with_question_mark() {
    async fn fetch(client: &Client, url: String) -> Result<serde_json::Value, Error> {
        let value = client.get(url).send().await?.json().await?;
        Ok(value)
    }
    let a = Server::start();
    a.route("/a", Reply::redirect(302, "/b"));
    a.route("/b", Reply::ok().body("not json"));
    let err = fetch(&Client::new(Policy::standard()), a.url("/a"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.is_decode() && !err.is_timeout() && !err.is_body());
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<reqwest::Error>().unwrap().is_decode());
}

#[tokio::test]
async fn error_for_status_converts_to_status_with_the_status() {
    async fn fetch(client: &Client, url: String) -> Result<String, Error> {
        Ok(client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
    let a = Server::start();
    a.route("/a", Reply::redirect(301, "/gone"));
    a.route("/gone", Reply::status(404));
    let err = fetch(&Client::new(Policy::standard()), a.url("/a"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert!(err.is_status());
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.url().unwrap().path(), "/gone");
    assert_eq!(
        err.to_string(),
        format!(
            "HTTP status client error (404 Not Found) for url \"{}\"",
            a.url("/gone")
        )
    );
    let err = err.without_url();
    assert!(err.url().is_none());
}

#[tokio::test]
async fn a_connect_error_converts_and_says_so() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Client::new(Policy::standard())
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert!(err.is_connect() && err.is_request(), "{err:?}");
    let err = Error::from(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err(),
    );
    assert!(err.is_connect() && err.is_request(), "{err:?}");
}

/// Issue "The chain's deadline", item 2, async: after a redirect, the final
/// body stalls past the chain's timeout; `text()`, `bytes()` and `chunk()`
/// fail, and `?` gives `Timeout` with the chain's history.
#[tokio::test]
async fn a_stalled_final_body_after_a_redirect_is_a_timeout_with_the_history() {
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    a.route(
        "/b",
        Reply::ok()
            .header("content-length", "4")
            .body("done")
            .body_after(Duration::from_secs(5)),
    );
    let client = Client::new(Policy::standard());
    for method in ["text", "bytes", "chunk"] {
        let started = Instant::now();
        let resp = client
            .get(a.url("/a"))
            .timeout(Duration::from_millis(800))
            .send()
            .await
            .unwrap();
        let err: Error = match method {
            "text" => resp.text().await.map(drop),
            "bytes" => resp.bytes().await.map(drop),
            _ => {
                let mut resp = resp;
                resp.chunk().await.map(drop)
            }
        }
        .unwrap_err()
        .into();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{method}: {err:?}");
        assert!(err.is_timeout());
        assert_eq!(err.history().len(), 1, "{method}");
        assert_eq!(err.url().unwrap().path(), "/b", "{method}");
        assert!(took < Duration::from_secs(4), "{method}: {took:?}");
    }
}

/// The README's warning, checked: a middleware stack over a reqwest client
/// that follows redirects itself is caught on the first redirect.
#[cfg(feature = "middleware")]
#[tokio::test]
async fn a_middleware_stack_over_a_following_client_is_caught() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    let stack = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(redirect_policy::FollowRedirectsMiddleware::new(
            Policy::standard(),
        ))
        .build();
    let err = stack.get(a.url("/a")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(err) = err else {
        panic!("not a middleware error: {err:?}");
    };
    let err = err.downcast::<Error>().unwrap();
    assert_eq!(err.kind(), ErrorKind::Builder);
    assert!(err.to_string().contains("Policy::none()"), "{err}");
}

/// Feature `cookies`: reqwest's jar sees every hop (each is re-issued
/// through reqwest), so a cookie set by a 302 goes with the next hop to its
/// origin, and never to another origin.
#[cfg(feature = "cookies")]
#[tokio::test]
async fn the_cookie_jar_sees_every_hop() {
    let a = Server::start();
    let b = Server::start();
    a.route(
        "/login",
        Reply::redirect(302, "/home").header("set-cookie", "sid=42; Path=/"),
    );
    a.route(
        "/home",
        Reply::redirect(307, format!("{}/elsewhere", b.base_localhost())),
    );
    let client = Client::from_builder(
        reqwest::Client::builder().cookie_store(true),
        Policy::standard(),
    )
    .unwrap();
    let resp = client.get(a.url("/login")).send().await.unwrap();
    assert_eq!(hops(&resp), 2);
    assert_eq!(a.one_at("/login").header("cookie"), None);
    assert_eq!(a.one_at("/home").header("cookie"), Some("sid=42"));
    assert_eq!(b.one_at("/elsewhere").header("cookie"), None);
}

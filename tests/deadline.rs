//! Issue "The chain's deadline holds through every adapter": a timeout set on
//! the request bounds the whole chain — each send, each 3xx drain, the hook —
//! whatever sits below the loop, and running out is `ErrorKind::Timeout` with
//! the history so far. Timing is asserted loosely: the chain must end well
//! before the stall (or a retry's sum of stalls) would have.
#![cfg(all(feature = "middleware", feature = "blocking", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use redirect_policy::{Client, Error, ErrorKind, FollowRedirectsMiddleware, Policy};
use reqwest_retry::{policies::ExponentialBackoff, RetryTransientMiddleware};
use support::{Action, Reply, Server};

const DEADLINE: Duration = Duration::from_secs(1);
/// Ending before this proves the deadline held: the stalls are 3600 s, and a
/// retry's ten attempts would sum to 10 × the deadline. It leaves 5 s for a
/// loaded 2-core machine to notice a deadline that has passed (2.5 s was a
/// thin margin there).
const SLACK: Duration = Duration::from_secs(6);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn retry() -> RetryTransientMiddleware<ExponentialBackoff> {
    RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
            .build_with_max_retries(9),
    )
}

/// The three stalls: the second hop never answers; the 3xx's body never
/// comes (its head says 10 bytes); the final 200's body never comes.
fn stalled(server: &Server, case: &str) -> String {
    match case {
        "hop" => {
            server.route("/hop", Reply::redirect(307, "/hang"));
            server.route("/hang", Reply::ok().action(Action::Hang));
            server.url("/hop")
        }
        "3xx body" => {
            server.route(
                "/slow3xx",
                Reply::redirect(307, "/ok")
                    .body("0123456789")
                    .body_after(Duration::from_secs(3600)),
            );
            server.url("/slow3xx")
        }
        _ => {
            server.route("/final", Reply::redirect(307, "/slowbody"));
            server.route(
                "/slowbody",
                Reply::ok()
                    .body("0123456789")
                    .body_after(Duration::from_secs(3600)),
            );
            server.url("/final")
        }
    }
}

const CASES: [&str; 3] = ["hop", "3xx body", "final body"];

fn check(case: &str, adapter: &str, started: Instant, err: &Error) {
    let took = started.elapsed();
    eprintln!("{adapter} {case}: {:?} after {took:?}", err.kind());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{adapter} {case}: {err}");
    assert!(err.is_timeout());
    assert!(
        took + Duration::from_millis(50) >= DEADLINE,
        "{adapter} {case}: {took:?}"
    );
    assert!(took < SLACK, "{adapter} {case}: took {took:?}");
    assert_eq!(
        err.history().len(),
        1,
        "{adapter} {case}: the history so far"
    );
}

#[tokio::test]
async fn client_ends_at_the_deadline() {
    let server = Server::start();
    let client = Client::new(Policy::standard());
    for case in CASES {
        let url = stalled(&server, case);
        let started = Instant::now();
        let result = client.get(url).timeout(DEADLINE).send().await;
        let err = match result {
            Err(e) => e,
            // The final body stalls after the head: reading it times out.
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                let history = response
                    .extensions()
                    .get::<redirect_policy::History>()
                    .unwrap()
                    .len();
                assert_eq!(history, 1);
                let read = response.bytes().await.unwrap_err();
                assert!(read.is_timeout(), "{case}: {read}");
                // `?` makes it the crate's Timeout, with the chain's history.
                let err = Error::from(read);
                assert_eq!(err.history().len(), 1, "{case}");
                check(case, "Client", started, &err);
                continue;
            }
        };
        check(case, "Client", started, &err);
    }
}

/// The middleware alone, with a retry below it (the README's stack: the
/// issue's case), and with a retry above it.
#[tokio::test]
async fn middleware_ends_at_the_deadline_with_or_without_a_retry() {
    let server = Server::start();
    let stacks = [
        (
            "middleware",
            reqwest_middleware::ClientBuilder::new(no_redirects())
                .with(FollowRedirectsMiddleware::new(Policy::standard()))
                .build(),
        ),
        (
            "middleware, retry below",
            reqwest_middleware::ClientBuilder::new(no_redirects())
                .with(FollowRedirectsMiddleware::new(Policy::standard()))
                .with(retry())
                .build(),
        ),
        (
            "middleware, retry above",
            reqwest_middleware::ClientBuilder::new(no_redirects())
                .with(retry())
                .with(FollowRedirectsMiddleware::new(Policy::standard()))
                .build(),
        ),
    ];
    for (name, client) in &stacks {
        for case in CASES {
            let url = stalled(&server, case);
            let started = Instant::now();
            let sent = client.get(url).timeout(DEADLINE).send().await;
            if case == "final body" {
                // The body methods give reqwest's error; `?` makes it the
                // crate's Timeout, with the chain's history.
                let read = sent.unwrap().bytes().await.unwrap_err();
                let err = Error::from(read);
                assert_eq!(err.history().len(), 1, "{name} {case}");
                check(case, name, started, &err);
                continue;
            }
            let err = sent.unwrap_err();
            let reqwest_middleware::Error::Middleware(err) = err else {
                panic!("{name} {case}: not a redirect error: {err}")
            };
            // A retry above wraps it in its own (transparent) error.
            let ours = match err.downcast_ref::<reqwest_retry::RetryError>() {
                Some(
                    reqwest_retry::RetryError::Error(inner)
                    | reqwest_retry::RetryError::WithRetries { err: inner, .. },
                ) => match inner {
                    reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<Error>(),
                    reqwest_middleware::Error::Reqwest(_) => None,
                },
                None => err.downcast_ref::<Error>(),
            }
            .unwrap_or_else(|| panic!("{name} {case}: {err:#}"));
            check(case, name, started, ours);
        }
    }
}

#[test]
fn blocking_client_ends_at_the_deadline() {
    let server = Server::start();
    let client = redirect_policy::blocking::Client::new(Policy::standard());
    for case in CASES {
        let url = stalled(&server, case);
        let started = Instant::now();
        let err = match client.get(url).timeout(DEADLINE).send() {
            Err(e) => e,
            Ok(response) => {
                let took = started.elapsed();
                let status = response.status();
                let history = response.history().cloned();
                match response.bytes() {
                    Err(e) => e,
                    Ok(b) => {
                        panic!(
                            "blocking {case}: the chain ended with {status} after {took:?}, \
                             past a stall that should have timed out ({b:?}; {history:?})"
                        )
                    }
                }
            }
        };
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "blocking {case}: {err}");
        assert!(took < SLACK, "blocking {case}: {took:?}");
        assert_eq!(err.history().len(), 1, "blocking {case}");
        eprintln!("blocking {case}: Timeout after {took:?}");
    }
}

/// What the middleware docs say of reqwest-retry and streams: it fails a
/// streamed request before anything is sent, wherever it sits.
#[tokio::test]
async fn reqwest_retry_sends_no_streamed_body_at_all() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    for below in [true, false] {
        let builder = reqwest_middleware::ClientBuilder::new(no_redirects());
        let client = if below {
            builder
                .with(FollowRedirectsMiddleware::new(Policy::standard()))
                .with(retry())
                .build()
        } else {
            builder
                .with(retry())
                .with(FollowRedirectsMiddleware::new(Policy::standard()))
                .build()
        };
        let stream = support::slow_stream(support::pattern(1000), 100, Duration::ZERO);
        let err = client
            .post(server.url("/a"))
            .body(stream)
            .send()
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("not cloneable"),
            "below {below}: {err:#}"
        );
    }
    assert!(server.seen().is_empty(), "nothing was sent");
}

/// The tower layer has no timer of its own (it is tied to no runtime): a
/// timeout around it — here `tokio::time::timeout`, as a `TimeoutLayer`
/// outside it would — bounds the whole chain, and dropping the chain's
/// future cancels the stalled hop.
#[tokio::test]
async fn tower_chain_is_bounded_by_an_outer_timeout() {
    use tower::ServiceExt as _;
    let server = Server::start();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<redirect_policy::ReplayBody<support::Upload>>();
    let service = redirect_policy::FollowRedirect::new(client, Policy::standard());
    for case in ["hop", "3xx body", "final body"] {
        let url = stalled(&server, case);
        let request = http::Request::get(url)
            .body(support::Upload::new(
                http_body_util::Empty::<bytes::Bytes>::new(),
            ))
            .unwrap();
        let started = Instant::now();
        // The final body is read after the layer has answered: the same
        // outer timeout covers the read too.
        let exchange = async {
            let response = service.clone().oneshot(request).await.ok()?;
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .ok()
        };
        let outcome = tokio::time::timeout(DEADLINE, exchange).await;
        let took = started.elapsed();
        assert!(outcome.is_err(), "tower {case}: the outer timeout fired");
        assert!(took < SLACK, "tower {case}: {took:?}");
        eprintln!("tower {case}: outer timeout after {took:?}");
    }
}

//! Spec §7 on a real server: the history of a chain, and what errors carry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use redirect_policy::{BodyAction, Client, ErrorKind, History, Policy};
use support::{Action, Reply, Server};

#[tokio::test]
async fn history_records_every_hop() {
    let a = Server::start();
    let b = Server::start();
    a.route("/start", Reply::redirect(307, "/same-origin"));
    a.route("/same-origin", Reply::redirect(302, b.url("/other-origin")));
    b.route("/other-origin", Reply::redirect(303, "/end"));
    let response = Client::new(Policy::standard())
        .put(a.url("/start"))
        .header("authorization", "Bearer t")
        .header("content-type", "text/plain")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.url().as_str(), b.url("/end"));
    let history = response.extensions().get::<History>().unwrap();
    assert_eq!(history.len(), 3);
    let hops: Vec<_> = history.iter().collect();

    assert_eq!(hops[0].status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(hops[0].url().as_str(), a.url("/start"));
    assert_eq!(hops[0].next_url().as_str(), a.url("/same-origin"));
    assert_eq!(hops[0].method(), Method::PUT);
    assert_eq!(hops[0].next_method(), Method::PUT);
    assert_eq!(hops[0].body(), BodyAction::Replayed);
    assert!(hops[0].stripped_headers().is_empty());

    assert_eq!(hops[1].status(), StatusCode::FOUND);
    assert_eq!(hops[1].next_url().as_str(), b.url("/other-origin"));
    assert_eq!(
        hops[1].next_method(),
        Method::PUT,
        "standard keeps PUT on 302"
    );
    assert_eq!(hops[1].body(), BodyAction::Replayed);
    assert_eq!(
        hops[1].stripped_headers(),
        [HeaderName::from_static("authorization")]
    );

    assert_eq!(hops[2].status(), StatusCode::SEE_OTHER);
    assert_eq!(hops[2].next_method(), Method::GET);
    assert_eq!(hops[2].body(), BodyAction::Dropped);
    assert!(hops[2]
        .stripped_headers()
        .contains(&HeaderName::from_static("content-type")));

    // What arrived matches the record.
    assert_eq!(b.one_at("/other-origin").body, b"data");
    assert_eq!(b.one_at("/other-origin").header("authorization"), None);
    assert_eq!(b.one_at("/end").method, Method::GET);
}

#[tokio::test]
async fn no_redirect_means_an_empty_history() {
    let server = Server::start();
    let response = Client::new(Policy::standard())
        .get(server.url("/plain"))
        .send()
        .await
        .unwrap();
    assert!(response.extensions().get::<History>().unwrap().is_empty());
}

#[tokio::test]
async fn too_many_redirects_carries_history_status_and_location() {
    let server = Server::start();
    for i in 0..6 {
        server.route(
            &format!("/{i}"),
            Reply::redirect(302, format!("/{}", i + 1)),
        );
    }
    let err = Client::new(Policy::standard().max_redirects(3))
        .get(server.url("/0"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(err.history().len(), 3);
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    assert_eq!(err.location().unwrap(), "/4");
    assert_eq!(err.url().unwrap().path(), "/4");
    assert!(err.to_string().contains("max_redirects"), "{err}");
    assert_eq!(server.seen().len(), 4, "nothing past the limit is sent");
}

#[tokio::test]
async fn dropped_connection_mid_chain_is_a_request_error_with_history() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/gone"));
    server.route("/gone", Reply::ok().action(Action::Drop));
    let err = Client::new(Policy::standard())
        .post(server.url("/a"))
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert_eq!(err.history().len(), 1);
    assert_eq!(err.url().unwrap().path(), "/gone");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(server.one_at("/gone").body, b"x");
}

#[tokio::test]
async fn request_timeout_covers_the_whole_chain() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/hang"));
    server.route("/hang", Reply::ok().action(Action::Hang));
    let started = std::time::Instant::now();
    let err = Client::new(Policy::standard())
        .get(server.url("/a"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_timeout());
    assert_eq!(err.history().len(), 1);
    // Not a timed assertion on speed: only that it did end, well before a
    // per-hop timeout would have let it run on.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn request_timeout_is_for_the_chain_not_each_hop() {
    // Four hops of 300 ms each: every hop is within a 700 ms timeout, the
    // chain is not.
    let server = Server::start();
    for i in 0..4 {
        server.route(
            &format!("/d{i}"),
            Reply::redirect(302, format!("/d{}", i + 1))
                .action(Action::Delay(Duration::from_millis(300))),
        );
    }
    let err = Client::new(Policy::standard())
        .get(server.url("/d0"))
        .timeout(Duration::from_millis(700))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.history().len() < 4, "{}", err.history().len());
    assert!(server.seen_at("/d4").is_empty());
}

#[tokio::test]
async fn without_url_drops_every_url() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b?token=secret"));
    server.route("/b", Reply::redirect(302, "/b?token=secret"));
    let err = Client::new(Policy::standard())
        .get(server.url("/a"))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("token=secret"));
    let err = err.without_url();
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    assert!(err.url().is_none());
    assert!(err.history().is_empty());
}

//! Issue "Faults under load", items 4 and 5: a hop is sent again only when
//! the server provably did not process it. Over h2c, a stream refused with
//! `REFUSED_STREAM` or cut off by a `GOAWAY` below it is re-sent once from
//! the replay buffer, streams included (reqwest alone retries only bodies in
//! memory). Over HTTP/1.1, a hop that a server read and then dropped the
//! connection on is never re-sent: a typed `Request` error with the history
//! so far. A server that closes an idle pooled connection under the next
//! hop costs nothing: the hop goes out whole, once, on a fresh connection.
//!
//! The faults come from the chaos proxy, scripted per connection; the
//! assertions are on what arrived at the server behind it.
#![cfg(all(feature = "tower", feature = "http2"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod chaos;
mod support;

use std::time::Duration;

use chaos::proxy::{Fault, Proxy};
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redirect_policy::{
    Client, ErrorKind, FollowRedirect, FollowRedirectLayer, History, Policy, ReplayBody,
};
use support::{pattern, slow_stream, upload_stream, Action, BodyEnd, Reply, Seen, Server, Upload};
use tower::ServiceExt as _;

const LEN: usize = 1024 * 1024 + 7;

type Inner = hyper_util::client::legacy::Client<HttpConnector, ReplayBody<Upload>>;

#[derive(Clone, Copy, Debug)]
enum Via {
    Client,
    Tower,
}

/// `data` as a tower upload: 32 KiB frames, a little apart.
fn upload(data: Vec<u8>) -> Upload {
    upload_stream(data, 32 * 1024, Duration::from_millis(1))
}

/// A streamed `method` request with `data` to `url`: `Ok((status, hops))`
/// or the error's kind, history length and message.
async fn send(
    method: Method,
    via: Via,
    h2: bool,
    policy: Policy,
    url: String,
    data: Vec<u8>,
) -> Result<(StatusCode, usize), (ErrorKind, usize, String)> {
    match via {
        Via::Client => {
            let builder = reqwest::Client::builder();
            let builder = if h2 {
                builder.http2_prior_knowledge()
            } else {
                builder.http1_only()
            };
            let client = Client::from_builder(builder, policy).unwrap();
            let sent = client
                .request(method, url)
                .body(slow_stream(data, 32 * 1024, Duration::from_millis(1)))
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let hops = response
                        .extensions()
                        .get::<History>()
                        .map_or(0, History::len);
                    Ok((response.status(), hops))
                }
                Err(e) => Err((e.kind(), e.history().len(), e.to_string())),
            }
        }
        Via::Tower => {
            let inner: Inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .http2_only(h2)
                .build_http();
            let service: FollowRedirect<Inner> = FollowRedirectLayer::new(policy).layer_on(inner);
            let request = http::Request::builder()
                .method(method)
                .uri(url)
                .body(upload(data))
                .unwrap();
            match service.oneshot(request).await {
                Ok(response) => {
                    let hops = response
                        .extensions()
                        .get::<History>()
                        .map_or(0, History::len);
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    Ok((status, hops))
                }
                Err(e) => Err((e.kind(), e.history().len(), e.to_string())),
            }
        }
    }
}

fn addr(server: &Server) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// Wait (without blocking the runtime) until something arrived at `path`.
async fn seen(server: &Server, path: &str) {
    for _ in 0..500 {
        if !server.seen_at(path).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing arrived at {path}");
}

/// Convenience: the layer on a service.
trait LayerOn {
    fn layer_on(self, inner: Inner) -> FollowRedirect<Inner>;
}

impl LayerOn for FollowRedirectLayer {
    fn layer_on(self, inner: Inner) -> FollowRedirect<Inner> {
        tower_layer::Layer::layer(&self, inner)
    }
}

/// The arrivals at `path` that the framing called complete.
fn whole(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.rest.lock().unwrap().end == Some(BodyEnd::Complete))
        .collect()
}

/// Every arrival at `path`: at most one complete, and it is the original;
/// the others were cut off, and hold a prefix of it.
async fn arrived_once(server: &Server, path: &str, original: &[u8]) -> usize {
    let seen = server.seen_at(path);
    for s in &seen {
        s.wait_end(Duration::from_secs(5)).await;
        s.assert_whole_or_aborted(original, path);
    }
    let complete = whole(&seen);
    assert_eq!(
        complete.len(),
        1,
        "{path}: {} complete arrivals of {}",
        complete.len(),
        seen.len()
    );
    assert!(
        complete[0].full_body() == original,
        "{path}: the complete body differs"
    );
    seen.len()
}

async fn refused_then_whole(method: Method, fault: Fault) {
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/a", Reply::redirect(307, "/b"));
        // The first connection suffers the fault; any later one none.
        let proxy = Proxy::scripted(addr(&server), vec![fault]);
        let data = pattern(LEN);
        let got = send(
            method.clone(),
            via,
            true,
            Policy::standard(),
            format!("{}/a", proxy.base()),
            data.clone(),
        )
        .await;
        assert_eq!(got, Ok((StatusCode::OK, 1)), "{via:?} {fault:?}");
        let sends = arrived_once(&server, "/a", &data).await;
        assert_eq!(sends, 2, "{via:?}: the refused send, then the re-send");
        arrived_once(&server, "/b", &data).await;
        assert_eq!(
            proxy.stats.fired.lock().unwrap().len(),
            1,
            "{via:?}: the fault fired"
        );
    }
}

#[tokio::test]
async fn a_refused_stream_is_sent_again_from_the_buffer() {
    // Exact: any method goes again.
    refused_then_whole(Method::POST, Fault::ResetStream(256 * 1024)).await;
}

#[tokio::test]
async fn a_goaway_below_the_stream_sends_an_idempotent_hop_again_on_a_new_connection() {
    refused_then_whole(Method::PUT, Fault::GoAway(256 * 1024)).await;
}

#[tokio::test]
async fn a_goaway_never_sends_a_post_again() {
    // hyper reports a connection's GOAWAY for some requests the server
    // processed, with the same error as for a refused one: a POST fails.
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/a", Reply::redirect(307, "/b"));
        let proxy = Proxy::scripted(addr(&server), vec![Fault::GoAway(256 * 1024)]);
        let got = send(
            Method::POST,
            via,
            true,
            Policy::standard(),
            format!("{}/a", proxy.base()),
            pattern(LEN),
        )
        .await;
        let (kind, hops, message) = got.unwrap_err();
        assert_eq!((kind, hops), (ErrorKind::Request, 0), "{via:?}: {message}");
        seen(&server, "/a").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = server.seen_at("/a");
        assert_eq!(seen.len(), 1, "{via:?}: not sent again");
        assert!(whole(&seen).is_empty(), "{via:?}: nothing complete arrived");
    }
}

#[tokio::test]
async fn a_refused_stream_past_the_cap_is_not_sent_again() {
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/a", Reply::redirect(307, "/b"));
        let proxy = Proxy::scripted(addr(&server), vec![Fault::ResetStream(512 * 1024)]);
        let policy = Policy::standard().max_replay_body(64 * 1024);
        let got = send(
            Method::POST,
            via,
            true,
            policy,
            format!("{}/a", proxy.base()),
            pattern(LEN),
        )
        .await;
        let (kind, hops, _) = got.unwrap_err();
        assert_eq!((kind, hops), (ErrorKind::Request, 0), "{via:?}");
        // The server records the cut-off stream when it sees the reset.
        seen(&server, "/a").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = server.seen_at("/a");
        assert_eq!(seen.len(), 1, "{via:?}: not sent again");
        assert!(whole(&seen).is_empty(), "{via:?}: nothing complete arrived");
        assert!(server.seen_at("/b").is_empty());
    }
}

#[tokio::test]
async fn a_hop_the_server_read_is_not_sent_again() {
    // HTTP/1.1: the server reads the whole replay at /b, then drops the
    // connection without answering. It may have acted on it: no re-send.
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/a", Reply::redirect(307, "/b"));
        server.route("/b", Reply::ok().action(Action::Drop));
        let data = pattern(LEN);
        let got = send(
            Method::POST,
            via,
            false,
            Policy::standard(),
            server.url("/a"),
            data.clone(),
        )
        .await;
        let (kind, hops, message) = got.unwrap_err();
        assert_eq!((kind, hops), (ErrorKind::Request, 1), "{via:?}: {message}");
        arrived_once(&server, "/b", &data).await;
        assert_eq!(server.seen_at("/b").len(), 1, "{via:?}: sent once");
    }
}

#[tokio::test]
async fn an_idle_connection_closed_under_the_next_hop_loses_nothing() {
    // The 307 goes out with keep-alive, and the proxy closes the connection
    // the moment the answer is through: the next hop may find its pooled
    // connection dead. Where hyper-util sees that before it writes, it sends
    // the hop on a fresh connection itself; where the hop's bytes were
    // written, the server may have read them, so the hop is not sent again
    // and the caller gets a typed `Request` error with the history so far.
    // Run many times, so that the race goes both ways; either way the next
    // hop arrives whole exactly once, or not whole at all.
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/a", Reply::redirect(307, "/b"));
        let data = pattern(64 * 1024);
        // The size of the 307 as the server sends it, from one clean run.
        let probe = Proxy::scripted(addr(&server), vec![]);
        let got = send(
            Method::POST,
            via,
            false,
            Policy::none(),
            format!("{}/a", probe.base()),
            data.clone(),
        )
        .await;
        assert_eq!(got, Ok((StatusCode::TEMPORARY_REDIRECT, 0)));
        let answer_307 = probe
            .stats
            .response_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        drop(probe);
        let (mut fresh, mut failed) = (0, 0);
        for round in 0..20 {
            server.clear();
            let proxy = Proxy::scripted(addr(&server), vec![Fault::CloseAfterResponse(answer_307)]);
            let got = send(
                Method::POST,
                via,
                false,
                Policy::standard(),
                format!("{}/a", proxy.base()),
                data.clone(),
            )
            .await;
            arrived_once(&server, "/a", &data).await;
            match got {
                Ok(answer) => {
                    assert_eq!(answer, (StatusCode::OK, 1), "{via:?} round {round}");
                    arrived_once(&server, "/b", &data).await;
                    fresh += 1;
                }
                Err((kind, hops, message)) => {
                    assert_eq!(
                        (kind, hops),
                        (ErrorKind::Request, 1),
                        "{via:?} round {round}: {message}"
                    );
                    assert!(
                        whole(&server.seen_at("/b")).is_empty(),
                        "{via:?} round {round}: /b had it whole, yet it failed"
                    );
                    failed += 1;
                }
            }
        }
        eprintln!("{via:?}: {fresh} on a fresh connection, {failed} typed Request errors");
    }
}

#[tokio::test]
async fn a_goaway_refuses_only_the_streams_above_it() {
    // Two requests share one h2c connection. The first (`/slow`, 16 KiB)
    // is on the wire whole when the second opens its stream; the proxy then
    // sends GOAWAY(NO_ERROR) with the first stream as the last it will
    // process, and closes the connection when its 2 s of grace are over.
    // `/slow` is never answered (it was answered after 2.5 s, a race of half a
    // second against the grace under load): the close is what ends it, however
    // late the GOAWAY comes. The first was (or may have been) processed: it fails with
    // `Request` and is not sent again. The second (a PUT: a GOAWAY re-sends
    // only idempotent hops) was refused: it is sent again on a new
    // connection and arrives once.
    for via in [Via::Client, Via::Tower] {
        let server = Server::start();
        server.route("/slow", Reply::ok().action(Action::Hang));
        server.route("/a", Reply::redirect(307, "/b"));
        let proxy = Proxy::scripted(addr(&server), vec![Fault::GoAwayAtStream(2)]);
        let small = pattern(16 * 1024);
        let data = pattern(LEN);
        let (slow, second) = match via {
            Via::Client => {
                let client = Client::from_builder(
                    reqwest::Client::builder().http2_prior_knowledge(),
                    Policy::standard(),
                )
                .unwrap();
                let first = {
                    let client = client.clone();
                    let (url, body) = (format!("{}/slow", proxy.base()), small.clone());
                    tokio::spawn(async move {
                        client
                            .post(url)
                            .body(slow_stream(body, 16 * 1024, Duration::ZERO))
                            .send()
                            .await
                            .map(|r| r.status())
                            .map_err(|e| (e.kind(), e.to_string()))
                    })
                };
                seen(&server, "/slow").await;
                let second = client
                    .put(format!("{}/a", proxy.base()))
                    .body(slow_stream(
                        data.clone(),
                        32 * 1024,
                        Duration::from_millis(1),
                    ))
                    .send()
                    .await
                    .map(|r| r.status())
                    .map_err(|e| (e.kind(), e.to_string()));
                (first.await.unwrap(), second)
            }
            Via::Tower => {
                let inner: Inner =
                    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .http2_only(true)
                        .build_http();
                let service = FollowRedirectLayer::new(Policy::standard()).layer_on(inner);
                let send = |service: FollowRedirect<Inner>, method, url: String, body: Upload| async move {
                    let request = http::Request::builder()
                        .method(method)
                        .uri(url)
                        .body(body)
                        .unwrap();
                    match service.oneshot(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.into_body().collect().await;
                            Ok(status)
                        }
                        Err(e) => Err((e.kind(), e.to_string())),
                    }
                };
                let first = tokio::spawn(send(
                    service.clone(),
                    Method::POST,
                    format!("{}/slow", proxy.base()),
                    upload(small.clone()),
                ));
                seen(&server, "/slow").await;
                let second = send(
                    service,
                    Method::PUT,
                    format!("{}/a", proxy.base()),
                    upload(data.clone()),
                )
                .await;
                (first.await.unwrap(), second)
            }
        };
        let (kind, message) = slow.unwrap_err();
        assert_eq!(kind, ErrorKind::Request, "{via:?}: {message}");
        assert_eq!(second, Ok(StatusCode::OK), "{via:?}");
        assert_eq!(proxy.stats.fired.lock().unwrap().get("h2 GOAWAY"), Some(&1));
        let seen = server.seen_at("/slow");
        assert_eq!(seen.len(), 1, "{via:?}: /slow was not sent again");
        assert!(seen[0].full_body() == small);
        arrived_once(&server, "/a", &data).await;
        assert_eq!(
            server.seen_at("/a").len(),
            1,
            "{via:?}: the refused stream never reached the server"
        );
        arrived_once(&server, "/b", &data).await;
    }
}

//! Feature `ureq`: the same rules and body guarantees over a ureq 3 agent,
//! on real sockets, with no async runtime on the caller's side. Every test
//! checks what arrived at the server on every hop.
#![cfg(feature = "ureq")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use redirect_policy::ureq::{Agent, Body};
use redirect_policy::{BodyAction, ErrorKind, History, Policy};
use support::spec::{keeps, methods, STATUSES};
use support::{pattern, Action, Reply, Server};

fn agent(policy: Policy) -> Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build();
    Agent::new(ureq::Agent::new_with_config(config), policy)
}

fn history(response: &http::Response<ureq::Body>) -> &History {
    response.extensions().get::<History>().unwrap()
}

#[test]
fn spec_table_for_every_preset_status_and_method() {
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
        let agent = agent(policy);
        for status in STATUSES {
            for method in methods() {
                // ureq sends no body with GET or HEAD.
                let with_body = method != Method::GET && method != Method::HEAD;
                server.clear();
                let body = if with_body {
                    format!("body of {method} through {status} ({name})").into_bytes()
                } else {
                    Vec::new()
                };
                let response = agent
                    .request(method.clone(), &server.url(&format!("/s{status}")))
                    .header("content-type", "text/x-test")
                    .header("x-keep", "1")
                    .send(body.clone())
                    .unwrap();
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
                    let action = if with_body {
                        BodyAction::Replayed
                    } else {
                        BodyAction::None
                    };
                    assert_eq!(hop.body(), action, "{case}");
                } else {
                    assert_eq!(landed.method, Method::GET, "{case}");
                    assert!(landed.body.is_empty(), "{case}");
                    assert_eq!(landed.header("content-type"), None, "{case}");
                }
                assert_eq!(landed.header("x-keep"), Some("1"), "{case}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 9);
}

#[test]
fn a_reader_through_307_and_308_across_origins_arrives_whole_at_every_hop() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    b.route("/b", Reply::redirect(308, a.url("/c")));
    let data = pattern(3 * 1024 * 1024 + 17);
    for method in [Method::PUT, Method::POST] {
        a.clear();
        b.clear();
        let response = agent(Policy::standard())
            .request(method.clone(), &a.url("/a"))
            .header("authorization", "Bearer secret")
            .header("cookie", "s=1")
            .header("proxy-authorization", "Basic cHJveHk6cHc=")
            .send(Body::from_reader(std::io::Cursor::new(data.clone())))
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(history(&response).len(), 2);
        for (server, path) in [(&a, "/a"), (&b, "/b"), (&a, "/c")] {
            let seen = server.one_at(path);
            assert_eq!(seen.method, method, "{method} {path}");
            assert!(
                seen.body == data,
                "{method} {path}: {} bytes",
                seen.body.len()
            );
            // A reader of unknown length goes chunked, on every hop.
            assert_eq!(seen.header("transfer-encoding"), Some("chunked"), "{path}");
        }
        // Credentials went to A only, and never came back (sticky).
        assert_eq!(
            a.one_at("/a").header("authorization"),
            Some("Bearer secret")
        );
        for (server, path) in [(&b, "/b"), (&a, "/c")] {
            let seen = server.one_at(path);
            for name in ["authorization", "cookie", "proxy-authorization"] {
                assert_eq!(seen.header(name), None, "{method} {path}: {name} leaked");
            }
        }
    }
}

#[test]
fn a_file_upload_follows_a_307_with_its_length() {
    let server = Server::start();
    server.route("/upload", Reply::redirect(307, "/stored"));
    let data = pattern(5 * 1024 * 1024 + 3);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&data).unwrap();
    std::io::Seek::rewind(&mut file).unwrap();
    let response = agent(Policy::standard())
        .put(&server.url("/upload"))
        .send(file)
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for path in ["/upload", "/stored"] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::PUT);
        assert!(seen.body == data, "{path}: {} bytes", seen.body.len());
        let length = data.len().to_string();
        assert_eq!(
            seen.header("content-length"),
            Some(length.as_str()),
            "{path}"
        );
    }
}

#[test]
fn bytes_in_memory_are_sent_again_as_they_are() {
    let server = Server::start();
    server.route("/a", Reply::redirect(308, "/b"));
    for body in [
        Body::from(bytes::Bytes::from(pattern(70_000))),
        Body::from(pattern(70_000)),
        Body::from("text body"),
        Body::from(String::from("owned text")),
    ] {
        server.clear();
        let response = agent(Policy::standard())
            .post(&server.url("/a"))
            .send(body)
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let (first, last) = (server.one_at("/a"), server.one_at("/b"));
        assert_eq!(first.body, last.body);
        assert!(!last.body.is_empty());
    }
}

#[test]
fn a_reader_past_the_cap_is_refused_and_nothing_reaches_the_target() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let data = pattern(256 * 1024);
    let err = agent(Policy::standard().max_replay_body(64 * 1024))
        .post(&server.url("/a"))
        .send(Body::from_reader(std::io::Cursor::new(data.clone())))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyNotReplayable, "{err}");
    assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));
    assert!(server.one_at("/a").body == data);
    assert!(server.seen_at("/b").is_empty(), "a short body was sent");
}

#[test]
fn ureqs_own_following_is_off_and_policy_none_returns_the_3xx() {
    let server = Server::start();
    server.route("/a", Reply::redirect(302, "/b"));
    let response = agent(Policy::none()).get(&server.url("/a")).call().unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(server.seen_at("/b").is_empty());
    // Even on a plain ureq agent that follows by default.
    let response = Agent::new(ureq::Agent::new_with_defaults(), Policy::none())
        .get(&server.url("/a"))
        .call()
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
}

#[test]
fn a_timeout_covers_the_whole_chain() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/hang"));
    server.route("/hang", Reply::ok().action(Action::Hang));
    let started = Instant::now();
    let err = agent(Policy::standard())
        .get(&server.url("/a"))
        .timeout(Duration::from_secs(1))
        .call()
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(err.history().len(), 1);
}

#[test]
fn run_takes_a_request_built_elsewhere_with_its_own_policy() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(server.url("/a"))
        .extension(Policy::none())
        .body(Body::from("x"))
        .unwrap();
    let response = agent(Policy::standard()).run(request).unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let request = http::Request::post(server.url("/a"))
        .body(Body::from("y"))
        .unwrap();
    let mut response = agent(Policy::standard()).run(request).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.one_at("/b").body, b"y");
    // `?` works across the send and the body's read.
    let mut read =
        || -> Result<String, redirect_policy::Error> { Ok(response.body_mut().read_to_string()?) };
    read().unwrap();
}

#[test]
fn sixteen_threads_of_chains_each_arrive_whole() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    b.route("/b", Reply::redirect(308, a.url("/c")));
    let agent = agent(Policy::standard());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (agent, url) = (agent.clone(), a.url("/a"));
            std::thread::spawn(move || {
                for i in 0..4 {
                    let data = format!("thread {t} request {i} ").repeat(1000);
                    let response = agent
                        .put(&url)
                        .header("x-id", format!("{t}-{i}"))
                        .send(Body::from_reader(std::io::Cursor::new(data.into_bytes())))
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let hops: Vec<_> = a.seen().into_iter().chain(b.seen()).collect();
    assert_eq!(hops.len(), 16 * 4 * 3);
    for seen in hops {
        let id = seen.header("x-id").unwrap().to_owned();
        let (t, i) = id.split_once('-').unwrap();
        let expected = format!("thread {t} request {i} ").repeat(1000);
        assert!(seen.body == expected.as_bytes(), "{id} {}", seen.target);
    }
}

/// ureq writes the whole body before it reads the answer: an early 307 from
/// a server that keeps reading is read after the last byte, and the replay
/// is the whole body (or, past the cap, nothing at all).
#[test]
fn an_early_307_with_a_slow_3xx_body_replays_the_whole_body_or_none() {
    let data = pattern(1024 * 1024);
    for stall in [0, 150, 500] {
        for cap in [8 * 1024 * 1024, 128 * 1024] {
            let server = Server::start();
            server.route(
                "/a",
                Reply::early_307("/echo", 16 * 1024, Duration::from_millis(stall)),
            );
            let case = format!("stall {stall} ms, cap {cap}");
            let sent = agent(Policy::standard().max_replay_body(cap))
                .post(&server.url("/a"))
                .send(Body::from_reader(std::io::Cursor::new(data.clone())));
            let first = server.one_at("/a");
            // ureq wrote it all before it read the 307: the server, still
            // reading after its answer, must see the whole body end.
            assert!(
                support::wait_until(Duration::from_secs(10), || first.end().is_some()),
                "{case}: the first hop's body never ended"
            );
            assert_eq!(first.end(), Some(support::BodyEnd::Complete), "{case}");
            first.assert_whole_or_aborted(&data, &case);
            if cap >= data.len() {
                assert_eq!(sent.unwrap().status(), StatusCode::OK, "{case}");
                let echo = server.one_at("/echo");
                assert_eq!(echo.method, Method::POST, "{case}");
                assert!(echo.body == data, "{case}: {} bytes", echo.body.len());
            } else {
                let err = sent.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::BodyNotReplayable, "{case}: {err}");
                assert!(server.seen_at("/echo").is_empty(), "{case}: a hop was sent");
            }
        }
    }
}

/// The silent-body-loss matrix as ureq meets it: the cap crossed before the
/// 3xx head, while it comes (the server answers early and goes on reading:
/// ureq is still writing, so on ureq the buffer passes the cap before the
/// head is read), and after it (a body under the cap, replayed on two hops in
/// a row, and one exactly at the cap). Never a short hop: either every hop
/// has the whole body, or the chain stops (`BodyNotReplayable`, or the 307
/// handed back) and nothing goes on.
#[test]
fn the_cap_crossed_before_during_or_after_the_3xx_never_sends_a_short_hop() {
    use redirect_policy::UnreplayableBody;
    const KIB: usize = 1024;
    for on in [UnreplayableBody::Error, UnreplayableBody::ReturnRedirect] {
        // (case, body length, bytes read before the 307, cap, replayable)
        let cases = [
            ("before", 1024 * KIB, 256 * KIB, 128 * KIB, false),
            ("during", 2048 * KIB, 16 * KIB, 512 * KIB, false),
            ("after, under the cap", 400 * KIB, 16 * KIB, 512 * KIB, true),
            ("after, at the cap", 512 * KIB, 16 * KIB, 512 * KIB, true),
        ];
        for (what, len, prefix, cap, replayable) in cases {
            let case = format!("{what} ({on:?})");
            let data = pattern(len);
            let server = Server::start();
            server.route(
                "/a",
                Reply::early_307("/echo", prefix, Duration::from_millis(150)),
            );
            server.route("/echo", Reply::early_307("/final", prefix, Duration::ZERO));
            let policy = Policy::standard()
                .max_replay_body(cap)
                .unreplayable_body(on);
            let sent = agent(policy)
                .put(&server.url("/a"))
                .send(Body::from_reader(std::io::Cursor::new(data.clone())));
            let first = server.one_at("/a");
            assert!(
                support::wait_until(Duration::from_secs(10), || first.end().is_some()),
                "{case}: the first hop's body never ended"
            );
            first.assert_whole_or_aborted(&data, &case);
            if replayable {
                let response = sent.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{case}");
                assert_eq!(history(&response).len(), 2, "{case}");
                for path in ["/echo", "/final"] {
                    let seen = server.one_at(path);
                    assert_eq!(seen.method, Method::PUT, "{case} {path}");
                    // The server may still be reading what ureq wrote.
                    assert!(
                        support::wait_until(Duration::from_secs(10), || seen.end().is_some()),
                        "{case} {path}: the body never ended"
                    );
                    assert_eq!(
                        seen.end(),
                        Some(support::BodyEnd::Complete),
                        "{case} {path}"
                    );
                    seen.assert_whole_or_aborted(&data, &format!("{case} {path}"));
                }
            } else {
                match (on, sent) {
                    (UnreplayableBody::Error, Err(err)) => {
                        assert_eq!(err.kind(), ErrorKind::BodyNotReplayable, "{case}: {err}");
                        assert!(err.to_string().contains("max_replay_body"), "{case}: {err}");
                    }
                    (UnreplayableBody::ReturnRedirect, Ok(response)) => {
                        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT, "{case}");
                    }
                    (_, other) => panic!("{case}: {:?}", other.map(|r| r.status())),
                }
                assert!(server.seen_at("/echo").is_empty(), "{case}: a hop was sent");
            }
        }
    }
}

/// The async hook runs on the calling thread, with no runtime: one that
/// waits on another thread (a signer, say) is woken like any future.
#[test]
fn the_hook_runs_without_a_runtime_and_may_edit_the_next_request() {
    use redirect_policy::{BoxError, HookAction, Redirect};
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")));
    let policy = Policy::standard().hook(|mut redirect: Redirect| async move {
        // A signature computed on another thread, awaited.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send("signed-for-b").unwrap();
        });
        let signature = Waiting(Some(rx)).await;
        redirect
            .next_mut()
            .headers_mut()
            .insert("x-signature", signature.parse().unwrap());
        Ok::<_, BoxError>(HookAction::Follow(redirect.next().clone()))
    });
    let response = agent(policy).put(&a.url("/a")).send("payload").unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = b.one_at("/b");
    assert_eq!(seen.header("x-signature"), Some("signed-for-b"));
    assert_eq!(seen.body, b"payload");
}

/// A future that is pending until a value arrives on `rx`, woken by a
/// thread of its own (no runtime's timer or reactor).
struct Waiting(Option<std::sync::mpsc::Receiver<&'static str>>);

impl std::future::Future for Waiting {
    type Output = &'static str;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<&'static str> {
        let rx = self.0.take().unwrap();
        if let Ok(value) = rx.try_recv() {
            return std::task::Poll::Ready(value);
        }
        let (waker, (tx, rx2)) = (cx.waker().clone(), std::sync::mpsc::channel());
        std::thread::spawn(move || {
            // A sender that is gone never answers: pending for ever.
            if let Ok(value) = rx.recv() {
                let _ = tx.send(value);
                waker.wake();
            }
        });
        self.0 = Some(rx2);
        std::task::Poll::Pending
    }
}

#[cfg(feature = "json")]
#[test]
fn send_json_replays_the_document_on_a_307() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let response = agent(Policy::standard())
        .post(&server.url("/a"))
        .send_json(serde_json::json!({"name": "redirect-policy", "hops": 1}))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for path in ["/a", "/b"] {
        let seen = server.one_at(path);
        assert_eq!(
            seen.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let value: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(value["name"], "redirect-policy", "{path}");
    }
}

#[test]
fn a_remembered_permanent_redirect_goes_straight_to_the_target() {
    let server = Server::start();
    server.route("/old", Reply::redirect(308, "/new"));
    let memory = redirect_policy::PermanentRedirects::new(16, Duration::from_secs(60));
    let agent = agent(Policy::standard().permanent_redirects(memory));
    for round in 0..2 {
        let response = agent.put(&server.url("/old")).send("doc").unwrap();
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        let hop = history(&response).iter().next().unwrap();
        assert_eq!(hop.is_remembered(), round == 1, "round {round}");
    }
    assert_eq!(
        server.seen_at("/old").len(),
        1,
        "the second went straight to /new"
    );
    for seen in server.seen_at("/new") {
        assert_eq!(seen.method, Method::PUT);
        assert_eq!(seen.body, b"doc");
    }
}

/// The chain's timeout covers the hook too: a hook that never answers in
/// time ends the chain with `Timeout`, woken with no runtime.
#[test]
fn the_timeout_covers_a_slow_hook() {
    use redirect_policy::{BoxError, HookAction, Redirect};
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let policy = Policy::standard().hook(|redirect: Redirect| async move {
        let (_tx, rx) = std::sync::mpsc::channel::<&'static str>();
        let _never = Waiting(Some(rx)).await; // the sender is gone: never ready
        Ok::<_, BoxError>(HookAction::Follow(redirect.next().clone()))
    });
    let started = Instant::now();
    let err = agent(policy)
        .post(&server.url("/a"))
        .timeout(Duration::from_millis(500))
        .send("x")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(server.seen_at("/b").is_empty());
}

/// A request with no body says nothing of one, as ureq's own `call()`: no
/// `Content-Length: 0` on a GET (nor on the GET a 303 makes of a POST); a
/// POST with an empty body sends `Content-Length: 0`, as ureq does.
#[test]
fn no_body_sends_no_content_length_where_the_method_has_none() {
    let server = Server::start();
    server.route("/form", Reply::redirect(303, "/done"));
    let agent = agent(Policy::standard());
    agent.get(&server.url("/get")).call().unwrap();
    agent.post(&server.url("/empty")).send_empty().unwrap();
    agent.post(&server.url("/form")).send("a=1").unwrap();
    for (path, method, length) in [
        ("/get", Method::GET, None),
        ("/empty", Method::POST, Some("0")),
        ("/form", Method::POST, Some("3")),
        ("/done", Method::GET, None),
    ] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, method, "{path}");
        assert_eq!(seen.header("content-length"), length, "{path}");
        assert_eq!(seen.header("transfer-encoding"), None, "{path}");
    }
}

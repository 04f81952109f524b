//! Issue "A redirected upload sends its body once": `Expect: 100-continue`
//! on the ureq adapter, over real sockets. Each case asserts what every
//! server received: a server that redirects before its 100 gets no body
//! byte, and the next hop sends the whole body from its source, past the
//! replay cap too.
#![cfg(feature = "ureq")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::io::Write as _;
use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::ureq::{Agent, Body};
use redirect_policy::{ErrorKind, History, Policy};
use support::raw::{
    never_100, raw_server, read_head, read_until, redirect_and_close, redirect_at_head, reset, Got,
};
use support::{pattern, BodyEnd, Read, Reply, Server};

const MIB: usize = 1024 * 1024;

fn agent(policy: Policy) -> Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    Agent::new(ureq::Agent::new_with_config(config), policy)
}

/// A reader of unknown length: it qualifies for the expectation whatever
/// its size.
fn stream(data: &[u8]) -> Body {
    Body::from_reader(std::io::Cursor::new(data.to_vec()))
}

fn hops(response: &http::Response<ureq::Body>) -> usize {
    response
        .extensions()
        .get::<History>()
        .map_or(0, History::len)
}

/// The default policy: a stream goes with the expectation; the server reads
/// it (hyper sends 100 when its handler reads), and the body follows.
#[test]
fn a_100_then_the_body() {
    let server = Server::start();
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .put(&server.url("/upload"))
        .send(stream(&data))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.one_at("/upload");
    assert_eq!(seen.header("expect"), Some("100-continue"));
    assert!(seen.body == data, "{} bytes", seen.body.len());
}

/// A body in memory under the threshold goes without it; one at the
/// threshold with it; `no_expect_continue` never.
#[test]
fn the_threshold_decides_and_the_policy_can_turn_it_off() {
    let server = Server::start();
    for (len, policy, expected) in [
        (MIB - 1, Policy::standard(), None),
        (MIB, Policy::standard(), Some("100-continue")),
        (MIB, Policy::standard().no_expect_continue(), None),
        (
            10,
            Policy::standard().expect_continue(10, Duration::from_secs(1)),
            Some("100-continue"),
        ),
    ] {
        server.clear();
        let data = pattern(len);
        let response = agent(policy)
            .post(&server.url("/p"))
            .send(data.clone())
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let seen = server.one_at("/p");
        assert_eq!(seen.header("expect"), expected, "{len} bytes");
        assert!(seen.body == data);
    }
    // No body, no expectation.
    agent(Policy::standard())
        .get(&server.url("/g"))
        .call()
        .unwrap();
    assert_eq!(server.one_at("/g").header("expect"), None);
}

/// A 307 before the 100: the redirecting server gets no body byte; the
/// target gets all of it, from the source: a 4 MiB stream follows with a
/// replay cap of 64 KiB, which a body sent twice could not.
#[test]
fn a_307_before_the_100_uploads_nothing_and_the_next_hop_sends_it_all() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Nothing));
    let data = pattern(4 * MIB);
    let policy = Policy::standard().max_replay_body(64 * 1024);
    let response = agent(policy).put(&a.url("/a")).send(stream(&data)).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hops(&response), 1);
    let first = a.one_at("/a");
    assert_eq!(first.header("expect"), Some("100-continue"));
    assert!(
        first.body.is_empty(),
        "{} bytes reached the redirecting server",
        first.body.len()
    );
    let second = b.one_at("/b");
    assert_eq!(second.method, Method::PUT);
    assert_eq!(
        second.header("expect"),
        Some("100-continue"),
        "the next hop asks again"
    );
    assert!(second.body == data, "{} bytes", second.body.len());
    assert_eq!(second.end(), Some(BodyEnd::Complete));
}

/// A body in memory answered 307 before its 100: nothing reaches the
/// redirecting server, the history counts 0 bytes sent on that hop, and the
/// target gets the body whole, with its `Content-Length`.
#[test]
fn a_body_in_memory_held_back_counts_nothing_sent() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Nothing));
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .post(&a.url("/a"))
        .send(data.clone())
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(a.one_at("/a").body.is_empty());
    let landed = b.one_at("/b");
    assert!(landed.body == data);
    assert_eq!(landed.header("content-length"), Some("2097152"));
    let history = response.extensions().get::<History>().unwrap();
    assert_eq!(history.hops()[0].body_bytes_sent(), 0);
}

/// A final answer before the 100 (a 401): returned, nothing uploaded.
#[test]
fn a_401_before_the_100_is_returned_with_nothing_uploaded() {
    let server = Server::start();
    server.route("/secret", Reply::status(401).read(Read::Nothing));
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .post(&server.url("/secret"))
        .send(stream(&data))
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(hops(&response), 0);
    let seen = server.one_at("/secret");
    assert!(
        seen.body.is_empty(),
        "{} bytes were uploaded",
        seen.body.len()
    );
}

/// A 417: the request once more without the expectation, its body whole.
#[test]
fn a_417_sends_the_request_once_more_without_the_expectation() {
    let server = Server::start();
    server.route_seq(
        "/strict",
        vec![Reply::status(417).read(Read::Nothing), Reply::ok()],
    );
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .put(&server.url("/strict"))
        .send(stream(&data))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.seen_at("/strict");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("expect"), Some("100-continue"));
    assert!(seen[0].body.is_empty());
    assert_eq!(seen[1].header("expect"), None);
    assert!(seen[1].body == data, "{} bytes", seen[1].body.len());
}

/// A 417 to the retry too (after reading its body) is the answer: no
/// second retry.
#[test]
fn a_second_417_is_returned() {
    let server = Server::start();
    server.route_seq(
        "/never",
        vec![Reply::status(417).read(Read::Nothing), Reply::status(417)],
    );
    let response = agent(Policy::standard())
        .put(&server.url("/never"))
        .send(pattern(2 * MIB))
        .unwrap();
    assert_eq!(response.status(), StatusCode::EXPECTATION_FAILED);
    assert_eq!(server.seen_at("/never").len(), 2);
}

/// A 100 and then an early 307 mid-body: ureq writes the whole body before
/// it reads the answer, so the replay is the whole body, from the buffer.
#[test]
fn a_100_then_an_early_307_mid_body_replays_it_whole() {
    let server = Server::start();
    server.route(
        "/a",
        Reply::early_307("/b", 64 * 1024, Duration::from_millis(100)),
    );
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .post(&server.url("/a"))
        .send(stream(&data))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = server.one_at("/a");
    assert!(support::wait_until(Duration::from_secs(10), || first
        .end()
        .is_some()));
    first.assert_whole_or_aborted(&data, "the first hop");
    assert!(server.one_at("/b").body == data);
}

/// A server that never sends 100 and reads the body when it comes: the
/// wait elapses and the body follows, whole.
#[test]
fn a_server_that_never_sends_100_gets_the_body_after_the_wait() {
    let (addr, got) = never_100();
    let data = pattern(2 * MIB);
    let policy = Policy::standard().expect_continue(MIB as u64, Duration::from_millis(200));
    let response = agent(policy)
        .put(&format!("http://{addr}/up"))
        .send(data.clone())
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let got = got.lock().unwrap();
    assert!(got.heads[0]
        .to_ascii_lowercase()
        .contains("expect: 100-continue"));
    assert!(got.bodies[0] == data, "{} bytes", got.bodies[0].len());
}

/// A server that answers 307 to the head and closes at once (haproxy's
/// `http-request redirect code 307`): with the expectation no body byte was
/// written, so there is nothing to break; the 307 is read and followed,
/// five uploads in a row.
#[test]
fn a_307_to_the_head_and_a_close_is_followed() {
    let target = Server::start();
    let (addr, got) = redirect_at_head(&target.url("/landing"), drop);
    let data = pattern(4 * MIB);
    let agent = agent(Policy::standard());
    for _ in 0..5 {
        target.clear();
        let response = agent
            .put(&format!("http://{addr}/v1/upload"))
            .send(stream(&data))
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let landed = target.one_at("/landing");
        assert!(landed.body == data, "{} bytes", landed.body.len());
    }
    let got = got.lock().unwrap();
    assert_eq!(got.bodies.len(), 5);
    assert!(
        got.bodies.iter().all(Vec::is_empty),
        "body bytes reached the redirecting server"
    );
}

/// The same server resetting the connection (RST) right after its 307:
/// ureq 3.5 loses that 307. With the whole 307 in its buffer it reads once
/// more while it awaits the 100 (seen with strace: `recvfrom` → 115 bytes,
/// then `recvfrom` → `ECONNRESET`), and returns the reset. So here the
/// upload fails with a typed `Request` error (the reset as its source),
/// nothing was uploaded to the redirecting server, and nothing short went
/// anywhere. (The tower layer reads and follows the same 307:
/// `tests/expect_tower.rs`.)
#[test]
fn a_307_to_the_head_and_a_reset_is_an_error_on_ureq_never_a_short_body() {
    let target = Server::start();
    let (addr, got) = redirect_at_head(&target.url("/landing"), reset);
    let data = pattern(4 * MIB);
    match agent(Policy::standard())
        .put(&format!("http://{addr}/v1/upload"))
        .send(stream(&data))
    {
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::OK);
            assert!(target.one_at("/landing").body == data);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Request, "{e}");
            assert!(target.seen_at("/landing").is_empty());
        }
    }
    assert!(got.lock().unwrap().bodies.iter().all(Vec::is_empty));
}

/// Without the expectation the same server is a reset mid-upload: an I/O
/// error on ureq, never a short body at the target (what the issue fixes).
#[test]
fn without_the_expectation_the_same_close_is_an_error_not_a_short_body() {
    let target = Server::start();
    let answer = redirect_and_close(&target.url("/landing"));
    let (addr, _got) = raw_server(move |mut stream, _| {
        let _ = read_head(&mut stream);
        let _ = stream.write_all(&answer);
    });
    let data = pattern(4 * MIB);
    let sent = agent(Policy::standard().no_expect_continue())
        .put(&format!("http://{addr}/v1/upload"))
        .send(stream(&data));
    match sent {
        // The 307 was read in time: followed, the body whole.
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::OK);
            assert!(target.one_at("/landing").body == data);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Request, "{e}");
            assert!(
                target.seen_at("/landing").is_empty(),
                "a short body was sent"
            );
        }
    }
}

/// A server that answers 307 before its 100 and sends a late 100 on the
/// same connection (it started reading the body after answering): the
/// connection is not used again, so the next hop's request is never taken
/// for the first one's body; the target gets the body whole.
#[test]
fn a_connection_answered_before_its_100_is_not_used_again() {
    let target = Server::start();
    let location = target.url("/b");
    let (addr, got) = raw_server(move |mut stream, got| {
        let (head, _) = read_head(&mut stream);
        let answer = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
        );
        stream.write_all(answer.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        // Whatever comes on this connection now.
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut after = Vec::new();
        read_until(&mut stream, &mut after, |_| false);
        Got::record(got, head, after);
    });
    let data = pattern(2 * MIB);
    let response = agent(Policy::standard())
        .put(&format!("http://{addr}/a"))
        .timeout(Duration::from_secs(10))
        .send(stream(&data))
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let landed = target.one_at("/b");
    assert!(
        landed.body == data,
        "{} bytes at the target",
        landed.body.len()
    );
    // The first connection's record is made when it ends (closed by the
    // client, or 2 s of silence).
    assert!(support::wait_until(Duration::from_secs(5), || {
        !got.lock().unwrap().bodies.is_empty()
    }));
    let got = got.lock().unwrap();
    assert!(
        got.bodies[0].is_empty(),
        "the connection answered before its 100 carried {} more bytes: {:?}",
        got.bodies[0].len(),
        String::from_utf8_lossy(&got.bodies[0][..got.bodies[0].len().min(80)])
    );
}

//! A 1000-hop chain: memory stays bounded and the history grows linearly.
//! Its own test binary, so that no other test shares the process while it
//! reads resident memory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::{BodyAction, Client, History, Policy};
use support::{pattern, slow_stream, Read, Reply, Server};

#[cfg(target_os = "linux")]
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test]
async fn a_1000_hop_chain_keeps_one_replay_buffer_and_a_linear_history() {
    const HOPS: usize = 1000;
    let server = Server::start();
    for i in 0..HOPS {
        server.route(
            &format!("/h{i}"),
            Reply::redirect(307, format!("/h{}", i + 1)).read(Read::Digest),
        );
    }
    server.route(&format!("/h{HOPS}"), Reply::ok().read(Read::Digest));
    let body = pattern(256 * 1024);
    let client = Client::new(Policy::standard().max_redirects(HOPS));

    #[cfg(target_os = "linux")]
    let before = resident_bytes();
    let response = client
        .put(server.url("/h0"))
        .body(slow_stream(body.clone(), 32 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<History>().unwrap().clone();
    drop(response);
    #[cfg(target_os = "linux")]
    {
        // 1000 hops of a 256 KiB body is 250 MiB sent; a copy kept per hop
        // would show as that much resident memory. One replay buffer and a
        // small record per hop stay far below the bound.
        let grown = resident_bytes().saturating_sub(before);
        assert!(
            grown < 16 * 1024 * 1024,
            "resident memory grew by {grown} bytes"
        );
    }
    assert_eq!(history.len(), HOPS);
    assert!(history.iter().all(|hop| hop.body() == BodyAction::Replayed));
    assert!(history.iter().all(|hop| *hop.next_method() == Method::PUT));
    let digest = server.one_at(&format!("/h{HOPS}")).body;
    let expected = <sha2::Sha256 as sha2::Digest>::digest(&body).to_vec();
    assert_eq!(digest, expected, "the last hop got the same bytes");
    assert_eq!(server.seen().len(), HOPS + 1);
}

//! Over h2, an early 307 leaves nothing behind: after ten chains whose first
//! stream the server was still reading, the process has no more open file
//! descriptors than before (alone in its binary: descriptors are counted
//! process-wide).
#![cfg(feature = "http2")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::StatusCode;
use redirect_policy::{Client, Policy};
use support::{pattern, slow_stream, wait_until, Read, Reply, Server};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// What the open descriptors are, for the failure message.
fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd").map_or_else(
        |_| Vec::new(),
        |dir| {
            dir.filter_map(Result::ok)
                .map(|e| {
                    std::fs::read_link(e.path())
                        .map_or_else(|_| "?".to_owned(), |p| p.display().to_string())
                })
                .collect()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_307_over_h2_leaves_no_descriptor_behind() {
    if std::fs::read_dir("/proc/self/fd").is_err() {
        support::skip_or_fail(
            "early_307_over_h2_leaves_no_descriptor_behind: no /proc/self/fd to count descriptors",
        );
        return;
    }
    let server = Server::start();
    server.route(
        "/a",
        Reply::redirect(307, "/b").read(Read::Prefix(256 * 1024)),
    );
    let body = pattern(4 * 1024 * 1024);
    let mut before = 0;
    let mut listed = Vec::new();
    // Round 0 warms up what a process sets up once (resolver threads, the
    // runtime's drivers); the count is taken after it.
    for round in 0..11 {
        if round == 1 {
            for _ in 0..200 {
                if server.open_connections() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            before = open_fds();
            listed = fd_targets();
        }
        // A new client each time: a stuck stream would pin its connection.
        let client = Client::from_builder(
            reqwest::Client::builder().http2_prior_knowledge(),
            Policy::standard(),
        )
        .unwrap();
        let response = client
            .put(server.url("/a"))
            .body(slow_stream(
                body.clone(),
                64 * 1024,
                Duration::from_millis(1),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        drop(response);
        drop(client);
    }
    let (settled, server) = tokio::task::spawn_blocking(move || {
        let settled = wait_until(Duration::from_secs(10), || {
            server.open_connections() == 0 && server.open_bodies() == 0
        }) && wait_until(Duration::from_secs(5), || open_fds() <= before);
        (settled, server)
    })
    .await
    .unwrap();
    assert!(
        settled,
        "streams still open at the server: {}, connections: {}, descriptors before {before} \
         {listed:?}, after {} {:?}",
        server.open_bodies(),
        server.open_connections(),
        open_fds(),
        fd_targets()
    );
}

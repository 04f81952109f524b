//! Feature `spill`: replay buffers past a threshold go to a temporary file,
//! which is gone when the chain ends, fails or is cancelled.
#![cfg(feature = "spill")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::{Client, ErrorKind, Policy};
use support::{pattern, slow_stream, Action, Read, Reply, Server};

const MIB: usize = 1024 * 1024;

/// Spill files this process still has open (on Unix they are unlinked at
/// once, so an open descriptor is the only trace).
fn open_spill_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|p| p.to_string_lossy().contains("redirect-policy-"))
            .count()
    })
}

fn spilling() -> Policy {
    Policy::standard()
        .max_replay_body(64 * MIB)
        .spill_to_disk(MIB)
}

/// One test, in steps: open spill files are counted process-wide, so the
/// steps must not overlap.
#[tokio::test]
async fn spill_files_hold_exact_bytes_and_always_go() {
    a_32_mib_stream_spills_and_arrives_byte_identical().await;
    the_spill_file_goes_on_error_and_on_cancellation().await;
}

async fn a_32_mib_stream_spills_and_arrives_byte_identical() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b").read(Read::Digest));
    server.route("/b", Reply::ok().read(Read::Digest));
    let body = pattern(32 * MIB);
    let response = Client::new(spilling())
        .put(server.url("/a"))
        .body(slow_stream(body.clone(), 256 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let expected = <sha2::Sha256 as sha2::Digest>::digest(&body).to_vec();
    assert_eq!(server.one_at("/a").body, expected);
    let landed = server.one_at("/b");
    assert_eq!(landed.method, Method::PUT);
    assert_eq!(
        landed.body, expected,
        "the replay from memory and file is exact"
    );
    drop(response);
    assert_eq!(
        open_spill_files(),
        0,
        "the file is gone when the chain ends"
    );
}

async fn the_spill_file_goes_on_error_and_on_cancellation() {
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/gone"));
    server.route("/gone", Reply::ok().action(Action::Drop));
    server.route("/slow", Reply::redirect(307, "/hang"));
    server.route("/hang", Reply::ok().action(Action::Hang));
    let client = Client::new(spilling());

    let err = client
        .put(server.url("/a"))
        .body(slow_stream(pattern(4 * MIB), 256 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert_eq!(open_spill_files(), 0, "gone after an error");

    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        client
            .put(server.url("/slow"))
            .body(slow_stream(pattern(4 * MIB), 256 * 1024, Duration::ZERO))
            .send(),
    )
    .await;
    assert!(cancelled.is_err(), "the send was cancelled");
    // hyper may still hold the abandoned body for a moment.
    for _ in 0..50 {
        if open_spill_files() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open_spill_files(), 0, "gone after cancellation");
}

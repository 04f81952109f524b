//! Feature `ureq`: a `File` through a 307 arrives whole at both hops, with
//! its length, and the process's peak memory grows by well under the file's
//! size: the file is streamed (never loaded), and its replay is kept on disk.
//! Alone in its binary, so that the peak (`VmHWM`) is this test's.
#![cfg(all(feature = "ureq", feature = "spill", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use redirect_policy::ureq::Agent;
use redirect_policy::Policy;
use support::{Read, Reply, Server};

fn send_file(agent: &Agent, a: &Server, b: &Server, size: usize) -> u64 {
    support::file_through_307(a, b, size, |file, url| {
        agent.put(&url).send(file).unwrap().status()
    })
}

#[test]
fn a_30_mb_file_goes_through_a_307_whole_without_being_loaded() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Digest));
    b.route("/b", Reply::ok().read(Read::Digest));
    let policy = Policy::standard()
        .max_replay_body(64 << 20)
        .spill_to_disk(128 * 1024);
    let agent = Agent::new(ureq::Agent::new_with_defaults(), policy);
    // Warm up: the buffers of both sides at their full size.
    send_file(&agent, &a, &b, 1 << 20);
    let grown = send_file(&agent, &a, &b, 3_000_000);
    assert!(
        grown < 2_000_000,
        "peak RSS grew by {grown} bytes for a 3 MB file"
    );
    let grown = send_file(&agent, &a, &b, 30_000_000);
    assert!(
        grown < 3_000_000,
        "peak RSS grew by {grown} bytes for a 30 MB file"
    );
}

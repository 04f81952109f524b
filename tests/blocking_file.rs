//! Issue "A drop-in for reqwest code", item 4: a 3 MB `File` through a 307
//! arrives whole at both hops, and the process's peak memory grows by well
//! under the file's size: the file is streamed (never loaded), and its replay
//! is kept on disk. Alone in its binary, so that the peak (`VmHWM`) is this
//! test's.
#![cfg(all(feature = "blocking", feature = "spill", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use redirect_policy::{blocking, Policy};
use support::{Read, Reply, Server};

/// A file through the 307 (see `support::file_through_307`), with the
/// history checked.
fn send_file(client: &blocking::Client, a: &Server, b: &Server, size: usize) -> u64 {
    support::file_through_307(a, b, size, |file, url| {
        let response = client.put(url).body(file).send().unwrap();
        assert_eq!(response.history().unwrap().len(), 1);
        response.status()
    })
}

#[test]
fn a_3_mb_file_goes_through_a_307_whole_without_being_loaded() {
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b")).read(Read::Digest));
    b.route("/b", Reply::ok().read(Read::Digest));
    let policy = Policy::standard()
        .max_replay_body(64 << 20)
        .spill_to_disk(128 * 1024);
    let client = blocking::Client::new(policy);
    // Warm up on a 1 MiB file: threads, the pool, and the buffers of both
    // connections (the client's and the in-process server's) at their full
    // size. What a file adds to the peak after that is what it costs.
    send_file(&client, &a, &b, 1 << 20);
    // The case. Measured: 0.6-1.4 MiB of fixed buffers whatever the
    // size; loading the file would add all of it.
    let grown = send_file(&client, &a, &b, 3_000_000);
    assert!(
        grown < 2_000_000,
        "peak RSS grew by {grown} bytes for a 3 MB file"
    );
    // Ten times the size, and the peak does not follow it.
    let grown = send_file(&client, &a, &b, 30_000_000);
    assert!(
        grown < 3_000_000,
        "peak RSS grew by {grown} bytes for a 30 MB file"
    );
}

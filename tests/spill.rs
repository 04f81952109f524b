//! Feature `spill`: replay buffers past a threshold go to a temporary file,
//! which is gone when the chain ends, fails or is cancelled.
#![cfg(feature = "spill")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use redirect_policy::{Client, ErrorKind, Policy};
use support::{pattern, slow_stream, Action, Read, Reply, Server};

const MIB: usize = 1024 * 1024;

/// The descriptors this process has open on files in `dir` (spill files
/// have no name, or lose it at once, so an open descriptor is their only
/// trace), as (link target, metadata).
fn open_files_in(dir: &Path) -> Vec<(String, std::fs::Metadata)> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd").map_or_else(
        |_| Vec::new(),
        |fds| {
            fds.filter_map(Result::ok)
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    let target = target.to_string_lossy().into_owned();
                    // `metadata` follows the /proc link to the open file.
                    let meta = std::fs::metadata(e.path()).ok()?;
                    target.starts_with(&dir).then_some((target, meta))
                })
                .collect()
        },
    )
}

/// Nothing of the spill is left: no descriptor, no name in the directory.
async fn assert_nothing_left(dir: &Path, when: &str) {
    // Without /proc no open descriptor can be seen: the first half of this
    // check would pass on anything, so it says so (and fails under CI).
    if std::fs::read_dir("/proc/self/fd").is_err() {
        support::skip_or_fail(&format!(
            "{when}: no /proc/self/fd, so no open spill file can be seen"
        ));
    }
    // hyper may still hold an abandoned body for a moment.
    for _ in 0..100 {
        if open_files_in(dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        open_files_in(dir).is_empty(),
        "{when}: a spill file is still open"
    );
    let names: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(
        names.is_empty(),
        "{when}: {names:?} left in the spill directory"
    );
}

fn spilling(dir: &Path) -> Policy {
    Policy::standard()
        .max_replay_body(64 * MIB)
        .spill_to_disk(MIB)
        .spill_dir(dir)
}

#[tokio::test]
async fn spill_files_hold_exact_bytes_and_always_go() {
    a_32_mib_stream_spills_and_arrives_byte_identical().await;
    the_spill_file_goes_on_error_and_on_cancellation().await;
}

async fn a_32_mib_stream_spills_and_arrives_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b").read(Read::Digest));
    server.route("/b", Reply::ok().read(Read::Digest));
    let body = pattern(32 * MIB);
    let response = Client::new(spilling(dir.path()))
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
    assert_nothing_left(dir.path(), "after success").await;
}

async fn the_spill_file_goes_on_error_and_on_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/gone"));
    server.route("/gone", Reply::ok().action(Action::Drop));
    server.route("/slow", Reply::redirect(307, "/hang"));
    server.route("/hang", Reply::ok().action(Action::Hang));
    let client = Client::new(spilling(dir.path()));

    let err = client
        .put(server.url("/a"))
        .body(slow_stream(pattern(4 * MIB), 256 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request);
    assert_nothing_left(dir.path(), "after an error").await;

    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        client
            .put(server.url("/slow"))
            .body(slow_stream(pattern(4 * MIB), 256 * 1024, Duration::ZERO))
            .send(),
    )
    .await;
    assert!(cancelled.is_err(), "the send was cancelled");
    assert_nothing_left(dir.path(), "after a dropped future").await;
}

/// While a spilled chain is in flight (its second hop hangs): the file is
/// mode 0600 and has no name; two concurrent chains have a file each.
#[cfg(unix)]
#[tokio::test]
async fn spill_files_are_private_and_never_shared() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/hang"));
    server.route("/hang", Reply::ok().action(Action::Hang));
    let client = Client::new(spilling(dir.path()));
    let chains: Vec<_> = (0..2)
        .map(|_| {
            let request = client.put(server.url("/a")).body(slow_stream(
                pattern(4 * MIB),
                256 * 1024,
                Duration::ZERO,
            ));
            tokio::spawn(request.send())
        })
        .collect();
    let mut open = Vec::new();
    for _ in 0..250 {
        open = open_files_in(dir.path());
        if open.len() == 2 && server.seen_at("/hang").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open.len(), 2, "one spill file per chain: {open:?}");
    assert_ne!(open[0].1.ino(), open[1].1.ino(), "two chains, two files");
    for (target, meta) in &open {
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{target}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the files have no name another user could open"
    );
    for chain in chains {
        chain.abort();
    }
    assert_nothing_left(dir.path(), "after the chains were dropped").await;
}

/// The old code named its file `redirect-policy-PID-N.spill` in the temp
/// directory, so a planted file there made every spill fail. Names are not
/// used any more: a spill with the default directory works with them there.
#[tokio::test]
async fn files_planted_at_the_old_names_do_not_stop_a_spill() {
    let tmp = std::env::temp_dir();
    let planted: Vec<_> = (0..64)
        .map(|n| tmp.join(format!("redirect-policy-{}-{n}.spill", std::process::id())))
        .collect();
    for path in &planted {
        std::fs::write(path, b"planted").unwrap();
    }
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let body = pattern(4 * MIB);
    let policy = Policy::standard()
        .max_replay_body(64 * MIB)
        .spill_to_disk(MIB);
    let response = Client::new(policy)
        .put(server.url("/a"))
        .body(slow_stream(body.clone(), 256 * 1024, Duration::ZERO))
        .send()
        .await;
    for path in &planted {
        let _ = std::fs::remove_file(path);
    }
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert!(
        server.one_at("/b").body == body,
        "replayed whole from the spill file"
    );
}

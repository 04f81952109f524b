//! Tracing: one span per followed request, one event per hop. Its own test
//! binary: tracing caches each callsite's interest process-wide, so a test
//! running earlier in the same process without a subscriber would hide
//! these events.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::sync::{Arc, Mutex};

use redirect_policy::{Client, Policy};
use support::{Reply, Server};

#[test]
fn tracing_reports_each_hop_without_header_values() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let a = Server::start();
    let b = Server::start();
    a.route("/a", Reply::redirect(307, b.url("/b?token=secret")));
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            Client::new(Policy::standard())
                .post(a.url("/a"))
                .bearer_auth("super-secret-token")
                .body("x")
                .send()
                .await
                .unwrap();
        });
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let events: Vec<_> = text
        .lines()
        .filter(|l| l.contains("redirect followed"))
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events[0];
    for part in [
        "status=307",
        "method=POST",
        "next_method=POST",
        "Replayed",
        "authorization",
        "redirect_policy.follow",
    ] {
        assert!(event.contains(part), "{part} missing in {event}");
    }
    assert!(event.contains(&format!("to={}", b.url("/b"))), "{event}");
    assert!(!text.contains("super-secret-token"), "{text}");
    assert!(!text.contains("token=secret"), "{text}");
}

//! `cargo run --example ureq --features ureq`: a ureq 3 agent, with no async
//! runtime of its own, wrapped in this crate's `Agent`. A file-like reader
//! goes through a 307 to another origin and arrives whole (ureq alone fails
//! with `RedirectFailed` here); a POST through a 302 becomes a GET, as the
//! Fetch standard says. Each hop is printed, with what the server received.
//! The servers are local ones this program starts itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use redirect_policy::ureq::{Agent, Body};
use redirect_policy::{History, Policy};
use support::{pattern, sha256, Reply, Server};

fn main() -> Result<(), redirect_policy::Error> {
    let upload = Server::start();
    let storage = Server::start();
    upload.route(
        "/v1/objects/report",
        Reply::redirect(307, storage.url("/eu/objects/report")),
    );
    upload.route("/v1/forms", Reply::redirect(302, "/v1/thanks"));

    let agent = Agent::new_with_defaults().with_policy(Policy::standard());

    // A reader, streamed and teed: replayed byte for byte on the 307.
    let data = pattern(3 * 1024 * 1024);
    println!(
        "PUT {} ({} bytes from a reader, sha256 {})",
        upload.url("/v1/objects/report"),
        data.len(),
        sha256(&data)
    );
    let mut response = agent
        .put(&upload.url("/v1/objects/report"))
        .header("authorization", "Bearer for-the-upload-host-only")
        .send(Body::from_reader(std::io::Cursor::new(data)))?;
    show(response.extensions().get::<History>());
    println!(
        "final: {} {:?}",
        response.status(),
        response.body_mut().read_to_string()?
    );
    for (server, path) in [
        (&upload, "/v1/objects/report"),
        (&storage, "/eu/objects/report"),
    ] {
        let seen = server.one_at(path);
        println!(
            "  server saw {} {}: {} bytes, sha256 {}, authorization {:?}",
            seen.method,
            path,
            seen.body.len(),
            sha256(&seen.body),
            seen.header("authorization")
        );
    }

    // A form POST through a 302: GET with no body, body headers dropped.
    println!("\nPOST {} (a form)", upload.url("/v1/forms"));
    let response = agent
        .post(&upload.url("/v1/forms"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("name=redirect-policy")?;
    show(response.extensions().get::<History>());
    let landed = upload.one_at("/v1/thanks");
    println!(
        "  server saw {} /v1/thanks: {} bytes, content-type {:?}",
        landed.method,
        landed.body.len(),
        landed.header("content-type")
    );
    Ok(())
}

fn show(history: Option<&History>) {
    for hop in history.into_iter().flat_map(History::iter) {
        println!(
            "  hop: {} {} {} -> {} {} (body {:?}, stripped {:?})",
            hop.status(),
            hop.method(),
            hop.url(),
            hop.next_method(),
            hop.next_url(),
            hop.body(),
            hop.stripped_headers()
        );
    }
}

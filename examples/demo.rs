//! `cargo run --example demo`: redirects followed hop by hop against a local
//! server that this program starts itself (no network needed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a demo: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use redirect_policy::{BodyAction, Client, History, Policy};
use support::{pattern, sha256, slow_stream, Reply, Server};

#[tokio::main]
async fn main() {
    let api = Server::start();
    let other = Server::start();
    api.route("/v1/upload", Reply::redirect(307, "/v2/upload"));
    api.route("/v1/items", Reply::redirect(308, other.url("/items")));
    api.route("/form", Reply::redirect(302, "/thanks"));
    api.route("/jobs", Reply::redirect(303, "/jobs/42"));
    api.route("/v1/stream", Reply::redirect(307, "/v2/stream"));

    let client = Client::new(Policy::standard());
    println!(
        "redirect-policy demo: servers on {} and {}\n",
        api.base(),
        other.base()
    );

    let body = pattern(1024 * 1024);
    scenario(
        "POST 1 MiB through a 307: same method, same bytes",
        &api,
        "/v2/upload",
        &body,
        client
            .post(api.url("/v1/upload"))
            .body(body.clone())
            .send()
            .await,
    );

    let json = br#"{"name":"widget"}"#.to_vec();
    scenario(
        "PUT through a 308 to another origin: same method, same bytes, no credentials",
        &other,
        "/items",
        &json,
        client
            .put(api.url("/v1/items"))
            .bearer_auth("secret-token")
            .header("content-type", "application/json")
            .body(json.clone())
            .send()
            .await,
    );

    scenario(
        "POST a form through a 302: downgraded to GET, body and its headers dropped",
        &api,
        "/thanks",
        b"a=1&b=2",
        client
            .post(api.url("/form"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("a=1&b=2")
            .send()
            .await,
    );

    scenario(
        "DELETE through a 303: see other, fetched with GET",
        &api,
        "/jobs/42",
        b"",
        client.delete(api.url("/jobs")).send().await,
    );

    let streamed = pattern(512 * 1024);
    scenario(
        "POST a 512 KiB *stream* through a 307: replayed from the replay buffer",
        &api,
        "/v2/stream",
        &streamed,
        client
            .post(api.url("/v1/stream"))
            .body(slow_stream(streamed.clone(), 16 * 1024, Duration::ZERO))
            .send()
            .await,
    );

    println!("== the same streamed POST with plain reqwest 0.13 (its own redirect following)");
    let plain = reqwest::Client::new()
        .post(api.url("/v1/stream"))
        .body(slow_stream(streamed.clone(), 16 * 1024, Duration::ZERO))
        .send()
        .await
        .unwrap();
    println!(
        "   reqwest returned: {} (it cannot replay a stream, so the redirect is handed back as the answer)\n",
        plain.status()
    );
}

fn scenario(
    title: &str,
    server: &Server,
    landed_at: &str,
    sent: &[u8],
    result: Result<reqwest::Response, redirect_policy::Error>,
) {
    println!("== {title}");
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            println!("   error: {e}\n");
            return;
        }
    };
    let history = response
        .extensions()
        .get::<History>()
        .cloned()
        .unwrap_or_default();
    println!("   hop  status method          body      stripped               from -> to");
    for (i, hop) in history.iter().enumerate() {
        let body = match hop.body() {
            BodyAction::Replayed => "replayed",
            BodyAction::Dropped => "dropped",
            _ => "none",
        };
        let stripped: Vec<_> = hop
            .stripped_headers()
            .iter()
            .map(http::HeaderName::as_str)
            .collect();
        println!(
            "   {:<4} {:<6} {:<15} {:<9} {:<22} {} -> {}",
            i + 1,
            hop.status().as_u16(),
            format!("{} -> {}", hop.method(), hop.next_method()),
            body,
            if stripped.is_empty() {
                "-".to_owned()
            } else {
                stripped.join(",")
            },
            hop.url().path(),
            hop.next_url(),
        );
    }
    println!("   final: {} {}", response.status(), response.url());
    if let Some(seen) = server.seen_at(landed_at).last() {
        println!(
            "   arrived: {} {}, {} bytes, sha256 {} (sent {} bytes, sha256 {}), content-type: {}, authorization: {}",
            seen.method,
            seen.target,
            seen.body.len(),
            sha256(&seen.body),
            sent.len(),
            sha256(sent),
            seen.header("content-type").unwrap_or("-"),
            seen.header("authorization").map_or("-", |_| "present"),
        );
    }
    println!();
}

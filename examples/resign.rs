//! `cargo run --example resign`: an SDK re-signs a request
//! for the host a 307 sends it to.
//!
//! Requests are signed like many cloud SDKs do: an HMAC over the method, the
//! host, the path and the SHA-256 of the body (sent as `x-content-sha256`).
//! The signature is bound to the host, so after a redirect to another host
//! it is wrong, and it is stripped anyway, since it is a credential on an
//! origin change. The redirect hook signs the request again for its new
//! host, and the second server (which verifies every signature) accepts it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use hmac::{Hmac, Mac};
use redirect_policy::{BoxError, Client, History, Policy, Redirect};
use sha2::{Digest, Sha256};
use support::{Reply, Seen, Server};

const KEY: &[u8] = b"demo-secret-key";

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The signature of a request: HMAC-SHA256(method \n host \n path \n body-hash).
fn signature(method: &str, host: &str, path: &str, body_hash: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(format!("{method}\n{host}\n{path}\n{body_hash}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What each server checks before it answers.
fn verify(seen: &Seen) -> Result<(), String> {
    let host = seen.header("host").ok_or("no host")?;
    let claimed = seen
        .header("authorization")
        .and_then(|v| v.strip_prefix("HMAC-SHA256 "))
        .ok_or("missing signature")?;
    let body_hash = hex(&Sha256::digest(&seen.body));
    if seen.header("x-content-sha256") != Some(body_hash.as_str()) {
        return Err("body hash does not match".into());
    }
    let path = seen.target.split('?').next().unwrap_or("/");
    let expected = signature(seen.method.as_str(), host, path, &body_hash);
    if claimed == expected {
        Ok(())
    } else {
        Err(format!("bad signature for host {host}"))
    }
}

/// The hook: sign the next request for its own host.
async fn resign(mut redirect: Redirect) -> Result<redirect_policy::HookAction, BoxError> {
    let next = redirect.next();
    let url = next.url().clone();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let body_hash = next
        .headers()
        .get("x-content-sha256")
        .ok_or("the request has no x-content-sha256")?
        .to_str()?
        .to_owned();
    let sig = signature(next.method().as_str(), &host, url.path(), &body_hash);
    println!(
        "   hook: {} from {} moved to {host} (region {}): signing again",
        redirect.status().as_u16(),
        redirect.url(),
        redirect
            .response_headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?"),
    );
    redirect
        .next_mut()
        .headers_mut()
        .insert("authorization", format!("HMAC-SHA256 {sig}").parse()?);
    Ok(redirect.follow())
}

#[tokio::main]
async fn main() {
    let us = Server::start();
    let eu = Server::start();
    us.verify(verify);
    eu.verify(verify);
    us.route(
        "/bucket/report.csv",
        Reply::redirect(307, eu.url("/bucket/report.csv"))
            .header("x-amz-bucket-region", "eu-west-1"),
    );

    let body = b"id,amount\n1,100\n2,250\n".to_vec();
    let body_hash = hex(&Sha256::digest(&body));
    let host = format!("127.0.0.1:{}", us.port());
    let first_sig = signature("PUT", &host, "/bucket/report.csv", &body_hash);

    for (title, policy) in [
        ("without a hook", Policy::standard()),
        ("with the re-signing hook", Policy::standard().hook(resign)),
    ] {
        println!("== PUT {} {title}", us.url("/bucket/report.csv"));
        let response = Client::new(policy)
            .put(us.url("/bucket/report.csv"))
            .header("x-content-sha256", &body_hash)
            .header("authorization", format!("HMAC-SHA256 {first_sig}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let hops = response
            .extensions()
            .get::<History>()
            .map_or(0, History::len);
        let status = response.status();
        let text = response.text().await.unwrap();
        println!("   final: {status} after {hops} redirect(s): {text}\n");
    }
    let accepted = eu
        .seen_at("/bucket/report.csv")
        .iter()
        .filter(|s| verify(s).is_ok())
        .count();
    println!(
        "the eu server verified {accepted} signed upload(s) of {} bytes",
        body.len()
    );
}

//! `cargo run --example hyper --features tower`: an SDK's hyper-util client
//! wrapped in the redirect layer. A streamed PUT goes through a 307 to
//! another origin and arrives whole; the history is printed. The servers are
//! local ones this program starts itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use redirect_policy::{BoxError, FollowRedirectLayer, History, Policy, ReplayBody};
use support::{pattern, sha256, Reply, Server};
use tower::{ServiceBuilder, ServiceExt as _};

/// The SDK's request body: a named type. (With a bare boxed body as the
/// client's body type, rustc cannot prove a spawned request future `Send` —
/// "implementation of `Service` is not general enough" — with this layer as
/// with any other.)
struct SdkBody(BoxBody<Bytes, BoxError>);

impl hyper::body::Body for SdkBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// `data` streamed in 64 KiB frames, 1 ms apart: not a body anyone can clone.
fn upload(data: Vec<u8>) -> SdkBody {
    let data = Bytes::from(data);
    let frames = futures_util::stream::unfold(0, move |at| {
        let data = data.clone();
        async move {
            if at >= data.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            let end = (at + 64 * 1024).min(data.len());
            Some((Ok::<_, BoxError>(Frame::data(data.slice(at..end))), end))
        }
    });
    SdkBody(StreamBody::new(frames).boxed())
}

#[tokio::main]
async fn main() {
    let old_region = Server::start();
    let new_region = Server::start();
    old_region.route(
        "/v1/objects/42",
        Reply::redirect(307, new_region.url("/v1/objects/42")),
    );

    // The SDK's client, and the one layer that makes it follow redirects.
    let client: Client<HttpConnector, ReplayBody<SdkBody>> =
        Client::builder(TokioExecutor::new()).build_http();
    let service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new(Policy::standard()))
        .service(client);

    let body = pattern(3 * 1024 * 1024);
    let request = http::Request::put(old_region.url("/v1/objects/42"))
        .header("authorization", "Bearer sdk-token")
        .body(upload(body.clone()))
        .unwrap();
    // Spawned, as an SDK would: the future is `Send`.
    let response = tokio::spawn(service.oneshot(request))
        .await
        .unwrap()
        .unwrap();

    println!("PUT of a 3 MiB stream through a 307 to another origin");
    println!("   final status: {}", response.status());
    for hop in response.extensions().get::<History>().into_iter().flatten() {
        println!(
            "   hop: {} {} {} -> {} {}, body {:?}, stripped {:?}",
            hop.status().as_u16(),
            hop.method(),
            hop.url(),
            hop.next_method(),
            hop.next_url(),
            hop.body(),
            hop.stripped_headers()
        );
    }
    let arrived = new_region.one_at("/v1/objects/42");
    println!(
        "   arrived at the new region: {} {} bytes, sha256 {} (sent {} bytes, sha256 {}), authorization: {}",
        arrived.method,
        arrived.body.len(),
        sha256(&arrived.body),
        body.len(),
        sha256(&body),
        arrived.header("authorization").unwrap_or("-"),
    );
    assert!(arrived.body == body, "the stream arrived whole");
}

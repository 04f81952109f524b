//! reqwest's side of the shared loop: its requests and responses translated
//! to and from what the loop speaks. The client and the middleware differ
//! only in how a request is sent.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::Body as _;

use crate::body::{Inner, Limits, Replay, ReplayBody};
use crate::engine::error::Detail;
use crate::follow::{Answer, Hop, Lazy, Start, Transport, DRAIN_LIMIT};
use crate::reqwest::error::{marks, WithChain};
use crate::{BoxError, Chain, Error, History, Policy};

impl Answer for reqwest::Response {
    fn status(&self) -> StatusCode {
        reqwest::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        reqwest::Response::headers(self)
    }

    fn url(&self) -> Option<&url::Url> {
        Some(reqwest::Response::url(self))
    }

    fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        reqwest::Response::remote_addr(self)
    }

    fn version(&self) -> http::Version {
        reqwest::Response::version(self)
    }
}

impl From<ReplayBody<reqwest::Body>> for reqwest::Body {
    /// From memory the body stays reusable (reqwest can clone the request,
    /// and a retry below can re-send it); a stream is wrapped as it is.
    fn from(body: ReplayBody<reqwest::Body>) -> Self {
        match body.inner {
            Inner::Memory(bytes) => reqwest::Body::from(bytes),
            Inner::Stream(_) => reqwest::Body::wrap(body),
        }
    }
}

/// Where a reqwest request's chain starts: its body taken into the replay
/// buffer (in memory: shared; a stream: teed), the first hop's body put back.
pub(crate) fn start<T>(policy: Policy, mut request: reqwest::Request) -> Start<T>
where
    T: Transport<Body = reqwest::Body, Request = reqwest::Request>,
{
    let deadline = request.timeout().map(|t| Instant::now() + *t);
    let limits = Limits::of(&policy);
    let (body, first) = match request.body_mut().take() {
        None => (Replay::None, None),
        Some(body) => {
            let (replay, first) = match memory_bytes(body) {
                Ok(bytes) => Replay::memory(bytes),
                Err(body) => Replay::stream(body, limits),
            };
            (replay, Some(reqwest::Body::from(first)))
        }
    };
    *request.body_mut() = first;
    let chain = Chain::new(
        policy,
        request.method().clone(),
        request.url().clone(),
        request.headers().clone(),
        body.is_some(),
    );
    Start {
        version: request.version(),
        request,
        body,
        chain: Lazy::Ready(Box::new(chain)),
        deadline,
    }
}

/// The `Bytes` inside an in-memory reqwest body, without copying them:
/// reqwest hands its reusable chunk out whole on the first poll.
fn memory_bytes(mut body: reqwest::Body) -> Result<Bytes, reqwest::Body> {
    if body.as_bytes().is_none() {
        return Err(body);
    }
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(None) => Ok(Bytes::new()),
        Poll::Ready(Some(Ok(frame))) => frame.into_data().map_err(|_| body),
        // Not reached: a body with bytes is ready at once.
        Poll::Ready(Some(Err(_))) | Poll::Pending => Err(body),
    }
}

/// A failed reqwest send, with the chain so far: a timeout is `Timeout`; a
/// client that gave up on redirects of its own (it should not follow any)
/// is `Builder`, saying how to build it; anything else is `Request`.
pub(crate) fn send_failed(chain: &Chain, error: reqwest::Error) -> Error {
    let marks = marks(&error);
    let error = if error.is_timeout() {
        chain.timeout_error(Some(Box::new(error)))
    } else if error.is_redirect() {
        chain
            .error(Detail::RedirectedBelow(Box::new(error)))
            .with_url(chain.url().clone())
    } else {
        chain.request_error(error)
    };
    error.with_marks(marks)
}

/// The timer reqwest's own timeouts use.
pub(crate) fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
}

/// A later hop as a reqwest request.
pub(crate) fn hop(hop: Hop<'_, reqwest::Body>) -> reqwest::Request {
    let url = hop.url();
    let mut request = reqwest::Request::new(hop.method, url);
    *request.headers_mut() = hop.headers;
    *request.version_mut() = hop.version;
    *request.body_mut() = hop.body.map(reqwest::Body::from);
    *request.timeout_mut() = hop.timeout;
    request
}

/// Read a small 3xx body of known length so that its connection goes back
/// to the pool. A large body, or one of unknown length (which a server could
/// trickle for ever), is dropped unread, and its connection closed.
pub(crate) async fn drain(mut response: reqwest::Response) -> bool {
    if response
        .content_length()
        .is_none_or(|len| len > DRAIN_LIMIT)
    {
        return false;
    }
    loop {
        match response.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            // The request's timeout is what was left of the chain's.
            Err(e) => return e.is_timeout(),
        }
    }
}

/// Attach the history, and give the final URL back its fragment, which
/// reqwest does not report. After a redirect, the body's errors are made to
/// carry the history too (see [`WithChain`]); a response that was never
/// redirected is handed over as reqwest made it.
pub(crate) fn finish(
    mut response: reqwest::Response,
    history: History,
    fragment: Option<String>,
) -> reqwest::Response {
    let mut url = None;
    if let Some(fragment) = fragment {
        if response.url().fragment() != Some(fragment.as_str()) {
            let mut with_fragment = response.url().clone();
            with_fragment.set_fragment(Some(&fragment));
            url = Some(with_fragment);
        }
    }
    if !history.is_empty() {
        let url = url.unwrap_or_else(|| response.url().clone());
        response = rebuild(response, url, Some(history.clone()));
    } else if let Some(url) = url {
        response = rebuild(response, url, None);
    }
    response.extensions_mut().insert(history);
    response
}

/// The response with `url` as its URL, and its body wrapped to carry
/// `history` in its errors. reqwest has no setter for a response's URL;
/// going through `http::Response` and back is the public way (reqwest's
/// body, with its timeouts, is kept inside).
fn rebuild(
    response: reqwest::Response,
    url: url::Url,
    history: Option<History>,
) -> reqwest::Response {
    use reqwest::ResponseBuilderExt as _;
    let response: http::Response<reqwest::Body> = response.into();
    let (mut parts, mut body) = response.into_parts();
    if let Some(history) = history {
        body = reqwest::Body::wrap(WithChain::new(body, url.clone(), history));
    }
    let marker = http::Response::builder().url(url).body(());
    if let Ok(marker) = marker {
        parts.extensions.extend(marker.into_parts().0.extensions);
    }
    reqwest::Response::from(http::Response::from_parts(parts, body))
}

impl Transport for reqwest::Client {
    type Body = reqwest::Body;
    type Request = reqwest::Request;
    type Response = reqwest::Response;
    type SendError = reqwest::Error;
    type Error = Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + '_ {
        self.execute(request)
    }

    fn hop(&mut self, next: Hop<'_, reqwest::Body>) -> Result<reqwest::Request, BoxError> {
        Ok(hop(next))
    }

    fn drain(response: reqwest::Response) -> impl Future<Output = bool> + Send {
        drain(response)
    }

    fn finish(
        response: reqwest::Response,
        history: History,
        fragment: Option<String>,
    ) -> reqwest::Response {
        finish(response, history, fragment)
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        sleep_until(deadline)
    }

    fn refused(error: &reqwest::Error) -> Option<crate::follow::refused::Refusal> {
        crate::follow::refused::by_peer(error)
    }

    fn send_failed(chain: &Chain, error: reqwest::Error) -> Error {
        send_failed(chain, error)
    }

    fn send_timed_out(chain: &Chain, error: reqwest::Error) -> Error {
        let marks = marks(&error);
        chain.timeout_error(Some(Box::new(error))).with_marks(marks)
    }

    fn redirect_failed(error: Error) -> Error {
        error
    }

    fn kind(error: &Error) -> Option<crate::ErrorKind> {
        Some(error.kind())
    }
}

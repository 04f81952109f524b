//! The I/O loop around [`Chain`]: send a hop through reqwest, feed the
//! response head to the chain, repeat. Shared by the [`Client`](crate::Client)
//! and (later) the middleware through the [`Transport`] trait.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::body::ReplayBody;
use crate::error::Detail;
use crate::{Chain, Error, Policy, Step};

/// The largest 3xx body that is read so that its connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// How one request goes out: a reqwest client, or the rest of a middleware
/// stack.
pub(crate) trait Transport {
    fn send(
        &self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, BoxedTransportError>> + Send;
}

/// A transport failure, with whatever it says about time-outs.
pub(crate) struct BoxedTransportError {
    pub(crate) error: crate::error::BoxError,
    pub(crate) is_timeout: bool,
}

impl From<reqwest::Error> for BoxedTransportError {
    fn from(error: reqwest::Error) -> Self {
        Self {
            is_timeout: error.is_timeout(),
            error: Box::new(error),
        }
    }
}

impl Transport for reqwest::Client {
    fn send(
        &self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, BoxedTransportError>> + Send {
        let pending = self.execute(request);
        async move { pending.await.map_err(BoxedTransportError::from) }
    }
}

/// Send `request` and follow its redirects under `policy`.
pub(crate) async fn follow<T: Transport>(
    transport: &T,
    policy: Policy,
    mut request: reqwest::Request,
) -> Result<reqwest::Response, Error> {
    let deadline = request.timeout().map(|t| Instant::now() + *t);
    let version = request.version();
    let (body, first_body) =
        ReplayBody::new(request.body_mut().take(), policy.max_replay_body_limit());
    *request.body_mut() = first_body;
    let mut chain = Chain::new(
        policy,
        request.method().clone(),
        request.url().clone(),
        request.headers().clone(),
        body.is_some(),
    );
    // The first hop sends the caller's own request, with its extensions.
    let mut next = Some(request);
    loop {
        let request = match next.take() {
            Some(first) => first,
            None => hop_request(&chain, &body, deadline, version)?,
        };
        let response = match transport.send(request).await {
            Ok(response) => response,
            Err(e) => return Err(transport_error(&chain, e)),
        };
        match chain.on_response(response.status(), response.headers(), body.replay())? {
            Step::Done => return Ok(finish(response, chain)),
            Step::Follow => drain(response).await,
        }
    }
}

/// The request for the hop the chain now holds.
fn hop_request(
    chain: &Chain,
    body: &ReplayBody,
    deadline: Option<Instant>,
    version: http::Version,
) -> Result<reqwest::Request, Error> {
    let mut url = chain.url().clone();
    // A fragment is never sent; the chain keeps it for the final URL.
    url.set_fragment(None);
    let mut request = reqwest::Request::new(chain.method(), url);
    *request.headers_mut() = chain.headers().clone();
    *request.version_mut() = version;
    if chain.sends_body() {
        match body.next_body() {
            Some(next) => *request.body_mut() = Some(next),
            // Only a stream can fail to give a body, and the chain was told.
            None => {
                return Err(chain
                    .error(Detail::BodyFailed)
                    .with_url(chain.url().clone()))
            }
        }
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left == Duration::ZERO {
            return Err(chain
                .error(Detail::Timeout(None))
                .with_url(chain.url().clone()));
        }
        *request.timeout_mut() = Some(left);
    }
    Ok(request)
}

fn transport_error(chain: &Chain, e: BoxedTransportError) -> Error {
    if e.is_timeout {
        chain.timeout_error(Some(e.error))
    } else {
        chain.request_error(e.error)
    }
}

/// Read a small 3xx body of known length so that its connection goes back
/// to the pool. A large body, or one of unknown length (which a server could
/// trickle for ever), is dropped unread, and its connection closed.
async fn drain(mut response: reqwest::Response) {
    if response
        .content_length()
        .is_none_or(|len| len > DRAIN_LIMIT)
    {
        return;
    }
    while let Ok(Some(_)) = response.chunk().await {}
}

/// Attach the history, and give the final URL back its fragment, which
/// reqwest does not report.
fn finish(mut response: reqwest::Response, chain: Chain) -> reqwest::Response {
    let fragment = chain.url().fragment().map(str::to_owned);
    let history = chain.into_history();
    if let Some(fragment) = fragment {
        if response.url().fragment() != Some(fragment.as_str()) {
            let mut url = response.url().clone();
            url.set_fragment(Some(&fragment));
            response = with_url(response, url);
        }
    }
    response.extensions_mut().insert(history);
    response
}

/// reqwest has no setter for a response's URL; going through
/// `http::Response` and back is the public way.
fn with_url(response: reqwest::Response, url: url::Url) -> reqwest::Response {
    use reqwest::ResponseBuilderExt as _;
    let response: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    let marker = http::Response::builder().url(url).body(());
    if let Ok(marker) = marker {
        parts.extensions.extend(marker.into_parts().0.extensions);
    }
    reqwest::Response::from(http::Response::from_parts(parts, body))
}

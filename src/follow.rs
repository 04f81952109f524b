//! The I/O loop around [`Chain`]: send a hop, feed the response head to the
//! chain, run the hook, repeat. The [`Client`](crate::Client) and the
//! middleware share it through [`Transport`]; the rules stay in the chain.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::body::{Limits, Replay};
use crate::error::Detail;
use crate::hook::{HookAction, Redirect};
use crate::{Chain, Error, Policy, Step};

/// The largest 3xx body that is read so that its connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// How one request goes out: a reqwest client, or the rest of a middleware
/// stack.
pub(crate) trait Transport: Send {
    /// What a failed send gives.
    type SendError: Send;
    /// What the caller gets back on failure.
    type Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Self::SendError>> + Send + '_;

    /// A failed send, with the chain so far.
    fn send_failed(chain: &Chain, error: Self::SendError) -> Self::Error;

    /// A redirect error of the chain.
    fn redirect_failed(error: Error) -> Self::Error;
}

impl Transport for reqwest::Client {
    type SendError = reqwest::Error;
    type Error = Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + '_ {
        self.execute(request)
    }

    fn send_failed(chain: &Chain, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            chain.timeout_error(Some(Box::new(error)))
        } else {
            chain.request_error(error)
        }
    }

    fn redirect_failed(error: Error) -> Error {
        error
    }
}

/// Send `request` and follow its redirects under `policy`.
///
/// Not an `async fn`: the chain's state is large, so it is boxed here, once,
/// and what the caller holds and moves is a pointer and a span (measured: the
/// unboxed futures cost ~1.5k instructions of memcpy per request).
pub(crate) fn follow<T: Transport>(
    transport: T,
    policy: Policy,
    request: reqwest::Request,
) -> impl Future<Output = Result<reqwest::Response, T::Error>> {
    #[cfg(feature = "tracing")]
    {
        use tracing::Instrument as _;
        let span = tracing::debug_span!(
            "redirect_policy.follow",
            method = %request.method(),
            url = %Shown(request.url()),
        );
        Box::pin(run(transport, policy, request)).instrument(span)
    }
    #[cfg(not(feature = "tracing"))]
    {
        Box::pin(run(transport, policy, request))
    }
}

async fn run<T: Transport>(
    mut transport: T,
    policy: Policy,
    mut request: reqwest::Request,
) -> Result<reqwest::Response, T::Error> {
    let deadline = request.timeout().map(|t| Instant::now() + *t);
    let version = request.version();
    let limits = Limits {
        cap: policy.max_replay_body_limit(),
        #[cfg(feature = "spill")]
        spill_after: policy.spill_threshold(),
        #[cfg(not(feature = "spill"))]
        spill_after: None,
    };
    let (body, first_body) = Replay::new(request.body_mut().take(), limits);
    *request.body_mut() = first_body;
    let mut chain = Chain::new(
        policy,
        request.method().clone(),
        request.url().clone(),
        request.headers().clone(),
        body.is_some(),
    );
    // The first hop sends the caller's own request, with its extensions,
    // unless a remembered permanent redirect already moved it.
    let mut request = if chain.history().is_empty() {
        request
    } else {
        hop_request(&chain, &body, deadline, version).map_err(T::redirect_failed)?
    };
    loop {
        let response = match transport.send(request).await {
            Ok(response) => response,
            Err(e) => return Err(T::send_failed(&chain, e)),
        };
        if !response.status().is_redirection() {
            // Final: the hop's body goes on as it is (a server may answer
            // before it has read the whole upload).
            return Ok(finish(response, chain));
        }
        // A 3xx head: stop the hop's body reader *before* anything is
        // awaited, and decide from the buffer as it is at this moment. The
        // old connection can pull nothing more, so what the buffer holds is
        // what a replay sends (an error stops the reader for good: dropping
        // `body` while paused retires it).
        let replay = body.pause();
        // Only a hook needs the state from before a hop, to stop there.
        let before = chain
            .policy()
            .redirect_hook()
            .is_some()
            .then(|| chain.clone());
        let step = chain
            .on_response(response.status(), response.headers(), replay)
            .map_err(T::redirect_failed)?;
        if step == Step::Done {
            body.resume();
            return Ok(finish(response, chain));
        }
        if let Some(before) = before {
            match run_hook(&mut chain, &response).await {
                Ok(true) => {}
                Ok(false) => {
                    body.resume();
                    return Ok(finish(response, before));
                }
                Err(e) => return Err(T::redirect_failed(e)),
            }
        }
        #[cfg(feature = "tracing")]
        trace_hop(&chain);
        // The old hop is abandoned: its reader fails now (the transport
        // resets or closes it), whether or not the body is sent again.
        request = hop_request(&chain, &body, deadline, version).map_err(T::redirect_failed)?;
        drain(response).await;
    }
}

/// Run the policy's hook on the hop just taken. `Ok(false)`: stop here.
async fn run_hook(chain: &mut Chain, response: &reqwest::Response) -> Result<bool, Error> {
    let Some(hook) = chain.policy().redirect_hook() else {
        return Ok(true);
    };
    let Some(hop) = chain.history().last() else {
        return Ok(true);
    };
    let redirect = Redirect {
        status: response.status(),
        url: hop.url().clone(),
        response_headers: response.headers().clone(),
        next: chain.next_request(),
    };
    match hook.on_redirect(redirect).await {
        Ok(HookAction::Follow(next)) => chain.apply_edits(next).map(|()| true),
        Ok(HookAction::Stop) => Ok(false),
        Err(e) => Err(chain.error(Detail::Hook(e)).with_url(chain.url().clone())),
    }
}

/// The request for the hop the chain now holds.
fn hop_request(
    chain: &Chain,
    body: &Replay<reqwest::Body>,
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
        match body.next_reqwest_body() {
            Some(next) => *request.body_mut() = Some(next),
            // Only a stream can fail to give a body, and the chain was told.
            None => {
                return Err(chain
                    .error(Detail::BodyFailed)
                    .with_url(chain.url().clone()))
            }
        }
    } else {
        body.retire();
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left == Duration::ZERO {
            return Err(chain.timeout_error(None));
        }
        *request.timeout_mut() = Some(left);
    }
    Ok(request)
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

/// One event per hop: status, from, to, methods, body action and the names
/// (never the values) of the stripped headers. URLs are shown without query
/// or fragment, which may carry secrets.
#[cfg(feature = "tracing")]
fn trace_hop(chain: &Chain) {
    let Some(hop) = chain.history().last() else {
        return;
    };
    let stripped: Vec<&str> = hop
        .stripped_headers()
        .iter()
        .map(http::HeaderName::as_str)
        .collect();
    tracing::debug!(
        status = hop.status().as_u16(),
        from = %Shown(hop.url()),
        to = %Shown(hop.next_url()),
        method = %hop.method(),
        next_method = %hop.next_method(),
        body = ?hop.body(),
        stripped = ?stripped,
        remembered = hop.is_remembered(),
        "redirect followed"
    );
}

/// A URL for logs: scheme, host, port and path only.
#[cfg(feature = "tracing")]
struct Shown<'a>(&'a url::Url);

#[cfg(feature = "tracing")]
impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or(""))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

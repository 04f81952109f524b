//! The one I/O loop around [`Chain`]: send a hop, feed the response head to
//! the chain, run the hook, repeat. Every transport — the reqwest
//! [`Client`](crate::Client), the middleware, the blocking client and the
//! tower layer — drives this same loop through [`Transport`]; the rules stay
//! in the chain, the bytes in [`body`](crate::body), and a transport only
//! translates its own request and response types.
//!
//! A hop is described to the transport as a [`Hop`] (method, `Url`,
//! headers, [`ReplayBody`], version, time left) rather than as an
//! `http::Request`: reqwest takes a `Url` directly, and going through an
//! `http::Uri` would parse every hop's URL twice more.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use url::Url;

use crate::body::{Replay, ReplayBody};
use crate::engine::error::Detail;
use crate::engine::hook::{HookAction, Redirect};
use crate::{BoxError, Chain, Error, History, NetworkGuard, Policy, Step};

pub(crate) mod refused;
pub(crate) mod trace;

use trace::HopTrace;

/// The largest 3xx body that is read so that its connection can be reused.
pub(crate) const DRAIN_LIMIT: u64 = 64 * 1024;

/// A response head, as the loop reads it.
pub(crate) trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
    /// The URL that answered, where the transport reports one: a transport
    /// that followed a redirect itself answers from another URL.
    fn url(&self) -> Option<&Url> {
        None
    }
    /// The address the response came from, where the transport knows it
    /// (for the network guard: see [`Chain::on_peer`]).
    fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }
    /// The response's HTTP version.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // only the hop spans read it
    fn version(&self) -> Version;
    /// The hop's body was held back for a `100 Continue` and never sent:
    /// the server answered first (see [`Withheld`]).
    fn body_withheld(&self) -> bool {
        false
    }
}

/// In a response's extensions: the hop's body was held back for a
/// `100 Continue` and never sent, the server having answered first (the
/// hop's figures count none of it). The tower layer and the ureq adapter
/// put it there; [`Answer::body_withheld`] reads it.
#[cfg(any(feature = "tower", feature = "ureq"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Withheld;

/// An `http::Response`, as the tower layer's services and ureq give them.
#[cfg(any(feature = "tower", feature = "ureq"))]
impl<ResBody> Answer for http::Response<ResBody> {
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }

    fn version(&self) -> Version {
        http::Response::version(self)
    }

    fn body_withheld(&self) -> bool {
        self.extensions().get::<Withheld>().is_some()
    }

    /// hyper-util's legacy client puts the connection's `HttpInfo` in every
    /// response's extensions; the ureq transport puts a [`Peer`] there.
    fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        #[cfg(feature = "tower")]
        if let Some(info) = self
            .extensions()
            .get::<hyper_util::client::legacy::connect::HttpInfo>()
        {
            return Some(info.remote_addr());
        }
        #[cfg(feature = "ureq")]
        if let Some(Peer(addr)) = self.extensions().get::<Peer>() {
            return Some(*addr);
        }
        None
    }
}

/// The port `uri` reaches: its own, or its scheme's (80, 443).
#[cfg(any(feature = "tracing", feature = "ureq"))]
pub(crate) fn port_of(uri: &Uri) -> Option<u16> {
    uri.port_u16().or_else(|| match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })
}

/// The address a response came from, as a transport that reports none
/// itself (ureq) learned it, in the response's extensions.
#[cfg(feature = "ureq")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) std::net::SocketAddr);

/// One later hop, for the transport to turn into its own request.
pub(crate) struct Hop<'a, B> {
    pub(crate) method: Method,
    /// Borrowed from the chain (a transport that needs a `Uri` makes one
    /// from [`Hop::sent_url`], with no `Url` clone); it may have a fragment,
    /// which is never sent.
    url: &'a Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<ReplayBody<B>>,
    pub(crate) version: Version,
    /// What is left of the chain's deadline.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the tower path has no deadline
    pub(crate) timeout: Option<Duration>,
    /// Requests of the chain sent before this one (a [`crate::ResendCount`]
    /// for the transport to put in the request's extensions).
    #[cfg_attr(not(any(feature = "middleware", feature = "ureq")), allow(dead_code))]
    // reqwest's own client has no request extensions; the tower layer puts none (cost)
    pub(crate) resend: u32,
    /// Send it with `Expect: 100-continue`, waiting this long for the 100
    /// (only where [`Transport::EXPECT_CONTINUE`]).
    #[cfg_attr(not(any(feature = "ureq", feature = "tower")), allow(dead_code))]
    // reqwest has no way to hold a body back (see the crate docs)
    pub(crate) expect: Option<Duration>,
}

impl<B> Hop<'_, B> {
    /// The URL to send, as text: without its fragment.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // reqwest takes a `Url`
    pub(crate) fn sent_url(&self) -> &str {
        &self.url[..url::Position::AfterQuery]
    }

    /// The URL to send, owned: without its fragment.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the tower layer takes text
    pub(crate) fn url(&self) -> Url {
        let mut url = self.url.clone();
        url.set_fragment(None);
        url
    }
}

/// How one request goes out: a reqwest client, the rest of a middleware
/// stack, or a tower service.
pub(crate) trait Transport: Send {
    /// Whether the transport can hold a body back until a `100 Continue`
    /// (see [`expect_for`]).
    const EXPECT_CONTINUE: bool = false;

    /// The caller's request body type.
    type Body: http_body::Body<Data = Bytes> + Send + 'static;
    /// The transport's request.
    type Request: Send;
    /// The transport's response.
    type Response: Answer + Send;
    /// What a failed send gives.
    type SendError: Send;
    /// What the caller gets back on failure.
    type Error;

    fn send(
        &mut self,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Self::SendError>> + Send + '_;

    /// The request for a later hop.
    fn hop(&mut self, hop: Hop<'_, Self::Body>) -> Result<Self::Request, BoxError>;

    /// Read a small 3xx body so that its connection can be reused (see
    /// [`DRAIN_LIMIT`]); drop any other unread. `true` if the hop's own
    /// timeout (what was left of the chain's deadline) ended the read: the
    /// deadline has passed.
    fn drain(response: Self::Response) -> impl Future<Output = bool> + Send;

    /// The final response, with the chain's history attached, and the
    /// fragment of the final URL (which is never sent) for transports that
    /// report a URL.
    fn finish(
        response: Self::Response,
        history: History,
        fragment: Option<String>,
    ) -> Self::Response;

    /// A timer that fires at `deadline`, for the chain's deadline. Only
    /// called when the chain has one (the tower path never has).
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// Whether a failed send is one the server said it did not process
    /// (see [`refused`]): the loop may then send the hop once more.
    fn refused(error: &Self::SendError) -> Option<refused::Refusal>;

    /// A failed send, with the chain so far.
    fn send_failed(chain: &Chain, error: Self::SendError) -> Self::Error;

    /// A send that failed once the chain's deadline had passed (the hop's
    /// own timeout, set to what was left, fired first): a
    /// [`Timeout`](crate::ErrorKind::Timeout) of the chain, with `error` as
    /// its source.
    fn send_timed_out(chain: &Chain, error: Self::SendError) -> Self::Error;

    /// A redirect error of the chain.
    fn redirect_failed(error: Error) -> Self::Error;

    /// The kind of an error this transport gives (for the failing hop's
    /// span), where it is one of ours.
    fn kind(error: &Self::Error) -> Option<crate::ErrorKind>;

    /// A send, polled in the hop's span where the layers below open spans
    /// of their own (a reqwest-middleware stack's). Nothing by default.
    #[cfg(feature = "tracing")]
    fn traced<F>(send: F, span: Option<&tracing::Span>) -> impl Future<Output = F::Output> + Send
    where
        F: Future + Send,
    {
        let _ = span;
        send
    }
}

/// Whether a request with `body` goes with `Expect: 100-continue`, and how
/// long it waits for the 100: the policy's rule
/// ([`Policy::expect_continue`]), over HTTP/1.1, for a body there is. The
/// adapters that send it ask this for the first request; the loop for the
/// later ones (one rule).
pub(crate) fn expect_for<B>(policy: &Policy, body: &Replay<B>, version: Version) -> Option<Duration>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if !body.is_some() || version != Version::HTTP_11 {
        return None;
    }
    policy.expect_wait(body.total_len())
}

/// Where a chain starts: the caller's request (its body already swapped for
/// the first hop's [`ReplayBody`]), the replay buffer, and the chain.
pub(crate) struct Start<T: Transport> {
    pub(crate) request: T::Request,
    pub(crate) body: Replay<T::Body>,
    pub(crate) chain: Lazy,
    pub(crate) version: Version,
    pub(crate) deadline: Option<Instant>,
}

/// The chain, or what it is built from when the first 3xx comes. Most
/// requests are never redirected, and for a transport that speaks `Uri`,
/// parsing the URL into a `Url` (some 6k instructions) would then be
/// wasted: it is done when a redirect needs it.
pub(crate) enum Lazy {
    /// Boxed: the start is moved a few times before the chain's future is
    /// boxed, and a pointer moves for less than the chain.
    Ready(Box<Chain>),
    #[cfg_attr(not(any(feature = "tower", feature = "ureq")), allow(dead_code))]
    // reqwest has a Url
    Later(Box<Parts>),
}

/// A first request, kept to build its chain from.
pub(crate) struct Parts {
    policy: Policy,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    has_body: bool,
    /// When the first request was sent.
    started: Option<Instant>,
}

impl Lazy {
    /// A chain for the request whose head is `head` (its `Uri` must be
    /// absolute), as the tower layer and ureq name requests. It is built at
    /// once only where the first request may depend on it (a memory of
    /// permanent redirects); under `NetworkGuard::PublicOnly` the first hop
    /// is checked before anything is sent ([`Lazy::check_first_hop`]).
    #[cfg(any(feature = "tower", feature = "ureq"))] // the reqwest path has a Url already
    pub(crate) fn from_head(
        policy: Policy,
        head: &http::request::Parts,
        has_body: bool,
    ) -> Result<Self, Error> {
        Self::from_uri(
            policy,
            head.method.clone(),
            head.uri.clone(),
            head.headers.clone(),
            has_body,
        )?
        .check_first_hop()
    }

    #[cfg(any(feature = "tower", feature = "ureq"))]
    fn from_uri(
        policy: Policy,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        has_body: bool,
    ) -> Result<Self, Error> {
        if uri.scheme().is_none() || uri.authority().is_none() {
            let message = format!(
                "the request URI `{uri}` must be absolute (scheme and host) to follow redirects"
            );
            return Err(Error::new(Detail::InvalidRequest(message.into())));
        }
        let parts = Parts {
            policy,
            method,
            uri,
            headers,
            has_body,
            started: None,
        };
        if parts.policy.permanent_memory().is_some() {
            return parts.build().map(|chain| Lazy::Ready(Box::new(chain)));
        }
        Ok(Lazy::Later(Box::new(parts)))
    }

    /// Whether the current request carries the body.
    fn sends_body(&self) -> bool {
        match self {
            Lazy::Ready(chain) => chain.sends_body(),
            Lazy::Later(parts) => parts.has_body,
        }
    }

    /// When the chain's first request was sent.
    fn set_started(&mut self, at: Instant) {
        match self {
            Lazy::Ready(chain) => chain.set_started(at),
            Lazy::Later(parts) => parts.started = Some(at),
        }
    }

    /// The chain, built now if it was not yet.
    fn force(self) -> Result<Box<Chain>, Error> {
        match self {
            Lazy::Ready(chain) => Ok(chain),
            Lazy::Later(parts) => parts.build().map(Box::new),
        }
    }

    /// The policy of the chain.
    fn policy(&self) -> &Policy {
        match self {
            Lazy::Ready(chain) => chain.policy(),
            Lazy::Later(parts) => &parts.policy,
        }
    }

    /// Under `NetworkGuard::PublicOnly`, the first hop's URL is checked
    /// before anything is sent (the chain is built for it); under any other
    /// guard the first hop is never refused before it is sent.
    pub(crate) fn check_first_hop(self) -> Result<Self, Error> {
        if self.policy().guard() != NetworkGuard::PublicOnly {
            return Ok(self);
        }
        let chain = self.force()?;
        chain.check_first_hop()?;
        Ok(Lazy::Ready(chain))
    }

    /// The network guard on the address `response` came from (see
    /// [`Chain::on_peer`]); on a refusal the caller drops the response
    /// unread. A first hop's final answer is checked only under
    /// `PublicOnly` (no chain is built for it otherwise).
    ///
    /// `known`: the address, where the caller looked it up already.
    #[allow(clippy::option_option)] // not looked up, or looked up and unknown
    pub(crate) fn check_peer(
        self,
        response: &impl Answer,
        known: Option<Option<std::net::SocketAddr>>,
    ) -> Result<Self, Error> {
        let guard = self.policy().guard();
        let needed = match (&self, guard) {
            (_, NetworkGuard::Off) => false,
            (Lazy::Later(_), NetworkGuard::NoEscalation) => response.status().is_redirection(),
            _ => true,
        };
        let peer = needed
            .then(|| known.unwrap_or_else(|| response.remote_addr()))
            .flatten();
        let Some(peer) = peer else {
            return Ok(self);
        };
        let mut chain = self.force()?;
        chain.on_peer(peer)?;
        Ok(Lazy::Ready(chain))
    }

    /// The current hop's method.
    fn method(&self) -> &Method {
        match self {
            Lazy::Ready(chain) => chain.method_ref(),
            Lazy::Later(parts) => &parts.method,
        }
    }
}

impl Parts {
    fn build(self) -> Result<Chain, Error> {
        let url = Url::parse(&absolute(&self.uri)).map_err(|e| {
            let message = format!("the request URI `{}` is not a valid URL: {e}", self.uri);
            Error::new(Detail::InvalidRequest(message.into()))
        })?;
        let mut chain = Chain::new(self.policy, self.method, url, self.headers, self.has_body);
        if let Some(at) = self.started {
            chain.set_started(at);
        }
        Ok(chain)
    }
}

/// An absolute `Uri` as text, as its `Display` writes it but in a string
/// of the exact length (`to_string` grows it three or four times).
fn absolute(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or_default();
    let authority = uri.authority().map_or("", http::uri::Authority::as_str);
    let (path, query) = (uri.path(), uri.query());
    let len = scheme.len() + 3 + authority.len() + path.len() + query.map_or(0, |q| q.len() + 1);
    let mut text = String::with_capacity(len);
    text.push_str(scheme);
    text.push_str("://");
    text.push_str(authority);
    text.push_str(path);
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    text
}

/// The history and the final URL's fragment, for a final response whose
/// head came at `at`.
fn outcome(chain: Chain, at: Instant) -> (History, Option<String>) {
    let fragment = chain.url().fragment().map(str::to_owned);
    (chain.finish_at(at), fragment)
}

/// The future of a whole chain, as [`follow`] boxes it.
pub(crate) type Following<'a, T> = std::pin::Pin<
    Box<
        dyn Future<Output = Result<<T as Transport>::Response, <T as Transport>::Error>>
            + Send
            + 'a,
    >,
>;

/// Send the first request and follow its redirects.
///
/// Not an `async fn`: the chain's state is large, so it is boxed here, once,
/// and what the caller holds and moves is a pointer and a span (measured: the
/// unboxed futures cost ~1.5k instructions of memcpy per request).
///
/// The box is a `dyn` one, so that a transport whose own future is boxed
/// (the tower layer's) holds this one as it is, with no second allocation.
pub(crate) fn follow<'a, T>(transport: T, start: Start<T>) -> Following<'a, T>
where
    T: Transport + 'a,
    <T::Body as http_body::Body>::Error: Into<BoxError>,
{
    let Start {
        request,
        body,
        chain,
        version,
        deadline,
    } = start;
    #[cfg(feature = "tracing")]
    let span = span(&chain);
    let future = run(
        transport,
        Entry::Send(request),
        None,
        body,
        chain,
        version,
        deadline,
    );
    #[cfg(feature = "tracing")]
    let future = tracing::Instrument::instrument(future, span);
    Box::pin(future)
}

/// The chain's span, the caller's view: method and first URL (scheme, host,
/// port, path); at its end, the final status and the hops followed. Each
/// request sent is a `redirect_policy.hop` span under it ([`trace`]).
#[cfg(feature = "tracing")]
pub(crate) fn span(chain: &Lazy) -> tracing::Span {
    use tracing::field::Empty;
    match chain {
        Lazy::Ready(ready) => tracing::info_span!(
            "redirect_policy.follow",
            method = %chain.method(),
            url = %Shown(ready.url()),
            http.response.status_code = Empty,
            redirect_policy.hops = Empty,
        ),
        Lazy::Later(parts) => tracing::info_span!(
            "redirect_policy.follow",
            method = %chain.method(),
            url = %ShownUri(&parts.uri),
            http.response.status_code = Empty,
            redirect_policy.hops = Empty,
        ),
    }
}

/// Go on with a chain whose first hop a transport sent itself and got
/// `first` for (a redirect, or a failure): the tower layer's future polls its
/// first call inline and boxes the loop only when it is needed. Not
/// instrumented: the caller's future holds the chain's span.
#[cfg(feature = "tower")]
pub(crate) fn resume<'a, T>(
    transport: T,
    first: Result<T::Response, T::SendError>,
    trace: HopTrace,
    body: Replay<T::Body>,
    chain: Lazy,
    version: Version,
) -> Following<'a, T>
where
    T: Transport + 'a,
    <T::Body as http_body::Body>::Error: Into<BoxError>,
{
    Box::pin(run(
        transport,
        Entry::Got(first),
        Some(trace),
        body,
        chain,
        version,
        None,
    ))
}

/// What the loop starts from: a request to send, or the first hop's result.
enum Entry<T: Transport> {
    Send(T::Request),
    /// The first hop's result (its trace is the loop's current one).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // only the tower layer resumes
    Got(Result<T::Response, T::SendError>),
}

/// The loop. Not an `async fn`: an async fn keeps its arguments for its
/// whole life *and* moves them into locals, so the transport and the start
/// would be in the chain's state twice (measured: 696 of its 2 336 bytes on
/// the tower path). Taken apart here, each is captured once.
#[allow(clippy::manual_async_fn)] // an async fn would keep its arguments twice (above)
#[allow(clippy::too_many_lines)] // one state machine: a step moved into an async helper keeps its own copy of the state it takes (measured: +168 bytes)
fn run<T>(
    mut transport: T,
    mut next: Entry<T>,
    mut current: Option<HopTrace>,
    body: Replay<T::Body>,
    mut lazy: Lazy,
    version: Version,
    deadline: Option<Instant>,
) -> impl Future<Output = Result<T::Response, T::Error>> + Send
where
    T: Transport,
    <T::Body as http_body::Body>::Error: Into<BoxError>,
{
    async move {
        if matches!(next, Entry::Send(..)) {
            lazy = lazy
                .check_first_hop()
                .map_err(|e| fail::<T>(current.as_ref(), e))?;
        }
        // The first hop sends the caller's own request, with its
        // extensions, unless a remembered permanent redirect already
        // moved it.
        // What the current hop was sent with (`EXPECTED`: the adapter asks
        // the same rule for the first one), and what was done about it once
        // already (`RESENT`: sent again after a refusal; `RETRIED_417`: sent
        // again without the expectation). One byte: the loop's state is at
        // its size limit.
        // (The tower layer's first hop, `Entry::Got`, asked the same rule.
        // It may have skipped the header, having seen HTTP/2; a 417 to a
        // request that did not ask would be retried once, whole.)
        let mut flags: u8 = 0;
        if T::EXPECT_CONTINUE && expect_for(lazy.policy(), &body, version).is_some() {
            flags = EXPECTED;
        }
        if let (Lazy::Ready(chain), Entry::Send(_)) = (&lazy, &next) {
            if !chain.history().is_empty() {
                let (request, expected) =
                    hop_request(&mut transport, chain, &body, deadline, version, 0, true)
                        .map_err(|e| fail::<T>(current.as_ref(), e))?;
                next = Entry::Send(request);
                flags = if expected { EXPECTED } else { 0 };
            }
        }
        // Requests sent so far. (`current`: the request in flight, the tower
        // layer's first one or none yet, for its span's `error.type` when
        // the chain fails while it is the current one.)
        let mut sends: u32 = 0;
        loop {
            // Every await of the loop is bounded by the chain's deadline,
            // whatever sits below (a retry middleware included).
            // (No wrapper at all without a deadline: the common case moves no
            // more than it must.)
            // (In a block of its own, so that the send's result is not kept
            // beside the response in the chain's state.)
            let response = {
                // (Not a match on `(next, deadline)`: the tuple would be kept
                // across the send's await, 272 more bytes of state, which
                // puts the boxed loop past malloc's small-size fast path.)
                let sent = match next {
                    Entry::Got(first) => {
                        sends += 1;
                        if let Some(trace) = &current {
                            lazy.set_started(trace.started());
                        }
                        Some(first)
                    }
                    Entry::Send(request) => {
                        let trace = current.insert(HopTrace::begin(&lazy, sends));
                        sends += 1;
                        if sends == 1 {
                            lazy.set_started(trace.started());
                        }
                        // (The call itself in the span too: a tower service
                        // does its work there.)
                        // The call in the hop's span (a tower service and ureq do
                        // their work there), and the polls where the transport
                        // asks for it ([`Transport::traced`]; not for every
                        // transport: it costs the loop's state 48 bytes).
                        let send = trace.in_span(|| transport.send(request));
                        #[cfg(feature = "tracing")]
                        let send = T::traced(send, trace.span());
                        match deadline {
                            None => Some(send.await),
                            Some(deadline) => within::<T, _>(send, deadline).await,
                        }
                    }
                };
                match sent {
                    Some(Ok(response)) => response,
                    Some(Err(e))
                        if flags & RESENT == 0
                            && T::refused(&e).is_some_and(|r| r.allows(lazy.method()))
                            && body.can_replay() =>
                    {
                        // Not processed: send it once more, from its first byte
                        // (a stream that outgrew its buffer fails as it did).
                        drop(e);
                        let (request, expected, chain) =
                            again(&mut transport, lazy, &body, deadline, version, sends, true)
                                .map_err(|e| record::<T>(current.as_ref(), e))?;
                        flags = RESENT | if expected { EXPECTED } else { 0 };
                        (next, lazy) = (Entry::Send(request), chain);
                        continue;
                    }
                    Some(Err(e)) => {
                        return Err(record::<T>(
                            current.as_ref(),
                            failed::<T>(lazy, Some(e), deadline),
                        ))
                    }
                    None => {
                        return Err(record::<T>(
                            current.as_ref(),
                            failed::<T>(lazy, None, deadline),
                        ))
                    }
                }
            };
            // `417 Expectation Failed` to our `Expect: 100-continue`: the same
            // request once more without it (RFC 9110 §10.1.1). Nothing of the
            // body went out before the answer, so it is sent whole.
            if response.status() == StatusCode::EXPECTATION_FAILED
                && flags & (EXPECTED | RETRIED_417) == EXPECTED
            {
                if let Some(trace) = current.as_ref() {
                    let had_body = lazy.sends_body() && !response.body_withheld();
                    trace.answered(&response, &body, sends > 1, had_body);
                }
                drop(response);
                let (request, _, chain) =
                    again(&mut transport, lazy, &body, deadline, version, sends, false)
                        .map_err(|e| record::<T>(current.as_ref(), e))?;
                (next, lazy) = (Entry::Send(request), chain);
                flags = (flags & RESENT) | RETRIED_417;
                continue;
            }
            let redirect = response.status().is_redirection();
            // (A body held back for a 100 that never came was not sent.)
            let had_body = lazy.sends_body() && !response.body_withheld();
            let head_at = match current.as_ref() {
                Some(trace) => trace.answered(&response, &body, sends > 1, had_body),
                None => Instant::now(),
            };
            if let Lazy::Ready(chain) = &lazy {
                followed_below(chain, &response).map_err(|e| fail::<T>(current.as_ref(), e))?;
            }
            // A 3xx's address, looked up once: for the guard and the history.
            let peer = redirect.then(|| response.remote_addr());
            // Refused: the response is dropped unread.
            lazy = lazy
                .check_peer(&response, peer)
                .map_err(|e| fail::<T>(current.as_ref(), e))?;
            if !redirect {
                // Final: the hop's body goes on as it is (a server may answer
                // before it has read the whole upload).
                let (history, fragment) = match lazy {
                    Lazy::Ready(chain) => outcome(*chain, head_at),
                    Lazy::Later(parts) => {
                        let mut history = History::default();
                        if let Some(started) = parts.started {
                            history.set_total(head_at.saturating_duration_since(started));
                        }
                        (history, None)
                    }
                };
                #[cfg(feature = "tracing")]
                trace::spans::chain_done(response.status(), history.len());
                return Ok(T::finish(response, history, fragment));
            }
            // A 3xx head: stop the hop's body reader *before* anything is
            // awaited, and decide from the buffer as it is at this moment. The
            // old connection can pull nothing more, so what the buffer holds is
            // what a replay sends (an error stops the reader for good: dropping
            // `body` while paused retires it).
            let replay = body.pause();
            let mut chain = lazy.force().map_err(|e| fail::<T>(current.as_ref(), e))?;
            // Only a hook needs the state from before a hop, to stop there.
            let before = chain
                .policy()
                .redirect_hook()
                .is_some()
                .then(|| Box::new(Chain::clone(&chain)));
            let step = chain
                .on_response(response.status(), response.headers(), replay)
                .map_err(|e| fail::<T>(current.as_ref(), e))?;
            if step == Step::Done {
                body.resume();
                let (history, fragment) = outcome(*chain, head_at);
                #[cfg(feature = "tracing")]
                trace::spans::chain_done(response.status(), history.len());
                return Ok(T::finish(response, history, fragment));
            }
            if let Some(trace) = current.as_ref() {
                let cost = trace.cost(head_at, &body, sends > 1, had_body, peer.flatten());
                chain.set_last_cost(cost);
            }
            if let Some(before) = before {
                // Boxed: only a policy with a hook pays for its state.
                let hooked = Box::pin(run_hook(
                    &mut chain,
                    response.status(),
                    response.headers().clone(),
                ));
                let hooked = match deadline {
                    None => Some(hooked.await),
                    Some(deadline) => within::<T, _>(hooked, deadline).await,
                };
                match hooked {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => {
                        body.resume();
                        let (history, fragment) = outcome(*before, Instant::now());
                        #[cfg(feature = "tracing")]
                        trace::spans::chain_done(response.status(), history.len());
                        return Ok(T::finish(response, history, fragment));
                    }
                    Some(Err(e)) => return Err(fail::<T>(current.as_ref(), e)),
                    None => return Err(fail::<T>(current.as_ref(), chain.timeout_error(None))),
                }
            }
            #[cfg(feature = "tracing")]
            trace_hop(&chain);
            // The old hop is abandoned: its reader fails now (the transport
            // resets or closes it), whether or not the body is sent again.
            let (request, expected) = hop_request(
                &mut transport,
                &chain,
                &body,
                deadline,
                version,
                sends,
                true,
            )
            .map_err(|e| fail::<T>(current.as_ref(), e))?;
            next = Entry::Send(request);
            match deadline {
                None => {
                    T::drain(response).await;
                }
                Some(deadline) => {
                    // Boxed: this is the loop's largest state (344 bytes), and
                    // only a chain with a deadline needs it; unboxed, it would
                    // put every chain's boxed loop past malloc's small-size
                    // cache (1 KiB).
                    let drained = Box::pin(within::<T, _>(T::drain(response), deadline));
                    // The hop's own timeout (what was left of the deadline)
                    // may end the drain a moment before this timer does: the
                    // deadline has passed all the same (a next hop sent then
                    // went past it: seen once in 50 loaded runs of the
                    // deadline tests).
                    if drained.await.is_none_or(|timed_out| timed_out) {
                        return Err(fail::<T>(current.as_ref(), chain.timeout_error(None)));
                    }
                }
            }
            // The 3xx's connection goes back to its pool from a task of the
            // pool's own: let that task run before the next hop checks a
            // connection out, so that the hop finds it idle instead of
            // registering as a waiter (as tower-http's future does).
            YieldOnce(false).await;
            lazy = Lazy::Ready(chain);
            flags = if expected { EXPECTED } else { 0 };
        }
    }
}

/// Pending once (waking itself at once), then ready: gives the executor's
/// other tasks one turn.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The request to send the current hop again (after `sends` requests: a
/// refused one, or a 417 without the expectation: `may_expect` false), the
/// chain built now, and whether it goes with `Expect: 100-continue`.
fn again<T: Transport>(
    transport: &mut T,
    lazy: Lazy,
    body: &Replay<T::Body>,
    deadline: Option<Instant>,
    version: Version,
    sends: u32,
    may_expect: bool,
) -> Result<(T::Request, bool, Lazy), T::Error>
where
    <T::Body as http_body::Body>::Error: Into<BoxError>,
{
    let chain = lazy.force().map_err(T::redirect_failed)?;
    #[cfg(feature = "tracing")]
    tracing::debug!(url = %Shown(chain.url()), "sending the hop again");
    let (request, expected) = hop_request(
        transport, &chain, body, deadline, version, sends, may_expect,
    )
    .map_err(T::redirect_failed)?;
    Ok((request, expected, Lazy::Ready(chain)))
}

/// The current hop went with `Expect: 100-continue` (see `run`).
const EXPECTED: u8 = 1;
/// The current hop was sent again after a refusal.
const RESENT: u8 = 2;
/// The current hop was sent again without the expectation, after a 417.
const RETRIED_417: u8 = 4;

/// A chain error while `current` was the hop in flight: its span gets the
/// error's type.
fn fail<T: Transport>(current: Option<&HopTrace>, error: Error) -> T::Error {
    if let Some(trace) = current {
        trace.failed(Some(error.kind()));
    }
    T::redirect_failed(error)
}

/// The same, for an error already the transport's.
fn record<T: Transport>(current: Option<&HopTrace>, error: T::Error) -> T::Error {
    if let Some(trace) = current {
        trace.failed(T::kind(&error));
    }
    error
}

/// A send that failed (`Some`), or that the chain's deadline cut short
/// (`None`), as the caller's error with the chain so far.
fn failed<T: Transport>(
    lazy: Lazy,
    error: Option<T::SendError>,
    deadline: Option<Instant>,
) -> T::Error {
    let chain = match lazy.force() {
        Ok(chain) => chain,
        Err(error) => return T::redirect_failed(error),
    };
    match error {
        // The hop's own timeout, set to what was left, fired first.
        Some(e) if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
            T::send_timed_out(&chain, e)
        }
        Some(e) => T::send_failed(&chain, e),
        None => T::redirect_failed(chain.timeout_error(None)),
    }
}

/// A transport that followed a redirect itself answers from another URL
/// than the one sent: its answer went past the chain's rules, so it is an
/// error of how the transport was built.
fn followed_below(chain: &Chain, response: &impl Answer) -> Result<(), Error> {
    match response.url() {
        Some(answered) if !same_resource(chain.url(), answered) => {
            let detail = Detail::FollowedBelow {
                sent: chain.url()[..url::Position::AfterPath].to_owned(),
                answered: answered[..url::Position::AfterPath].to_owned(),
            };
            Err(chain.error(detail).with_url(chain.url().clone()))
        }
        _ => Ok(()),
    }
}

/// The same URL, fragments aside (a fragment is never sent).
fn same_resource(sent: &Url, answered: &Url) -> bool {
    sent[..url::Position::AfterQuery] == answered[..url::Position::AfterQuery]
}

/// `future`, unless `deadline` comes first (`None`).
async fn within<T: Transport, F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(T::sleep_until(deadline));
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Run the policy's hook on the hop just taken. `Ok(false)`: stop here.
async fn run_hook(
    chain: &mut Chain,
    status: StatusCode,
    response_headers: HeaderMap,
) -> Result<bool, Error> {
    let Some(hook) = chain.policy().redirect_hook() else {
        return Ok(true);
    };
    let Some(hop) = chain.history().last() else {
        return Ok(true);
    };
    let redirect = Redirect {
        status,
        url: hop.url().clone(),
        response_headers,
        next: chain.next_request(),
    };
    match hook.on_redirect(redirect).await {
        Ok(HookAction::Follow(next)) => chain.apply_edits(next).map(|()| true),
        Ok(HookAction::Stop) => Ok(false),
        Err(e) => Err(chain.error(Detail::Hook(e)).with_url(chain.url().clone())),
    }
}

/// The request for the hop the chain now holds, after `sends` others, and
/// whether it goes with `Expect: 100-continue` (by the rule, where
/// `may_expect`).
fn hop_request<T: Transport>(
    transport: &mut T,
    chain: &Chain,
    body: &Replay<T::Body>,
    deadline: Option<Instant>,
    version: Version,
    sends: u32,
    may_expect: bool,
) -> Result<(T::Request, bool), Error>
where
    <T::Body as http_body::Body>::Error: Into<BoxError>,
{
    let hop_body = if chain.sends_body() {
        match body.next_body() {
            Some(next) => Some(next),
            // Only a stream can fail to give a body, and the chain was told.
            None => {
                return Err(chain
                    .error(Detail::BodyFailed)
                    .with_url(chain.url().clone()))
            }
        }
    } else {
        body.retire();
        None
    };
    let timeout = match deadline {
        None => None,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left == Duration::ZERO {
                return Err(chain.timeout_error(None));
            }
            Some(left)
        }
    };
    let expect = if T::EXPECT_CONTINUE && may_expect && hop_body.is_some() {
        expect_for(chain.policy(), body, version)
    } else {
        None
    };
    transport
        .hop(Hop {
            method: chain.method(),
            // A fragment is never sent; the chain keeps it for the final URL.
            url: chain.url(),
            headers: chain.headers().clone(),
            body: hop_body,
            version,
            timeout,
            resend: sends,
            expect,
        })
        .map(|request| (request, expect.is_some()))
        .map_err(|e| {
            chain
                .error(Detail::InvalidRequest(e))
                .with_url(chain.url().clone())
        })
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

/// A URI for logs: scheme, host, port and path only.
#[cfg(feature = "tracing")]
struct ShownUri<'a>(&'a Uri);

#[cfg(feature = "tracing")]
impl std::fmt::Display for ShownUri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uri = self.0;
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map_or("", http::uri::Authority::as_str);
        // No userinfo in logs.
        let host = authority.rsplit('@').next().unwrap_or(authority);
        write!(f, "{scheme}://{host}{}", uri.path())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_uri_is_written_as_display_writes_it() {
        for text in [
            "http://a.example",
            "http://a.example/",
            "https://user@a.example:8443/p/q?x=1&y=%20",
            "http://[::1]:9/?",
            "http://a.example/p?",
        ] {
            let uri: Uri = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let written = absolute(&uri);
            assert_eq!(written, uri.to_string(), "{text}");
            assert_eq!(written.len(), written.capacity(), "{text}");
        }
    }
}

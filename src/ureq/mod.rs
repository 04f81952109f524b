//! Feature `ureq`: the same following for code without async and without
//! tokio, over a [`ureq::Agent`] (ureq 3). [`Agent`] wraps one, turns ureq's
//! own following off on every request it sends, and drives the crate's one
//! I/O loop on the calling thread; this module only translates ureq's
//! requests, responses and errors.
//!
//! ```no_run
//! use redirect_policy::{ureq::Agent, Policy};
//!
//! // `ureq::Agent::new_with_defaults()` with one type changed; or
//! // `Agent::new(your_ureq_agent, policy)`.
//! let agent = Agent::new_with_defaults().with_policy(Policy::standard());
//! // A 307 replays the body, byte for byte; the history is in the response.
//! let mut response = agent.post("http://api.test/upload").send(b"payload".to_vec())?;
//! let text = response.body_mut().read_to_string()?;
//! let hops = response.extensions().get::<redirect_policy::History>().map_or(0, |h| h.len());
//! # let _ = (text, hops);
//! # Ok::<(), redirect_policy::Error>(())
//! ```
//!
//! Bodies in memory (`Vec<u8>`, `String`, `&'static [u8]`, `&'static str`,
//! [`Bytes`]) are replayed by reference count, never copied. A reader
//! ([`Body::from_reader`], a [`std::fs::File`]) is streamed and teed into the
//! same replay buffer as every other adapter's (capped by
//! [`Policy::max_replay_body`], spilled to disk with feature `spill`); one of
//! known length is sent with a `Content-Length`, any other chunked.
//!
//! ureq writes the whole body before it reads a response. A server that
//! answers 307 early and goes on reading works: the body is replayed whole.
//! A server that answers early and resets the connection is an I/O error
//! ([`ErrorKind::Request`](crate::ErrorKind::Request)) on ureq: the 307 is
//! never read. Sending `Expect: 100-continue` with the upload, so that such a
//! server answers before any body byte is written, is planned and will
//! remove this case.
//!
//! The network guard refuses IP literals and local names before anything is
//! sent, as on every transport. ureq reports no address a response came
//! from, so the guard learns a name's address from the resolver:
//! [`Agent::new_with_defaults`] and [`Agent::new_with_config`] build the
//! agent with [`GuardResolver`], which sees each hop's addresses before ureq
//! connects (and, under `PublicOnly`, drops the refused ones, so that nothing
//! is sent to them). An agent of your own given to [`Agent::new`] gets the
//! same rule without it, from a second lookup of the name once the response
//! is in: a DNS server that changes its answers between the two lookups can
//! slip past that, so build the agent with [`GuardResolver`] where the URLs
//! come from others. Behind a proxy, the proxy resolves the target's name and
//! only literals are checked.
//!
//! The redirect hook is the same async hook as elsewhere, driven on the
//! calling thread by a minimal executor: it must not need a tokio runtime.
//! A timeout set with [`RequestBuilder::timeout`] covers the whole chain:
//! each hop gets what is left of it as ureq's global timeout.

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body::Frame;

use crate::body::{Inner, Limits, Replay, ReplayBody};
use crate::engine::error::Detail;
use crate::follow::{self, Hop, Lazy, Start, Transport, DRAIN_LIMIT};
use crate::{BoxError, Chain, Error, History, NetworkGuard, Policy};

mod resolve;

pub use resolve::GuardResolver;

/// A [`ureq::Agent`] that follows redirects by a [`Policy`]: ureq's own
/// following is off on every request it sends. Cheap to clone; `Send` and
/// `Sync`, as ureq's agent is.
#[derive(Clone)]
pub struct Agent {
    agent: ureq::Agent,
    policy: Policy,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Wrap `agent` (configured as you like) to follow redirects by
    /// `policy`.
    ///
    /// For the network guard to see the address of every hop before it is
    /// connected to, build `agent` with [`GuardResolver`] (as
    /// [`Agent::new_with_config`] does). Without it, a hop to a name is
    /// checked by a second lookup of that name once its response is in:
    /// the same rule, but a DNS server that changes its answer between the
    /// two lookups can slip past it.
    #[must_use]
    pub fn new(agent: ureq::Agent, policy: Policy) -> Self {
        Self { agent, policy }
    }

    /// ureq's default agent, with [`GuardResolver`], following by
    /// [`Policy::standard`]: `ureq::Agent::new_with_defaults()` with one
    /// type changed.
    #[must_use]
    pub fn new_with_defaults() -> Self {
        Self::new_with_config(ureq::config::Config::default())
    }

    /// An agent with ureq's `config` and [`GuardResolver`], following by
    /// [`Policy::standard`] (set another with [`Agent::with_policy`]):
    /// `ureq::Agent::new_with_config(config)` with one type changed.
    #[must_use]
    pub fn new_with_config(config: ureq::config::Config) -> Self {
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            GuardResolver::new(),
        );
        Self::new(agent, Policy::standard())
    }

    /// The same agent, following by `policy`.
    #[must_use]
    pub fn with_policy(self, policy: Policy) -> Self {
        Self { policy, ..self }
    }

    /// The wrapped agent.
    #[must_use]
    pub fn ureq_agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The policy that requests follow unless they carry their own.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            agent: self.clone(),
            request: Request::builder().method(method).uri(url),
            query: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `PATCH` request.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// Send a request built elsewhere and follow its redirects. A [`Policy`]
    /// in its extensions overrides the agent's for this request.
    pub fn run(&self, request: Request<Body>) -> Result<Response<ureq::Body>, Error> {
        self.run_within(request, None)
    }

    fn run_within(
        &self,
        request: Request<Body>,
        timeout: Option<Duration>,
    ) -> Result<Response<ureq::Body>, Error> {
        let policy = request
            .extensions()
            .get::<Policy>()
            .cloned()
            .unwrap_or_else(|| self.policy.clone());
        let deadline = timeout.map(|t| Instant::now() + t);
        let (mut parts, source) = request.into_parts();
        let limits = Limits::of(&policy);
        let (body, first) = match source.0 {
            Source::Memory(bytes) if bytes.is_empty() => (Replay::None, ReplayBody::empty()),
            Source::Memory(bytes) => Replay::memory(bytes),
            reader @ Source::Reader { .. } => {
                // A reader of known length is sent with it, as ureq sends a
                // file; the header stays for a replay.
                if let Source::Reader { len: Some(len), .. } = &reader {
                    if !parts.headers.contains_key(http::header::CONTENT_LENGTH)
                        && !parts.headers.contains_key(http::header::TRANSFER_ENCODING)
                    {
                        parts
                            .headers
                            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(*len));
                    }
                }
                Replay::stream(Body(reader), limits)
            }
        };
        let policy_guard = (policy.guard() != NetworkGuard::Off).then(|| policy.clone());
        // A big body or a stream of unknown length waits for the server's
        // 100 (ureq holds it back, and sends none after a final answer).
        let await_100 = follow::expect_for(&policy, &body, parts.version);
        let chain = Lazy::from_head(policy, &parts, body.is_some())?;
        // (After the chain took the head: the expectation is this request's,
        // and the rule decides again for every hop.)
        if await_100.is_some() {
            parts.headers.insert(
                http::header::EXPECT,
                HeaderValue::from_static("100-continue"),
            );
        }
        let version = parts.version;
        let transport = Ureq {
            agent: self.agent.clone(),
            deadline,
            guard: policy_guard,
            sent: 0,
        };
        let start = Start {
            request: Outgoing {
                parts,
                body: first,
                await_100,
            },
            body,
            chain,
            version,
            deadline,
        };
        block_on(follow::follow(transport, start))
    }
}

/// A request being built, as ureq's `RequestBuilder` builds one.
#[derive(Debug)]
#[must_use = "a request builder does nothing until it is sent"]
pub struct RequestBuilder {
    agent: Agent,
    request: http::request::Builder,
    query: Vec<(String, String)>,
    timeout: Option<Duration>,
}

impl RequestBuilder {
    /// Add a header, as ureq's `header` does.
    pub fn header<K, V>(mut self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.request = self.request.header(key, value);
        self
    }

    /// Add a query pair to the URL, percent-encoded.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A policy for this request alone, overriding the agent's.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.request = self.request.extension(policy);
        self
    }

    /// A timeout for the whole chain: every hop, every 3xx drain and the
    /// hook. Running out is [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send with `body` and follow the redirects.
    pub fn send(self, body: impl Into<Body>) -> Result<Response<ureq::Body>, Error> {
        let Self {
            agent,
            request,
            query,
            timeout,
        } = self;
        let mut request = request
            .body(body.into())
            .map_err(|e| Error::new(Detail::InvalidRequest(Box::new(e))))?;
        if !query.is_empty() {
            *request.uri_mut() = with_query(request.uri(), &query)?;
        }
        agent.run_within(request, timeout)
    }

    /// Send `data` as JSON (`Content-Type: application/json` unless one is
    /// set) and follow the redirects. Feature `json`.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn send_json(mut self, data: impl serde::Serialize) -> Result<Response<ureq::Body>, Error> {
        let json = serde_json::to_vec(&data)
            .map_err(|e| Error::new(Detail::InvalidRequest(Box::new(e))))?;
        let typed = self
            .request
            .headers_ref()
            .is_some_and(|h| h.contains_key(http::header::CONTENT_TYPE));
        if !typed {
            self = self.header(http::header::CONTENT_TYPE, "application/json");
        }
        self.send(json)
    }

    /// Send with no body and follow the redirects.
    pub fn send_empty(self) -> Result<Response<ureq::Body>, Error> {
        self.send(Body::empty())
    }

    /// Send with no body and follow the redirects (ureq's word for a
    /// request without one).
    pub fn call(self) -> Result<Response<ureq::Body>, Error> {
        self.send_empty()
    }
}

/// `uri` with `pairs` appended to its query, form-encoded.
fn with_query(uri: &Uri, pairs: &[(String, String)]) -> Result<Uri, Error> {
    let invalid = |e: BoxError| Error::new(Detail::InvalidRequest(e));
    let mut url = url::Url::parse(&uri.to_string()).map_err(|e| invalid(Box::new(e)))?;
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    url.as_str().parse().map_err(|e| invalid(Box::new(e)))
}

/// A request body for [`Agent`]: bytes in memory (replayed by reference
/// count), or a reader (streamed, and teed for replay).
pub struct Body(Source);

enum Source {
    Memory(Bytes),
    Reader {
        reader: Box<dyn Read + Send>,
        /// Known length: sent as `Content-Length`.
        len: Option<u64>,
        done: bool,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Memory(bytes) => f.debug_tuple("Body::Memory").field(&bytes.len()).finish(),
            Source::Reader { len, .. } => f.debug_struct("Body::Reader").field("len", len).finish(),
        }
    }
}

impl Body {
    /// No body.
    #[must_use]
    pub fn empty() -> Self {
        Self(Source::Memory(Bytes::new()))
    }

    /// A body read from `reader` as it is sent (chunked), and kept for
    /// replay up to [`Policy::max_replay_body`].
    #[must_use]
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Self(Source::Reader {
            reader: Box::new(reader),
            len: None,
            done: false,
        })
    }

    /// A reader of `len` bytes, sent with a `Content-Length`.
    #[must_use]
    pub fn from_sized_reader(reader: impl Read + Send + 'static, len: u64) -> Self {
        Self(Source::Reader {
            reader: Box::new(reader),
            len: Some(len),
            done: false,
        })
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self(Source::Memory(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Source::Memory(Bytes::from(bytes)))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self(Source::Memory(Bytes::from(text)))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self(Source::Memory(Bytes::from_static(bytes)))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self(Source::Memory(Bytes::from_static(text.as_bytes())))
    }
}

impl From<std::fs::File> for Body {
    /// Streamed, with its length (from its metadata) as `Content-Length`.
    fn from(file: std::fs::File) -> Self {
        match file.metadata() {
            Ok(meta) if meta.is_file() => Self::from_sized_reader(file, meta.len()),
            _ => Self::from_reader(file),
        }
    }
}

/// The largest piece read from a reader at a time.
const PIECE: usize = 64 * 1024;

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    /// Blocking: a reader is read on the calling thread (ureq's own way).
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.0 {
            Source::Memory(bytes) if bytes.is_empty() => Poll::Ready(None),
            Source::Memory(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Source::Reader { done: true, .. } => Poll::Ready(None),
            Source::Reader { reader, done, .. } => {
                let mut piece = vec![0; PIECE];
                loop {
                    match reader.read(&mut piece) {
                        Ok(0) => {
                            *done = true;
                            return Poll::Ready(None);
                        }
                        Ok(n) => {
                            piece.truncate(n);
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(piece)))));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Memory(bytes) => bytes.is_empty(),
            Source::Reader { done, .. } => *done,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.0 {
            Source::Memory(bytes) => http_body::SizeHint::with_exact(bytes.len() as u64),
            Source::Reader {
                len: Some(len),
                done: false,
                ..
            } => http_body::SizeHint::with_exact(*len),
            Source::Reader { .. } => http_body::SizeHint::default(),
        }
    }
}

impl From<ureq::Error> for Error {
    /// A ureq error as this crate's: a timeout is
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), anything else
    /// [`ErrorKind::Request`](crate::ErrorKind::Request), so that `?` works
    /// across `send()` and reading the body.
    fn from(error: ureq::Error) -> Self {
        match error {
            ureq::Error::Timeout(_) => Error::new(Detail::Timeout(Some(Box::new(error)))),
            error => Error::new(Detail::Request(Box::new(error))),
        }
    }
}

/// One hop as ureq sends it.
pub(crate) struct Outgoing {
    parts: http::request::Parts,
    body: ReplayBody<Body>,
    /// Sent with `Expect: 100-continue`: how long ureq waits for the 100.
    await_100: Option<Duration>,
}

/// The loop's view of a ureq agent.
struct Ureq {
    agent: ureq::Agent,
    deadline: Option<Instant>,
    /// The chain's policy, where its network guard is on.
    guard: Option<Policy>,
    /// Requests sent so far.
    sent: u32,
}

impl Ureq {
    /// ureq's own following off, and what is left of the chain's deadline
    /// as its global timeout.
    ///
    /// With the network guard on, the hop's address goes into the response
    /// for the loop to check ([`follow::Peer`]): from [`GuardResolver`], or
    /// looked up again where the agent has none and the guard needs it (a
    /// 3xx, a later hop, `PublicOnly`). Never behind a proxy, which
    /// resolves the name itself.
    fn run<B: ureq::AsSendBody>(
        &mut self,
        request: Request<B>,
        await_100: Option<Duration>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let watch = self
            .guard
            .as_ref()
            .map(|policy| resolve::Watch::arm(request.uri(), policy));
        let mut config = self.agent.configure_request(request).max_redirects(0);
        if let Some(wait) = await_100 {
            config = config.timeout_await_100(Some(wait));
        }
        if let Some(left) = left {
            config = config.timeout_global(Some(left));
        }
        let mut response = self.agent.run(config.build())?;
        let first = self.sent == 0;
        self.sent += 1;
        if let Some(watch) = watch {
            let again = self.agent.config().proxy().is_none()
                && (!first
                    || response.status().is_redirection()
                    || self.guard.as_ref().map(Policy::guard) == Some(NetworkGuard::PublicOnly));
            if let Some(peer) = watch.peer(again) {
                response.extensions_mut().insert(follow::Peer(peer));
            }
        }
        Ok(response)
    }
}

impl Transport for Ureq {
    /// ureq (ureq-proto's `Await100`) holds the body back for the 100 and
    /// sends none after a final answer.
    const EXPECT_CONTINUE: bool = true;

    type Body = Body;
    type Request = Outgoing;
    type Response = Response<ureq::Body>;
    type SendError = ureq::Error;
    type Error = Error;

    fn send(
        &mut self,
        request: Outgoing,
    ) -> impl Future<Output = Result<Response<ureq::Body>, ureq::Error>> + Send + '_ {
        let Outgoing {
            parts,
            body,
            await_100,
        } = request;
        // Blocking, here: the loop's future is ready at once.
        let result = match body.inner {
            // No body on a method that has none (a GET, or a hop switched to
            // one): no `Content-Length: 0`, as ureq's own `call()` sends none.
            Inner::Memory(bytes) if bytes.is_empty() && !bodied(&parts.method) => {
                self.run(Request::from_parts(parts, ureq::SendBody::none()), None)
            }
            // Held for a 100: through a reader that notes whether ureq took
            // any of it (ureq copies a slice into its buffer all the same),
            // so that a body the server answered before counts none.
            Inner::Memory(bytes) if await_100.is_some() => {
                let mut parts = parts;
                parts
                    .headers
                    .insert(http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                let taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
                // The bytes as the reader's first piece, nothing after.
                let reader = Sending {
                    body: ReplayBody::empty(),
                    piece: bytes,
                    taken: Some(Arc::clone(&taken)),
                };
                let sent = Request::from_parts(parts, ureq::SendBody::from_owned_reader(reader));
                self.run(sent, await_100).map(|mut response| {
                    if !taken.load(std::sync::atomic::Ordering::Relaxed) {
                        response.extensions_mut().insert(follow::Withheld);
                    }
                    response
                })
            }
            // In memory: ureq sends the shared bytes themselves, no copy.
            Inner::Memory(bytes) => self.run(Request::from_parts(parts, &bytes[..]), await_100),
            Inner::Stream(_) => self.run(
                Request::from_parts(
                    parts,
                    ureq::SendBody::from_owned_reader(Sending {
                        body,
                        piece: Bytes::new(),
                        taken: None,
                    }),
                ),
                await_100,
            ),
        };
        std::future::ready(result)
    }

    fn hop(&mut self, hop: Hop<'_, Body>) -> Result<Outgoing, BoxError> {
        let uri: Uri = hop.sent_url().parse()?;
        let mut request = Request::builder()
            .method(hop.method.clone())
            .uri(uri)
            .version(hop.version)
            .extension(crate::ResendCount::new(hop.resend))
            .body(())?;
        *request.headers_mut() = hop.headers;
        if hop.expect.is_some() {
            request.headers_mut().insert(
                http::header::EXPECT,
                HeaderValue::from_static("100-continue"),
            );
        }
        let (parts, ()) = request.into_parts();
        Ok(Outgoing {
            parts,
            body: hop.body.unwrap_or_else(ReplayBody::empty),
            await_100: hop.expect,
        })
    }

    fn drain(response: Response<ureq::Body>) -> impl Future<Output = bool> + Send {
        let mut body = response.into_body();
        let timed_out = match body.with_config().limit(DRAIN_LIMIT).read_to_vec() {
            Ok(_) => false,
            Err(e) => matches!(e, ureq::Error::Timeout(_)),
        };
        std::future::ready(timed_out)
    }

    fn finish(
        mut response: Response<ureq::Body>,
        history: History,
        _fragment: Option<String>,
    ) -> Response<ureq::Body> {
        response.extensions_mut().insert(history);
        response
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        Sleep {
            deadline,
            armed: false,
        }
    }

    fn refused(_error: &ureq::Error) -> Option<follow::refused::Refusal> {
        // HTTP/1.1 only: no stream is ever refused.
        None
    }

    fn send_failed(chain: &Chain, error: ureq::Error) -> Error {
        match error {
            ureq::Error::Timeout(_) => chain.timeout_error(Some(Box::new(error))),
            // The guard's refusal from `GuardResolver` is the error itself.
            ureq::Error::Other(source) => chain.request_error(source),
            error => chain.request_error(error),
        }
    }

    fn send_timed_out(chain: &Chain, error: ureq::Error) -> Error {
        chain.timeout_error(Some(Box::new(error)))
    }

    fn redirect_failed(error: Error) -> Error {
        error
    }

    fn kind(error: &Error) -> Option<crate::ErrorKind> {
        Some(error.kind())
    }
}

/// Whether an empty body of `method` is still sent as `Content-Length: 0`:
/// the methods whose requests carry content (RFC 9110 §9.3), and any other
/// method but those defined with none.
fn bodied(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::OPTIONS
            | Method::TRACE
            | Method::DELETE
            | Method::CONNECT
    )
}

/// A replayable body as ureq reads it.
struct Sending {
    body: ReplayBody<Body>,
    /// What was taken from `body` and not yet read.
    piece: Bytes,
    /// Set once ureq read any of it (for a body held for a 100).
    taken: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Read for Sending {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            let body = &mut self.body;
            let frame = block_on(std::future::poll_fn(|cx| {
                http_body::Body::poll_frame(Pin::new(&mut *body), cx)
            }));
            match frame {
                None => return Ok(0),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.piece = data;
                    }
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece[..n]);
        self.piece.advance(n);
        if let Some(taken) = self.taken.as_ref().filter(|_| n > 0) {
            taken.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// A timer with no runtime: when first polled early, a thread wakes the
/// task at the deadline. Only a hook that is not ready at once (the only
/// await of the loop that can pend on this transport) ever arms it.
struct Sleep {
    deadline: Instant,
    armed: bool,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        if !self.armed {
            self.armed = true;
            let (waker, wait) = (cx.waker().clone(), self.deadline - now);
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

/// Run `future` to its end on this thread, parking while it waits.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Agent>();
    }

    #[test]
    fn a_reader_body_is_read_in_pieces_and_keeps_its_length() {
        let data = vec![7u8; PIECE + 10];
        let body = Body::from_sized_reader(std::io::Cursor::new(data.clone()), data.len() as u64);
        assert_eq!(
            http_body::Body::size_hint(&body).exact(),
            Some(data.len() as u64)
        );
        let limits = Limits::of(&Policy::standard());
        let (_replay, first) = Replay::stream(body, limits);
        let mut sending = Sending {
            body: first,
            piece: Bytes::new(),
            taken: None,
        };
        let mut out = Vec::new();
        sending.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
}

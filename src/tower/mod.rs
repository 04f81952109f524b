//! The tower transport: [`FollowRedirectLayer`] and [`FollowRedirect`], for
//! SDKs built on hyper-util and tower. It translates `http::Request` and
//! `http::Response` to and from the shared loop; every rule is the engine's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Request, Response, Uri};
use http_body::Body;
use tower_service::Service;

use crate::body::gate::{Gate, Sleep};
use crate::body::{Limits, Replay, ReplayBody};
use crate::engine::error::Detail;
use crate::follow::{
    expect_for, follow, trace::HopTrace, Answer as _, Hop, Lazy, Start, Transport, Withheld,
    DRAIN_LIMIT,
};
use crate::{BoxError, Chain, Error, History, Policy};

/// A [`tower_layer::Layer`] that follows redirects under a [`Policy`].
///
/// ```
/// use redirect_policy::{FollowRedirectLayer, Policy};
/// use tower_layer::Layer as _;
///
/// # fn wrap<S>(inner: S) -> redirect_policy::FollowRedirect<S> {
/// let service = FollowRedirectLayer::new(Policy::standard()).layer(inner);
/// # service }
/// ```
///
/// The inner service is called with `http::Request<ReplayBody<B>>` and
/// must answer `http::Response<_>`; a hyper-util legacy
/// `Client<HttpConnector, ReplayBody<B>>` is one. The request URI must be
/// absolute (scheme and authority), as such a client needs anyway.
#[derive(Clone, Debug, Default)]
pub struct FollowRedirectLayer {
    policy: Policy,
}

impl FollowRedirectLayer {
    /// A layer that follows redirects under `policy`.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }

    /// The policy used by requests that carry none of their own.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<S> tower_layer::Layer<S> for FollowRedirectLayer {
    type Service = FollowRedirect<S>;

    fn layer(&self, inner: S) -> FollowRedirect<S> {
        FollowRedirect::new(inner, self.policy.clone())
    }
}

/// A tower [`Service`] that follows the redirects of the service it wraps.
///
/// - The first hop goes to the inner service that [`Service::poll_ready`]
///   made ready; each later hop goes to a clone of it, made ready and called
///   once (tower's `oneshot`).
/// - The request body is sent at once and kept for replay
///   ([`ReplayBody`]): streams follow a 307/308 too, up to
///   [`Policy::max_replay_body`]. A body of 1 MiB or more, or a stream of
///   unknown length, goes over HTTP/1.1 with `Expect: 100-continue` and
///   waits for the 100 ([`Policy::expect_continue`]; the crate docs,
///   "Uploads and `Expect: 100-continue`").
/// - A [`Policy`] in the request's extensions overrides the layer's for that
///   request; every hop carries a clone of the request's extensions.
/// - The final response carries a [`History`](crate::History) in its
///   extensions.
/// - Errors are [`Error`]; an error of the inner service is its source, with
///   [`ErrorKind::Request`](crate::ErrorKind::Request) and the history so
///   far.
/// - There is no timer here, so that the layer is tied to no runtime: bound
///   a whole chain with a timeout layer *outside* this one (for example
///   `tower::timeout::TimeoutLayer`, or `tokio::time::timeout` around the
///   call). A timeout layer inside bounds each hop. The final response's
///   body is read after the layer has answered: to bound it too, put the
///   read inside the same `tokio::time::timeout` (a `TimeoutLayer` ends
///   with the response head).
#[derive(Clone)]
pub struct FollowRedirect<S> {
    inner: S,
    policy: Policy,
    /// Set once a response to a held-back request came over HTTP/2 (which
    /// has no `100 Continue` for hyper to report): this service and its
    /// clones hold no body back from then on. Shared by the clones.
    speaks_h2: Arc<AtomicBool>,
}

impl<S> fmt::Debug for FollowRedirect<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowRedirect")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> FollowRedirect<S> {
    /// Follow the redirects of `inner` under `policy`.
    #[must_use]
    pub fn new(inner: S, policy: Policy) -> Self {
        Self {
            inner,
            policy,
            speaks_h2: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A layer with `policy`.
    #[must_use]
    pub fn layer(policy: Policy) -> FollowRedirectLayer {
        FollowRedirectLayer::new(policy)
    }

    /// The policy used by requests that carry none of their own.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The wrapped service.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, to change.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, taking it out.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.inner
    }
}

pin_project_lite::pin_project! {
    /// The future of [`FollowRedirect`]. The first hop's call is polled in
    /// place; only a redirect (or a failed first send) moves the chain into
    /// the shared loop, boxed once, so that a request that is not
    /// redirected allocates nothing here.
    #[must_use = "futures do nothing unless polled"]
    pub struct FollowRedirectFuture<S, B, ResBody>
    where
        S: Service<Request<ReplayBody<B>>>,
    {
        #[pin]
        state: State<S, B, ResBody>,
        span: ChainSpan,
    }
}

/// The chain's span, entered while the future is polled (nothing without
/// the `tracing` feature).
#[cfg(feature = "tracing")]
type ChainSpan = tracing::Span;
#[cfg(not(feature = "tracing"))]
type ChainSpan = ();

#[cfg(feature = "tracing")]
fn chain_span(chain: &Lazy) -> ChainSpan {
    crate::follow::span(chain)
}

#[cfg(not(feature = "tracing"))]
fn chain_span(_chain: &Lazy) -> ChainSpan {}

#[cfg(feature = "tracing")]
fn no_span() -> ChainSpan {
    tracing::Span::none()
}

#[cfg(not(feature = "tracing"))]
fn no_span() -> ChainSpan {}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<S, B, ResBody>
    where
        S: Service<Request<ReplayBody<B>>>,
    {
        /// The first hop, sent by the future itself.
        First {
            #[pin]
            call: S::Future,
            rest: Option<Rest<S, B, ResBody>>,
        },
        /// The shared loop, from the first 3xx (or failure) on.
        Chain {
            chain: Pin<Box<dyn Future<Output = Result<Response<ResBody>, Error>> + Send>>,
        },
        /// A request that could not start (its error), or a finished one.
        Failed {
            error: Option<Error>,
        },
    }
}

/// What the loop needs if the first hop is redirected.
struct Rest<S, B, ResBody> {
    transport: Tower<S, B, ResBody>,
    body: Replay<B>,
    chain: Lazy,
    version: http::Version,
    /// The first hop, sent by the future itself.
    trace: HopTrace,
    /// The first hop's body is held back for a `100 Continue`.
    held: Option<Arc<Gate>>,
}

impl<S, B, ResBody> fmt::Debug for FollowRedirectFuture<S, B, ResBody>
where
    S: Service<Request<ReplayBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowRedirectFuture")
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Future for FollowRedirectFuture<S, B, ResBody>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
{
    type Output = Result<Response<ResBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        #[cfg(feature = "tracing")]
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::First { call, rest } => {
                    let polled = match rest.as_ref() {
                        Some(rest) => rest.trace.in_span(|| call.poll(cx)),
                        None => return Poll::Ready(Err(polled_after_completion())),
                    };
                    let first = match polled {
                        Poll::Ready(first) => first.map_err(Into::into),
                        Poll::Pending => return Poll::Pending,
                    };
                    let Some(mut rest) = rest.take() else {
                        return Poll::Ready(Err(polled_after_completion()));
                    };
                    let held = rest.held.take();
                    let was_held = held.is_some();
                    let first = match (first, held) {
                        (Ok(mut response), Some(gate)) => {
                            answered(&mut response, gate, rest.transport.speaks_h2.as_deref());
                            Ok(response)
                        }
                        (first, _) => first,
                    };
                    match first {
                        // Not redirected: the answer as the loop gives it,
                        // with an empty history; the body goes on as it is
                        // (unless the network guard withholds it). A 417 to
                        // our expectation goes to the loop, which sends the
                        // request again without it.
                        Ok(response)
                            if !response.status().is_redirection()
                                && (!was_held
                                    || response.status()
                                        != http::StatusCode::EXPECTATION_FAILED) =>
                        {
                            let head_at = rest.trace.answered(
                                &response,
                                &rest.body,
                                false,
                                rest.body.is_some() && !response.body_withheld(),
                            );
                            if let Err(error) = rest.chain.check_peer(&response, None) {
                                rest.trace.failed(Some(error.kind()));
                                return Poll::Ready(Err(error));
                            }
                            let mut history = History::default();
                            history
                                .set_total(head_at.saturating_duration_since(rest.trace.started()));
                            #[cfg(feature = "tracing")]
                            crate::follow::trace::spans::chain_done(response.status(), 0);
                            return Poll::Ready(Ok(Tower::<S, B, ResBody>::finish(
                                response, history, None,
                            )));
                        }
                        first => {
                            let chain = crate::follow::resume(
                                rest.transport,
                                first,
                                rest.trace,
                                rest.body,
                                rest.chain,
                                rest.version,
                            );
                            this.state.set(State::Chain { chain });
                        }
                    }
                }
                StateProj::Chain { chain } => return chain.as_mut().poll(cx),
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(polled_after_completion)));
                }
            }
        }
    }
}

/// The error of a future polled again after it gave its answer.
fn polled_after_completion() -> Error {
    Error::new(Detail::InvalidRequest(
        "FollowRedirectFuture polled after it completed".into(),
    ))
}

impl<S, B, ResBody> Service<Request<B>> for FollowRedirect<S>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Error;
    type Future = FollowRedirectFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| Error::new(Detail::Request(e.into())))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let policy = request
            .extensions()
            .get::<Policy>()
            .cloned()
            .unwrap_or_else(|| self.policy.clone());
        let (start, extensions, held, speaks_h2) = match start(policy, request, &self.speaks_h2) {
            Ok(started) => started,
            Err(error) => {
                return FollowRedirectFuture {
                    state: State::Failed { error: Some(error) },
                    span: no_span(),
                }
            }
        };
        let span = chain_span(&start.chain);
        if matches!(&start.chain, Lazy::Ready(chain) if !chain.history().is_empty()) {
            // A remembered permanent redirect moves the first hop: the loop
            // sends it, to the service made ready (a clone stays here), and
            // this future's poll enters its span.
            let clone = self.inner.clone();
            let transport = Tower::new(
                std::mem::replace(&mut self.inner, clone),
                true,
                extensions,
                speaks_h2,
            );
            return FollowRedirectFuture {
                state: State::Chain {
                    chain: follow(transport, start),
                },
                span,
            };
        }
        let Start {
            request,
            body,
            chain,
            version,
            deadline: _,
        } = start;
        // As tower-http does: the service made ready takes the first hop
        // here, and the future keeps a clone for the later hops (which make
        // it ready first). Moving the service out and a clone in would copy
        // both (measured: ~0.1k instructions of memcpy per request).
        let service = self.inner.clone();
        #[cfg(feature = "tracing")]
        let trace = HopTrace::begin_under(&chain, &span);
        #[cfg(not(feature = "tracing"))]
        let trace = HopTrace::begin_under(&chain);
        let call = trace.in_span(|| self.inner.call(request));
        FollowRedirectFuture {
            state: State::First {
                call,
                rest: Some(Rest {
                    transport: Tower::new(service, false, extensions, speaks_h2),
                    body,
                    chain,
                    version,
                    trace,
                    held,
                }),
            },
            span,
        }
    }
}

/// Where a tower request's chain starts; the extensions are kept for the
/// later hops. Where the body qualifies for `Expect: 100-continue`: the
/// first hop's gate (unless the layer has seen HTTP/2), and the layer's
/// HTTP/2 flag for the chain's later hops.
#[allow(clippy::type_complexity)] // a tuple of the things the caller needs
fn start<S, B, ResBody>(
    policy: Policy,
    request: Request<B>,
    speaks_h2: &Arc<AtomicBool>,
) -> Result<
    (
        Start<Tower<S, B, ResBody>>,
        Extensions,
        Option<Arc<Gate>>,
        Option<Arc<AtomicBool>>,
    ),
    Error,
>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
{
    let (parts, source) = request.into_parts();
    let (body, first) = Replay::any(source, Limits::of(&policy));
    let wait = expect_for(&policy, &body, parts.version);
    let chain = Lazy::from_head(policy, &parts, body.is_some())?;
    let extensions = parts.extensions.clone();
    let version = parts.version;
    let mut request = Request::from_parts(parts, first);
    // (After the chain took the head: the expectation is this request's,
    // and the rule decides again for every hop.)
    let held = wait
        .filter(|_| !speaks_h2.load(Ordering::Relaxed))
        .map(|wait| hold_back(&mut request, wait));
    let speaks_h2 = wait.map(|_| Arc::clone(speaks_h2));
    Ok((
        Start {
            request,
            body,
            chain,
            version,
            deadline: None,
        },
        extensions,
        held,
        speaks_h2,
    ))
}

/// Send `request` with `Expect: 100-continue`, its body held back until
/// hyper reports a `100 Continue` (`hyper::ext::on_informational`, HTTP/1)
/// or `wait` passes.
fn hold_back<B>(request: &mut Request<ReplayBody<B>>, wait: Duration) -> Arc<Gate> {
    let gate = Gate::new();
    request.headers_mut().insert(
        http::header::EXPECT,
        http::HeaderValue::from_static("100-continue"),
    );
    let body = std::mem::take(request.body_mut());
    *request.body_mut() = body.held(Arc::clone(&gate), wait, sleep);
    let opens = Opener(Arc::clone(&gate));
    hyper::ext::on_informational(request, move |informational| {
        if informational.status() == http::StatusCode::CONTINUE {
            opens.0.open();
        }
    });
    gate
}

/// The gate, in hyper's 1xx callback. Dropped with it: before the body was
/// polled, hyper will report no 1xx (its HTTP/2 client drops the request's
/// extensions as it sends the head), so the body goes at once instead of
/// after the wait ([`Gate::unheard`]).
struct Opener(Arc<Gate>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.unheard();
    }
}

/// The held body's timer.
fn sleep(wait: Duration) -> Sleep {
    Box::pin(tokio::time::sleep(wait))
}

/// A later hop's gate, from `Tower::hop` to `Tower::send` (which takes it
/// out before the service sees the request).
#[derive(Clone)]
struct HopGate(Arc<Gate>);

/// In the response to a hop whose body was still held back when it came,
/// and may still be read by hyper. Dropping it (the loop drains or drops a
/// 3xx, drops a 417) fails the held body, so that hyper closes the
/// connection instead of keeping a request half-written; [`Tower::finish`]
/// takes it out and lets the body linger instead, so that the caller can
/// read the response before that.
#[derive(Clone)]
struct HeldBack(Option<Arc<Gate>>);

impl Drop for HeldBack {
    fn drop(&mut self) {
        if let Some(gate) = self.0.take() {
            gate.fail();
        }
    }
}

/// The loop's view of a tower service.
struct Tower<S, B, ResBody> {
    /// The service made ready by `poll_ready`: it takes the first hop, and
    /// each later hop goes to a clone of it.
    service: S,
    first: bool,
    extensions: Extensions,
    /// The layer's HTTP/2 flag, where the chain's body qualifies for
    /// `Expect: 100-continue`. (A hop's gate goes to its send in the
    /// request's extensions: one field more here would put the loop's
    /// boxed state past malloc's small-size cache.)
    speaks_h2: Option<Arc<AtomicBool>>,
    _body: std::marker::PhantomData<fn() -> (B, ResBody)>,
}

impl<S, B, ResBody> Tower<S, B, ResBody> {
    /// `first`: whether `service` was made ready and takes the first hop.
    fn new(
        service: S,
        first: bool,
        extensions: Extensions,
        speaks_h2: Option<Arc<AtomicBool>>,
    ) -> Self {
        Self {
            service,
            first,
            extensions,
            speaks_h2,
            _body: std::marker::PhantomData,
        }
    }
}

/// What a response to a held-back hop means for its body: nothing if the
/// body went (a 100 came, or the wait passed); otherwise it is never sent,
/// and the connection is closed at once when the response has no body to
/// read, or once the response is done with (see [`HeldBack`]).
fn answered<Res: Body>(
    response: &mut Response<Res>,
    gate: Arc<Gate>,
    speaks_h2: Option<&AtomicBool>,
) {
    if response.version() == http::Version::HTTP_2 {
        if let Some(speaks_h2) = speaks_h2 {
            speaks_h2.store(true, Ordering::Relaxed);
        }
    }
    if !gate.answered() {
        return;
    }
    response.extensions_mut().insert(Withheld);
    if response.body().is_end_stream() {
        gate.fail();
    } else {
        response.extensions_mut().insert(HeldBack(Some(gate)));
    }
}

impl<S, B, ResBody> Transport for Tower<S, B, ResBody>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
{
    const EXPECT_CONTINUE: bool = true;

    type Body = B;
    type Request = Request<ReplayBody<B>>;
    type Response = Response<ResBody>;
    type SendError = BoxError;
    type Error = Error;

    fn send(
        &mut self,
        mut request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, BoxError>> + Send + '_ {
        let gate = request.extensions_mut().remove::<HopGate>();
        // The first hop takes the ready service; later hops a clone of it,
        // made ready here (tower's `oneshot`). Either way the future the
        // loop holds is small: the call is made now where it can be, and
        // otherwise boxed with its clone of the service, so that neither the
        // service nor the request sits in the chain's state.
        let sending = if std::mem::replace(&mut self.first, false) {
            Sending::Call(self.service.call(request))
        } else {
            // A clone that is ready at once (a hyper-util client always is)
            // is called now; one that is not is boxed and made ready when
            // polled. Asking without a waker is safe: a `Pending` here is
            // asked again, with the task's waker, before anything waits.
            let mut service = self.service.clone();
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match service.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => Sending::Call(service.call(request)),
                Poll::Ready(Err(e)) => Sending::Failed(e.into()),
                Poll::Pending => Sending::Later(Box::pin(later_hop(service, request))),
            }
        };
        // A hop held back for a `100 Continue` (a big upload) is boxed with
        // its gate: the loop's state does not grow for every hop.
        let sending = match gate {
            None => sending,
            Some(HopGate(gate)) => {
                Sending::Held(Box::pin(held_hop(sending, gate, self.speaks_h2.clone())))
            }
        };
        sending.sent()
    }

    fn hop(&mut self, hop: Hop<'_, B>) -> Result<Self::Request, BoxError> {
        let uri = Uri::try_from(hop.sent_url())?;
        let mut request = Request::new(hop.body.unwrap_or_default());
        *request.method_mut() = hop.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = hop.headers;
        *request.version_mut() = hop.version;
        // No `ResendCount` here: inserting it allocates the extensions' map
        // on every hop (measured: ~0.5k instructions, 1 % of a hop); the
        // hop's span carries the count.
        *request.extensions_mut() = self.extensions.clone();
        if let (Some(wait), Some(speaks_h2)) = (hop.expect, &self.speaks_h2) {
            if !speaks_h2.load(Ordering::Relaxed) {
                let gate = hold_back(&mut request, wait);
                request.extensions_mut().insert(HopGate(gate));
            }
        }
        Ok(request)
    }

    fn drain(mut response: Self::Response) -> impl Future<Output = bool> + Send {
        // A body still held back is failed first: its connection closes
        // (so the drain is cut short, and nothing would go back to the pool
        // anyway).
        drop(response.extensions_mut().remove::<HeldBack>());
        drain(response.into_body())
    }

    fn finish(
        mut response: Self::Response,
        history: History,
        _fragment: Option<String>,
    ) -> Self::Response {
        if let Some(mut held) = response.extensions_mut().remove::<HeldBack>() {
            // The caller reads this response: the held body fails (and
            // hyper closes the connection) only after the linger, unless
            // the server closes it first.
            if let Some(gate) = held.0.take() {
                gate.linger();
            }
        }
        response.extensions_mut().insert(history);
        response
    }

    fn sleep_until(_deadline: std::time::Instant) -> impl Future<Output = ()> + Send {
        // No deadline on this path (`Start::deadline` is `None`): an outer
        // timeout layer bounds the chain.
        std::future::pending()
    }

    fn refused(error: &BoxError) -> Option<crate::follow::refused::Refusal> {
        crate::follow::refused::by_peer(&**error)
    }

    fn send_failed(chain: &Chain, error: BoxError) -> Error {
        chain.request_error(error)
    }

    fn send_timed_out(chain: &Chain, error: BoxError) -> Error {
        chain.timeout_error(Some(error))
    }

    fn kind(error: &Error) -> Option<crate::ErrorKind> {
        Some(error.kind())
    }

    fn redirect_failed(error: Error) -> Error {
        error
    }
}

/// A hop's answer, boxed.
type Boxed<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

/// How a hop goes to the service: see `Tower::send`.
enum Sending<F, L, R> {
    /// The service was ready and called.
    Call(F),
    /// A clone that was not ready yet, with its request.
    Later(Pin<Box<L>>),
    /// A hop whose body is held back for a `100 Continue`.
    Held(Boxed<R>),
    /// A clone that failed to get ready.
    Failed(BoxError),
}

impl<F, E, L, R> Sending<F, L, R>
where
    F: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
    L: Future<Output = Result<R, BoxError>>,
{
    /// The hop's answer.
    #[allow(clippy::manual_async_fn)] // an async fn would keep `self` twice: 48 more bytes of the loop's state
    fn sent(self) -> impl Future<Output = Result<R, BoxError>> {
        async move {
            match self {
                Sending::Call(call) => call.await.map_err(Into::into),
                Sending::Later(hop) => hop.await,
                Sending::Held(hop) => hop.await,
                Sending::Failed(e) => Err(e),
            }
        }
    }
}

/// A held-back hop: sent as `sending` says, its answer then told to `gate`.
async fn held_hop<F, E, L, Res>(
    sending: Sending<F, L, Response<Res>>,
    gate: Arc<Gate>,
    speaks_h2: Option<Arc<AtomicBool>>,
) -> Result<Response<Res>, BoxError>
where
    F: Future<Output = Result<Response<Res>, E>>,
    E: Into<BoxError>,
    L: Future<Output = Result<Response<Res>, BoxError>>,
    Res: Body,
{
    let mut response = sending.sent().await?;
    answered(&mut response, gate, speaks_h2.as_deref());
    Ok(response)
}

/// A later hop: a clone of the service, made ready, then called.
async fn later_hop<S, Req>(mut service: S, request: Req) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(request).await.map_err(Into::into)
}

/// Read a small 3xx body of known length so that its connection goes back
/// to the pool; drop any other unread. (No hop timeout on this path: never
/// `true`.)
async fn drain<ResBody: Body + Send>(body: ResBody) -> bool {
    if body.size_hint().exact().is_none_or(|len| len > DRAIN_LIMIT) {
        return false;
    }
    let mut body = std::pin::pin!(body);
    while let Some(Ok(_)) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {}
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use http_body_util::Full;
    use hyper_util::client::legacy::{connect::HttpConnector, Client};

    use super::*;

    type Inner = Client<HttpConnector, ReplayBody<Full<Bytes>>>;

    /// The loop's future, boxed at a redirect, fits glibc malloc's per-thread
    /// cache (requests up to 1032 bytes on 64-bit: `tidx2usize(63)`): past
    /// it, every redirected request pays the slow path (measured: ~0.4k
    /// instructions per request, more with 16 tasks). It is at that limit
    /// (the `Expect: 100-continue` flag took the last 8 bytes).
    #[tokio::test]
    async fn the_boxed_loop_fits_mallocs_small_size_cache() {
        let client: Inner =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
        let transport: Tower<Inner, Full<Bytes>, hyper::body::Incoming> =
            Tower::new(client, false, Extensions::new(), None);
        let (head, ()) = Request::post("http://127.0.0.1:9/")
            .body(())
            .unwrap()
            .into_parts();
        let chain = Lazy::from_head(Policy::standard(), &head, false).unwrap();
        let trace = HopTrace::begin(&chain, 0);
        let future = crate::follow::resume(
            transport,
            Err("refused".into()),
            trace,
            Replay::None,
            chain,
            http::Version::HTTP_11,
        );
        let size = std::mem::size_of_val(&*future);
        eprintln!("the loop's state is {size} bytes");
        assert!(size <= 1032, "the loop's state is {size} bytes");
    }
}

//! [`FollowRedirectsMiddleware`]: the same redirect following as a
//! `reqwest-middleware` middleware.

use http::Extensions;
use reqwest_middleware::{Middleware, Next};

use crate::follow::{follow, Hop, Transport};
use crate::reqwest::transport;
use crate::{BoxError, Chain, Error, Policy};

/// Follows redirects inside a [`reqwest_middleware`] stack.
///
/// Each hop is sent through the rest of the stack (`Next`), so middlewares
/// registered **after** this one see every hop: a retry middleware there
/// retries a failing hop, with its body replayed, not the whole chain.
/// Middlewares registered **before** it see one logical request.
///
/// ```no_run
/// use redirect_policy::{FollowRedirectsMiddleware, Policy};
/// use reqwest_middleware::ClientBuilder;
///
/// let inner = reqwest::Client::builder()
///     // Required: otherwise reqwest follows redirects itself, underneath
///     // this middleware, with its own rules.
///     .redirect(reqwest::redirect::Policy::none())
///     .build()
///     .unwrap();
/// let client = ClientBuilder::new(inner)
///     .with(FollowRedirectsMiddleware::new(Policy::standard()))
///     // .with(RetryTransientMiddleware::new_with_policy(..))  // sees each hop
///     .build();
/// ```
///
/// The inner client **must** be built with
/// `redirect(reqwest::redirect::Policy::none())`. If it is not, reqwest
/// follows redirects below this middleware with its own rules (no stream
/// replay, no sticky credential stripping) and this middleware never sees a
/// 3xx. The middleware cannot look inside a `reqwest::Client` to check.
///
/// A [`Policy`] in the request's extensions
/// (`RequestBuilder::with_extension(policy)`) overrides this middleware's
/// policy for that request.
///
/// **Streamed bodies and reqwest-retry.** reqwest-retry clones every request
/// before its first send, and a streamed body cannot be cloned: it fails
/// such a request at once ("Request object is not cloneable"), *before
/// anything is sent*, wherever it sits in the stack — above this middleware,
/// below it, or with no redirect at all. With reqwest-retry in the stack,
/// send bodies from memory (`Bytes`, `Vec<u8>`, `String`: those are replayed
/// by reference count and retried); for a streamed upload use
/// [`Client`](crate::Client), which replays streams through 307/308, and
/// retry the whole upload yourself if you must.
///
/// **Deadline.** A timeout set on the request bounds the whole chain here
/// too: each hop's send (with whatever retries run below this middleware),
/// each 3xx drain and the hook. Running out is
/// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), as a
/// `reqwest_middleware::Error::Middleware`.
///
/// Errors: a redirect error is `reqwest_middleware::Error::Middleware`
/// wrapping a [`redirect_policy::Error`](crate::Error) (downcast it to read
/// the kind and the history); an error of the stack below is passed up
/// unchanged, so that retry middlewares above still recognise it.
#[derive(Debug, Clone, Default)]
pub struct FollowRedirectsMiddleware {
    policy: Policy,
}

impl FollowRedirectsMiddleware {
    /// A middleware that follows redirects under `policy`.
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

struct Stack<'a, 'e> {
    next: Next<'a>,
    extensions: &'e mut Extensions,
}

impl Transport for Stack<'_, '_> {
    type Body = reqwest::Body;
    type Request = reqwest::Request;
    type Response = reqwest::Response;
    type SendError = reqwest_middleware::Error;
    type Error = reqwest_middleware::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, Self::SendError>> + Send + '_
    {
        self.next.clone().run(request, self.extensions)
    }

    /// The middlewares after this one see the hop's [`crate::ResendCount`]
    /// in the extensions they are given (reqwest's request has none).
    fn hop(&mut self, next: Hop<'_, reqwest::Body>) -> Result<reqwest::Request, BoxError> {
        self.extensions.insert(crate::ResendCount::new(next.resend));
        Ok(transport::hop(next))
    }

    fn drain(response: reqwest::Response) -> impl std::future::Future<Output = bool> + Send {
        transport::drain(response)
    }

    fn finish(
        response: reqwest::Response,
        history: crate::History,
        fragment: Option<String>,
    ) -> reqwest::Response {
        transport::finish(response, history, fragment)
    }

    fn sleep_until(deadline: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
        transport::sleep_until(deadline)
    }

    fn refused(error: &reqwest_middleware::Error) -> Option<crate::follow::refused::Refusal> {
        crate::follow::refused::by_peer(error)
    }

    /// A transport error goes on as the stack made it, but for a
    /// `PublicResolver`'s refusal, which is the network guard's
    /// ([`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork)).
    fn send_failed(chain: &Chain, error: reqwest_middleware::Error) -> reqwest_middleware::Error {
        let refused = match &error {
            reqwest_middleware::Error::Reqwest(e) => {
                crate::engine::network::NotPublicName::in_chain(e).is_some()
            }
            reqwest_middleware::Error::Middleware(e) => {
                crate::engine::network::NotPublicName::in_chain(e.as_ref()).is_some()
            }
        };
        if refused {
            return reqwest_middleware::Error::middleware(chain.request_error(error));
        }
        error
    }

    fn send_timed_out(
        chain: &Chain,
        error: reqwest_middleware::Error,
    ) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(chain.timeout_error(Some(Box::new(error))))
    }

    fn redirect_failed(error: Error) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(error)
    }

    /// The rest of the stack runs in the hop's span: a reqwest-tracing
    /// middleware after this one opens its span under it, one per hop.
    #[cfg(feature = "tracing")]
    fn traced<F>(
        send: F,
        span: Option<&tracing::Span>,
    ) -> impl std::future::Future<Output = F::Output> + Send
    where
        F: std::future::Future + Send,
    {
        let span = span.cloned().unwrap_or_else(tracing::Span::none);
        tracing::Instrument::instrument(send, span)
    }

    fn kind(error: &reqwest_middleware::Error) -> Option<crate::ErrorKind> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<Error>().map(Error::kind),
            reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => {
                Some(crate::ErrorKind::Timeout)
            }
            reqwest_middleware::Error::Reqwest(_) => Some(crate::ErrorKind::Request),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for FollowRedirectsMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let policy = extensions
            .get::<Policy>()
            .cloned()
            .unwrap_or_else(|| self.policy.clone());
        follow(Stack { next, extensions }, transport::start(policy, req)).await
    }
}

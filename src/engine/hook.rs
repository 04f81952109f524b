//! The redirect hook: user code that sees each 3xx and the request it leads
//! to, and may edit that request, stop, or fail. Async-capable; no runtime
//! needed here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use http::{HeaderMap, Method, StatusCode};
use url::Url;

use crate::BoxError;

/// One redirect, as the hook sees it: the 3xx response head and the next
/// request the policy proposes (credentials and body headers already
/// stripped as the rules say).
#[derive(Debug)]
pub struct Redirect {
    pub(crate) status: StatusCode,
    pub(crate) url: Url,
    pub(crate) response_headers: HeaderMap,
    pub(crate) next: NextRequest,
}

impl Redirect {
    /// The redirect status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The URL that answered with the redirect.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The headers of the 3xx response (for example `x-amz-bucket-region`).
    #[must_use]
    pub fn response_headers(&self) -> &HeaderMap {
        &self.response_headers
    }

    /// The proposed next request.
    #[must_use]
    pub fn next(&self) -> &NextRequest {
        &self.next
    }

    /// The proposed next request, to edit.
    pub fn next_mut(&mut self) -> &mut NextRequest {
        &mut self.next
    }

    /// Follow, with whatever edits were made to [`Redirect::next_mut`].
    #[must_use]
    pub fn follow(self) -> HookAction {
        HookAction::Follow(self.next)
    }
}

/// The request a redirect leads to. The hook may change its URL and headers;
/// the method and whether the body is sent are the policy's to decide.
#[derive(Debug, Clone)]
pub struct NextRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) sends_body: bool,
}

impl NextRequest {
    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Change the URL. Only http and https are accepted; anything else fails
    /// the chain with [`ErrorKind::SchemeNotAllowed`](crate::ErrorKind::SchemeNotAllowed),
    /// and https → http fails with [`ErrorKind::InsecureRedirect`](crate::ErrorKind::InsecureRedirect)
    /// unless the policy allows it. The headers are not stripped again for
    /// the new URL: remove any that must not go there.
    pub fn set_url(&mut self, url: Url) {
        self.url = url;
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to edit (for example to re-sign the request). Headers set
    /// here are sent as they are: the hook is trusted with credentials.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Whether the original body is sent with it.
    #[must_use]
    pub fn sends_body(&self) -> bool {
        self.sends_body
    }
}

/// What the hook decided.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one value per hop, moved once: a Box would only add an allocation
pub enum HookAction {
    /// Send this request (usually [`Redirect::follow`]).
    Follow(NextRequest),
    /// Do not follow: the 3xx response is the final response.
    Stop,
}

/// The future a hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<HookAction, BoxError>> + Send + 'a>>;

/// User code run on every redirect before it is followed; set it with
/// [`Policy::hook`](crate::Policy::hook).
///
/// Any `Fn(Redirect) -> impl Future<Output = Result<HookAction, BoxError>>`
/// is a hook:
///
/// ```
/// use redirect_policy::{HookAction, Policy, Redirect};
///
/// let policy = Policy::standard().hook(|mut redirect: Redirect| async move {
///     if redirect.status() == 307 {
///         let host = redirect.next().url().host_str().unwrap_or_default().to_owned();
///         redirect.next_mut().headers_mut().insert(
///             "x-signed-for",
///             host.parse()?,
///         );
///     }
///     Ok::<_, redirect_policy::BoxError>(redirect.follow())
/// });
/// ```
///
/// A hook that returns an error fails the chain with
/// [`ErrorKind::Hook`](crate::ErrorKind::Hook), its error as the source.
pub trait RedirectHook: Send + Sync {
    /// Decide on one redirect.
    fn on_redirect(&self, redirect: Redirect) -> HookFuture<'_>;
}

impl<F, Fut> RedirectHook for F
where
    F: Fn(Redirect) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HookAction, BoxError>> + Send + 'static,
{
    fn on_redirect(&self, redirect: Redirect) -> HookFuture<'_> {
        Box::pin(self(redirect))
    }
}

/// Shown in `Debug` output of a policy.
pub(crate) struct HookName;

impl fmt::Debug for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedirectHook")
    }
}

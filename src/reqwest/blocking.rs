//! A blocking client for code that does not run async, in the manner of
//! `reqwest::blocking`. It drives the same async [`Client`](crate::Client)
//! (and so the same engine) on a runtime thread of its own.
//!
//! ```no_run
//! use redirect_policy::{blocking, History, Policy};
//!
//! let client = blocking::Client::new(Policy::standard());
//! let response = client.post("http://localhost:8080/upload").body("data").send()?;
//! println!("{} after {} redirects", response.status(), response.history().map_or(0, History::len));
//! let text = response.text()?;
//! # Ok::<(), redirect_policy::Error>(())
//! ```
//!
//! Like `reqwest::blocking`, it must not be used from inside an async
//! runtime: calls block the thread, and creating or dropping the client
//! there panics.

use std::fmt;
use std::sync::Arc;

use http::header::HeaderMap;
use http::{Method, StatusCode};
use reqwest::IntoUrl;

use crate::engine::error::Detail;
use crate::{Error, History, Policy};

/// A blocking client that follows redirects under a [`Policy`]. Clones share
/// the connection pool and the runtime thread.
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client")
            .field("policy", self.inner.policy())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with reqwest's default settings and `policy`.
    ///
    /// # Panics
    ///
    /// If the TLS backend or the runtime thread cannot be set up; use
    /// [`Client::from_builder`] to get that as an error.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        #[allow(clippy::expect_used)] // documented panic, same as reqwest::blocking::Client::new
        Self::from_builder(reqwest::Client::builder(), policy).expect("could not build the client")
    }

    /// A client from a configured (async) `reqwest::ClientBuilder`.
    pub fn from_builder(builder: reqwest::ClientBuilder, policy: Policy) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redirect-policy-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::new(Detail::Builder(Box::new(e))))?;
        // reqwest's client must be built inside a runtime context.
        let _guard = runtime.enter();
        let inner = crate::Client::from_builder(builder, policy)?;
        Ok(Self {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// The policy applied to requests that set none of their own.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        self.inner.policy()
    }

    /// Send a request and follow its redirects.
    pub fn execute(&self, request: reqwest::Request) -> Result<Response, Error> {
        let response = self.runtime.block_on(self.inner.execute(request))?;
        Ok(Response {
            inner: response,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// Start a request with any method.
    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.request(method, url),
            runtime: Arc::clone(&self.runtime),
        }
    }

    crate::reqwest::client::shortcut_methods!();
}

/// A blocking request being built.
#[must_use = "a RequestBuilder does nothing until it is sent"]
pub struct RequestBuilder {
    inner: crate::RequestBuilder,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::RequestBuilder")
            .field(&self.inner)
            .finish()
    }
}

impl RequestBuilder {
    fn map(mut self, f: impl FnOnce(crate::RequestBuilder) -> crate::RequestBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    crate::reqwest::client::forward_builder_methods!();

    /// Follow this request's redirects under `policy`.
    pub fn policy(self, policy: Policy) -> Self {
        self.map(|b| b.policy(policy))
    }

    /// Send the request and follow its redirects, blocking.
    pub fn send(self) -> Result<Response, Error> {
        let response = self.runtime.block_on(self.inner.send())?;
        Ok(Response {
            inner: response,
            runtime: self.runtime,
        })
    }
}

/// A blocking response.
pub struct Response {
    inner: reqwest::Response,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl Response {
    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The final URL (with its fragment, if any).
    #[must_use]
    pub fn url(&self) -> &url::Url {
        self.inner.url()
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The redirects followed.
    #[must_use]
    pub fn history(&self) -> Option<&History> {
        self.inner.extensions().get::<History>()
    }

    /// The whole body.
    ///
    /// A timeout while reading it (the request's timeout covers the whole
    /// chain and the final body) is [`ErrorKind::Timeout`](crate::ErrorKind::Timeout);
    /// every error carries the chain's history.
    pub fn bytes(self) -> Result<bytes::Bytes, Error> {
        let context = self.body_error_context();
        self.runtime
            .block_on(self.inner.bytes())
            .map_err(|e| context.error(e))
    }

    /// The whole body as text (see [`Response::bytes`] for the errors).
    pub fn text(self) -> Result<String, Error> {
        let context = self.body_error_context();
        self.runtime
            .block_on(self.inner.text())
            .map_err(|e| context.error(e))
    }

    fn body_error_context(&self) -> BodyErrorContext {
        BodyErrorContext {
            url: self.inner.url().clone(),
            history: self.history().cloned().unwrap_or_default(),
        }
    }

    /// The async response inside.
    #[must_use]
    pub fn into_inner(self) -> reqwest::Response {
        self.inner
    }
}

/// What an error reading a body must carry: the final URL and the history.
struct BodyErrorContext {
    url: url::Url,
    history: History,
}

impl BodyErrorContext {
    /// A reqwest error while reading the body: a timeout is `Timeout`,
    /// anything else `Request`, with the source kept.
    fn error(self, e: reqwest::Error) -> Error {
        let detail = if e.is_timeout() {
            Detail::Timeout(Some(Box::new(e)))
        } else {
            Detail::Request(Box::new(e))
        };
        Error::new(detail)
            .with_url(self.url)
            .with_history(self.history)
    }
}

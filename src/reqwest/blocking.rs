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
use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;

use http::header::HeaderMap;
use http::{Method, StatusCode};
use reqwest::IntoUrl;

use crate::engine::error::Detail;
#[cfg(feature = "json")]
use crate::BoxError;
use crate::{Error, History, Policy};

mod body;
pub use body::Body;

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
    /// A client with reqwest's default settings and `policy`, but for
    /// reqwest's own retry, which is off as in [`crate::Client::new`]. Under
    /// [`NetworkGuard::PublicOnly`](crate::NetworkGuard::PublicOnly) it
    /// resolves names through a [`PublicResolver`](crate::PublicResolver),
    /// as [`crate::Client::new`] does.
    ///
    /// # Panics
    ///
    /// If the TLS backend or the runtime thread cannot be set up; use
    /// [`Client::from_builder`] to get that as an error.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        #[allow(clippy::expect_used)] // documented panic, same as reqwest::blocking::Client::new
        Self::from_builder(crate::reqwest::client::default_builder(&policy), policy)
            .expect("could not build the client")
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
        Ok(Response::new(response, Arc::clone(&self.runtime)))
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

    /// Set the body: bytes in memory, or a [`Body::new`] reader (a `File`,
    /// say), which is streamed and replayed from the chain's buffer.
    pub fn body<T: Into<Body>>(self, body: T) -> Self {
        let body = body.into().into_reqwest();
        self.map(|b| b.body(body))
    }

    /// Follow this request's redirects under `policy`.
    pub fn policy(self, policy: Policy) -> Self {
        self.map(|b| b.policy(policy))
    }

    /// A copy of this builder, or `None` if its body is a reader (which can
    /// be read only once; the chain replays it from its own buffer).
    #[must_use]
    pub fn try_clone(&self) -> Option<Self> {
        Some(Self {
            inner: self.inner.try_clone()?,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// Build the request without sending it.
    pub fn build(self) -> Result<reqwest::Request, Error> {
        self.inner.build()
    }

    /// The escape hatch: anything else reqwest's builder offers, applied to
    /// the wrapped `reqwest::RequestBuilder`.
    pub fn with_reqwest(
        self,
        f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Self {
        self.map(|b| b.with_reqwest(f))
    }

    /// Send the request and follow its redirects, blocking.
    pub fn send(self) -> Result<Response, Error> {
        let response = self.runtime.block_on(self.inner.send())?;
        Ok(Response::new(response, self.runtime))
    }
}

/// A blocking response. Its body is read with [`Read`] (or [`Response::bytes`],
/// [`Response::text`], [`Response::copy_to`], ...), blocking.
///
/// Every body error is this crate's [`Error`]: a timeout while reading
/// (the request's timeout covers the whole chain and the final body) is
/// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), and each carries the
/// chain's history. Through [`Read`], the `io::Error` wraps it (kind
/// `TimedOut` for a timeout).
pub struct Response {
    inner: reqwest::Response,
    runtime: Arc<tokio::runtime::Runtime>,
    /// What [`Read`] took of the body and has not yet handed out.
    pending: Bytes,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl Response {
    fn new(inner: reqwest::Response, runtime: Arc<tokio::runtime::Runtime>) -> Self {
        Self {
            inner,
            runtime,
            pending: Bytes::new(),
        }
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The HTTP version of the final response.
    #[must_use]
    pub fn version(&self) -> http::Version {
        self.inner.version()
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

    /// The extensions (the [`History`] is one of them).
    #[must_use]
    pub fn extensions(&self) -> &http::Extensions {
        self.inner.extensions()
    }

    /// The address of the server that sent the final response, if known.
    #[must_use]
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.remote_addr()
    }

    /// The length of the body, if the server declared it (and it is not
    /// compressed).
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The redirects followed.
    #[must_use]
    pub fn history(&self) -> Option<&History> {
        self.inner.extensions().get::<History>()
    }

    /// The response, or an [`ErrorKind::Status`](crate::ErrorKind::Status)
    /// error (with the status, the URL and the history) for a 4xx or 5xx.
    pub fn error_for_status(self) -> Result<Self, Error> {
        let context = self.body_error_context();
        let Self {
            inner,
            runtime,
            pending,
        } = self;
        match inner.error_for_status() {
            Ok(inner) => Ok(Self {
                inner,
                runtime,
                pending,
            }),
            Err(e) => Err(context.error(e)),
        }
    }

    /// As [`Response::error_for_status`], by reference.
    pub fn error_for_status_ref(&self) -> Result<&Self, Error> {
        match self.inner.error_for_status_ref() {
            Ok(_) => Ok(self),
            Err(e) => Err(self.body_error_context().error(e)),
        }
    }

    /// The whole body (what [`Read`] has not yet read of it).
    pub fn bytes(mut self) -> Result<Bytes, Error> {
        let context = self.body_error_context();
        let rest = self
            .runtime
            .block_on(self.inner.bytes())
            .map_err(|e| context.error(e))?;
        Ok(if self.pending.is_empty() {
            rest
        } else {
            let mut whole = std::mem::take(&mut self.pending).to_vec();
            whole.extend_from_slice(&rest);
            Bytes::from(whole)
        })
    }

    /// The whole body as text (UTF-8, invalid sequences replaced).
    pub fn text(self) -> Result<String, Error> {
        let bytes = self.bytes()?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The whole body as JSON; a body that does not match `T` is
    /// [`ErrorKind::Decode`](crate::ErrorKind::Decode).
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let context = self.body_error_context();
        let bytes = self.bytes()?;
        serde_json_from_slice(&bytes).map_err(|e| context.decode_error(e))
    }

    /// Copy the body into `writer`; the number of bytes copied.
    pub fn copy_to<W: Write + ?Sized>(&mut self, writer: &mut W) -> Result<u64, Error> {
        let mut copied = 0;
        loop {
            let chunk = match self.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(copied),
                Err(e) => return Err(e),
            };
            writer
                .write_all(&chunk)
                .map_err(|e| self.body_error_context().write_error(e))?;
            copied += chunk.len() as u64;
        }
    }

    /// The next piece of the body: what [`Read`] left, else a new chunk.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        let context = self.body_error_context();
        self.runtime
            .block_on(self.inner.chunk())
            .map_err(|e| context.error(e))
    }

    fn body_error_context(&self) -> BodyErrorContext {
        BodyErrorContext {
            url: self.inner.url().clone(),
            history: self.history().cloned().unwrap_or_default(),
        }
    }

    /// The async response inside (whatever [`Read`] took is lost).
    #[must_use]
    pub fn into_inner(self) -> reqwest::Response {
        self.inner
    }
}

impl Read for Response {
    /// Blocks until the server sends more. An error is an `io::Error` whose
    /// inner error is this crate's [`Error`] (kind `TimedOut` for a
    /// timeout).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() {
            match self.next_chunk() {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => return Ok(0),
                Err(e) => {
                    let kind = if e.is_timeout() {
                        io::ErrorKind::TimedOut
                    } else {
                        io::ErrorKind::Other
                    };
                    return Err(io::Error::new(kind, e));
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

#[cfg(feature = "json")]
fn serde_json_from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    serde_json::from_slice(bytes).map_err(Into::into)
}

/// What an error reading a body must carry: the final URL and the history.
struct BodyErrorContext {
    url: url::Url,
    history: History,
}

impl BodyErrorContext {
    /// A reqwest error while reading the body, as `From<reqwest::Error>`
    /// makes it (a timeout is `Timeout`), with the URL and the history.
    fn error(self, e: reqwest::Error) -> Error {
        self.complete(Error::from(e))
    }

    #[cfg(feature = "json")]
    fn decode_error(self, e: BoxError) -> Error {
        self.complete(Error::new(Detail::Decode(e)))
    }

    fn write_error(self, e: io::Error) -> Error {
        self.complete(Error::new(Detail::Write(e)))
    }

    fn complete(self, error: Error) -> Error {
        let error = if error.url().is_none() {
            error.with_url(self.url)
        } else {
            error
        };
        if error.history().is_empty() {
            error.with_history(self.history)
        } else {
            error
        }
    }
}

//! [`Client`]: a reqwest client whose redirects are followed by this crate.

use std::fmt;
use std::future::Future;

use http::Method;
use reqwest::IntoUrl;

use crate::engine::error::Detail;
use crate::follow::follow;
use crate::reqwest::transport::start;
use crate::{Error, Policy};

/// `get`, `post`, ... on a client with a `request(method, url)` method; the
/// async and the blocking client share them.
macro_rules! shortcut_methods {
    () => {
        /// Start a `GET`.
        pub fn get<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::GET, url)
        }

        /// Start a `POST`.
        pub fn post<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::POST, url)
        }

        /// Start a `PUT`.
        pub fn put<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::PUT, url)
        }

        /// Start a `PATCH`.
        pub fn patch<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::PATCH, url)
        }

        /// Start a `DELETE`.
        pub fn delete<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::DELETE, url)
        }

        /// Start a `HEAD`.
        pub fn head<U: reqwest::IntoUrl>(&self, url: U) -> RequestBuilder {
            self.request(http::Method::HEAD, url)
        }
    };
}
#[cfg_attr(not(feature = "blocking"), allow(unused_imports))] // the blocking client uses it
pub(crate) use shortcut_methods;

/// The builder methods that forward to the wrapped builder through
/// `self.map`; the async and the blocking `RequestBuilder` share them.
macro_rules! forward_builder_methods {
    () => {
        /// Add a header.
        pub fn header<K, V>(self, key: K, value: V) -> Self
        where
            http::HeaderName: TryFrom<K>,
            <http::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
            http::HeaderValue: TryFrom<V>,
            <http::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
        {
            self.map(|b| b.header(key, value))
        }

        /// Add several headers.
        pub fn headers(self, headers: http::HeaderMap) -> Self {
            self.map(|b| b.headers(headers))
        }

        /// Basic authentication. Stripped on an origin change.
        pub fn basic_auth<U: std::fmt::Display, P: std::fmt::Display>(
            self,
            username: U,
            password: Option<P>,
        ) -> Self {
            self.map(|b| b.basic_auth(username, password))
        }

        /// Bearer authentication. Stripped on an origin change.
        pub fn bearer_auth<T: std::fmt::Display>(self, token: T) -> Self {
            self.map(|b| b.bearer_auth(token))
        }

        /// A timeout for the whole chain: every hop, and reading the final
        /// response's body.
        pub fn timeout(self, timeout: std::time::Duration) -> Self {
            self.map(|b| b.timeout(timeout))
        }

        /// The HTTP version to use.
        pub fn version(self, version: http::Version) -> Self {
            self.map(|b| b.version(version))
        }

        /// A JSON body, with `Content-Type: application/json` (as reqwest's
        /// `json`). It is in memory: every replay shares its bytes.
        #[cfg(feature = "json")]
        pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
            self.map(|b| b.json(json))
        }

        /// A form body, `application/x-www-form-urlencoded` (as reqwest's
        /// `form`). It is in memory: every replay shares its bytes.
        #[cfg(feature = "form")]
        pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
            self.map(|b| b.form(form))
        }

        /// Append query parameters to the URL (as reqwest's `query`). A
        /// relative Location is resolved against the URL with them; whether
        /// a redirect keeps them is the server's choice, as its Location says.
        #[cfg(feature = "query")]
        pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
            self.map(|b| b.query(query))
        }

        /// A `multipart/form-data` body (as reqwest's `multipart`). It is a
        /// stream: it is sent at once, kept as it goes out, and replayed on
        /// a 307/308 up to [`Policy::max_replay_body`](crate::Policy::max_replay_body).
        #[cfg(feature = "multipart")]
        pub fn multipart(self, multipart: reqwest::multipart::Form) -> Self {
            self.map(|b| b.multipart(multipart))
        }
    };
}
#[cfg_attr(not(feature = "blocking"), allow(unused_imports))] // the blocking client uses it
pub(crate) use forward_builder_methods;

/// A reqwest client that follows redirects under a [`Policy`].
///
/// It wraps a `reqwest::Client` built with
/// `redirect(reqwest::redirect::Policy::none())`, and re-issues each hop
/// itself. Cloning is cheap: clones share the connection pool.
///
/// ```no_run
/// use redirect_policy::{Client, History, Policy};
///
/// # async fn run() -> Result<(), redirect_policy::Error> {
/// let client = Client::new(Policy::standard());
/// let response = client
///     .post("http://localhost:8080/upload")
///     .body("payload")
///     .send()
///     .await?;
/// let hops = response.extensions().get::<History>().map_or(0, History::len);
/// println!("{} after {hops} redirects", response.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    policy: Policy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for Client {
    /// `Client::new(Policy::standard())`.
    fn default() -> Self {
        Self::new(Policy::standard())
    }
}

/// reqwest's default builder as [`Client::new`] and `blocking::Client::new`
/// start from: its own retry off, and under `PublicOnly` a
/// [`PublicResolver`](crate::PublicResolver).
pub(crate) fn default_builder(policy: &Policy) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().retry(reqwest::retry::never());
    if policy.guard() == crate::NetworkGuard::PublicOnly {
        return builder.dns_resolver(crate::PublicResolver::new(policy));
    }
    builder
}

impl Client {
    /// A client with reqwest's default settings and `policy`, but for its
    /// retry.
    ///
    /// # Panics
    ///
    /// If the TLS backend cannot be set up, as `reqwest::Client::new` does.
    /// Use [`Client::from_builder`] to get that as an error instead.
    ///
    /// reqwest's own retry is off (`retry(reqwest::retry::never())`): its
    /// default re-sends a request in memory on any HTTP/2 `GOAWAY(NO_ERROR)`,
    /// whatever its method, and hyper reports that `GOAWAY` for some requests
    /// the server has processed. This crate re-sends what the server refused
    /// by its own rule instead (crate docs, "Faults: what is sent again").
    ///
    /// Under [`NetworkGuard::PublicOnly`](crate::NetworkGuard::PublicOnly)
    /// it resolves names through a [`PublicResolver`](crate::PublicResolver):
    /// no connection is made to an address the guard refuses.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        #[allow(clippy::expect_used)] // documented panic, same as reqwest::Client::new
        Self::from_builder(default_builder(&policy), policy)
            .expect("could not build the reqwest client")
    }

    /// A client from a configured `reqwest::ClientBuilder`. Its own redirect
    /// following is turned off here; this crate follows instead.
    ///
    /// Default headers set on the builder are added by reqwest to *every*
    /// request, on any origin: put credentials on the request instead, so
    /// that they can be stripped.
    ///
    /// A client-wide `ClientBuilder::timeout` applies to each hop, as reqwest
    /// applies it to each request; a timeout set on the request
    /// ([`RequestBuilder::timeout`]) covers the whole chain.
    ///
    /// The builder's retry policy stays as it is. reqwest's default re-sends
    /// a request whose body is in memory on any HTTP/2 `GOAWAY(NO_ERROR)`,
    /// a `POST` included, and hyper reports that `GOAWAY` for some requests
    /// the server processed: set `retry(reqwest::retry::never())` to leave
    /// re-sends to this crate's rule, as [`Client::new`] does.
    pub fn from_builder(builder: reqwest::ClientBuilder, policy: Policy) -> Result<Self, Error> {
        let inner = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::new(Detail::Builder(Box::new(e))))?;
        Ok(Self { inner, policy })
    }

    /// A client around a `reqwest::Client` built elsewhere; it must have been
    /// built with `redirect(reqwest::redirect::Policy::none())`.
    ///
    /// reqwest cannot say whether a built client follows redirects, so a
    /// client that does is caught on its first redirect: the response comes
    /// from another URL than the one sent (or reqwest gives up on a chain
    /// of its own), and the request fails with [`ErrorKind::Builder`](crate::ErrorKind::Builder),
    /// whose message says how to build the client. Nothing it followed is
    /// handed back as if this crate's rules had been applied.
    ///
    /// ```no_run
    /// use redirect_policy::{Client, Policy};
    ///
    /// let reqwest = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()?;
    /// let client = Client::from_reqwest(reqwest, Policy::standard());
    /// # Ok::<(), redirect_policy::Error>(())
    /// ```
    #[must_use]
    pub fn from_reqwest(client: reqwest::Client, policy: Policy) -> Self {
        Self {
            inner: client,
            policy,
        }
    }

    /// The policy applied to requests that set none of their own.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The underlying reqwest client (its redirect following is off).
    #[must_use]
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Send a request and follow its redirects under the client's policy.
    ///
    /// A timeout set on the request covers the whole chain. The final
    /// response carries a [`History`](crate::History) in its extensions.
    pub fn execute(
        &self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Error>> + Send + 'static {
        follow(self.inner.clone(), start(self.policy.clone(), request))
    }

    /// Start a request with any method.
    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            inner: self.inner.request(method, url),
            policy: None,
        }
    }

    shortcut_methods!();
}

/// A request being built; [`RequestBuilder::send`] sends it and follows its
/// redirects. It wraps `reqwest::RequestBuilder` and speaks its words.
#[must_use = "a RequestBuilder does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    inner: reqwest::RequestBuilder,
    policy: Option<Policy>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    forward_builder_methods!();

    /// Set the body. Bodies in memory are replayed by reference count; a
    /// stream (`reqwest::Body::wrap_stream`) is kept as it is sent, up to
    /// [`Policy::max_replay_body`](crate::Policy::max_replay_body).
    pub fn body<T: Into<reqwest::Body>>(self, body: T) -> Self {
        self.map(|b| b.body(body))
    }

    /// A builder for `request` on `client` (as reqwest's `from_parts`).
    pub fn from_parts(client: Client, request: reqwest::Request) -> Self {
        let inner = reqwest::RequestBuilder::from_parts(client.inner.clone(), request);
        Self {
            client,
            inner,
            policy: None,
        }
    }

    /// A copy of this builder, or `None` if its body is a stream (which can
    /// be sent only once; the chain replays it from its own buffer).
    #[must_use]
    pub fn try_clone(&self) -> Option<Self> {
        Some(Self {
            client: self.client.clone(),
            inner: self.inner.try_clone()?,
            policy: self.policy.clone(),
        })
    }

    /// The client and the built request, to change the request before
    /// [`Client::execute`] (as reqwest's `build_split`).
    pub fn build_split(self) -> (Client, Result<reqwest::Request, Error>) {
        let (_, request) = self.inner.build_split();
        (self.client, request.map_err(Error::from))
    }

    /// Follow this request's redirects under `policy` instead of the
    /// client's.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The escape hatch: anything else reqwest's builder offers that this
    /// one does not forward, applied to the wrapped `reqwest::RequestBuilder`.
    pub fn with_reqwest(
        self,
        f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Self {
        self.map(f)
    }

    /// Build the request without sending it.
    pub fn build(self) -> Result<reqwest::Request, Error> {
        self.inner.build().map_err(Error::from)
    }

    /// Send the request and follow its redirects.
    pub fn send(self) -> impl Future<Output = Result<reqwest::Response, Error>> + Send + 'static {
        let Self {
            client,
            inner,
            policy,
        } = self;
        let policy = policy.unwrap_or_else(|| client.policy.clone());
        let pending = inner
            .build()
            .map(|request| follow(client.inner, start(policy, request)))
            .map_err(Error::from);
        async move { pending?.await }
    }
}

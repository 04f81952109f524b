//! [`PublicResolver`]: the network guard at connect time. Under
//! [`NetworkGuard::PublicOnly`](crate::NetworkGuard::PublicOnly) the
//! addresses a name resolves to are filtered before any connection is made,
//! so DNS rebinding has no window: the address checked is the address
//! connected to. It plugs into reqwest (`ClientBuilder::dns_resolver`) and
//! into hyper-util (`HttpConnector::new_with_resolver`); the rule itself is
//! the engine's ([`crate::engine::network`]).

use crate::engine::network;
use crate::Policy;

/// A DNS resolver that keeps only the addresses that
/// [`NetworkGuard::PublicOnly`](crate::NetworkGuard::PublicOnly) lets a
/// connection reach: public and global ones, and those exempted with
/// [`Policy::allow_network`]. A name with none left fails to resolve, and
/// the request fails with
/// [`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork) before
/// anything is sent.
///
/// [`Client::new`](crate::Client::new) and `blocking::Client::new` install
/// it themselves when their policy is `PublicOnly`. Elsewhere, plug it in:
///
/// ```no_run
/// # #[cfg(feature = "reqwest")] {
/// use redirect_policy::{Client, NetworkGuard, Policy, PublicResolver};
///
/// let policy = Policy::standard().network_guard(NetworkGuard::PublicOnly);
/// let builder = reqwest::Client::builder().dns_resolver(PublicResolver::new(&policy));
/// let client = Client::from_builder(builder, policy)?;
/// # }
/// # Ok::<(), redirect_policy::Error>(())
/// ```
///
/// and for a tower stack on hyper-util:
///
/// ```no_run
/// # #[cfg(feature = "tower")] {
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// use redirect_policy::{FollowRedirectLayer, NetworkGuard, Policy, PublicResolver};
///
/// let policy = Policy::standard().network_guard(NetworkGuard::PublicOnly);
/// let connector = HttpConnector::new_with_resolver(PublicResolver::new(&policy));
/// let client = Client::builder(hyper_util::rt::TokioExecutor::new())
///     .build::<_, redirect_policy::ReplayBody<http_body_util::Full<bytes::Bytes>>>(connector);
/// let service = tower_layer::Layer::layer(&FollowRedirectLayer::new(policy), client);
/// # }
/// ```
///
/// [`PublicResolver::wrap`] filters another resolver's answers (hickory, a
/// cache, a test's fixed map) instead of the system's.
///
/// Under [`NetworkGuard::NoEscalation`](crate::NetworkGuard::NoEscalation)
/// no resolver is needed: the address each response came from is checked.
#[derive(Clone, Debug)]
pub struct PublicResolver<R = SystemResolver> {
    inner: R,
    policy: Policy,
}

/// The system's resolver (`getaddrinfo` on a blocking thread), as
/// [`PublicResolver::new`] uses it: tokio's `lookup_host` for reqwest,
/// hyper-util's `GaiResolver` for hyper-util's connector.
#[derive(Clone, Debug)]
pub struct SystemResolver {
    #[cfg(feature = "tower")]
    gai: hyper_util::client::legacy::connect::dns::GaiResolver,
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tower")]
            gai: hyper_util::client::legacy::connect::dns::GaiResolver::new(),
        }
    }
}

impl PublicResolver<SystemResolver> {
    /// The system's resolver, filtered by `policy`'s exemptions
    /// ([`Policy::allow_network`]).
    #[must_use]
    pub fn new(policy: &Policy) -> Self {
        Self::wrap(SystemResolver::default(), policy)
    }
}

impl<R> PublicResolver<R> {
    /// `inner`'s answers, filtered by `policy`'s exemptions.
    #[must_use]
    pub fn wrap(inner: R, policy: &Policy) -> Self {
        Self {
            inner,
            policy: policy.clone(),
        }
    }
}

/// reqwest's resolver trait: the system's answers through tokio.
#[cfg(feature = "reqwest")]
impl reqwest::dns::Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs);
            Ok(addrs)
        })
    }
}

#[cfg(feature = "reqwest")]
impl<R: reqwest::dns::Resolve + 'static> reqwest::dns::Resolve for PublicResolver<R> {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        let resolving = self.inner.resolve(name);
        Box::pin(async move {
            let addrs = resolving.await?;
            let kept = network::keep_public(&policy, &host, addrs)?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(feature = "tower")]
mod hyper_resolver {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper_util::client::legacy::connect::dns::Name;
    use tower_service::Service;

    use super::{network, PublicResolver, SystemResolver};
    use crate::BoxError;

    /// hyper-util's resolver service: its `GaiResolver`.
    impl Service<Name> for SystemResolver {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.gai.poll_ready(cx).map_err(Into::into)
        }

        fn call(&mut self, name: Name) -> Self::Future {
            let resolving = self.gai.call(name);
            Box::pin(async move {
                let addrs: Vec<SocketAddr> = resolving.await?.collect();
                Ok(addrs.into_iter())
            })
        }
    }

    impl<R> Service<Name> for PublicResolver<R>
    where
        R: Service<Name>,
        R::Response: Iterator<Item = SocketAddr>,
        R::Error: Into<BoxError>,
        R::Future: Send + 'static,
    {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.inner.poll_ready(cx).map_err(Into::into)
        }

        fn call(&mut self, name: Name) -> Self::Future {
            let host = name.as_str().to_owned();
            let policy = self.policy.clone();
            let resolving = self.inner.call(name);
            Box::pin(async move {
                let addrs = resolving.await.map_err(Into::into)?;
                let kept = network::keep_public(&policy, &host, addrs)?;
                Ok(kept.into_iter())
            })
        }
    }
}

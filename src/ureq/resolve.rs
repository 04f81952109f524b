//! The network guard on names, for ureq. ureq reports no address a response
//! came from, so this side learns it from the resolver: [`GuardResolver`]
//! sits in the agent (its `unversioned` resolver API), and the transport
//! tells it, through a thread-local slot set around each blocking send, which
//! host the hop is for and whether `PublicOnly` filters its addresses. ureq
//! calls its resolver on the thread that sends, for every request (a pooled
//! connection included), before it connects.
//!
//! An agent built without it ([`Agent::new`](super::Agent::new) on an agent
//! of your own) gets the same check from a second lookup of the name once
//! the response is in ([`fallback`]), which a DNS server that changes its
//! answers between the two lookups can defeat; the docs say so.

use std::cell::RefCell;
use std::net::{SocketAddr, ToSocketAddrs as _};

use ureq::config::Config;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::engine::network;
use crate::{NetworkGuard, Policy};

/// A resolver for [`ureq::Agent::with_parts`] that lets the network guard
/// see the address of every hop, and refuse one before it is connected to.
///
/// [`Agent::new_with_defaults`](super::Agent::new_with_defaults) and
/// [`Agent::new_with_config`](super::Agent::new_with_config) install it. An
/// agent of your own gets it like this:
///
/// ```no_run
/// use redirect_policy::ureq::{Agent, GuardResolver};
/// use redirect_policy::{NetworkGuard, Policy};
/// use ureq::unversioned::transport::DefaultConnector;
///
/// let config = ureq::Agent::config_builder().user_agent("my-sdk/1.0").build();
/// let agent = ureq::Agent::with_parts(config, DefaultConnector::new(), GuardResolver::new());
/// let agent = Agent::new(agent, Policy::standard().network_guard(NetworkGuard::PublicOnly));
/// # let _ = agent;
/// ```
///
/// Under [`NetworkGuard::PublicOnly`] a name's addresses that are not public
/// and global (nor exempt, [`Policy::allow_network`]) are dropped before ureq
/// connects, and a name with none left fails with
/// [`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork) before
/// anything is sent. Under [`NetworkGuard::NoEscalation`] the first address
/// is the one the hop is checked by, as the tower and reqwest paths check
/// the address a response came from. Outside a request sent by
/// [`Agent`](super::Agent), and for a proxy's own name, it answers as
/// `inner` does.
///
/// ureq's resolver trait is in its `unversioned` API, which does not follow
/// semver: this type follows the ureq release this crate is built against
/// (CI builds it against the newest and the oldest ureq 3 it allows).
#[derive(Debug, Default)]
pub struct GuardResolver<R = DefaultResolver> {
    inner: R,
}

impl GuardResolver {
    /// ureq's own resolver, seen and filtered by the guard.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<R: Resolver> GuardResolver<R> {
    /// `inner`'s answers (a cache, a fixed map, another DNS client), seen
    /// and filtered by the guard.
    #[must_use]
    pub fn wrap(inner: R) -> Self {
        Self { inner }
    }
}

/// What the hop being sent on this thread tells the resolver, and what the
/// resolver tells the hop back.
pub(super) struct Slot {
    /// The hop's host (a name: a literal needs no lookup to be checked).
    host: String,
    /// The hop's policy, where `PublicOnly` filters the addresses.
    public_only: Option<Policy>,
    /// The first address ureq will connect to, once the resolver ran.
    resolved: Option<SocketAddr>,
}

thread_local! {
    static HOP: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

impl<R: Resolver> Resolver for GuardResolver<R> {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        HOP.with_borrow_mut(|slot| {
            let Some(slot) = slot.as_mut() else {
                return Ok(addrs);
            };
            // A proxy's name (the target's is resolved by the proxy).
            if !uri
                .host()
                .is_some_and(|host| host.eq_ignore_ascii_case(&slot.host))
            {
                return Ok(addrs);
            }
            let Some(policy) = &slot.public_only else {
                slot.resolved = addrs.first().copied();
                return Ok(addrs);
            };
            let kept = network::keep_public(policy, &slot.host, addrs.iter().copied())
                .map_err(|refused| ureq::Error::Other(Box::new(refused)))?;
            let mut out = self.inner.empty();
            for addr in kept {
                out.push(addr);
            }
            slot.resolved = out.first().copied();
            Ok(out)
        })
    }

    fn empty(&self) -> ResolvedSocketAddrs {
        self.inner.empty()
    }
}

/// The hop about to be sent on this thread, for [`GuardResolver`]; what
/// the slot held before (a request sent from inside another's send, by a
/// body's reader) comes back when it ends.
pub(super) enum Watch {
    /// An IP literal: its address is the one connected to.
    Literal(Option<SocketAddr>),
    /// A name: the resolver reports its address.
    Name {
        uri: http::Uri,
        before: Option<Slot>,
        done: bool,
    },
}

impl Watch {
    /// Before a send with the guard on: let the resolver see the hop.
    pub(super) fn arm(uri: &http::Uri, policy: &Policy) -> Self {
        let Some(host) = uri.host() else {
            return Self::Literal(None);
        };
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<std::net::IpAddr>();
        if let Ok(ip) = literal {
            return Self::Literal(
                crate::follow::port_of(uri).map(|port| SocketAddr::new(ip, port)),
            );
        }
        let slot = Slot {
            host: host.to_owned(),
            public_only: (policy.guard() == NetworkGuard::PublicOnly).then(|| policy.clone()),
            resolved: None,
        };
        Self::Name {
            uri: uri.clone(),
            before: HOP.replace(Some(slot)),
            done: false,
        }
    }

    /// After the send: the address the hop reached. For a name, what the
    /// resolver found, or where it did not run (an agent without
    /// [`GuardResolver`]) and `again` says the guard needs the address, the
    /// name's first address looked up once more ([`fallback`]).
    pub(super) fn peer(mut self, again: bool) -> Option<SocketAddr> {
        match &mut self {
            Self::Literal(addr) => *addr,
            Self::Name { uri, before, done } => {
                *done = true;
                let slot = HOP.replace(before.take());
                slot.and_then(|slot| slot.resolved)
                    .or_else(|| again.then(|| fallback(uri)).flatten())
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Self::Name {
            before,
            done: false,
            ..
        } = self
        {
            HOP.set(before.take());
        }
    }
}

/// For an agent without [`GuardResolver`]: the name's first address, looked
/// up again after the response. `None` where the lookup fails (the guard
/// then lets the hop go, as it must for a name it cannot place).
pub(super) fn fallback(uri: &http::Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    (host, crate::follow::port_of(uri)?)
        .to_socket_addrs()
        .ok()?
        .next()
}

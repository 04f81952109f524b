//! The network guard (server-side request forgery through redirects): which
//! address space an address or a host name is in, and which hops a
//! [`NetworkGuard`] lets through. Pure functions of addresses; the chain
//! applies them to every hop, the transports report the address each
//! response came from.
//!
//! The model is the Private Network Access one: three address spaces,
//! ordered from the most public to the most private.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Host;

/// Where an address leads, from the most public to the most private (the
/// order of the variants: `Public < Private < Local`).
///
/// ```
/// use redirect_policy::AddressSpace;
///
/// assert_eq!(AddressSpace::of("169.254.169.254".parse().unwrap()), AddressSpace::Private);
/// assert_eq!(AddressSpace::of("::ffff:127.0.0.1".parse().unwrap()), AddressSpace::Local);
/// assert_eq!(AddressSpace::of("93.184.215.14".parse().unwrap()), AddressSpace::Public);
/// assert!(AddressSpace::Public < AddressSpace::Private);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AddressSpace {
    /// Everything that is neither private nor local.
    Public,
    /// 10/8, 172.16/12, 192.168/16, 169.254/16 (link-local: the cloud
    /// metadata services), 100.64/10 (CGNAT), `fc00::/7` (ULA, e.g.
    /// `fd00:ec2::254`), `fe80::/10` and `fec0::/10`; their IPv4-mapped and
    /// IPv4-compatible forms, and the NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`)
    /// and Teredo (`2001::/32`) forms that embed a private IPv4 address. Also
    /// the names `metadata.google.internal` and `metadata.goog`.
    Private,
    /// The machine itself: 127/8 and `::1`, 0.0.0.0/8 and `::` (which reach
    /// the local host on Linux), the forms above that embed them, and the
    /// names `localhost` and `*.localhost` (RFC 6761).
    Local,
}

impl AddressSpace {
    /// The address space of `ip`.
    #[must_use]
    pub fn of(ip: IpAddr) -> AddressSpace {
        match ip {
            IpAddr::V4(v4) => of_v4(v4),
            IpAddr::V6(v6) => of_v6(v6),
        }
    }

    /// The word for messages: "public", "private", "local".
    pub(crate) fn word(self) -> &'static str {
        match self {
            AddressSpace::Public => "public",
            AddressSpace::Private => "private",
            AddressSpace::Local => "local",
        }
    }
}

impl fmt::Display for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Which hops of a chain may reach which addresses
/// ([`Policy::network_guard`](crate::Policy::network_guard)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum NetworkGuard {
    /// The default. A redirect may not lead to an address space more
    /// private than the one the chain's first hop reached
    /// (`Public < Private < Local`): a public server cannot send the client
    /// to 127.0.0.1 or 169.254.169.254, while an internal service may
    /// redirect to another internal one.
    #[default]
    NoEscalation,
    /// Every hop, the first one included, must reach a public, globally
    /// routable address: also no documentation, benchmarking (198.18/15),
    /// 192.0.0/24, reserved (240/4), multicast or broadcast address. For
    /// code that fetches URLs it was given (webhooks, link previews,
    /// importers).
    PublicOnly,
    /// No check.
    Off,
}

/// An address prefix exempt from the guard
/// ([`Policy::allow_network`](crate::Policy::allow_network)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// `addr/prefix`, the prefix clamped to the address's width.
    pub(crate) fn new(addr: IpAddr, prefix: u8) -> Self {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        Network {
            addr,
            prefix: prefix.min(width),
        }
    }

    /// `(address, prefix length)`.
    pub(crate) fn parts(self) -> (IpAddr, u8) {
        (self.addr, self.prefix)
    }

    /// Whether `ip` is in this prefix (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; any other as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn of_v4(ip: Ipv4Addr) -> AddressSpace {
    let o = ip.octets();
    if o[0] == 127 || o[0] == 0 {
        AddressSpace::Local
    } else if o[0] == 10
        || in_v4(ip, [172, 16, 0, 0], 12)
        || in_v4(ip, [192, 168, 0, 0], 16)
        || in_v4(ip, [169, 254, 0, 0], 16)
        || in_v4(ip, [100, 64, 0, 0], 10)
    {
        AddressSpace::Private
    } else {
        AddressSpace::Public
    }
}

/// The IPv4 addresses an IPv6 address carries inside it: IPv4-mapped and
/// IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and
/// Teredo (`2001::/32`: its server, and its client, stored inverted).
fn embedded_v4(ip: Ipv6Addr) -> impl Iterator<Item = Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
    let s = ip.segments();
    let mut found = [None, None];
    if let Some(v4) = ip.to_ipv4_mapped() {
        found[0] = Some(v4);
    } else if bits >> 32 == 0 && bits > 1 {
        // IPv4-compatible (deprecated, still parsed and routed by some stacks).
        found[0] = Some(low);
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        found[0] = Some(low);
    } else if s[0] == 0x2002 {
        found[0] = Some(Ipv4Addr::from(
            u32::try_from((bits >> 80) & 0xffff_ffff).unwrap_or(0),
        ));
    } else if s[0] == 0x2001 && s[1] == 0 {
        found[0] = Some(Ipv4Addr::from(
            u32::try_from((bits >> 64) & 0xffff_ffff).unwrap_or(0),
        ));
        found[1] = Some(Ipv4Addr::from(!u32::from(low)));
    }
    found.into_iter().flatten()
}

fn of_v6(ip: Ipv6Addr) -> AddressSpace {
    let first = ip.segments()[0];
    let own = if ip.is_loopback() || ip.is_unspecified() {
        AddressSpace::Local
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        AddressSpace::Private
    } else {
        AddressSpace::Public
    };
    // A form that embeds an IPv4 address reaches where that address does.
    embedded_v4(ip).map(of_v4).fold(own, AddressSpace::max)
}

/// A name whose every address the guard refused at connect time
/// ([`PublicResolver`](crate::PublicResolver)): the resolver's error, which
/// [`Chain::request_error`](crate::Chain::request_error) turns into an
/// [`ErrorKind::PrivateNetwork`](crate::ErrorKind::PrivateNetwork).
#[derive(Debug)]
pub(crate) struct NotPublicName {
    pub(crate) name: String,
    pub(crate) addrs: Vec<IpAddr>,
}

impl NotPublicName {
    /// The refusal in `error`'s chain of sources, if there is one.
    pub(crate) fn in_chain<'e>(
        error: &'e (dyn std::error::Error + 'static),
    ) -> Option<&'e NotPublicName> {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(name) = error.downcast_ref::<NotPublicName>() {
                return Some(name);
            }
            cause = error.source();
        }
        None
    }

    /// The most private space among the refused addresses.
    pub(crate) fn space(&self) -> AddressSpace {
        self.addrs
            .iter()
            .map(|ip| AddressSpace::of(*ip))
            .max()
            .unwrap_or(AddressSpace::Public)
    }

    /// "name (10.0.0.5, `fd00::5`)".
    pub(crate) fn describe(&self) -> String {
        let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        format!("{} ({})", self.name, addrs.join(", "))
    }
}

impl fmt::Display for NotPublicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every address of {} is refused by NetworkGuard::PublicOnly",
            self.describe()
        )
    }
}

impl std::error::Error for NotPublicName {}

/// The addresses of `name` that `policy` lets a connection reach under
/// `PublicOnly`: public and global, or exempt. None left is an error.
#[cfg_attr(
    not(any(feature = "reqwest", feature = "tower", feature = "ureq")),
    allow(dead_code)
)] // for the resolvers
pub(crate) fn keep_public(
    policy: &crate::Policy,
    name: &str,
    addrs: impl Iterator<Item = std::net::SocketAddr>,
) -> Result<Vec<std::net::SocketAddr>, NotPublicName> {
    let mut refused = Vec::new();
    let kept: Vec<_> = addrs
        .filter(|addr| {
            let ok = is_global(addr.ip()) || policy.is_allowed(addr.ip());
            if !ok {
                refused.push(addr.ip());
            }
            ok
        })
        .collect();
    if kept.is_empty() && !refused.is_empty() {
        return Err(NotPublicName {
            name: name.to_owned(),
            addrs: refused,
        });
    }
    Ok(kept)
}

/// The words for a refused address's space in a `PublicOnly` message.
pub(crate) fn words(space: AddressSpace) -> &'static str {
    match space {
        AddressSpace::Public => "public but not global",
        AddressSpace::Private => "private",
        AddressSpace::Local => "local",
    }
}

/// Whether `ip` is a public, globally routable address: public, and in none
/// of the special-purpose ranges that are not global (RFC 6890's registry).
pub(crate) fn is_global(ip: IpAddr) -> bool {
    if AddressSpace::of(ip) != AddressSpace::Public {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let special = (s[0] & 0xff00) == 0xff00 // multicast
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
                || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0020) // ORCHIDv2
                || (s[..4] == [0x0100, 0, 0, 0]); // discard-only
            !special && embedded_v4(v6).all(is_global_v4)
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    of_v4(ip) == AddressSpace::Public
        && !in_v4(ip, [192, 0, 0, 0], 24) // IETF protocol assignments
        && !in_v4(ip, [192, 0, 2, 0], 24) // documentation (TEST-NET-1)
        && !in_v4(ip, [198, 51, 100, 0], 24) // documentation (TEST-NET-2)
        && !in_v4(ip, [203, 0, 113, 0], 24) // documentation (TEST-NET-3)
        && !in_v4(ip, [198, 18, 0, 0], 15) // benchmarking
        && !in_v4(ip, [192, 88, 99, 0], 24) // 6to4 relay anycast (deprecated)
        && !in_v4(ip, [224, 0, 0, 0], 4) // multicast
        && !in_v4(ip, [240, 0, 0, 0], 4) // reserved, and the broadcast address
}

/// The address space a host is known to be in without DNS: an IP literal's,
/// `localhost` and `*.localhost` (local), the cloud metadata names (private);
/// `None` for any other name, which only its resolved address can tell.
pub(crate) fn space_of_host(host: &Host<&str>) -> Option<(AddressSpace, Option<IpAddr>)> {
    match host {
        Host::Ipv4(v4) => Some((of_v4(*v4), Some(IpAddr::V4(*v4)))),
        Host::Ipv6(v6) => Some((of_v6(*v6), Some(IpAddr::V6(*v6)))),
        Host::Domain(name) => {
            // In any case, with or without the trailing dot; no allocation
            // (this runs on every hop).
            let name = name.strip_suffix('.').unwrap_or(name);
            let is = |word: &str| name.eq_ignore_ascii_case(word);
            let local_suffix = name.len() > ".localhost".len()
                && name
                    .get(name.len() - ".localhost".len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"));
            if is("localhost") || local_suffix {
                Some((AddressSpace::Local, None))
            } else if is("metadata.google.internal") || is("metadata.goog") {
                Some((AddressSpace::Private, None))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(text: &str) -> AddressSpace {
        AddressSpace::of(text.parse().unwrap())
    }

    #[test]
    fn every_range_and_every_form_is_classified() {
        use AddressSpace::{Local, Private, Public};
        let table = [
            // Local: loopback, 0/8, their mapped and compatible forms.
            ("127.0.0.1", Local),
            ("127.255.255.254", Local),
            ("0.0.0.0", Local),
            ("0.1.2.3", Local),
            ("::1", Local),
            ("::", Local),
            ("::ffff:127.0.0.1", Local),
            ("::ffff:0.0.0.0", Local),
            ("::127.0.0.1", Local),
            ("64:ff9b::127.0.0.1", Local),
            ("2002:7f00:1::", Local),
            // Private, with each mapped, NAT64, 6to4 and Teredo form.
            ("10.0.0.5", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("fc00::1", Private),
            ("fd00:ec2::254", Private),
            ("fe80::1", Private),
            ("febf::1", Private),
            ("fec0::1", Private),
            ("::ffff:10.0.0.5", Private),
            ("::ffff:169.254.169.254", Private),
            ("::10.0.0.5", Private),
            ("64:ff9b::10.0.0.5", Private),
            ("64:ff9b::a9fe:a9fe", Private),
            ("2002:a00:5::1", Private),
            ("2002:c0a8:101::", Private),
            // Teredo: server 10.0.0.5, or client 192.168.1.1 stored inverted.
            ("2001:0:a00:5::1", Private),
            ("2001:0:4136:e378:8000:63bf:3f57:fefe", Private),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Public),
            // Public: the edges of the ranges above, and the rest.
            ("9.255.255.255", Public),
            ("11.0.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("192.167.255.255", Public),
            ("169.253.255.255", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("128.0.0.1", Public),
            ("93.184.215.14", Public),
            ("203.0.113.5", Public),
            ("2606:4700::1111", Public),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::8.8.8.8", Public),
            ("2002:808:808::", Public),
            ("fbff::1", Public),
            ("fe7f::1", Public),
        ];
        for (text, expected) in table {
            assert_eq!(space(text), expected, "{text}");
        }
    }

    #[test]
    fn public_only_refuses_the_special_ranges_too() {
        for global in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_global(global.parse().unwrap()), "{global}");
        }
        for special in [
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.5",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.88.99.1",
            "10.0.0.5",
            "127.0.0.1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "2001:10::1",
            "ff02::1",
            "100::1",
            "::ffff:203.0.113.5",
            "64:ff9b::192.0.2.1",
        ] {
            assert!(!is_global(special.parse().unwrap()), "{special}");
        }
    }

    #[test]
    fn the_url_crates_host_forms_are_classified_as_their_address() {
        // Decimal, hex, octal and short IPv4 forms, and bracketed or mapped
        // IPv6: the url crate turns each into the address it means.
        let cases = [
            ("http://2130706433/", AddressSpace::Local),
            ("http://0x7f000001/", AddressSpace::Local),
            ("http://0177.0.0.1/", AddressSpace::Local),
            ("http://127.1/", AddressSpace::Local),
            ("http://0/", AddressSpace::Local),
            ("http://0x0a.0.0.5/", AddressSpace::Private),
            ("http://012.0.0.5/", AddressSpace::Private),
            ("http://167772165/", AddressSpace::Private),
            ("http://0xa9.0xfe.0xa9.0xfe/", AddressSpace::Private),
            ("http://[::ffff:127.0.0.1]/", AddressSpace::Local),
            ("http://[::ffff:7f00:1]/", AddressSpace::Local),
            ("http://[0:0:0:0:0:ffff:a00:5]/", AddressSpace::Private),
            ("http://[fd00:ec2::254]/", AddressSpace::Private),
            ("http://localhost/", AddressSpace::Local),
            ("http://LOCALHOST./", AddressSpace::Local),
            ("http://api.localhost/", AddressSpace::Local),
            ("http://Metadata.Google.Internal/", AddressSpace::Private),
            ("http://metadata.goog./", AddressSpace::Private),
        ];
        for (url, expected) in cases {
            let url = url::Url::parse(url).unwrap();
            let host = url.host().unwrap();
            assert_eq!(
                space_of_host(&host).map(|(s, _)| s),
                Some(expected),
                "{url}"
            );
        }
        for name in [
            "http://example.com/",
            "http://localhost.example/",
            "http://goog/",
        ] {
            let url = url::Url::parse(name).unwrap();
            assert_eq!(space_of_host(&url.host().unwrap()), None, "{name}");
        }
    }

    #[test]
    fn a_prefix_contains_what_it_should() {
        let net = Network::new("10.20.0.0".parse().unwrap(), 16);
        assert!(net.contains("10.20.3.4".parse().unwrap()));
        assert!(net.contains("::ffff:10.20.3.4".parse().unwrap()));
        assert!(!net.contains("10.21.0.1".parse().unwrap()));
        let one = Network::new("169.254.169.254".parse().unwrap(), 32);
        assert!(one.contains("169.254.169.254".parse().unwrap()));
        assert!(!one.contains("169.254.169.253".parse().unwrap()));
        let all = Network::new("0.0.0.0".parse().unwrap(), 0);
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Network::new("fd00::".parse().unwrap(), 8);
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(
            Network::new("10.0.0.0".parse().unwrap(), 99).to_string(),
            "10.0.0.0/32"
        );
    }
}

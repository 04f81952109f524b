//! Pure functions behind each decision: the method rewrite, Location
//! resolution, origins, and the header sets that are removed.

use std::borrow::Cow;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method};
use url::Url;

use crate::MethodRule;

/// Headers that describe the body. They go when a hop switches to `GET∅`.
pub(crate) const BODY_HEADERS: [HeaderName; 10] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
    header::TRANSFER_ENCODING,
    HeaderName::from_static("digest"),
    HeaderName::from_static("content-digest"),
    HeaderName::from_static("repr-digest"),
    header::EXPECT,
];

/// Credential headers. They go on a hop to another origin, for good.
pub(crate) const CREDENTIAL_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static("cookie2"),
    header::WWW_AUTHENTICATE,
];

/// The longest URL the chain will send: the `http` crate (and so reqwest
/// and hyper) cannot carry a longer request target.
pub(crate) const MAX_URL_LEN: usize = u16::MAX as usize - 1;

/// The QUERY method (RFC 10008): safe and idempotent, its body is the
/// question.
pub(crate) fn is_query(method: &Method) -> bool {
    method.as_str() == "QUERY"
}

/// True when `rule`, for `status`, turns a request with this method into
/// `GET∅`. A QUERY keeps its method and body on 301 and 302 whatever the
/// rule (a bodiless GET would ask another question); on 303 it follows the
/// rule like any method.
#[must_use]
pub(crate) fn switches_to_get(rule: MethodRule, status: http::StatusCode, method: &Method) -> bool {
    if is_query(method) && matches!(status.as_u16(), 301 | 302) {
        return false;
    }
    match rule {
        MethodRule::Preserve | MethodRule::DoNotFollow => false,
        MethodRule::PostToGet => *method == Method::POST,
        MethodRule::ToGet => *method != Method::GET && *method != Method::HEAD,
    }
}

/// Same (scheme, host, port), default ports made explicit. Allocates nothing.
#[must_use]
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// http → https on the same host with default ports (80 → 443).
#[must_use]
pub(crate) fn is_https_upgrade(from: &Url, to: &Url) -> bool {
    from.scheme() == "http"
        && to.scheme() == "https"
        && from.host() == to.host()
        && from.port_or_known_default() == Some(80)
        && to.port_or_known_default() == Some(443)
}

/// True when the hop changes host or port, so a caller-set `Host` header no
/// longer names the server.
#[must_use]
pub(crate) fn authority_changes(a: &Url, b: &Url) -> bool {
    a.host() != b.host() || a.port_or_known_default() != b.port_or_known_default()
}

/// The outcome of reading the Location fields of a response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Location<'a> {
    /// No Location, or only empty ones: the 3xx is the final response.
    Missing,
    /// One value (identical repeats count as one).
    One(&'a HeaderValue),
    /// Several fields with different values.
    Conflicting,
}

/// Read the Location fields: identical repeats are one value, different
/// values conflict (Fetch; curl).
#[must_use]
pub(crate) fn location(headers: &HeaderMap) -> Location<'_> {
    let mut values = headers
        .get_all(header::LOCATION)
        .iter()
        .filter(|v| !v.as_bytes().trim_ascii().is_empty());
    let Some(first) = values.next() else {
        return Location::Missing;
    };
    if values.all(|v| v.as_bytes().trim_ascii() == first.as_bytes().trim_ascii()) {
        Location::One(first)
    } else {
        Location::Conflicting
    }
}

/// Resolve a raw Location against the URL that answered (RFC 3986), the way
/// the next request will use it:
/// - bytes that are not ASCII are percent-encoded, not rejected
///   (`\xff` → `%FF`, a raw `☃` → `%E2%98%83`);
/// - userinfo is removed: credentials come only from the caller;
/// - a Location with no fragment inherits the current one (RFC 9110 §10.2.2).
pub(crate) fn resolve(base: &Url, raw: &[u8]) -> Result<Url, url::ParseError> {
    let text = percent_encode_non_ascii(raw.trim_ascii());
    let mut next = base.join(&text)?;
    if next.has_authority() && (!next.username().is_empty() || next.password().is_some()) {
        // Both setters fail only for URLs without a host, excluded above.
        let _ = next.set_username("");
        let _ = next.set_password(None);
    }
    if next.fragment().is_none() {
        if let Some(fragment) = base.fragment() {
            next.set_fragment(Some(fragment));
        }
    }
    Ok(next)
}

fn percent_encode_non_ascii(raw: &[u8]) -> Cow<'_, str> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if raw.is_ascii() {
        // ASCII is valid UTF-8; the error branch cannot be taken.
        return std::str::from_utf8(raw).map_or(Cow::Borrowed(""), Cow::Borrowed);
    }
    let mut out = String::with_capacity(raw.len() * 3);
    for &b in raw {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

/// Remove `names` from `headers`, appending to `removed` the ones that were
/// there.
pub(crate) fn remove_headers<'a>(
    headers: &mut HeaderMap,
    names: impl IntoIterator<Item = &'a HeaderName>,
    removed: &mut Vec<HeaderName>,
) {
    for name in names {
        // `remove` takes every value of a multi-valued header.
        if headers.remove(name).is_some() {
            removed.push(name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn method_switch_table() {
        let custom = Method::from_bytes(b"PURGE").unwrap();
        let lower_post = Method::from_bytes(b"post").unwrap();
        let methods = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
            custom,
            lower_post,
        ];
        //                     GET    HEAD   POST   PUT    DELETE PATCH  OPTIONS PURGE  post
        let table: [(MethodRule, [bool; 9]); 4] = [
            (MethodRule::Preserve, [false; 9]),
            (
                MethodRule::PostToGet,
                [false, false, true, false, false, false, false, false, false],
            ),
            (
                MethodRule::ToGet,
                [false, false, true, true, true, true, true, true, true],
            ),
            (MethodRule::DoNotFollow, [false; 9]),
        ];
        // 303: the rule as it is, for every method (QUERY included: GET∅).
        let see_other = http::StatusCode::SEE_OTHER;
        for (rule, expected) in table {
            for (method, want) in methods.iter().zip(expected) {
                let got = switches_to_get(rule, see_other, method);
                assert_eq!(got, want, "{rule:?} {method}");
            }
        }
        let query = Method::from_bytes(b"QUERY").unwrap();
        assert!(switches_to_get(MethodRule::ToGet, see_other, &query));
        // 301/302: a QUERY keeps its body whatever the rule.
        for status in [http::StatusCode::MOVED_PERMANENTLY, http::StatusCode::FOUND] {
            for rule in [
                MethodRule::ToGet,
                MethodRule::PostToGet,
                MethodRule::Preserve,
            ] {
                assert!(!switches_to_get(rule, status, &query), "{rule:?} {status}");
            }
        }
    }

    #[test]
    fn origins() {
        let cases = [
            ("http://a/", "http://a:80/x", true),
            ("https://a/", "https://a:443/", true),
            ("http://a/", "https://a/", false),
            ("http://a/", "http://b/", false),
            ("http://a:8080/", "http://a:8081/", false),
            ("http://A/", "http://a/", true),
            ("http://127.0.0.1/", "http://localhost/", false),
            ("http://[::1]:80/", "http://[::1]/", true),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_origin(&url(a), &url(b)), same, "{a} {b}");
        }
        assert!(is_https_upgrade(&url("http://a/"), &url("https://a/")));
        assert!(!is_https_upgrade(
            &url("http://a:8080/"),
            &url("https://a/")
        ));
        assert!(!is_https_upgrade(
            &url("http://a/"),
            &url("https://a:8443/")
        ));
        assert!(!is_https_upgrade(&url("http://a/"), &url("https://b/")));
        assert!(!is_https_upgrade(&url("https://a/"), &url("http://a/")));
    }

    #[test]
    fn location_corpus() {
        let base = url("http://h.test/a/b/c?q=1#frag");
        let cases: [(&[u8], &str); 16] = [
            (b"/x", "http://h.test/x#frag"),
            (b"x", "http://h.test/a/b/x#frag"),
            (b"../x", "http://h.test/a/x#frag"),
            (b"../../../../x", "http://h.test/x#frag"),
            (b"?z=2", "http://h.test/a/b/c?z=2#frag"),
            (b"#other", "http://h.test/a/b/c?q=1#other"),
            (b"//other.test/p", "http://other.test/p#frag"),
            (b"http:///other.test/p", "http://other.test/p#frag"),
            (b"https://u:p@s.test/", "https://s.test/#frag"),
            (b"/\xff", "http://h.test/%FF#frag"),
            ("/☃".as_bytes(), "http://h.test/%E2%98%83#frag"),
            ("http://☃.net/".as_bytes(), "http://xn--n3h.net/#frag"),
            (b"HTTP://UPPER.TEST/", "http://upper.test/#frag"),
            (b"  /spaced  ", "http://h.test/spaced#frag"),
            (b"/a b", "http://h.test/a%20b#frag"),
            (b"file:///etc/passwd", "file:///etc/passwd#frag"),
        ];
        for (raw, want) in cases {
            let got = resolve(&base, raw).unwrap();
            assert_eq!(got.as_str(), want, "{}", raw.escape_ascii());
        }
        for bad in [&b"http://"[..], b"http://[::1", b"https://a:99999/"] {
            assert!(resolve(&base, bad).is_err(), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn location_fields() {
        let mut h = HeaderMap::new();
        assert_eq!(location(&h), Location::Missing);
        h.append(header::LOCATION, HeaderValue::from_static(""));
        assert_eq!(location(&h), Location::Missing);
        h.append(header::LOCATION, HeaderValue::from_static("/a"));
        h.append(header::LOCATION, HeaderValue::from_static("/a"));
        assert!(matches!(location(&h), Location::One(v) if v == "/a"));
        h.append(header::LOCATION, HeaderValue::from_static("/b"));
        assert_eq!(location(&h), Location::Conflicting);
    }

    #[test]
    fn remove_headers_reports_what_was_there() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("x"));
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let mut removed = Vec::new();
        remove_headers(&mut h, &CREDENTIAL_HEADERS, &mut removed);
        assert!(h.is_empty());
        assert_eq!(removed, [header::AUTHORIZATION, header::COOKIE]);
    }
}

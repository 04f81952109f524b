//! Property tests: random chains of statuses, origins, methods and bodies.
//!
//! - the engine never leaks a credential after an origin change, and never
//!   sends a body again once it was dropped;
//! - random Location bytes never panic;
//! - on real servers, every replay is byte-identical to the original.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use redirect_policy::{BodyReplay, Chain, Policy, Step};
use support::{slow_stream, Reply, Server};
use url::Url;

const ORIGINS: [&str; 6] = [
    "http://a.test",
    "http://a.test:8080",
    "https://a.test",
    "http://b.test",
    "https://b.test",
    "http://a.test:80",
];

fn methods() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::from_bytes(b"FROB").unwrap()),
    ]
}

fn presets() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::standard()),
        Just(Policy::strict()),
        Just(Policy::legacy()),
        Just(Policy::standard().https_downgrade(redirect_policy::Downgrade::Allow)),
    ]
}

#[derive(Clone, Debug)]
struct HopSpec {
    status: u16,
    origin: usize,
    path: String,
    relative: bool,
    set_cookie: bool,
}

fn hops() -> impl Strategy<Value = Vec<HopSpec>> {
    let hop = (
        prop::sample::select(vec![301u16, 302, 303, 307, 308]),
        0..ORIGINS.len(),
        "[a-z]{1,6}",
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(status, origin, path, relative, set_cookie)| HopSpec {
            status,
            origin,
            path,
            relative,
            set_cookie,
        });
    prop::collection::vec(hop, 1..16)
}

fn origin_of(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engine_never_leaks_credentials_nor_revives_a_dropped_body(
        policy in presets(),
        method in methods(),
        has_body in any::<bool>(),
        start in 0..ORIGINS.len(),
        chain_hops in hops(),
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s"));
        headers.insert(header::COOKIE, HeaderValue::from_static("c=1"));
        let first = Url::parse(&format!("{}/start", ORIGINS[start])).unwrap();
        let mut chain = Chain::new(policy.clone().max_redirects(64), method.clone(), first, headers, has_body);
        let mut crossed = false;
        let mut dropped = false;
        for spec in chain_hops {
            let from = chain.url().clone();
            let location = if spec.relative {
                format!("/{}", spec.path)
            } else {
                format!("{}/{}", ORIGINS[spec.origin], spec.path)
            };
            let mut response = HeaderMap::new();
            response.insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
            if spec.set_cookie {
                response.insert(header::SET_COOKIE, HeaderValue::from_static("x=1"));
            }
            let status = StatusCode::from_u16(spec.status).unwrap();
            match chain.on_response(status, &response, BodyReplay::Available) {
                Ok(Step::Follow) => {}
                Ok(_) | Err(_) => break,
            }
            let to = chain.url().clone();
            let upgrade = from.scheme() == "http" && to.scheme() == "https"
                && from.host_str() == to.host_str()
                && from.port_or_known_default() == Some(80);
            if origin_of(&from) != origin_of(&to) && !upgrade {
                crossed = true;
            }
            if had_body_dropped(&chain) {
                dropped = true;
            }
            let has_credentials = chain.headers().contains_key(header::AUTHORIZATION)
                || chain.headers().contains_key(header::COOKIE);
            prop_assert_eq!(has_credentials, !crossed, "after {} -> {}", from, to);
            if dropped {
                prop_assert!(!chain.sends_body());
                prop_assert_eq!(chain.method(), Method::GET);
            } else {
                prop_assert_eq!(chain.sends_body(), has_body);
                prop_assert_eq!(chain.method(), method.clone());
            }
            prop_assert!(chain.url().scheme() == "http" || chain.url().scheme() == "https");
        }
    }

    #[test]
    fn random_location_bytes_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..300),
        status in prop::sample::select(vec![301u16, 302, 303, 307, 308]),
        base in prop::sample::select(ORIGINS.to_vec()),
    ) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()); };
        let mut response = HeaderMap::new();
        response.insert(header::LOCATION, value);
        let url = Url::parse(&format!("{base}/a/b?q#f")).unwrap();
        let mut chain = Chain::new(Policy::standard(), Method::POST, url, HeaderMap::new(), true);
        let status = StatusCode::from_u16(status).unwrap();
        if let Ok(Step::Follow) = chain.on_response(status, &response, BodyReplay::Available) {
            prop_assert!(matches!(chain.url().scheme(), "http" | "https"));
            prop_assert!(chain.url().username().is_empty());
            prop_assert!(chain.url().as_str().is_ascii());
        }
    }
}

/// The last hop switched the request to `GET∅` (with or without a body to drop).
fn had_body_dropped(chain: &Chain) -> bool {
    chain.history().last().is_some_and(|hop| {
        hop.body() == redirect_policy::BodyAction::Dropped || hop.method() != hop.next_method()
    })
}

proptest! {
    // Each case runs a real chain over loopback: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn replays_on_real_servers_are_byte_identical(
        statuses in prop::collection::vec(prop::sample::select(vec![307u16, 308]), 1..5),
        other_origin in prop::collection::vec(any::<bool>(), 5),
        len in 0usize..300_000,
        chunk in 1usize..70_000,
        streamed in any::<bool>(),
        method in prop::sample::select(vec!["POST", "PUT", "PATCH", "DELETE", "FROB"]),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let a = Server::start();
        let b = Server::start();
        let servers = [&a, &b];
        let mut at = 0usize;
        for (i, status) in statuses.iter().enumerate() {
            let next = usize::from(other_origin[i]);
            let target = servers[next].url(&format!("/h{}", i + 1));
            servers[at].route(&format!("/h{i}"), Reply::redirect(*status, target));
            at = next;
        }
        let body: Vec<u8> = (0..len).map(|i| u8::try_from(i % 253).unwrap()).collect();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = rt.block_on(async {
            let request = redirect_policy::Client::new(Policy::standard())
                .request(method.clone(), a.url("/h0"));
            let request = if streamed {
                request.body(slow_stream(body.clone(), chunk, Duration::ZERO))
            } else {
                request.body(body.clone())
            };
            request.send().await
        }).unwrap();
        prop_assert_eq!(response.status(), StatusCode::OK);
        let last = servers[at].one_at(&format!("/h{}", statuses.len()));
        prop_assert_eq!(last.method, method);
        prop_assert!(last.body == body, "body differs: {} vs {} bytes", last.body.len(), body.len());
    }
}

//! Fuzz the engine's response handling: Location parsing and the decision.
//!
//! The input is split on `\n` into response heads. In each, the first byte
//! picks the status and whether a cookie is set, and the rest is one or more
//! Location values separated by `\r`. The chain must never panic, and what it
//! follows must be an http(s) URL with no userinfo.
#![no_main]

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use redirect_policy::{BodyReplay, Chain, Policy, Step};

const STATUSES: [u16; 8] = [301, 302, 303, 307, 308, 300, 304, 399];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let policy = match selector % 4 {
        0 => Policy::standard(),
        1 => Policy::strict(),
        2 => Policy::legacy(),
        _ => Policy::standard().max_redirects(3),
    };
    let method = [Method::GET, Method::POST, Method::PUT, Method::HEAD][usize::from(selector >> 6)].clone();
    let start = url::Url::parse("https://api.example.test/v1/a/b?q=1#frag").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
    let mut chain = Chain::new(policy, method, start, headers, selector & 1 == 1);
    for head in rest.split(|&b| b == b'\n') {
        let Some((&byte, locations)) = head.split_first() else { continue };
        let status = StatusCode::from_u16(STATUSES[usize::from(byte % 8)]).unwrap();
        let mut response = HeaderMap::new();
        for location in locations.split(|&b| b == b'\r') {
            if let Ok(value) = HeaderValue::from_bytes(location) {
                response.append(header::LOCATION, value);
            }
        }
        if byte & 0x80 != 0 {
            response.insert(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        }
        let replay = if byte & 0x40 != 0 { BodyReplay::OverCap } else { BodyReplay::Available };
        match chain.on_response(status, &response, replay) {
            Ok(Step::Follow) => {
                let url = chain.url();
                assert!(matches!(url.scheme(), "http" | "https"), "{url}");
                assert!(url.username().is_empty() && url.password().is_none(), "{url}");
                assert!(url.as_str().len() < 65535);
                if url.host_str() != Some("api.example.test") {
                    assert!(!chain.headers().contains_key(header::AUTHORIZATION));
                }
            }
            Ok(_) => return,
            Err(e) => {
                let _ = e.to_string();
                let _ = format!("{e:?}");
                return;
            }
        }
    }
});

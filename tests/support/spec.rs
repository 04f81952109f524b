//! The spec's §1 table, as the tests of every transport check it.

use http::Method;

pub const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

pub fn methods() -> Vec<Method> {
    vec![
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::from_bytes(b"FROBNICATE").unwrap(),
        Method::from_bytes(b"QUERY").unwrap(),
    ]
}

/// The spec §1 table: does `status` keep `method` (`=`) under the preset?
pub fn keeps(preset: &str, status: u16, method: &Method) -> bool {
    let get_or_head = *method == Method::GET || *method == Method::HEAD;
    match (preset, status) {
        (_, 307 | 308) | ("strict", 301 | 302) => true,
        // QUERY (RFC 10008): its body is the question, kept on 301/302 in every preset.
        (_, 301 | 302) if method.as_str() == "QUERY" => true,
        (_, 303) | ("legacy", 301 | 302) => get_or_head,
        ("standard", 301 | 302) => *method != Method::POST,
        _ => unreachable!(),
    }
}

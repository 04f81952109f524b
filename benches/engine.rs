//! Engine micro-benchmark: one hop's decision, Location resolution included,
//! with no I/O. `cargo bench --bench engine`.
//!
//! Also counts the allocations of one decision (printed before criterion
//! runs; `tests/allocations.rs` holds the bound).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use std::hint::black_box;

use criterion::{criterion_group, BatchSize, Criterion};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use redirect_policy::{BodyReplay, Chain, Policy};
use url::Url;

struct Case {
    name: &'static str,
    status: StatusCode,
    method: Method,
    location: &'static str,
}

const CASES: [(&str, u16, &str, &str); 4] = [
    (
        "307 relative, same origin",
        307,
        "POST",
        "/v2/upload?part=1",
    ),
    (
        "302 POST to GET, body headers dropped",
        302,
        "POST",
        "../thanks",
    ),
    (
        "308 to another origin, credentials dropped",
        308,
        "PUT",
        "https://eu.api.test/v1/objects/42",
    ),
    ("303 absolute", 303, "DELETE", "https://api.test/jobs/42"),
];

fn cases() -> Vec<Case> {
    CASES
        .iter()
        .map(|&(name, status, method, location)| Case {
            name,
            status: StatusCode::from_u16(status).unwrap(),
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            location,
        })
        .collect()
}

fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::USER_AGENT, HeaderValue::from_static("sdk/1.0"));
    h
}

fn fresh(case: &Case) -> Chain {
    let url = Url::parse("https://api.test/v1/objects/upload").unwrap();
    Chain::new(
        Policy::standard(),
        case.method.clone(),
        url,
        request_headers(),
        true,
    )
}

fn count_allocations() {
    println!("allocations of one decision (the chain and response built beforehand):");
    for case in cases() {
        let mut chain = fresh(&case);
        let mut response = HeaderMap::new();
        response.insert(header::LOCATION, HeaderValue::from_static(case.location));
        let info = allocation_counter::measure(|| {
            black_box(
                chain
                    .on_response(case.status, &response, BodyReplay::Available)
                    .unwrap(),
            );
        });
        println!(
            "  {:<45} {} allocations, {} bytes",
            case.name, info.count_total, info.bytes_total
        );
    }
}

fn decision(c: &mut Criterion) {
    count_allocations();
    let mut group = c.benchmark_group("one hop decision");
    for case in cases() {
        let mut response = HeaderMap::new();
        response.insert(header::LOCATION, HeaderValue::from_static(case.location));
        group.bench_function(case.name, |b| {
            b.iter_batched_ref(
                || fresh(&case),
                |chain| black_box(chain.on_response(case.status, &response, BodyReplay::Available)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// The network guard's cost per hop: the same 307 decision under each guard,
/// to a name (which only the address it reaches can tell) and to an IP
/// literal (classified before sending), and the check of the address a
/// response came from. No DNS lookup on any of these paths.
fn guard(c: &mut Criterion) {
    use redirect_policy::NetworkGuard::{NoEscalation, Off, PublicOnly};
    let mut group = c.benchmark_group("network guard, one hop");
    for (name, guard, location) in [
        ("off, to a name", Off, "https://eu.api.test/v1/objects/42"),
        (
            "no-escalation, to a name",
            NoEscalation,
            "https://eu.api.test/v1/objects/42",
        ),
        (
            "public-only, to a name",
            PublicOnly,
            "https://eu.api.test/v1/objects/42",
        ),
        (
            "off, to an IP literal",
            Off,
            "https://93.184.215.14/v1/objects/42",
        ),
        (
            "no-escalation, to an IP literal",
            NoEscalation,
            "https://93.184.215.14/v1/objects/42",
        ),
        (
            "public-only, to an IP literal",
            PublicOnly,
            "https://93.184.215.14/v1/objects/42",
        ),
    ] {
        let mut response = HeaderMap::new();
        response.insert(header::LOCATION, HeaderValue::from_static(location));
        let policy = Policy::standard().network_guard(guard);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let url = Url::parse("https://api.test/v1/objects/upload").unwrap();
                    Chain::new(policy.clone(), Method::PUT, url, request_headers(), true)
                },
                |chain| {
                    black_box(chain.on_response(
                        StatusCode::TEMPORARY_REDIRECT,
                        &response,
                        BodyReplay::Available,
                    ))
                },
                BatchSize::SmallInput,
            );
        });
    }
    let peer: std::net::SocketAddr = "93.184.215.14:443".parse().unwrap();
    for (name, guard) in [
        ("address check, no-escalation", NoEscalation),
        ("address check, public-only", PublicOnly),
    ] {
        let policy = Policy::standard().network_guard(guard);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let url = Url::parse("https://api.test/v1/objects/upload").unwrap();
                    Chain::new(policy.clone(), Method::GET, url, HeaderMap::new(), false)
                },
                |chain| black_box(chain.on_peer(peer)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, decision, guard);

/// `REDIRECT_POLICY_COUNT=N`: N decisions of each case and nothing else,
/// for an instruction count under callgrind (the slope between two N is one
/// round of the four cases: a chain built, its 3xx decided, dropped).
fn main() {
    if let Some(n) = std::env::var("REDIRECT_POLICY_COUNT")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let cases = cases();
        let responses: Vec<HeaderMap> = cases
            .iter()
            .map(|case| {
                let mut response = HeaderMap::new();
                response.insert(header::LOCATION, HeaderValue::from_static(case.location));
                response
            })
            .collect();
        for _ in 0..n {
            for (case, response) in cases.iter().zip(&responses) {
                let mut chain = fresh(case);
                black_box(chain.on_response(case.status, response, BodyReplay::Available)).unwrap();
                black_box(chain);
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

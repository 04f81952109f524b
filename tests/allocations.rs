//! What one hop's decision allocates: the new URL (`Url::join` takes up to
//! three allocations as its string grows) and its copy in the history
//! record, plus one list of names when headers are stripped. Nothing per
//! header value, nothing per body byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use redirect_policy::{BodyReplay, Chain, Policy, Step};
use url::Url;

fn chain(method: Method) -> Chain {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let url = Url::parse("https://api.test/v1/objects/upload").unwrap();
    Chain::new(Policy::standard(), method, url, headers, true)
}

fn location(value: &'static str) -> HeaderMap {
    let mut response = HeaderMap::new();
    response.insert(header::LOCATION, HeaderValue::from_static(value));
    response
}

#[test]
fn a_hop_allocates_only_the_new_url_and_its_record() {
    let mut chain = chain(Method::PUT);
    // The first hop also allocates the history's vector; measure the second.
    let first = location("/v2/a");
    chain
        .on_response(
            StatusCode::TEMPORARY_REDIRECT,
            &first,
            BodyReplay::Available,
        )
        .unwrap();
    let second = location("/v2/b?part=1");
    let mut step = None;
    let info = allocation_counter::measure(|| {
        step = Some(chain.on_response(
            StatusCode::PERMANENT_REDIRECT,
            &second,
            BodyReplay::Available,
        ));
    });
    assert_eq!(step.unwrap().unwrap(), Step::Follow);
    // url's parser: up to 3; the history's copy of the URL: 1.
    assert!(info.count_total <= 4, "{} allocations", info.count_total);
    assert!(info.bytes_total < 256, "{} bytes", info.bytes_total);
}

#[test]
fn stripping_headers_adds_one_list_of_names() {
    let mut chain = chain(Method::POST);
    let first = location("/v2/a");
    chain
        .on_response(
            StatusCode::TEMPORARY_REDIRECT,
            &first,
            BodyReplay::Available,
        )
        .unwrap();
    // 302 POST -> GET∅ to another origin: body and credential headers go.
    let second = location("https://eu.api.test/v2/b");
    let info = allocation_counter::measure(|| {
        chain
            .on_response(StatusCode::FOUND, &second, BodyReplay::Available)
            .unwrap();
    });
    // An absolute Location parses in one allocation; + the copy + the names.
    assert!(info.count_total <= 3, "{} allocations", info.count_total);
    assert_eq!(chain.history().last().unwrap().stripped_headers().len(), 2);
}

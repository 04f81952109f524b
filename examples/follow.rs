//! `follow`: a small curl-like command that prints every redirect hop and the
//! final status. It is how you debug an API reroute.
//!
//! ```text
//! cargo run --example follow -- [options] URL
//! cargo run --example follow -- --demo          # against a local demo server
//!
//!   -X, --request METHOD        method (default GET, or POST with a body)
//!   -d, --data DATA             body; @file reads a file, - reads stdin
//!       --data-binary DATA      the same
//!   -H, --header 'Name: value'  add a header (repeatable)
//!       --policy standard|strict|legacy|none
//!       --max-redirects N
//!       --stream                send the body as a stream (replayed from the buffer)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use redirect_policy::{BodyAction, Client, History, Policy};

/// `println!` that ignores a closed stdout (`follow ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

struct Args {
    method: Option<Method>,
    data: Option<Vec<u8>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    policy: Policy,
    stream: bool,
    url: Option<String>,
    demo: bool,
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("follow: {problem}");
    eprintln!(
        "usage: follow [-X METHOD] [-d DATA|@file|-] [-H 'Name: value'] \
         [--policy standard|strict|legacy|none] [--max-redirects N] [--stream] URL | --demo"
    );
    ExitCode::from(2)
}

fn read_data(value: &str) -> Result<Vec<u8>, String> {
    if value == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(data)
    } else if let Some(path) = value.strip_prefix('@') {
        std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
    } else {
        Ok(value.as_bytes().to_vec())
    }
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        method: None,
        data: None,
        headers: Vec::new(),
        policy: Policy::standard(),
        stream: false,
        url: None,
        demo: false,
    };
    let mut max_redirects = None;
    while let Some(arg) = words.next() {
        let mut value = |name: &str| words.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-X" | "--request" => {
                let m = value(&arg)?;
                args.method =
                    Some(Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method {m}"))?);
            }
            "-d" | "--data" | "--data-binary" => args.data = Some(read_data(&value(&arg)?)?),
            "-H" | "--header" => {
                let h = value(&arg)?;
                let (name, v) = h
                    .split_once(':')
                    .ok_or(format!("header {h:?} has no ':'"))?;
                let name = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| format!("bad header name {name:?}"))?;
                let v =
                    HeaderValue::from_str(v.trim()).map_err(|_| format!("bad value in {h:?}"))?;
                args.headers.push((name, v));
            }
            "--policy" => {
                args.policy = match value(&arg)?.as_str() {
                    "standard" => Policy::standard(),
                    "strict" => Policy::strict(),
                    "legacy" => Policy::legacy(),
                    "none" => Policy::none(),
                    other => return Err(format!("unknown policy {other:?}")),
                }
            }
            "--max-redirects" => {
                let n = value(&arg)?;
                max_redirects = Some(n.parse().map_err(|_| format!("bad number {n:?}"))?);
            }
            "--stream" => args.stream = true,
            "--demo" => args.demo = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if args.url.is_none() => args.url = Some(arg),
            _ => return Err(format!("a second URL: {arg}")),
        }
    }
    if let Some(n) = max_redirects {
        args.policy = args.policy.max_redirects(n);
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    // --demo: a local API that moved, so the command runs with no network.
    let _server = args.demo.then(|| {
        let server = support::Server::start();
        server.route("/v1/orders", support::Reply::redirect(308, "/v2/orders"));
        server.route("/v2/orders", support::Reply::redirect(307, "/v2/orders/eu"));
        args.url.get_or_insert_with(|| server.url("/v1/orders"));
        if args.data.is_none() {
            args.data = Some(br#"{"item":"widget","qty":2}"#.to_vec());
        }
        server
    });
    let Some(url) = args.url.clone() else {
        return usage("no URL");
    };
    let method = args.method.clone().unwrap_or(if args.data.is_some() {
        Method::POST
    } else {
        Method::GET
    });

    let client = Client::new(args.policy.clone());
    let mut request = client.request(method.clone(), &url);
    for (name, value) in &args.headers {
        request = request.header(name.clone(), value.clone());
    }
    if let Some(data) = args.data.take() {
        request = if args.stream {
            request.body(support::slow_stream(data, 16 * 1024, Duration::ZERO))
        } else {
            request.body(data)
        };
    }
    out!("> {method} {url}");
    match request.send().await {
        Ok(response) => {
            if let Some(history) = response.extensions().get::<History>() {
                print_hops(history);
            }
            out!("< {} {}", response.status(), response.url());
            for (name, value) in response.headers() {
                out!("< {name}: {}", value.to_str().unwrap_or("<binary>"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_hops(e.history());
            eprintln!("error ({:?}): {e}", e.kind());
            ExitCode::FAILURE
        }
    }
}

fn print_hops(history: &History) {
    for (i, hop) in history.iter().enumerate() {
        let body = match hop.body() {
            BodyAction::Replayed => "body replayed",
            BodyAction::Dropped => "body dropped",
            _ => "no body",
        };
        let stripped: Vec<&str> = hop
            .stripped_headers()
            .iter()
            .map(HeaderName::as_str)
            .collect();
        out!(
            "  hop {}: {} {} -> {} {} ({body}{}{})",
            i + 1,
            hop.status().as_u16(),
            hop.url(),
            hop.next_method(),
            hop.next_url(),
            if stripped.is_empty() {
                String::new()
            } else {
                format!("; stripped {}", stripped.join(", "))
            },
            if hop.is_remembered() {
                "; remembered"
            } else {
                ""
            },
        );
    }
}

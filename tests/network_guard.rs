//! Issue "A redirect never leads into a private network": the network guard
//! on real sockets, through every adapter (`Client`, the middleware,
//! `blocking::Client`, the tower layer over hyper-util, and with feature
//! `ureq` the ureq agent, with `GuardResolver` and without it).
//!
//! The addresses a test needs besides 127.0.0.1 (a "public" 203.0.113.10, a
//! private 10.1.2.3, the metadata address 169.254.169.254) exist only in a
//! network namespace of the test's own: the outer test re-runs this binary
//! under `unshare --net --mount`, puts the addresses on that namespace's
//! loopback and the test's names in its own `/etc/hosts` (bind-mounted, seen
//! by the system resolver that `Client::new` and hyper-util use), and the
//! inner test runs the cases there. Nothing can leave the namespace: it has
//! no interface but its loopback.
//!
//! Refused hops are checked at the target: it saw no connection at all
//! (literals, local names, and names under `PublicOnly`, which the resolver
//! filters), or, for a name under `NoEscalation`, the response was withheld.
#![cfg(all(feature = "middleware", feature = "blocking", feature = "tower"))]
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod support;

use std::net::IpAddr;
use std::process::Command;

use http::{Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use redirect_policy::{
    ErrorKind, FollowRedirectsMiddleware, History, NetworkGuard, Policy, PublicResolver, ReplayBody,
};
use support::{pattern, Adapter, Reply, Server, Upload, ADAPTERS};

/// Set for the run inside the namespace.
const INSIDE: &str = "REDIRECT_POLICY_NETNS";

const PUBLIC: &str = "203.0.113.10";
const PRIVATE: &str = "10.1.2.3";
const METADATA: &str = "169.254.169.254";

const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n\
                     203.0.113.10 public.test\n10.1.2.3 internal.test\n";

#[test]
fn the_guard_holds_on_real_sockets_in_a_network_namespace() {
    if std::env::var_os(INSIDE).is_some() {
        return; // this is the inner run: `inside_the_namespace` does the work
    }
    let probe = Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            support::skip_or_fail(&format!(
                "network_guard: no network namespace can be made here (unshare --net --mount: \
                 {}); run as root, as CI does",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            support::skip_or_fail(&format!(
                "network_guard: no `unshare` here ({e}); install util-linux and run as root"
            ));
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, HOSTS).unwrap();
    let script = format!(
        "set -e; ip link set lo up; ip addr add {PUBLIC}/32 dev lo; ip addr add {PRIVATE}/32 dev lo; \
         ip addr add {METADATA}/32 dev lo; mount --bind {} /etc/hosts; \
         exec \"$0\" --exact inside_the_namespace --include-ignored --nocapture",
        hosts.display()
    );
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .arg(&exe)
        .env(INSIDE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "the cases in the namespace failed (above)"
    );
    assert!(
        stdout.contains("1 passed"),
        "the inner test did not run: {stdout}"
    );
}

/// The way a case is sent: one of the shared adapters, or the ureq agent
/// built with `GuardResolver` (`Agent::new_with_config`) or wrapped around a
/// plain ureq agent (`Agent::new`, where a name is looked up again).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Adapter(Adapter),
    #[cfg(feature = "ureq")]
    UreqGuarded,
    #[cfg(feature = "ureq")]
    UreqWrapped,
}

fn vias() -> Vec<Via> {
    let mut all: Vec<Via> = ADAPTERS.iter().copied().map(Via::Adapter).collect();
    #[cfg(feature = "ureq")]
    all.extend([Via::UreqGuarded, Via::UreqWrapped]);
    all
}

/// What the caller got: the final status and the number of hops followed,
/// or the error's kind, URL and history length.
#[derive(Debug)]
enum Outcome {
    Ok(StatusCode, usize),
    Err(ErrorKind, Option<String>, usize, String),
}

fn error(e: &redirect_policy::Error) -> Outcome {
    Outcome::Err(
        e.kind(),
        e.url().map(ToString::to_string),
        e.history().len(),
        e.to_string(),
    )
}

/// POST `body` to `url` through `adapter` under `policy`. Under `PublicOnly`
/// every adapter resolves through a `PublicResolver` (`Client::new` and
/// `blocking::Client::new` install it themselves; the middleware's reqwest
/// client and the tower stack's connector are given one, as the docs say).
async fn send(via: Via, policy: Policy, url: String, body: Vec<u8>) -> Outcome {
    let adapter = match via {
        Via::Adapter(adapter) => adapter,
        #[cfg(feature = "ureq")]
        Via::UreqGuarded | Via::UreqWrapped => {
            return tokio::task::spawn_blocking(move || {
                let agent = if via == Via::UreqGuarded {
                    redirect_policy::ureq::Agent::new_with_defaults().with_policy(policy)
                } else {
                    redirect_policy::ureq::Agent::new(ureq::Agent::new_with_defaults(), policy)
                };
                match agent.post(&url).send(body) {
                    Ok(r) => Outcome::Ok(r.status(), hops(r.extensions())),
                    Err(e) => error(&e),
                }
            })
            .await
            .unwrap();
        }
    };
    let public_only = policy.guard() == NetworkGuard::PublicOnly;
    match adapter {
        Adapter::Client => {
            let client = redirect_policy::Client::new(policy);
            match client.post(url).body(body).send().await {
                Ok(r) => Outcome::Ok(r.status(), hops(r.extensions())),
                Err(e) => error(&e),
            }
        }
        Adapter::Middleware => {
            let mut builder =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
            if public_only {
                builder = builder.dns_resolver(PublicResolver::new(&policy));
            }
            let client = reqwest_middleware::ClientBuilder::new(builder.build().unwrap())
                .with(FollowRedirectsMiddleware::new(policy))
                .build();
            match client.post(url).body(body).send().await {
                Ok(r) => Outcome::Ok(r.status(), hops(r.extensions())),
                Err(reqwest_middleware::Error::Middleware(e)) => {
                    error(&e.downcast::<redirect_policy::Error>().unwrap())
                }
                Err(reqwest_middleware::Error::Reqwest(e)) => panic!("not a redirect error: {e}"),
            }
        }
        Adapter::Blocking => tokio::task::spawn_blocking(move || {
            let client = redirect_policy::blocking::Client::new(policy);
            match client.post(url).body(body).send() {
                Ok(r) => Outcome::Ok(r.status(), r.history().map_or(0, History::len)),
                Err(e) => error(&e),
            }
        })
        .await
        .unwrap(),
        Adapter::Tower => {
            use tower::ServiceExt as _;
            let request = http::Request::builder()
                .method(Method::POST)
                .uri(url)
                .body(Upload::new(http_body_util::Full::new(bytes::Bytes::from(
                    body,
                ))))
                .unwrap();
            let executor = hyper_util::rt::TokioExecutor::new();
            let layer = redirect_policy::FollowRedirectLayer::new(policy.clone());
            let response = if public_only {
                let connector = HttpConnector::new_with_resolver(PublicResolver::new(&policy));
                let client = hyper_util::client::legacy::Client::builder(executor)
                    .build::<_, ReplayBody<Upload>>(connector);
                tower_layer::Layer::layer(&layer, client)
                    .oneshot(request)
                    .await
            } else {
                let client = hyper_util::client::legacy::Client::builder(executor)
                    .build_http::<ReplayBody<Upload>>();
                tower_layer::Layer::layer(&layer, client)
                    .oneshot(request)
                    .await
            };
            match response {
                Ok(r) => Outcome::Ok(r.status(), hops(r.extensions())),
                Err(e) => error(&e),
            }
        }
    }
}

/// The hops of the history in a response's extensions.
fn hops(extensions: &http::Extensions) -> usize {
    extensions.get::<History>().map_or(0, History::len)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A refused case: the first server redirects (307) to `location`, which
/// `target` would answer; the chain fails with `PrivateNetwork`, and the
/// target saw no connection (or, `withheld`, its response was dropped).
struct Refusal {
    what: &'static str,
    policy: Policy,
    first: String,
    location: String,
    target_at: IpAddr,
    /// The hops followed before the refusal (1 where a name's address or
    /// the resolver refused the followed hop).
    history: usize,
    /// A name under `NoEscalation`: the target answered, its response was
    /// withheld.
    withheld: bool,
}

async fn refused(adapter: Via, case: Refusal) {
    // No resolver of ours: the name is looked up again once its response is
    // in, and that response is withheld.
    #[cfg(feature = "ureq")]
    let case = Refusal {
        withheld: case.withheld || (adapter == Via::UreqWrapped && case.history == 1),
        ..case
    };
    let body = pattern(40_000);
    let first = Server::start_at(ip(&case.first));
    let target = Server::start_at(case.target_at);
    let location = case.location.replace("PORT", &target.port().to_string());
    first.route("/start", Reply::redirect(307, &location));
    let first_url = if case.first == PUBLIC && case.policy.guard() == NetworkGuard::PublicOnly {
        format!("http://public.test:{}/start", first.port())
    } else {
        first.url("/start")
    };
    let what = format!("{adapter:?}: {}", case.what);
    let outcome = send(adapter, case.policy, first_url, body.clone()).await;
    let Outcome::Err(kind, url, history, message) = outcome else {
        panic!("{what}: followed: {outcome:?}");
    };
    assert_eq!(kind, ErrorKind::PrivateNetwork, "{what}: {message}");
    let expected_url = url::Url::parse(&location).unwrap().to_string();
    assert_eq!(url.as_deref(), Some(expected_url.as_str()), "{what}");
    assert_eq!(history, case.history, "{what}: {message}");
    assert!(
        message.contains("Policy::allow_network") && message.contains("NetworkGuard::"),
        "{what}: {message}"
    );
    // The first hop arrived whole; the target got nothing, or (withheld)
    // the request, whose answer the caller never saw.
    let seen = first.one_at("/start");
    assert_eq!(seen.method, Method::POST, "{what}");
    assert!(seen.body == body, "{what}: the first hop's body");
    if case.withheld {
        let landed = target.one_at("/landing");
        assert_eq!(landed.method, Method::POST, "{what}");
    } else {
        assert_eq!(
            target.connections(),
            0,
            "{what}: the refused target saw a connection"
        );
    }
    eprintln!("{what}: refused: {message}");
}

/// A followed case: both hops arrive, the body replayed whole.
async fn followed(adapter: Via, what: &str, policy: Policy, from: &str, to: &str) {
    let body = pattern(40_000);
    let first = Server::start_at(ip(from));
    let target = Server::start_at(ip(to));
    first.route("/start", Reply::redirect(307, target.url("/landing")));
    let start = if from == PRIVATE {
        // A name: where the chain starts is the address that answered.
        format!("http://internal.test:{}/start", first.port())
    } else {
        first.url("/start")
    };
    let what = format!("{adapter:?}: {what}");
    let outcome = send(adapter, policy, start, body.clone()).await;
    assert!(
        matches!(outcome, Outcome::Ok(StatusCode::OK, 1)),
        "{what}: {outcome:?}"
    );
    for (server, path) in [(&first, "/start"), (&target, "/landing")] {
        let seen = server.one_at(path);
        assert_eq!(seen.method, Method::POST, "{what} {path}");
        assert!(seen.body == body, "{what} {path}: the body");
    }
    eprintln!("{what}: followed");
}

fn refusals() -> Vec<Refusal> {
    let local = ip("127.0.0.1");
    let case = |what, location: &str, target_at| Refusal {
        what,
        policy: Policy::standard(),
        first: PUBLIC.into(),
        location: location.into(),
        target_at,
        history: 0,
        withheld: false,
    };
    vec![
        case(
            "public -> 127.0.0.1",
            "http://127.0.0.1:PORT/landing",
            local,
        ),
        case(
            "public -> 10.x",
            &format!("http://{PRIVATE}:PORT/landing"),
            ip(PRIVATE),
        ),
        case(
            "public -> 169.254.169.254",
            &format!("http://{METADATA}:PORT/landing"),
            ip(METADATA),
        ),
        case(
            "public -> [::ffff:127.0.0.1]",
            "http://[::ffff:127.0.0.1]:PORT/landing",
            local,
        ),
        case("public -> 0.0.0.0", "http://0.0.0.0:PORT/landing", local),
        case(
            "public -> localhost",
            "http://localhost:PORT/landing",
            local,
        ),
        Refusal {
            what: "public -> a name of 10.x, PublicOnly (refused at connect time)",
            policy: Policy::standard()
                .network_guard(NetworkGuard::PublicOnly)
                // 203.0.113.0/24 is a documentation range: not global.
                .allow_network(ip("203.0.113.0"), 24),
            first: PUBLIC.into(),
            location: "http://internal.test:PORT/landing".into(),
            target_at: ip(PRIVATE),
            history: 1,
            withheld: false,
        },
        Refusal {
            what: "public -> a name of 10.x, NoEscalation (response withheld)",
            policy: Policy::standard(),
            first: PUBLIC.into(),
            location: "http://internal.test:PORT/landing".into(),
            target_at: ip(PRIVATE),
            history: 1,
            withheld: true,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs inside a network namespace of its own: the test above starts it"]
async fn inside_the_namespace() {
    if std::env::var_os(INSIDE).is_none() {
        eprintln!("inside_the_namespace runs only under the_guard_holds_on_real_sockets_in_a_network_namespace");
        return;
    }
    for adapter in vias() {
        for case in refusals() {
            refused(adapter, case).await;
        }
        followed(
            adapter,
            "private -> private (a name of 10.x -> 169.254.169.254)",
            Policy::standard(),
            PRIVATE,
            METADATA,
        )
        .await;
        followed(
            adapter,
            "local -> local",
            Policy::standard(),
            "127.0.0.1",
            "127.0.0.1",
        )
        .await;
        followed(
            adapter,
            "private -> local under allow_network",
            Policy::standard().allow_network(ip("127.0.0.0"), 8),
            PRIVATE,
            "127.0.0.1",
        )
        .await;
        followed(
            adapter,
            "public -> public",
            Policy::standard(),
            PUBLIC,
            PUBLIC,
        )
        .await;
    }
}

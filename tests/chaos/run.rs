//! The soak itself: requests from 16 tasks through the proxies, every
//! request and every hop checked, and what is left behind afterwards.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt as _;
use redirect_policy::{FollowRedirectLayer, Policy, ReplayBody};

use super::proxy::Proxy;
use super::server::{End, Server};
use super::{pattern, Plan, Source};
use crate::support::Upload;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `redirect_policy::Client` (reqwest).
    Client,
    /// `FollowRedirectLayer` over hyper-util's legacy client.
    Tower,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2c,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub requests: u64,
    pub concurrency: usize,
    pub transport: Transport,
    pub proto: Proto,
    /// The chain's timeout.
    pub timeout: Duration,
    /// What a request may take past its timeout.
    pub slack: Duration,
    pub faults: bool,
    pub stall_max_ms: u64,
    /// A deliberately broken replay, to show that the floor can fail: every
    /// request's `max_replay_body` is this (0: no stream can be replayed).
    pub sabotage_replay_cap: Option<usize>,
}

impl Config {
    pub fn new(seed: u64, requests: u64, transport: Transport, proto: Proto) -> Self {
        Config {
            seed,
            requests,
            concurrency: 16,
            transport,
            proto,
            timeout: Duration::from_secs(6),
            slack: Duration::from_secs(3),
            faults: true,
            stall_max_ms: 1500,
            sabotage_replay_cap: None,
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub label: String,
    pub seed: u64,
    pub requests: u64,
    pub successes: u64,
    /// Typed errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Broken invariants: each must never happen.
    pub violations: Vec<String>,
    pub hops_checked: u64,
    pub faults: BTreeMap<&'static str, u64>,
    /// h2c: the streams the faults cut (see `proxy::Stats::exposed`).
    pub exposed: u64,
    pub h2: bool,
    pub connections: u64,
    pub fd_delta: i64,
    /// What the descriptors left open are, when there are any.
    pub fds_left: Vec<String>,
    /// Descriptors open before the run and closed after it.
    pub fds_gone: Vec<String>,
    pub spill_left: usize,
    pub rss_growth_kib: i64,
    pub elapsed: Duration,
    /// Idempotent hops the server had whole twice (a GOAWAY re-send that
    /// hyper misreported; HTTP lets a client repeat these).
    pub idempotent_repeats: u64,
}

/// The fault kinds each protocol's proxies inject (the soak forces one of
/// each on the first connections).
pub const H1_FAULTS: [&str; 5] = [
    "close mid-request",
    "close mid-response",
    "reset",
    "stall",
    "raw early 307",
];
pub const H2_FAULTS: [&str; 6] = [
    "close mid-request",
    "close mid-response",
    "reset",
    "stall",
    "h2 GOAWAY",
    "h2 RST_STREAM",
];

/// Which faults an error kind may come from. A kind not listed (say
/// `InvalidLocation`, `BodyNotReplayable`, `TooManyRedirects`) comes from no
/// fault the proxies inject: it is the crate's own failure.
fn causes(kind: &str) -> &'static [&'static str] {
    match kind {
        // The connection went: a close, a reset, an early answer that closes,
        // a GOAWAY's end or a reset stream.
        "Request" | "Request (final body)" => &[
            "close mid-request",
            "close mid-response",
            "reset",
            "raw early 307",
            "h2 GOAWAY",
            "h2 RST_STREAM",
        ],
        "Timeout" | "Timeout (outer)" => &["stall", "h2 GOAWAY"],
        // The proxy's raw 307 goes to the same URL: twice in a row on one
        // request is a proven loop.
        "RedirectLoop" => &["raw early 307"],
        _ => &[],
    }
}

/// The fault kinds of `proto` that fired in none of `reports` (the rows of
/// that protocol): a soak that never injected a kind did not test it. The
/// proxies force one of each kind on their first connections, yet a client
/// may open a connection it never uses, so one row alone may miss one.
pub fn unfired(proto: Proto, reports: &[&Report]) -> Vec<&'static str> {
    let h2 = proto == Proto::H2c;
    let kinds: &[&'static str] = if h2 { &H2_FAULTS } else { &H1_FAULTS };
    kinds
        .iter()
        .filter(|kind| {
            !reports
                .iter()
                .filter(|r| r.h2 == h2)
                .any(|r| r.faults.contains_key(*kind))
        })
        .copied()
        .collect()
}

impl Report {
    /// How many requests the faults that fired may fail at the most.
    ///
    /// HTTP/1.1: one per fired fault, since a connection carries one request
    /// at a time. This floor is tight (a run fails about half of it).
    ///
    /// h2c: every stream in flight on a connection when a fault cut it, plus
    /// two per fired fault for requests that the client had just handed to
    /// that connection, which the proxy never saw (hyper gives a GOAWAY's
    /// error to those too). This floor is loose: a connection-level fault may
    /// fail all 16 requests multiplexed on it, so only a crate that fails far
    /// more than the faults explain goes red here; the error kinds and the
    /// HTTP/1.1 rows catch the rest.
    pub fn allowance(&self) -> u64 {
        let fired = self
            .faults
            .iter()
            .filter(|(k, _)| **k != "none")
            .map(|(_, n)| n)
            .sum::<u64>();
        if self.h2 {
            3 * fired + self.exposed
        } else {
            fired
        }
    }

    /// Why this row is red although no invariant broke: too few successes
    /// for the faults that fired, or an error of a kind that no fired fault
    /// explains. Empty when the row is green. (That every fault kind fired is
    /// checked over the rows of a protocol: [`unfired`].)
    pub fn floor_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let failed: u64 = self.errors.values().sum();
        let floor = self.requests.saturating_sub(self.allowance());
        if self.successes < floor {
            failures.push(format!(
                "{}: {} of {} requests succeeded, below the floor of {floor} \
                 ({failed} failed, the faults that fired allow {})",
                self.label,
                self.successes,
                self.requests,
                self.allowance()
            ));
        }
        for (kind, n) in &self.errors {
            if !causes(kind).iter().any(|f| self.faults.contains_key(f)) {
                failures.push(format!(
                    "{}: {n} {kind} error(s), which none of the faults that fired \
                     ({:?}) can cause",
                    self.label,
                    self.faults.keys().collect::<Vec<_>>()
                ));
            }
        }
        failures
    }

    /// What is wrong with this row: broken invariants (a lost or duplicated
    /// byte, a panic, a leak) and the floor (see `floor_failures`). Empty
    /// when the row is green.
    pub fn verdict(&self) -> Vec<String> {
        let mut wrong: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("VIOLATION {v}"))
            .collect();
        if self.fd_delta != 0 {
            wrong.push(format!(
                "descriptors left open: {:?}; gone: {:?}",
                self.fds_left, self.fds_gone
            ));
        }
        if self.spill_left != 0 {
            wrong.push(format!("{} spill files left", self.spill_left));
        }
        if self.rss_growth_kib > 256 * 1024 {
            wrong.push(format!("RSS grew by {} KiB", self.rss_growth_kib));
        }
        wrong.extend(
            self.floor_failures()
                .into_iter()
                .map(|f| format!("FLOOR {f}")),
        );
        wrong
    }

    pub fn header() -> &'static str {
        "| transport | seed | requests | ok (floor) | typed errors | violations | idempotent repeats | \
         hops checked | connections (faulted) | fd delta | spill files left | RSS growth | time |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let faulted: u64 = self
            .faults
            .iter()
            .filter(|(k, _)| **k != "none")
            .map(|(_, n)| n)
            .sum();
        write!(
            f,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} ({faulted}) | {} | {} | {} KiB | {:.1} s |",
            self.label,
            self.seed,
            self.requests,
            self.successes,
            self.requests.saturating_sub(self.allowance()),
            if errors.is_empty() {
                "0".into()
            } else {
                errors.join(", ")
            },
            self.violations.len(),
            self.idempotent_repeats,
            self.hops_checked,
            self.connections,
            self.fd_delta,
            self.spill_left,
            self.rss_growth_kib,
            self.elapsed.as_secs_f64(),
        )
    }
}

fn open_fds() -> i64 {
    i64::try_from(fd_targets().len()).unwrap()
}

/// What each open descriptor is (`socket:[…]`, `anon_inode:[eventpoll]`, …).
pub fn fd_targets() -> Vec<String> {
    let mut targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    targets.sort();
    targets
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// How one request ended.
enum Outcome {
    /// The final echo: "METHOD LEN STATE".
    Ok(StatusCode, String),
    Err(String),
}

fn body_stream(plan: &Plan) -> reqwest::Body {
    let data = Bytes::from(pattern(plan.len));
    let Source::Stream { chunk, pause_ms } = plan.source else {
        return reqwest::Body::from(data);
    };
    let stream = futures_util::stream::unfold(data, move |mut rest| async move {
        if rest.is_empty() {
            return None;
        }
        if pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        let piece = rest.split_to(chunk.min(rest.len()));
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    reqwest::Body::wrap_stream(stream)
}

type TowerClient = redirect_policy::FollowRedirect<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        ReplayBody<Upload>,
    >,
>;

enum Clients {
    Client(redirect_policy::Client),
    Tower(Box<TowerClient>),
}

impl Clients {
    fn new(config: &Config) -> Self {
        let h2 = config.proto == Proto::H2c;
        match config.transport {
            Transport::Client => {
                // As `Client::new` builds it: reqwest's own retry off.
                let mut builder = reqwest::Client::builder()
                    .no_proxy()
                    .retry(reqwest::retry::never());
                if h2 {
                    builder = builder.http2_prior_knowledge();
                }
                Clients::Client(
                    redirect_policy::Client::from_builder(builder, Policy::standard()).unwrap(),
                )
            }
            Transport::Tower => {
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .http2_only(h2)
                .build_http::<ReplayBody<Upload>>();
                let layer = FollowRedirectLayer::new(Policy::standard());
                Clients::Tower(Box::new(tower_layer::Layer::layer(&layer, client)))
            }
        }
    }

    async fn send(&self, config: &Config, plan: &Plan, policy: Policy, url: String) -> Outcome {
        match self {
            Clients::Client(client) => {
                let sent = client
                    .request(plan.method.clone(), url)
                    .timeout(config.timeout)
                    .policy(policy)
                    .body(body_stream(plan))
                    .send()
                    .await;
                let response = match sent {
                    Ok(response) => response,
                    Err(e) => return Outcome::Err(format!("{:?}", e.kind())),
                };
                let status = response.status();
                match response.text().await {
                    Ok(text) => Outcome::Ok(status, text),
                    Err(e) => Outcome::Err(format!("{:?}", redirect_policy::Error::from(e).kind())),
                }
            }
            Clients::Tower(service) => {
                use tower::ServiceExt as _;
                let mut request = http::Request::builder()
                    .method(plan.method.clone())
                    .uri(url)
                    .body(Upload::new(body_stream(plan)))
                    .unwrap();
                request.extensions_mut().insert(policy);
                let exchange = async {
                    let response = service.clone().oneshot(request).await;
                    let response = match response {
                        Ok(response) => response,
                        Err(e) => return Outcome::Err(format!("{:?}", e.kind())),
                    };
                    let status = response.status();
                    match response.into_body().collect().await {
                        Ok(body) => Outcome::Ok(
                            status,
                            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                        ),
                        Err(_) => Outcome::Err("Request (final body)".into()),
                    }
                };
                // The layer has no timer: an outer timeout bounds the chain.
                match tokio::time::timeout(config.timeout, exchange).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Err("Timeout (outer)".into()),
                }
            }
        }
    }
}

/// Check one request's outcome and every hop the server saw of it.
async fn check(
    config: &Config,
    server: &Server,
    id: u64,
    plan: &Plan,
    outcome: &Outcome,
    took: Duration,
) -> (Vec<String>, u64, u64) {
    let mut broken = Vec::new();
    let case = format!("seed {} request {id} {plan:?}", config.seed);
    if took > config.timeout + config.slack {
        broken.push(format!(
            "{case}: took {took:?}, past the timeout and its slack"
        ));
    }
    if let Outcome::Ok(status, text) = outcome {
        let (method, kept) = plan.expected(plan.redirects.len());
        let len = if kept { plan.len } else { 0 };
        let expected = format!("{method} {len} whole");
        if *status != StatusCode::OK || *text != expected {
            broken.push(format!(
                "{case}: final answer {status} {text:?}, expected 200 {expected:?}"
            ));
        }
    }
    // Every hop must have ended (a superseded one is aborted, not left open).
    let deadline =
        Instant::now() + Duration::from_millis(config.stall_max_ms) + Duration::from_secs(5);
    let records = loop {
        let records = server.records(id);
        if records.iter().all(|r| r.end.is_some()) || Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for record in &records {
        let (method, kept) = plan.expected(record.hop);
        let whole = if kept { plan.len as u64 } else { 0 };
        let hop = format!("{case} hop {}", record.hop);
        if record.method != method {
            broken.push(format!(
                "{hop}: method {}, expected {method}",
                record.method
            ));
        }
        if let Some(at) = record.mismatch {
            broken.push(format!(
                "{hop}: byte {at} is not the original's (reordered, duplicated or foreign)"
            ));
        }
        match record.end {
            Some(End::Complete) if record.len != whole => broken.push(format!(
                "{hop}: a complete body of {} bytes, expected {whole}",
                record.len
            )),
            Some(End::Aborted) if record.len > whole => broken.push(format!(
                "{hop}: {} bytes, more than the {whole} sent",
                record.len
            )),
            None => broken.push(format!("{hop}: never ended ({} bytes read)", record.len)),
            _ => {}
        }
    }
    // A hop the server had whole twice was processed twice: a re-send of a
    // hop it had seen. Only a refused hop may go again, and for a GOAWAY
    // (which hyper may report for a processed request) only an idempotent
    // one, which HTTP lets a client repeat: a POST or PATCH never.
    let mut whole = std::collections::BTreeMap::<usize, (usize, bool)>::new();
    for record in records.iter().filter(|r| r.end == Some(End::Complete)) {
        let entry = whole.entry(record.hop).or_default();
        *entry = (entry.0 + 1, record.method.is_idempotent());
    }
    let mut repeats = 0;
    for (hop, (times, idempotent)) in whole.into_iter().filter(|&(_, (times, _))| times > 1) {
        if idempotent {
            repeats += 1;
        } else {
            broken.push(format!("{case} hop {hop}: processed whole {times} times"));
        }
    }
    server.forget(id);
    (broken, records.len() as u64, repeats)
}

/// Run the soak; the report says what happened.
// One run from start to report reads best as one story; splitting it scatters the fd/RSS baseline.
#[allow(clippy::too_many_lines)]
pub fn soak(config: &Config) -> Report {
    let started = Instant::now();
    // Descriptors are counted before anything starts and after everything
    // (servers and proxies included) has stopped: what is left is a leak,
    // whoever holds it, and no server's own churn blurs the count.
    let fds_before = open_fds();
    let targets_before = fd_targets();
    let server = Server::start(config.seed);
    let proxies = [
        Proxy::start(
            server.addr,
            config.seed,
            0,
            config.faults,
            config.stall_max_ms,
        ),
        Proxy::start(
            server.addr,
            config.seed,
            1,
            config.faults,
            config.stall_max_ms,
        ),
    ];
    server.set_origins([proxies[0].base(), proxies[1].base()]);
    let spill = tempfile::tempdir().unwrap();
    let rss_before = rss_kib();
    let report = Arc::new(Mutex::new(Report {
        label: format!("{:?} {:?}", config.transport, config.proto),
        h2: config.proto == Proto::H2c,
        seed: config.seed,
        requests: config.requests,
        ..Report::default()
    }));
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clients = Arc::new(Clients::new(config));
            let next = Arc::new(AtomicU64::new(0));
            let mut workers = Vec::new();
            for _ in 0..config.concurrency {
                let (clients, next, report) =
                    (Arc::clone(&clients), Arc::clone(&next), Arc::clone(&report));
                let (config, server, spill) = (config.clone(), &server, spill.path().to_owned());
                let base = proxies[0].base();
                // Scoped to this block: the workers borrow the server.
                workers.push(async move {
                    loop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id >= config.requests {
                            return;
                        }
                        let plan = Plan::of(config.seed, id);
                        let mut policy = Policy::standard();
                        if let Some(cap) = config.sabotage_replay_cap {
                            policy = policy.max_replay_body(cap);
                        }
                        if plan.spill {
                            policy = policy.spill_to_disk(64 << 10).spill_dir(&spill);
                        }
                        let url = format!("{base}/s/{id}/0/0");
                        let begun = Instant::now();
                        let send = clients.send(&config, &plan, policy, url);
                        // A panic in the crate is a violation, not a crash of the soak.
                        let outcome = match futures_util::FutureExt::catch_unwind(
                            std::panic::AssertUnwindSafe(send),
                        )
                        .await
                        {
                            Ok(outcome) => outcome,
                            Err(_) => Outcome::Err("PANIC".into()),
                        };
                        let took = begun.elapsed();
                        let (broken, hops, repeats) =
                            check(&config, server, id, &plan, &outcome, took).await;
                        let mut report = report.lock().unwrap();
                        report.hops_checked += hops;
                        report.idempotent_repeats += repeats;
                        match outcome {
                            Outcome::Ok(..) => report.successes += 1,
                            Outcome::Err(kind) if kind == "PANIC" => {
                                report.violations.push(format!("request {id}: panicked"));
                            }
                            Outcome::Err(kind) => *report.errors.entry(kind).or_default() += 1,
                        }
                        report.violations.extend(broken);
                    }
                });
            }
            futures_util::future::join_all(workers).await;
            drop(clients);
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
    // What is left behind: spill files, memory, then (once the servers and
    // proxies have stopped, and closing connections have had a moment)
    // descriptors.
    let mut report = Arc::try_unwrap(report).unwrap().into_inner().unwrap();
    report.spill_left = std::fs::read_dir(spill.path()).map_or(0, Iterator::count);
    report.rss_growth_kib = rss_kib() - rss_before;
    for proxy in &proxies {
        report.connections += proxy.stats.connections.load(Ordering::Relaxed);
        report.exposed += proxy.stats.exposed.load(Ordering::Relaxed);
        for (name, n) in proxy.stats.fired.lock().unwrap().iter() {
            *report.faults.entry(name).or_default() += n;
        }
    }
    drop(proxies);
    drop(server);
    drop(spill);
    let settle = Instant::now() + Duration::from_secs(15);
    let mut fd_delta = open_fds() - fds_before;
    while fd_delta != 0 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
        fd_delta = open_fds() - fds_before;
    }
    report.fd_delta = fd_delta;
    if fd_delta != 0 {
        let now = fd_targets();
        let mut left = now.clone();
        for old in &targets_before {
            if let Some(at) = left.iter().position(|t| t == old) {
                left.remove(at);
            }
        }
        report.fds_left = left;
        report.fds_gone = targets_before
            .iter()
            .filter(|t| !now.contains(t))
            .cloned()
            .collect();
    }
    report.elapsed = started.elapsed();
    report
}

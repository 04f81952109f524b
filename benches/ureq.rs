//! Side-by-side benchmark of the ureq adapter: ureq 3's own redirect
//! following against `redirect_policy::ureq::Agent` over an agent of the
//! same configuration, in one process, on one local server.
//!
//! ```text
//! cargo bench --bench ureq --features ureq               # everything
//! cargo bench --bench ureq --features ureq -- grid       # bodyless GET chains, 0/1/5 hops
//! cargo bench --bench ureq --features ureq -- stream     # a streamed PUT through a 307
//! cargo bench --bench ureq --features ureq -- expect     # Expect: 100-continue: latency, bytes
//! cargo bench --bench ureq --features ureq -- expect-memory  # 1 GiB past a 1 MiB cap: peak RSS
//! cargo bench --bench ureq --features ureq -- --rounds 5 # fewer rounds (default 21)
//! # instruction counts (callgrind): for SIDE in ureq ours, HOPS in 0 1 5, N in 300 900
//! cargo bench --bench ureq --features ureq --no-run
//! valgrind --tool=callgrind target/release/deps/ureq-* --profile SIDE HOPS N
//! ```
//!
//! Each cell alternates the sides in short runs (100 ms; the order flips
//! every round); figures are medians, spreads the range of the per-round
//! ratios.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report
#![allow(clippy::cast_precision_loss)] // figures for a report: f64 is precise enough

use std::io::Read as _;
use std::time::{Duration, Instant};

use http::StatusCode;
use redirect_policy::ureq::{Agent, Body};
use redirect_policy::Policy;

mod common;

use common::{median, spread, start_server, ACCEPTED, READ_BYTES};

fn plain() -> ureq::Agent {
    ureq::Agent::new_with_defaults()
}

fn ours() -> Agent {
    Agent::new(plain(), Policy::standard())
}

/// One bodyless GET through `hops` redirects, the body read to its end.
fn get(side: &str, theirs: &ureq::Agent, ours: &Agent, url: &str) {
    let mut response = if side == "ureq" {
        theirs.get(url).call().unwrap()
    } else {
        ours.get(url).call().unwrap()
    };
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.body_mut().read_to_vec().unwrap();
}

/// Requests per second of `side` over `run`.
fn rate(side: &str, theirs: &ureq::Agent, ours: &Agent, url: &str, run: Duration) -> f64 {
    let started = Instant::now();
    let mut done = 0u32;
    while started.elapsed() < run {
        get(side, theirs, ours, url);
        done += 1;
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

fn grid(base: &str, rounds: usize, run: Duration) {
    let (theirs, ours) = (plain(), ours());
    println!("## Throughput: ureq 3's own following vs redirect-policy's ureq adapter\n");
    println!(
        "Bodyless GET chains, one thread. {rounds} rounds of {} ms per side, the order \
         flipping every round. `ratio` = ureq req/s ÷ ours req/s: ours-over-ureq cost.\n",
        run.as_millis()
    );
    println!("| hops | ureq req/s | ours req/s | ratio | spread | new connections (ureq / ours) |");
    println!("|---:|---:|---:|---:|---|---|");
    for hops in [0u32, 1, 5] {
        let url = format!("{base}/hop/{hops}");
        rate("ureq", &theirs, &ours, &url, run);
        rate("ours", &theirs, &ours, &url, run);
        let (mut a, mut b, mut ratios) = (vec![], vec![], vec![]);
        let mut connections = [0u64; 2];
        for round in 0..rounds {
            let mut one = |side: &str, i: usize| {
                let before = ACCEPTED.load(std::sync::atomic::Ordering::Relaxed);
                let r = rate(side, &theirs, &ours, &url, run);
                connections[i] += ACCEPTED.load(std::sync::atomic::Ordering::Relaxed) - before;
                r
            };
            let (x, y) = if round % 2 == 0 {
                let x = one("ureq", 0);
                (x, one("ours", 1))
            } else {
                let y = one("ours", 1);
                (one("ureq", 0), y)
            };
            a.push(x);
            b.push(y);
            ratios.push(x / y);
        }
        println!(
            "| {hops} | {:.0} | {:.0} | {:.3} | {} | {} / {} |",
            median(&mut a),
            median(&mut b),
            median(&mut ratios.clone()),
            spread(&ratios),
            connections[0],
            connections[1]
        );
    }
    println!();
}

/// A 1 MiB PUT through one 307: ureq cannot follow it (it replays no body);
/// ours from a reader against ours from memory.
fn stream(base: &str, rounds: usize) {
    let ours = ours();
    let url = format!("{base}/hop/1");
    let data = common::pattern_chunk(0, 1024 * 1024);
    let theirs = match plain().put(&url).send(&data[..]) {
        Ok(response) => response.status().to_string(),
        Err(e) => format!("error: {e}"),
    };
    let once = |streamed: bool| {
        let started = Instant::now();
        let body = if streamed {
            Body::from_reader(std::io::Cursor::new(data.to_vec()))
        } else {
            Body::from(data.clone())
        };
        let mut response = ours.put(&url).send(body).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut sink = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut sink)
            .unwrap();
        started.elapsed().as_secs_f64()
    };
    for _ in 0..10 {
        once(true);
        once(false);
    }
    let (mut s, mut m, ratios) = alternate(rounds, 30, || once(true), || once(false));
    println!("## A streamed PUT through a 307 (1 MiB)\n");
    println!("| body | time per request (median) |");
    println!("|---|---:|");
    println!("| from memory (`Bytes`) | {:.0} µs |", median(&mut m) * 1e6);
    println!("| from a reader (teed) | {:.0} µs |", median(&mut s) * 1e6);
    println!(
        "\nreader ÷ memory: {:.3} (spread {}). ureq's own following, the same PUT: {theirs} \
         (it replays no body).",
        median(&mut ratios.clone()),
        spread(&ratios)
    );
    // What a reader costs ureq itself: plain ureq, no redirect, the same
    // bytes from a reader (chunked) and from memory.
    let direct = format!("{base}/hop/0");
    let agent = plain();
    let plain_once = |streamed: bool| {
        let started = Instant::now();
        let mut response = if streamed {
            let reader = std::io::Cursor::new(data.to_vec());
            agent
                .put(&direct)
                .send(ureq::SendBody::from_owned_reader(reader))
        } else {
            agent.put(&direct).send(&data[..])
        }
        .unwrap();
        let _ = response.body_mut().read_to_vec().unwrap();
        started.elapsed().as_secs_f64()
    };
    let mut plain_ratios = Vec::new();
    for _ in 0..rounds {
        let (mut xs, mut ys) = (vec![], vec![]);
        for _ in 0..15 {
            xs.push(plain_once(true));
            ys.push(plain_once(false));
        }
        plain_ratios.push(median(&mut xs) / median(&mut ys));
    }
    println!(
        "plain ureq, the same bytes with no redirect, reader ÷ memory: {:.3} (spread {}): what \
         a reader costs ureq itself.\n",
        median(&mut plain_ratios.clone()),
        spread(&plain_ratios)
    );
}

/// `rounds` rounds of `pairs` runs of `a` and `b` alternating (which goes
/// first flips every pair and round): each round's median of each side,
/// and their ratios a ÷ b.
fn alternate(
    rounds: usize,
    pairs: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (mut x, mut y) = (vec![], vec![]);
        for pair in 0..pairs {
            if (pair + round) % 2 == 0 {
                x.push(a());
                y.push(b());
            } else {
                y.push(b());
                x.push(a());
            }
        }
        let (x, y) = (median(&mut x), median(&mut y));
        xs.push(x);
        ys.push(y);
        ratios.push(x / y);
    }
    (xs, ys, ratios)
}

/// One row: the median time of a 16 MiB PUT to `url` with and without the
/// expectation, in alternating pairs.
fn latency(label: &str, url: &str, with: &Agent, without: &Agent, rounds: usize) {
    let data = common::pattern_chunk(0, 16 * 1024 * 1024);
    let once = |agent: &Agent| {
        let started = Instant::now();
        let mut response = agent.put(url).send(data.clone()).unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let _ = response.body_mut().read_to_vec().unwrap();
        started.elapsed().as_secs_f64()
    };
    for _ in 0..3 {
        once(with);
        once(without);
    }
    let (mut xs, mut ys, ratios) = alternate(rounds, 10, || once(with), || once(without));
    println!(
        "| {label} | {:.2} ms | {:.2} ms | {:.3} ({}) |",
        median(&mut xs) * 1e3,
        median(&mut ys) * 1e3,
        median(&mut ratios.clone()),
        spread(&ratios)
    );
}

/// `Expect: 100-continue` on ureq: what the wait costs against a server
/// that sends the 100 at once (hyper's), and the bytes that reach a server
/// that redirects before reading.
fn expect(base: &str, rounds: usize) {
    use std::sync::atomic::Ordering;
    let with = Agent::new(plain(), Policy::standard());
    let without = Agent::new(plain(), Policy::standard().no_expect_continue());
    println!("## `Expect: 100-continue` (ureq)\n");
    common::print_expect_latency_head(rounds);
    latency(
        "hyper (the benches' server)",
        &format!("{base}/hop/0"),
        &with,
        &without,
        rounds,
    );
    // nginx, where one runs: REDIRECT_POLICY_NGINX=http://127.0.0.1:18080/dav/f (a PUT
    // location that reads the body, e.g. `dav_methods PUT`).
    if let Ok(url) = std::env::var("REDIRECT_POLICY_NGINX") {
        latency("nginx (`dav_methods PUT`)", &url, &with, &without, rounds);
    }
    println!();
    // 64 MiB streamed through a 307 from a server that answers before it
    // reads: what reaches it, and what reaches the target.
    let big = common::pattern_chunk(0, 64 * 1024 * 1024);
    common::print_expect_bytes_head();
    for (label, agent) in [("with (default)", &with), ("without", &without)] {
        let before = READ_BYTES.load(Ordering::Relaxed);
        let body = Body::from_reader(std::io::Cursor::new(big.to_vec()));
        let (outcome, sent) = match agent.put(&format!("{base}/early/hop/1")).send(body) {
            Ok(mut response) => {
                let _ = response.body_mut().read_to_vec();
                let history = response.extensions().get::<redirect_policy::History>();
                let sent = history
                    .and_then(|h| h.hops().first())
                    .map_or("?".to_owned(), |hop| hop.body_bytes_sent().to_string());
                (response.status().to_string(), sent)
            }
            Err(e) => (
                format!("{:?}", e.kind()),
                "the stream, to the cap and past it".to_owned(),
            ),
        };
        println!(
            "| {label} | {outcome} | {sent} | {} |",
            READ_BYTES.load(Ordering::Relaxed) - before
        );
    }
    println!();
}

/// A reader of `len` pattern bytes, made as they are read (no copy of the
/// whole in memory).
struct Pattern {
    at: usize,
    len: usize,
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.len - self.at);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = common::pattern_byte(self.at + i);
        }
        self.at += n;
        Ok(n)
    }
}

/// The process's peak resident memory so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A 1 GiB stream of unknown length through a 307 answered before the body
/// is read, with `max_replay_body` at 1 MiB and no spill: it follows, and
/// the process's peak memory grows by what?
fn expect_memory(base: &str) {
    use std::sync::atomic::Ordering;
    const GIB: usize = 1024 * 1024 * 1024;
    let agent = Agent::new(plain(), Policy::standard().max_replay_body(1024 * 1024));
    // Warm up: a small upload through the same route, so that the
    // connection, the runtime and the buffers are there before the figure.
    let warm = Body::from_reader(Pattern {
        at: 0,
        len: 1024 * 1024,
    });
    let mut warmed = agent
        .put(&format!("{base}/early/hop/1"))
        .send(warm)
        .unwrap();
    let _ = warmed.body_mut().read_to_vec();
    let before = peak_rss_kib();
    let read_before = READ_BYTES.load(Ordering::Relaxed);
    let started = Instant::now();
    let body = Body::from_reader(Pattern { at: 0, len: GIB });
    let mut response = agent
        .put(&format!("{base}/early/hop/1"))
        .send(body)
        .unwrap();
    let _ = response.body_mut().read_to_vec().unwrap();
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "## A 1 GiB stream through a 307 answered unread, `max_replay_body` 1 MiB, no spill\n"
    );
    println!(
        "status {}, {:.1} s; body bytes sent to the redirecting server {}, read at the target \
         {}; peak RSS {} KiB before, {} KiB after: +{} KiB.\n",
        response.status(),
        elapsed.as_secs_f64(),
        response
            .extensions()
            .get::<redirect_policy::History>()
            .and_then(|h| h.hops().first())
            .map_or(0, redirect_policy::Hop::body_bytes_sent),
        READ_BYTES.load(Ordering::Relaxed) - read_before,
        before,
        peak_rss_kib(),
        peak_rss_kib().saturating_sub(before)
    );
}

/// `--profile SIDE HOPS N`: N bodyless GETs through HOPS redirects, for
/// callgrind.
fn profile(side: &str, hops: u32, n: usize) {
    let addr = start_server();
    let url = format!("http://{addr}/hop/{hops}");
    let (theirs, ours) = (plain(), ours());
    for _ in 0..n {
        get(side, &theirs, &ours, &url);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--profile") {
        profile(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(21, |v| v.parse().unwrap());
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["grid", "stream", "expect", "expect-memory"].contains(a))
        .collect();
    let wants = |what: &str| only.is_empty() || only.contains(&what);
    let base = format!("http://{}", start_server());
    if wants("grid") {
        grid(&base, rounds, Duration::from_millis(100));
    }
    if wants("stream") {
        stream(&base, rounds.min(7));
    }
    if wants("expect") {
        expect(&base, rounds.min(7));
    }
    // Alone in its process: a peak of memory is a high-water mark.
    if only.contains(&"expect-memory") {
        expect_memory(&base);
    }
}

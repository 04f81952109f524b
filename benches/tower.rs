//! Side-by-side benchmark of the tower layer: tower-http 0.7's
//! `FollowRedirect` (given `clone_body_fn`, so that it can replay bodies in
//! memory) against `redirect_policy::FollowRedirectLayer`, each over a
//! hyper-util client of the same configuration, in one process, on one local
//! server.
//!
//! ```text
//! cargo bench --bench tower --features tower,spill                 # everything
//! cargo bench --bench tower --features tower,spill -- grid         # the throughput grid
//! cargo bench --bench tower --features tower,spill -- stream       # streamed vs in memory
//! cargo bench --bench tower --features tower,spill -- memory       # 1 GiB through a 307, spill on
//! cargo bench --bench tower --features tower,spill -- expect       # Expect: 100-continue: latency, bytes
//! cargo bench --bench tower --features tower,spill -- expect-memory # 1 GiB past a 1 MiB cap: peak RSS
//! cargo bench --bench tower --features tower,spill -- --rounds 3   # fewer rounds (default 21)
//! cargo bench --bench tower --features tower,spill -- --slice-ms 300 # longer runs (default 100)
//! cargo bench --bench tower --features tower,spill -- grid --cell 0,1,16 --rounds 201  # some cells
//! # instruction counts (callgrind): build, then for SIDE in tower-http ours, HOPS in 0 1, N in 300 600
//! cargo bench --bench tower --features tower --no-run
//! valgrind --tool=callgrind target/release/deps/tower-* --profile SIDE HOPS N
//! # optionally a body size and a number of tasks: --profile SIDE HOPS N SIZE TASKS
//! ```
//!
//! As in `compare`, each cell alternates the sides in short runs (the order
//! flips every round); figures are medians, spreads the range of the
//! per-round ratios. The runs are short (100 ms) and many (21), so that a
//! burst of the machine's noise hits both sides of a round alike and the
//! median of the ratios sees past it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report
#![allow(clippy::cast_precision_loss)] // figures for a report: f64 is precise enough

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use redirect_policy::{Policy, ReplayBody};
use tower::ServiceExt as _;
use tower_http::follow_redirect::policy::{self as th_policy, PolicyExt as _};

mod common;

use common::{median, serve_here, spread, start_server, worker_cpu_ns, ACCEPTED, READ_BYTES};

type TowerHttp = tower_http::follow_redirect::FollowRedirect<
    Client<HttpConnector, Full<Bytes>>,
    th_policy::And<
        th_policy::Standard,
        th_policy::CloneBodyFn<fn(&Full<Bytes>) -> Option<Full<Bytes>>>,
    >,
>;
type Ours = redirect_policy::FollowRedirect<Client<HttpConnector, ReplayBody<Full<Bytes>>>>;
type OursStream = redirect_policy::FollowRedirect<Client<HttpConnector, ReplayBody<Chunks>>>;

#[allow(clippy::unnecessary_wraps)] // the shape tower-http's clone_body_fn takes
fn clone_full(body: &Full<Bytes>) -> Option<Full<Bytes>> {
    Some(body.clone())
}

fn hyper_client<B>() -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

#[derive(Clone)]
enum Side {
    TowerHttp(TowerHttp),
    Ours(Ours),
}

impl Side {
    async fn post(&self, url: &str, body: Bytes) {
        let request = |b| Request::post(url).body(b).unwrap();
        let response = match self {
            Side::TowerHttp(s) => s.clone().oneshot(request(Full::new(body))).await.unwrap(),
            Side::Ours(s) => s.clone().oneshot(request(Full::new(body))).await.unwrap(),
        };
        assert_eq!(response.status(), StatusCode::OK);
        let _ = response.into_body().collect().await.unwrap();
    }
}

fn sides() -> (Side, Side) {
    let policy = th_policy::Standard::default()
        .and::<_, Full<Bytes>, ()>(th_policy::clone_body_fn(clone_full as fn(&_) -> _));
    let tower_http =
        tower_http::follow_redirect::FollowRedirect::with_policy(hyper_client(), policy);
    let ours = redirect_policy::FollowRedirect::new(hyper_client(), Policy::standard());
    (Side::TowerHttp(tower_http), Side::Ours(ours))
}

#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    cpu_us: f64,
    /// Connections the server accepted during the run.
    connections: u64,
    /// Body bytes the server read per request.
    read_per_request: f64,
}

async fn measure(side: &Side, url: &str, body: &Bytes, tasks: usize, run: Duration) -> Run {
    let cpu0 = worker_cpu_ns().await;
    let accepted = ACCEPTED.load(Ordering::Relaxed);
    let read = READ_BYTES.load(Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + run;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (side, url, body) = (side.clone(), url.to_owned(), body.clone());
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                side.post(&url, body.clone()).await;
                done += 1;
            }
            done
        }));
    }
    let mut done = 0;
    for h in handles {
        done += h.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = worker_cpu_ns().await - cpu0;
    Run {
        rps: done as f64 / elapsed,
        cpu_us: cpu as f64 / 1e3 / done as f64,
        connections: ACCEPTED.load(Ordering::Relaxed) - accepted,
        read_per_request: (READ_BYTES.load(Ordering::Relaxed) - read) as f64 / done as f64,
    }
}

/// One cell of the grid: body size, hops, tasks.
type Cell = (usize, u32, usize);

async fn grid(base: &str, rounds: usize, run: Duration, only: &[Cell]) {
    let (theirs, ours) = sides();
    println!("## Throughput: tower-http 0.7 FollowRedirect vs redirect-policy's layer\n");
    println!(
        "{rounds} rounds per cell, {} ms per side per round, the order flipping every round. \
         Medians. `wall` = tower-http req/s ÷ ours req/s; `cpu` = ours ÷ tower-http client CPU \
         per request. Both are ours-over-tower-http costs: ≤ 1.02 is the target.\n",
        run.as_millis()
    );
    println!(
        "| body | hops | tasks | tower-http req/s | ours req/s | wall ratio | wall spread | \
         tower-http cpu µs/req | ours cpu µs/req | cpu ratio | cpu spread | new connections \
         (tower-http / ours) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|");
    let (mut worst_wall, mut worst_cpu): (f64, f64) = (0.0, 0.0);
    let mut medians = Vec::new();
    for (label, size) in [
        ("0 B", 0usize),
        ("16 KiB", 16 * 1024),
        ("1 MiB", 1024 * 1024),
    ] {
        let body = Bytes::from(vec![7u8; size]);
        for hops in [0u32, 1, 5] {
            let url = format!("{base}/hop/{hops}");
            for tasks in [1usize, 16] {
                if !only.is_empty() && !only.contains(&(size, hops, tasks)) {
                    continue;
                }
                measure(&theirs, &url, &body, tasks, Duration::from_millis(100)).await;
                measure(&ours, &url, &body, tasks, Duration::from_millis(100)).await;
                let (mut a, mut b, mut wall, mut cpu) = (vec![], vec![], vec![], vec![]);
                for round in 0..rounds {
                    let (x, y) = if round % 2 == 0 {
                        let x = measure(&theirs, &url, &body, tasks, run).await;
                        (x, measure(&ours, &url, &body, tasks, run).await)
                    } else {
                        let y = measure(&ours, &url, &body, tasks, run).await;
                        (measure(&theirs, &url, &body, tasks, run).await, y)
                    };
                    wall.push(x.rps / y.rps);
                    cpu.push(y.cpu_us / x.cpu_us);
                    // Both sides sent every hop's body whole, once, and
                    // reused their warm connections (a new one would cost a
                    // handshake that the other side did not pay).
                    let expected = (size as f64) * f64::from(hops + 1);
                    for r in [&x, &y] {
                        assert!(
                            (r.read_per_request - expected).abs() < 1.0,
                            "{label} {hops} {tasks}: {} bytes read per request, {expected} sent",
                            r.read_per_request
                        );
                        assert_eq!(
                            r.connections, 0,
                            "{label} {hops} {tasks} round {round}: a new connection after the warm-up"
                        );
                    }
                    a.push(x);
                    b.push(y);
                }
                let wall_m = median(&mut wall.clone());
                let cpu_m = median(&mut cpu.clone());
                worst_wall = worst_wall.max(wall_m);
                medians.push(wall_m);
                worst_cpu = worst_cpu.max(cpu_m);
                let pick = |runs: &[Run], f: fn(&Run) -> f64| {
                    median(&mut runs.iter().map(f).collect::<Vec<_>>())
                };
                println!(
                    "| {label} | {hops} | {tasks} | {:.0} | {:.0} | {wall_m:.3} | {} | {:.1} | \
                     {:.1} | {cpu_m:.3} | {} | {} / {} |",
                    pick(&a, |r| r.rps),
                    pick(&b, |r| r.rps),
                    spread(&wall),
                    pick(&a, |r| r.cpu_us),
                    pick(&b, |r| r.cpu_us),
                    spread(&cpu),
                    a.iter().map(|r| r.connections).sum::<u64>(),
                    b.iter().map(|r| r.connections).sum::<u64>(),
                );
            }
        }
    }
    let within = medians.iter().filter(|&&m| m <= 1.02).count();
    let geomean = (medians.iter().map(|m| m.ln()).sum::<f64>() / medians.len() as f64).exp();
    println!(
        "\nworst median ratio: wall {worst_wall:.3}, cpu {worst_cpu:.3}; wall medians ≤ 1.02 in \
         {within} of {} cells; geometric mean of the wall medians {geomean:.3}\n",
        medians.len()
    );
}

/// A named streamed body: `data` in 64 KiB frames.
struct Chunks(http_body_util::combinators::BoxBody<Bytes, Infallible>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }
}

/// What tower-http sends where it drops a body (it needs `Default`).
impl Default for Chunks {
    fn default() -> Self {
        Chunks(http_body_util::Empty::new().boxed())
    }
}

fn chunks(data: &Bytes, chunk: usize) -> Chunks {
    let data = data.clone();
    let frames = futures_util::stream::unfold(0usize, move |at| {
        let data = data.clone();
        async move {
            (at < data.len()).then(|| {
                let end = (at + chunk).min(data.len());
                (Ok(Frame::data(data.slice(at..end))), end)
            })
        }
    });
    Chunks(StreamBody::new(frames).boxed())
}

async fn streaming(base: &str, rounds: usize) {
    let data = Bytes::from(vec![3u8; 1024 * 1024]);
    let url = format!("{base}/hop/1");
    let memory = redirect_policy::FollowRedirect::new(hyper_client(), Policy::standard());
    let streamed: OursStream =
        redirect_policy::FollowRedirect::new(hyper_client(), Policy::standard());
    // One request, timed.
    let once = |streamed_body: bool| {
        let (memory, streamed, url, data) =
            (memory.clone(), streamed.clone(), url.clone(), data.clone());
        async move {
            let started = Instant::now();
            let response = if streamed_body {
                let request = Request::post(&url).body(chunks(&data, 64 * 1024)).unwrap();
                streamed.oneshot(request).await.unwrap()
            } else {
                let request = Request::post(&url).body(Full::new(data)).unwrap();
                memory.oneshot(request).await.unwrap()
            };
            assert_eq!(response.status(), StatusCode::OK);
            let _ = response.into_body().collect().await.unwrap();
            started.elapsed().as_secs_f64()
        }
    };
    for _ in 0..20 {
        once(true).await;
        once(false).await;
    }
    // Each round: 60 pairs, the two kinds alternating request by request
    // (the order flipping every pair), so that both see the same moment of
    // the machine; a round's ratio is the ratio of its two medians.
    let (mut s, mut m, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (mut xs, mut ys) = (vec![], vec![]);
        for pair in 0..60 {
            if pair % 2 == 0 {
                xs.push(once(true).await);
                ys.push(once(false).await);
            } else {
                ys.push(once(false).await);
                xs.push(once(true).await);
            }
        }
        let (x, y) = (median(&mut xs), median(&mut ys));
        s.push(x);
        m.push(y);
        ratios.push(x / y);
    }
    println!("## Streaming through the layer: a 1 MiB body through one 307\n");
    println!(
        "{rounds} rounds of 60 pairs, the two kinds alternating request by request; a round's \
         ratio is the ratio of its medians.\n"
    );
    println!("| body | time per request (median) |");
    println!("|---|---:|");
    println!(
        "| in memory (`Full<Bytes>`) | {:.0} µs |",
        median(&mut m) * 1e6
    );
    println!(
        "| streamed, 64 KiB frames | {:.0} µs |",
        median(&mut s) * 1e6
    );
    // tower-http with the same streamed request, measured (its standard
    // policy can clone no stream, so it cannot replay one).
    let theirs = tower_http::follow_redirect::FollowRedirect::with_policy(
        hyper_client::<Chunks>(),
        th_policy::Standard::default(),
    );
    let request = Request::post(&url).body(chunks(&data, 64 * 1024)).unwrap();
    let response = theirs.oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await.unwrap();
    println!(
        "\nstreamed ÷ in memory: {:.3} (spread {}; target ≤ 1.10). tower-http's FollowRedirect \
         with the same streamed request returns {status} (measured in this run): it cannot follow.\n",
        median(&mut ratios.clone()),
        spread(&ratios)
    );
}

/// In a child process: one 1 GiB streamed PUT through a 307, spill on;
/// prints the peak resident set in KiB.
#[cfg(feature = "spill")]
fn child(base: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        const MIB: usize = 1024 * 1024;
        let policy = Policy::standard()
            .max_replay_body(2048 * MIB)
            .spill_to_disk(8 * MIB);
        let service: OursStream = redirect_policy::FollowRedirect::new(hyper_client(), policy);
        // Generated as it goes (the source never holds the body), in a
        // position-dependent pattern whose digest the server keeps.
        let frames =
            futures_util::stream::iter((0..(1024 * MIB / common::PATTERN_CHUNK)).map(|i| {
                Ok::<_, Infallible>(Frame::data(common::pattern_chunk(
                    i * common::PATTERN_CHUNK,
                    common::PATTERN_CHUNK,
                )))
            }));
        let request = Request::put(format!("{base}/digest/hop/1"))
            .body(Chunks(StreamBody::new(frames).boxed()))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    });
    println!("{}", peak_rss_kib());
}

/// The process's peak resident memory so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

/// This benchmark run again as a child process with `mode` and `base`; what
/// it printed.
fn run_child(mode: &str, base: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([mode, base])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(feature = "spill")]
fn memory(base: &str) {
    common::DIGESTS.lock().unwrap().clear();
    let kib: f64 = run_child("--child", base).trim().parse().unwrap();
    let expected = common::assert_both_hops_got_the_pattern(1024 * 1024 * 1024);
    println!(
        "## Memory through the layer\n\n1 GiB streamed PUT through one 307, spilling past 8 MiB: \
         peak RSS {:.1} MiB (target ≤ 64 MiB); both hops' bodies have the SHA-256 of the \
         position-dependent pattern sent ({}…)\n",
        kib / 1024.0,
        &expected[..16]
    );
}

/// A 16 MiB PUT from memory to `url`, timed (the response read whole).
async fn put_16_mib(service: &Ours, url: &str, data: &Bytes) -> f64 {
    let started = Instant::now();
    let request = Request::put(url).body(Full::new(data.clone())).unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let _ = response.into_body().collect().await.unwrap();
    started.elapsed().as_secs_f64()
}

/// One row: the median time of a 16 MiB PUT with and without the
/// expectation, `rounds` rounds of 10 pairs alternating.
async fn expect_latency(label: &str, url: &str, with: &Ours, without: &Ours, rounds: usize) {
    let data = common::pattern_chunk(0, 16 * 1024 * 1024);
    for _ in 0..3 {
        put_16_mib(with, url, &data).await;
        put_16_mib(without, url, &data).await;
    }
    let (mut xs, mut ys, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (mut x, mut y) = (vec![], vec![]);
        for pair in 0..10 {
            if (pair + round) % 2 == 0 {
                x.push(put_16_mib(with, url, &data).await);
                y.push(put_16_mib(without, url, &data).await);
            } else {
                y.push(put_16_mib(without, url, &data).await);
                x.push(put_16_mib(with, url, &data).await);
            }
        }
        let (x, y) = (median(&mut x), median(&mut y));
        xs.push(x);
        ys.push(y);
        ratios.push(x / y);
    }
    println!(
        "| {label} | {:.2} ms | {:.2} ms | {:.3} ({}) |",
        median(&mut xs) * 1e3,
        median(&mut ys) * 1e3,
        median(&mut ratios.clone()),
        spread(&ratios)
    );
}

/// `Expect: 100-continue` through the layer: what the wait costs against a
/// server that sends the 100 at once, and the bytes that reach a server
/// that redirects before reading.
async fn expect(base: &str, rounds: usize) {
    let with: Ours = redirect_policy::FollowRedirect::new(hyper_client(), Policy::standard());
    let without: Ours = redirect_policy::FollowRedirect::new(
        hyper_client(),
        Policy::standard().no_expect_continue(),
    );
    println!("## `Expect: 100-continue` (tower layer, HTTP/1.1)\n");
    common::print_expect_latency_head(rounds);
    let hyper_url = format!("{base}/hop/0");
    expect_latency(
        "hyper (the benches' server)",
        &hyper_url,
        &with,
        &without,
        rounds,
    )
    .await;
    if let Ok(url) = std::env::var("REDIRECT_POLICY_NGINX") {
        expect_latency("nginx (`dav_methods PUT`)", &url, &with, &without, rounds).await;
    }
    println!();
    let big = common::pattern_chunk(0, 64 * 1024 * 1024);
    common::print_expect_bytes_head();
    for expecting in [true, false] {
        let policy = if expecting {
            Policy::standard()
        } else {
            Policy::standard().no_expect_continue()
        };
        let service: OursStream = redirect_policy::FollowRedirect::new(hyper_client(), policy);
        let before = READ_BYTES.load(Ordering::Relaxed);
        let request = Request::put(format!("{base}/early/hop/1"))
            .body(chunks(&big, 64 * 1024))
            .unwrap();
        let (outcome, sent) = match service.oneshot(request).await {
            Ok(response) => {
                let sent = response
                    .extensions()
                    .get::<redirect_policy::History>()
                    .and_then(|h| h.hops().first())
                    .map_or("?".to_owned(), |hop| hop.body_bytes_sent().to_string());
                let status = response.status().to_string();
                let _ = response.into_body().collect().await;
                (status, sent)
            }
            Err(e) => (
                format!("{:?}", e.kind()),
                "the stream, to the cap and past it".to_owned(),
            ),
        };
        let label = if expecting {
            "with (default)"
        } else {
            "without"
        };
        println!(
            "| {label} | {outcome} | {sent} | {} |",
            READ_BYTES.load(Ordering::Relaxed) - before
        );
    }
    println!();
}

/// In a child process: a 1 GiB stream of unknown length through a 307
/// answered unread, `max_replay_body` 1 MiB, no spill; prints the status,
/// the body bytes sent to the redirecting server, the bytes read at the
/// target, and the peak resident set in KiB before and after.
fn expect_child(base: &str) {
    const MIB: usize = 1024 * 1024;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let service: OursStream = redirect_policy::FollowRedirect::new(
            hyper_client(),
            Policy::standard().max_replay_body(MIB),
        );
        let frames = |len: usize| {
            futures_util::stream::iter((0..len / common::PATTERN_CHUNK).map(|i| {
                Ok::<_, Infallible>(Frame::data(common::pattern_chunk(
                    i * common::PATTERN_CHUNK,
                    common::PATTERN_CHUNK,
                )))
            }))
        };
        let upload = |len: usize| {
            let service = service.clone();
            let request = Request::put(format!("{base}/early/hop/1"))
                .body(Chunks(StreamBody::new(frames(len)).boxed()))
                .unwrap();
            async move {
                let response = service.oneshot(request).await.unwrap();
                let status = response.status();
                let sent = response
                    .extensions()
                    .get::<redirect_policy::History>()
                    .and_then(|h| h.hops().first())
                    .map_or(u64::MAX, redirect_policy::Hop::body_bytes_sent);
                let _ = response.into_body().collect().await.unwrap();
                (status, sent)
            }
        };
        // Warm up: the connection, the runtime, the buffers.
        upload(MIB).await;
        let before = peak_rss_kib();
        let started = Instant::now();
        let (status, bytes_out) = upload(1024 * MIB).await;
        println!(
            "{status} {bytes_out} {:.1} {before} {}",
            started.elapsed().as_secs_f64(),
            peak_rss_kib()
        );
    });
}

/// `--expect-child` in a child process (a peak of memory is a high-water
/// mark: alone in its process).
fn expect_memory(base: &str) {
    let read_before = READ_BYTES.load(Ordering::Relaxed);
    let line = run_child("--expect-child", base);
    let v: Vec<&str> = line.split_whitespace().collect();
    let (before, after): (u64, u64) = (v[4].parse().unwrap(), v[5].parse().unwrap());
    println!(
        "## A 1 GiB stream through a 307 answered unread, `max_replay_body` 1 MiB, no spill \
         (tower layer)\n\nstatus {} {}, {} s; body bytes sent to the redirecting server {}, read \
         at the target {}; peak RSS {before} KiB before, {after} KiB after: +{} KiB.\n",
        v[0],
        v[1],
        v[3],
        v[2],
        // (Less the child's 1 MiB warm-up, read at the same target.)
        READ_BYTES.load(Ordering::Relaxed) - read_before - 1024 * 1024,
        after.saturating_sub(before)
    );
}

/// `--profile SIDE HOPS N [SIZE [TASKS]]`: N POSTs of SIZE bytes (default
/// 0) from TASKS tasks (default 1), for callgrind.
fn profile(side: &str, hops: u32, n: usize, body_len: usize, tasks: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = serve_here().await;
        let url = format!("http://{addr}/hop/{hops}");
        let (theirs, ours) = sides();
        let side = if side == "tower-http" { theirs } else { ours };
        let body = Bytes::from(vec![7u8; body_len]);
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (side, url, body) = (side.clone(), url.clone(), body.clone());
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        side.post(&url, body.clone()).await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--profile") {
        let extra = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
        profile(
            &args[1],
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
            extra(4, 0),
            extra(5, 1),
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--expect-child") {
        expect_child(&args[1]);
        return;
    }
    #[cfg(feature = "spill")]
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1]);
        return;
    }
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap())
    };
    let rounds = usize::try_from(flag("--rounds", 21)).unwrap();
    let slice = flag("--slice-ms", 100);
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["grid", "stream", "memory", "expect", "expect-memory"].contains(a))
        .collect();
    let wants = |what: &str| only.is_empty() || only.contains(&what);
    let addr = start_server();
    let base = format!("http://{addr}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    if wants("grid") {
        // `--cell SIZE,HOPS,TASKS` (repeatable): those cells only, in the
        // grid's order (for a long run of a few).
        let cells: Vec<Cell> = args
            .windows(2)
            .filter(|w| w[0] == "--cell")
            .map(|w| {
                let v: Vec<usize> = w[1].split(',').map(|n| n.parse().unwrap()).collect();
                (v[0], u32::try_from(v[1]).unwrap(), v[2])
            })
            .collect();
        rt.block_on(grid(&base, rounds, Duration::from_millis(slice), &cells));
    }
    if wants("stream") {
        rt.block_on(streaming(&base, rounds));
    }
    #[cfg(feature = "spill")]
    if wants("memory") {
        memory(&base);
    }
    if wants("expect") {
        rt.block_on(expect(&base, rounds.min(7)));
    }
    // Alone in its process (a child): a peak of memory is a high-water mark.
    if only.contains(&"expect-memory") {
        expect_memory(&base);
    }
}

//! Side-by-side benchmark: reqwest's own redirect following against this
//! crate, in one process, on one local server.
//!
//! ```text
//! cargo bench --bench compare                 # everything, as in BENCHMARKS.md
//! cargo bench --bench compare -- grid         # only the throughput grid
//! cargo bench --bench compare -- stream       # streamed vs in-memory body, first byte
//! cargo bench --bench compare -- memory       # peak RSS of a child process
//! cargo bench --bench compare -- --rounds 3   # fewer rounds (default 7)
//! ```
//!
//! Each cell alternates the two sides in short runs (the order flips every
//! round) so that drift on a shared machine hits both alike; the figure is
//! the median, and the spread is the range of the per-round ratios.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report
#![allow(clippy::cast_precision_loss)] // figures for a report: f64 is precise enough
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ditto, on positive figures

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use redirect_policy::Policy;

// ---------------------------------------------------------------- server

/// When the first body byte of the last `/first/...` request arrived.
static FIRST_BYTE: OnceLock<Mutex<Option<Instant>>> = OnceLock::new();
/// Body bytes the server has read (to check that a run really sent them).
static READ_BYTES: AtomicU64 = AtomicU64::new(0);

/// `/hop/N...`: 307 to `/hop/N-1...`, and 200 at `/hop/0`. The body is read
/// to the end and dropped. `/first/...` also notes the first byte's arrival.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let first = path.starts_with("/first/");
    let mut body = req.into_body();
    let mut noted = false;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            if first && !noted && !data.is_empty() {
                *FIRST_BYTE.get_or_init(Default::default).lock().unwrap() = Some(Instant::now());
                noted = true;
            }
            READ_BYTES.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    let rest = path
        .trim_start_matches("/first")
        .trim_start_matches("/hop/");
    let n: u32 = rest.split('/').next().unwrap_or("0").parse().unwrap_or(0);
    let mut response = if n == 0 {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    } else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        let prefix = if first { "/first" } else { "" };
        r.headers_mut().insert(
            "location",
            format!("{prefix}/hop/{}", n - 1).parse().unwrap(),
        );
        r
    };
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().unwrap());
    Ok(response)
}

/// The server, on a runtime thread of its own (one worker: the machine has
/// two cores, one for each side).
fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(handle))
                        .await;
                });
            }
        });
    });
    addr
}

// ---------------------------------------------------------------- sides

#[derive(Clone)]
enum Side {
    Reqwest(reqwest::Client),
    Ours(redirect_policy::Client),
}

impl Side {
    async fn post(&self, url: &str, body: reqwest::Body) -> reqwest::Response {
        match self {
            Side::Reqwest(c) => c.post(url).body(body).send().await.unwrap(),
            Side::Ours(c) => c.post(url).body(body).send().await.unwrap(),
        }
    }
}

fn sides() -> (Side, Side) {
    let reqwest = reqwest::Client::builder().build().unwrap();
    let ours =
        redirect_policy::Client::from_builder(reqwest::Client::builder(), Policy::standard())
            .unwrap();
    (Side::Reqwest(reqwest), Side::Ours(ours))
}

/// Requests per second of `side` over `run`, with `tasks` concurrent loops.
async fn rps(side: &Side, url: &str, body: &Bytes, tasks: usize, run: Duration) -> f64 {
    let started = Instant::now();
    let deadline = started + run;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let side = side.clone();
        let url = url.to_owned();
        let body = body.clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let response = side.post(&url, body.clone().into()).await;
                assert_eq!(response.status(), StatusCode::OK);
                let _ = response.bytes().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

// ---------------------------------------------------------------- grid

async fn grid(base: &str, rounds: usize) {
    let (plain, ours) = sides();
    println!("## Throughput: reqwest's own redirects vs redirect-policy\n");
    println!("{rounds} rounds per cell, 0.25 s per side per round, sides alternating.");
    println!("ratio = reqwest req/s ÷ ours req/s (time per request, ours over reqwest; ≤ 1.02 is the target).\n");
    println!(
        "| body | hops | tasks | reqwest req/s | ours req/s | ratio (median) | ratio spread |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    let run = Duration::from_millis(250);
    let mut worst: f64 = 0.0;
    for (label, size) in [
        ("0 B", 0usize),
        ("16 KiB", 16 * 1024),
        ("1 MiB", 1024 * 1024),
    ] {
        let body = Bytes::from(vec![7u8; size]);
        for hops in [0u32, 1, 5] {
            let url = format!("{base}/hop/{hops}");
            for tasks in [1usize, 16] {
                // Warm both pools.
                rps(&plain, &url, &body, tasks, Duration::from_millis(100)).await;
                rps(&ours, &url, &body, tasks, Duration::from_millis(100)).await;
                let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
                for round in 0..rounds {
                    let (x, y) = if round % 2 == 0 {
                        let x = rps(&plain, &url, &body, tasks, run).await;
                        (x, rps(&ours, &url, &body, tasks, run).await)
                    } else {
                        let y = rps(&ours, &url, &body, tasks, run).await;
                        (rps(&plain, &url, &body, tasks, run).await, y)
                    };
                    a.push(x);
                    b.push(y);
                    ratios.push(x / y);
                }
                let ratio = median(&mut ratios.clone());
                worst = worst.max(ratio);
                let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ratios.iter().copied().fold(0.0, f64::max);
                println!(
                    "| {label} | {hops} | {tasks} | {:.0} | {:.0} | {ratio:.3} | {lo:.3} – {hi:.3} |",
                    median(&mut a),
                    median(&mut b),
                );
            }
        }
    }
    println!("\nworst median ratio: {worst:.3}\n");
}

// ---------------------------------------------------------------- streaming

fn stream_of(data: Bytes, chunk: usize) -> reqwest::Body {
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let data = data.clone();
        async move {
            (at < data.len()).then(|| {
                let end = (at + chunk).min(data.len());
                (Ok::<_, Infallible>(data.slice(at..end)), end)
            })
        }
    });
    reqwest::Body::wrap_stream(stream)
}

async fn streaming(base: &str, rounds: usize) {
    let (plain, ours) = sides();
    let Side::Ours(ours_client) = &ours else {
        unreachable!()
    };
    let data = Bytes::from(vec![3u8; 1024 * 1024]);
    let url = format!("{base}/hop/1");
    println!("## Streaming: a 1 MiB body through one 307 (redirect-policy)\n");
    let time = |streamed: bool| {
        let data = data.clone();
        let url = url.clone();
        let client = ours_client.clone();
        async move {
            let n = 40;
            let started = Instant::now();
            for _ in 0..n {
                let body = if streamed {
                    stream_of(data.clone(), 64 * 1024)
                } else {
                    data.clone().into()
                };
                let r = client.post(&url).body(body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                let _ = r.bytes().await.unwrap();
            }
            started.elapsed().as_secs_f64() / f64::from(n)
        }
    };
    time(true).await;
    time(false).await;
    let (mut s, mut m, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = time(true).await;
            (x, time(false).await)
        } else {
            let y = time(false).await;
            (time(true).await, y)
        };
        s.push(x);
        m.push(y);
        ratios.push(x / y);
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    println!("| body | time per request (median) |");
    println!("|---|---:|");
    println!("| in memory | {:.0} µs |", median(&mut m) * 1e6);
    println!(
        "| streamed, 64 KiB chunks | {:.0} µs |",
        median(&mut s) * 1e6
    );
    println!(
        "\nstreamed ÷ in memory: {:.3} (spread {lo:.3} – {hi:.3}; target ≤ 1.10)\n",
        median(&mut ratios)
    );
    let plain_status = match &plain {
        Side::Reqwest(c) => c
            .post(&url)
            .body(stream_of(data.clone(), 64 * 1024))
            .send()
            .await
            .unwrap()
            .status(),
        Side::Ours(_) => unreachable!(),
    };
    println!(
        "plain reqwest with the same streamed request: returns {plain_status} (it cannot follow)\n"
    );

    // First byte: from the call to send() to the server reading the first
    // body byte, for a stream whose first chunk is ready at once.
    println!("### First byte of a streamed body on the wire\n");
    println!("| client | median | p90 |");
    println!("|---|---:|---:|");
    for (name, side) in [("plain reqwest", &plain), ("redirect-policy", &ours)] {
        let mut samples = Vec::new();
        for _ in 0..60 {
            *FIRST_BYTE.get_or_init(Default::default).lock().unwrap() = None;
            let started = Instant::now();
            let r = side
                .post(
                    &format!("{base}/first/hop/0"),
                    stream_of(data.clone(), 64 * 1024),
                )
                .await;
            let _ = r.bytes().await.unwrap();
            let first = FIRST_BYTE.get().unwrap().lock().unwrap().unwrap();
            samples.push(first.duration_since(started).as_secs_f64() * 1e6);
        }
        samples.sort_by(f64::total_cmp);
        let p90 = samples[samples.len() * 9 / 10];
        println!("| {name} | {:.0} µs | {p90:.0} µs |", median(&mut samples));
    }
    println!();
}

// ---------------------------------------------------------------- memory

/// In a child process: send one request and print the peak resident set.
fn child(kind: &str, hops: u32, size: usize, base: &str, cap: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let policy = Policy::standard().max_replay_body(cap);
        #[cfg(feature = "spill")]
        let policy = if kind == "spill" {
            policy.spill_to_disk(8 * 1024 * 1024)
        } else {
            policy
        };
        let client = redirect_policy::Client::new(policy);
        let url = format!("{base}/hop/{hops}");
        let body: reqwest::Body = if kind == "memory" {
            Bytes::from(vec![5u8; size]).into()
        } else {
            // Generated as it goes: the source never holds the body.
            let chunk = Bytes::from(vec![9u8; 64 * 1024]);
            let chunks = size / chunk.len();
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, Infallible>(Bytes::copy_from_slice(&chunk))),
            );
            reqwest::Body::wrap_stream(stream)
        };
        let r = client.put(&url).body(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{kind} {hops}");
        let _ = r.bytes().await.unwrap();
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse::<u64>()
        .unwrap();
    println!("{hwm}");
}

fn peak_kib(kind: &str, hops: u32, size: usize, base: &str, cap: usize) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--child",
            kind,
            &hops.to_string(),
            &size.to_string(),
            base,
            &cap.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn memory(base: &str) {
    const MIB: usize = 1024 * 1024;
    let size = 64 * MIB;
    println!("## Memory: peak RSS of a child process sending a 64 MiB body\n");
    println!("copies = (peak with 3 hops − peak with 0 hops) ÷ 64 MiB, median of 3 runs each.\n");
    println!("| body | 0 hops | 3 hops (307) | added copies | target |");
    println!("|---|---:|---:|---:|---:|");
    for (kind, cap, target) in [("memory", 8 * MIB, "≤ 0.1"), ("stream", 80 * MIB, "≤ 1.1")] {
        let mut zero: Vec<f64> = (0..3)
            .map(|_| peak_kib(kind, 0, size, base, cap) as f64)
            .collect();
        let mut three: Vec<f64> = (0..3)
            .map(|_| peak_kib(kind, 3, size, base, cap) as f64)
            .collect();
        let (z, t) = (median(&mut zero), median(&mut three));
        let copies = (t - z) * 1024.0 / size as f64;
        println!(
            "| {kind} | {:.1} MiB | {:.1} MiB | {copies:.2} | {target} |",
            z / 1024.0,
            t / 1024.0
        );
    }
    #[cfg(feature = "spill")]
    {
        let gib = 1024 * MIB;
        let peak = peak_kib("spill", 1, gib, base, 2 * gib);
        println!(
            "\n1 GiB streamed PUT through one 307, spilling past 8 MiB: peak RSS {:.1} MiB (target ≤ 64 MiB)",
            peak as f64 / 1024.0
        );
    }
    println!();
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let size = args[3].parse().unwrap();
        let cap = args[5].parse().unwrap();
        child(&args[1], args[2].parse().unwrap(), size, &args[4], cap);
        return;
    }
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(7, |n| n.parse().unwrap());
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["grid", "stream", "memory"].contains(a))
        .collect();
    let all = wanted.is_empty();
    let addr = start_server();
    let base = format!("http://{addr}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    if all || wanted.contains(&"grid") {
        rt.block_on(grid(&base, rounds));
    }
    if all || wanted.contains(&"stream") {
        rt.block_on(streaming(&base, rounds));
    }
    if all || wanted.contains(&"memory") {
        memory(&base);
    }
    println!(
        "server read {} MiB of request bodies in all",
        READ_BYTES.load(Ordering::Relaxed) / (1024 * 1024)
    );
}

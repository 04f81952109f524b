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
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use redirect_policy::Policy;

mod common;

use common::{median, spread, start_server, worker_cpu_ns, ACCEPTED, FIRST_BYTE, READ_BYTES};

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

/// A run's throughput and client CPU cost.
#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    cpu_us: f64,
}

/// Requests per second of `side` over `run`, with `tasks` concurrent loops,
/// and the client's CPU time per request.
async fn measure(side: &Side, url: &str, body: &Bytes, tasks: usize, run: Duration) -> Run {
    let cpu0 = worker_cpu_ns().await;
    let started = Instant::now();
    let done = requests(side, url, body, tasks, started + run).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = worker_cpu_ns().await - cpu0;
    Run {
        rps: done as f64 / elapsed,
        cpu_us: cpu as f64 / 1e3 / done as f64,
    }
}

async fn rps(side: &Side, url: &str, body: &Bytes, tasks: usize, run: Duration) -> f64 {
    let started = Instant::now();
    let done = requests(side, url, body, tasks, started + run).await;
    done as f64 / started.elapsed().as_secs_f64()
}

/// Requests completed by `tasks` loops before `deadline`.
async fn requests(side: &Side, url: &str, body: &Bytes, tasks: usize, deadline: Instant) -> u64 {
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
    total
}

/// `BENCH_ONE=size,hops,tasks`: one cell, long, with connection counts.
async fn one(base: &str, spec: &str) {
    let v: Vec<usize> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let (plain, ours) = sides();
    let body = Bytes::from(vec![7u8; v[0]]);
    let url = format!("{base}/hop/{}", v[1]);
    for round in 0..6 {
        for (name, side) in [("reqwest", &plain), ("ours", &ours)] {
            let c0 = ACCEPTED.load(Ordering::Relaxed);
            let r = measure(side, &url, &body, v[2], Duration::from_millis(500)).await;
            let c1 = ACCEPTED.load(Ordering::Relaxed);
            println!(
                "round {round} {name:8} {:8.0} req/s, {:6.1} µs cpu/req, {} new connections",
                r.rps,
                r.cpu_us,
                c1 - c0
            );
        }
    }
}

// ---------------------------------------------------------------- grid

async fn grid(base: &str, rounds: usize) {
    let (plain, ours) = sides();
    println!("## Throughput: reqwest's own redirects vs redirect-policy\n");
    println!(
        "{rounds} rounds per cell, 0.3 s per side per round, the order of the sides flipping \
         every round. Medians. `wall` = reqwest req/s ÷ ours req/s; `cpu` = ours ÷ reqwest \
         client CPU time per request (the client runtime's one worker thread, from \
         /proc/thread-self/schedstat). Both are ours-over-reqwest costs: ≤ 1.02 is the target.\n"
    );
    println!(
        "| body | hops | tasks | reqwest req/s | ours req/s | wall ratio | wall spread | \
         reqwest cpu µs/req | ours cpu µs/req | cpu ratio | cpu spread |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|");
    let run = Duration::from_millis(300);
    let (mut worst_wall, mut worst_cpu): (f64, f64) = (0.0, 0.0);
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
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let (mut wall, mut cpu) = (Vec::new(), Vec::new());
                for round in 0..rounds {
                    let (x, y) = if round % 2 == 0 {
                        let x = measure(&plain, &url, &body, tasks, run).await;
                        (x, measure(&ours, &url, &body, tasks, run).await)
                    } else {
                        let y = measure(&ours, &url, &body, tasks, run).await;
                        (measure(&plain, &url, &body, tasks, run).await, y)
                    };
                    wall.push(x.rps / y.rps);
                    cpu.push(y.cpu_us / x.cpu_us);
                    a.push(x);
                    b.push(y);
                }
                let wall_m = median(&mut wall.clone());
                let cpu_m = median(&mut cpu.clone());
                worst_wall = worst_wall.max(wall_m);
                worst_cpu = worst_cpu.max(cpu_m);
                let pick = |runs: &[Run], f: fn(&Run) -> f64| {
                    median(&mut runs.iter().map(f).collect::<Vec<_>>())
                };
                println!(
                    "| {label} | {hops} | {tasks} | {a_rps:.0} | {b_rps:.0} | {wall_m:.3} | {wall_s} | \
                     {a_cpu:.1} | {b_cpu:.1} | {cpu_m:.3} | {cpu_s} |",
                    a_rps = pick(&a, |r| r.rps),
                    b_rps = pick(&b, |r| r.rps),
                    a_cpu = pick(&a, |r| r.cpu_us),
                    b_cpu = pick(&b, |r| r.cpu_us),
                    wall_s = spread(&wall),
                    cpu_s = spread(&cpu),
                );
            }
        }
    }
    println!("\nworst median ratio: wall {worst_wall:.3}, cpu {worst_cpu:.3}\n");
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

/// Mean time per request over 40 POSTs of `data`, streamed or from memory.
async fn mean_time(side: &Side, url: &str, data: &Bytes, streamed: bool) -> f64 {
    let n = 40;
    let started = Instant::now();
    for _ in 0..n {
        let body = if streamed {
            stream_of(data.clone(), 64 * 1024)
        } else {
            data.clone().into()
        };
        let response = side.post(url, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let _ = response.bytes().await.unwrap();
    }
    started.elapsed().as_secs_f64() / f64::from(n)
}

async fn streaming(base: &str, rounds: usize) {
    let (plain, ours) = sides();
    let data = Bytes::from(vec![3u8; 1024 * 1024]);
    let url = format!("{base}/hop/1");
    println!("## Streaming: a 1 MiB body through one 307 (redirect-policy)\n");
    let time = |streamed: bool| mean_time(&ours, &url, &data, streamed);
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
        "\nstreamed ÷ in memory, through one 307: {:.3} (spread {lo:.3} – {hi:.3}; target ≤ 1.10)\n",
        median(&mut ratios)
    );
    // What streaming itself costs in hyper (chunked framing, a write per
    // chunk), with no redirect and no replay buffer: plain reqwest.
    let direct = format!("{base}/hop/0");
    let plain_time = |streamed: bool| mean_time(&plain, &direct, &data, streamed);
    let mut inherent = Vec::new();
    for _ in 0..rounds {
        let x = plain_time(true).await;
        inherent.push(x / plain_time(false).await);
    }
    println!(
        "the same comparison for plain reqwest with no redirect (what streaming itself costs \
         in hyper): {:.3}\n",
        median(&mut inherent)
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

    first_byte(base, &plain, &ours, &data).await;
}

/// From the call to `send()` to the server reading the first body byte, for
/// a stream whose first chunk is ready at once.
async fn first_byte(base: &str, plain: &Side, ours: &Side, data: &Bytes) {
    println!("### First byte of a streamed body on the wire\n");
    println!("| client | median | p90 |");
    println!("|---|---:|---:|");
    for (name, side) in [("plain reqwest", plain), ("redirect-policy", ours)] {
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
        let plain = kind.starts_with("plain-");
        // The spill run's server keeps each hop's digest: the parent checks it.
        let url = if kind == "spill" {
            format!("{base}/digest/hop/{hops}")
        } else {
            format!("{base}/hop/{hops}")
        };
        let body: reqwest::Body = if kind.ends_with("memory") {
            Bytes::from(vec![5u8; size]).into()
        } else if kind == "spill" {
            // A position-dependent pattern, generated as it goes.
            let stream = futures_util::stream::iter((0..size / common::PATTERN_CHUNK).map(|i| {
                Ok::<_, Infallible>(common::pattern_chunk(
                    i * common::PATTERN_CHUNK,
                    common::PATTERN_CHUNK,
                ))
            }));
            reqwest::Body::wrap_stream(stream)
        } else {
            // Generated as it goes: the source never holds the body.
            let chunk = Bytes::from(vec![9u8; 64 * 1024]);
            let chunks = size / chunk.len();
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, Infallible>(Bytes::copy_from_slice(&chunk))),
            );
            reqwest::Body::wrap_stream(stream)
        };
        let r = if plain {
            reqwest::Client::new()
                .put(&url)
                .body(body)
                .send()
                .await
                .unwrap()
        } else {
            client.put(&url).body(body).send().await.unwrap()
        };
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
    println!(
        "added copies = (peak of redirect-policy through 3 hops of 307 − peak of plain reqwest \
         sending the same body once, no redirect) ÷ 64 MiB; median of 3 runs each. The stream \
         is generated as it is sent, so plain reqwest never holds it whole.\n"
    );
    println!("| body | plain reqwest, 0 hops | redirect-policy, 0 hops | redirect-policy, 3 hops | added copies | target |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (kind, cap, target) in [("memory", 8 * MIB, "≤ 0.1"), ("stream", 80 * MIB, "≤ 1.1")] {
        let run = |kind: &str, hops: u32| {
            let mut peaks: Vec<f64> = (0..3)
                .map(|_| peak_kib(kind, hops, size, base, cap) as f64)
                .collect();
            median(&mut peaks)
        };
        let plain = run(&format!("plain-{kind}"), 0);
        let zero = run(kind, 0);
        let three = run(kind, 3);
        let copies = (three - plain) * 1024.0 / size as f64;
        println!(
            "| {kind} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {copies:.2} | {target} |",
            plain / 1024.0,
            zero / 1024.0,
            three / 1024.0
        );
    }
    #[cfg(feature = "spill")]
    {
        let gib = 1024 * MIB;
        common::DIGESTS.lock().unwrap().clear();
        let peak = peak_kib("spill", 1, gib, base, 2 * gib);
        let expected = common::assert_both_hops_got_the_pattern(gib);
        println!(
            "\n1 GiB streamed PUT through one 307, spilling past 8 MiB: peak RSS {:.1} MiB (target ≤ 64 MiB); \
             both hops' bodies have the SHA-256 of the position-dependent pattern sent ({}…)",
            peak as f64 / 1024.0,
            &expected[..16]
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
    if let Ok(spec) = std::env::var("BENCH_ONE") {
        rt.block_on(one(&base, &spec));
        return;
    }
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

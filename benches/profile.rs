//! Instruction counts of N requests through one side, for a deterministic
//! comparison under callgrind (wall-clock figures on a shared 2-core machine
//! are noisy; instruction counts are not):
//!
//! ```text
//! cargo bench --bench profile --no-run     # then, for SIDE in reqwest ours, HOPS in 0 1, N in 300 600:
//! valgrind --tool=callgrind target/release/deps/profile-* SIDE HOPS N
//! # optionally the number of tasks sending at once (default 1): SIDE HOPS N TASKS
//! ```
//!
//! The per-request cost is the slope: (count at 600 − count at 300) ÷ 300.
//! SIDE `ours-off` is `ours` with the network guard off
//! (`NetworkGuard::Off`; `ours` has the default, `NoEscalation`): the
//! difference of their slopes is what the guard costs a request.
//! The server runs on the client's current-thread runtime, so that the
//! counts do not depend on thread timing.
//! Run with no arguments (as `cargo bench` does) it sends 50 requests per
//! side and exits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report
mod common;

use bytes::Bytes;
use redirect_policy::Policy;

use common::serve_here;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        for side in ["reqwest", "ours"] {
            run(side, 1, 50, 1);
        }
        return;
    }
    let tasks = args.get(4).map_or(1, |t| t.parse().unwrap());
    run(
        &args[1],
        args[2].parse().unwrap(),
        args[3].parse().unwrap(),
        tasks,
    );
}

fn run(side: &str, hops: u32, n: usize, tasks: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // On this runtime: the counts do not depend on thread timing.
        let addr = serve_here().await;
        let url = format!("http://{addr}/hop/{hops}");
        let plain = reqwest::Client::builder().build().unwrap();
        let policy = if side == "ours-off" {
            Policy::standard().network_guard(redirect_policy::NetworkGuard::Off)
        } else {
            Policy::standard()
        };
        let ours =
            redirect_policy::Client::from_builder(reqwest::Client::builder(), policy).unwrap();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (plain, ours, url) = (plain.clone(), ours.clone(), url.clone());
                let reqwest = side == "reqwest";
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        let r = if reqwest {
                            plain.post(&url).body(Bytes::new()).send().await.unwrap()
                        } else {
                            ours.post(&url).body(Bytes::new()).send().await.unwrap()
                        };
                        let _ = r.bytes().await.unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
}

//! The long chaos soak (issue "Faults under load"): seeded redirect chains
//! through two fault-injecting proxies, on the reqwest `Client` and the tower
//! layer, HTTP/1.1 and h2c; every hop's body checked byte by byte at the
//! server. Prints the Reliability table of BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example soak --features tower,http2,spill -- --seed 7 --requests 20000
//! ```
//!
//! `--only client-h1|client-h2|tower-h1|tower-h2` runs one of the four.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test tool: a panic is the failure report

#[path = "../tests/chaos/mod.rs"]
mod chaos;
#[path = "../tests/support/mod.rs"]
mod support;

use chaos::run::{soak, unfired, Config, Proto, Report, Transport};

fn main() {
    let mut seed = 7;
    let mut requests = 20_000;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--seed", Some(v)) => seed = v.parse().expect("--seed takes a number"),
            ("--requests", Some(v)) => requests = v.parse().expect("--requests takes a number"),
            ("--only", Some(v)) => only = Some(v),
            _ => {
                eprintln!("usage: soak [--seed S] [--requests N] [--only client-h1|client-h2|tower-h1|tower-h2]");
                std::process::exit(2);
            }
        }
    }
    let all = [
        ("client-h1", Transport::Client, Proto::H1),
        ("client-h2", Transport::Client, Proto::H2c),
        ("tower-h1", Transport::Tower, Proto::H1),
        ("tower-h2", Transport::Tower, Proto::H2c),
    ];
    println!("{}", Report::header());
    let mut broken = 0;
    let mut reports = Vec::new();
    for (name, transport, proto) in all {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let report = soak(&Config::new(seed, requests, transport, proto));
        println!("{report}");
        eprintln!("   faults fired: {:?}", report.faults);
        // The same verdict as the short soak test's: invariants and floor.
        let wrong = report.verdict();
        for line in wrong.iter().take(10) {
            eprintln!("   {line}");
        }
        broken += wrong.len();
        reports.push(report);
    }
    // Every fault kind of each protocol fired in one of its rows.
    let rows: Vec<&Report> = reports.iter().collect();
    for proto in [Proto::H1, Proto::H2c] {
        for kind in unfired(proto, &rows) {
            if rows.iter().any(|r| r.h2 == (proto == Proto::H2c)) {
                eprintln!("   FLOOR {proto:?}: fault {kind:?} never fired");
                broken += 1;
            }
        }
    }
    if broken > 0 {
        std::process::exit(1);
    }
}

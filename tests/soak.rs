//! Issue "Faults under load": a short seeded chaos soak, on both transports
//! and both protocols, in one test (one after the other, so that each run's
//! count of open descriptors is its own). `SOAK_SEED` and `SOAK_REQUESTS`
//! change the seed and the size; the long run is `examples/soak.rs`.
#![cfg(all(
    feature = "tower",
    feature = "http2",
    feature = "spill",
    target_os = "linux"
))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod chaos;
mod support;

use chaos::run::{soak, Config, Proto, Report, Transport};

#[test]
fn short_chaos_soak_loses_nothing() {
    let seed = std::env::var("SOAK_SEED").map_or(20_261_201, |s| s.parse().unwrap());
    let requests = std::env::var("SOAK_REQUESTS").map_or(96, |s| s.parse().unwrap());
    let mut failed = Vec::new();
    eprintln!("{}", Report::header());
    for transport in [Transport::Client, Transport::Tower] {
        for proto in [Proto::H1, Proto::H2c] {
            let report = soak(&Config::new(seed, requests, transport, proto));
            eprintln!("{report}");
            eprintln!("   faults fired: {:?}", report.faults);
            if report.fd_delta != 0 {
                eprintln!("   descriptors left open: {:?}", report.fds_left);
                eprintln!("   descriptors gone: {:?}", report.fds_gone);
            }
            for violation in report.violations.iter().take(5) {
                eprintln!("   VIOLATION {violation}");
            }
            if !report.violations.is_empty()
                || report.fd_delta != 0
                || report.spill_left != 0
                || report.rss_growth_kib > 256 * 1024
            {
                failed.push(report.label.clone());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "invariants broken in {failed:?} (seed {seed}; see above)"
    );
}

/// One transport and protocol, for reproducing: `SOAK_ONLY=client-h1` etc.
#[test]
#[ignore = "a tool for reproducing a soak failure; run with --ignored"]
fn one_soak() {
    let seed = std::env::var("SOAK_SEED").map_or(20_261_201, |s| s.parse().unwrap());
    let requests = std::env::var("SOAK_REQUESTS").map_or(96, |s| s.parse().unwrap());
    let (transport, proto) = match std::env::var("SOAK_ONLY").as_deref() {
        Ok("client-h2") => (Transport::Client, Proto::H2c),
        Ok("tower-h1") => (Transport::Tower, Proto::H1),
        Ok("tower-h2") => (Transport::Tower, Proto::H2c),
        _ => (Transport::Client, Proto::H1),
    };
    let report = soak(&Config::new(seed, requests, transport, proto));
    eprintln!("{}\n{report}\n{:?}", Report::header(), report.faults);
    for violation in &report.violations {
        eprintln!("VIOLATION {violation}");
    }
}

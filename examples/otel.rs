//! `cargo run --example otel --features tracing`: the spans of a two-hop
//! chain (a POST answered 307, replayed to another origin), printed as a
//! tree, as an OpenTelemetry backend would show them
//! through `tracing-opentelemetry` (which reads the same fields: `otel.kind`,
//! `otel.name`, `http.request.method`, `url.full`, ...). The servers are
//! local, started by this program.
//!
//! A real exporter needs no code of yours beyond its own set-up:
//!
//! ```text
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(tracer))
//!     .init();
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use redirect_policy::{Client, History, Policy};
use support::{Reply, Server};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span's fields, kept in its extensions until it closes.
struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

/// Prints each span when it closes, indented by its depth; the tree is
/// printed bottom-up, so the lines are gathered and shown at the end.
struct Tree(Arc<Mutex<Vec<(usize, String)>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Tree {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let depth = span.scope().skip(1).count();
        let mut line = span.name().to_owned();
        if let Some(fields) = span.extensions().get::<Fields>() {
            for (name, value) in &fields.0 {
                let _ = write!(line, "\n    {name} = {value}");
            }
        }
        self.0.lock().unwrap().push((depth, line));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Tree(Arc::clone(&lines)));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let api = Server::start();
    let storage = Server::start();
    api.route(
        "/v1/upload",
        Reply::redirect(307, storage.url("/eu/upload")),
    );

    let client = Client::new(Policy::standard());
    let url = format!("{}?X-Amz-Signature=0badc0de&part=1", api.url("/v1/upload"));
    println!("POST {url}\n");
    let response = client
        .post(&url)
        .bearer_auth("never-in-a-span")
        .body(vec![7u8; 64 * 1024])
        .send()
        .await
        .unwrap();
    let history = response.extensions().get::<History>().cloned().unwrap();
    println!("status {}\n", response.status());
    drop(response);

    // Children close first: print parents before their children.
    let mut lines = lines.lock().unwrap().clone();
    lines.reverse();
    let chain = lines.iter().position(|(depth, _)| *depth == 0).unwrap();
    println!("{}", lines[chain].1.replace('\n', "\n│"));
    let mut hops: Vec<_> = lines.iter().filter(|(depth, _)| *depth == 1).collect();
    hops.reverse();
    for (_, text) in hops {
        println!("└─ {}", text.replace('\n', "\n   "));
    }

    println!(
        "\nHistory: {} redirects in {:?}",
        history.len(),
        history.total_elapsed()
    );
    for hop in &history {
        // (The history holds whole URLs, signatures too: show paths here.)
        println!(
            "  {} {} -> {}: {:?}, {} body bytes sent ({} replayed), from {:?}",
            hop.status(),
            hop.url().path(),
            hop.next_url().path(),
            hop.elapsed(),
            hop.body_bytes_sent(),
            hop.replayed_bytes(),
            hop.remote_addr(),
        );
    }
}

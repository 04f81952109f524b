//! Issue "Every hop visible": a span per hop by OpenTelemetry's HTTP client
//! conventions, on every adapter, over real sockets; the cost of each hop
//! in the `History`; `ResendCount` for the middlewares below ours.
//!
//! One capturing subscriber serves the whole binary (the blocking client's
//! runtime thread must see it too); each test finds its own chain by the
//! port of the server it started.
#![cfg(all(
    feature = "tracing",
    feature = "middleware",
    feature = "blocking",
    feature = "tower",
    feature = "ureq"
))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[cfg(feature = "http2")]
mod chaos;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use http::{Method, StatusCode};
use redirect_policy::{FollowRedirectsMiddleware, History, Policy, ResendCount};
use reqwest_tracing::reqwest_otel_span;
use support::{pattern, Adapter, Reply, Server, Upload, ADAPTERS};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span as the subscriber saw it: its name, its parent (an index into the
/// list) and its fields, as text.
#[derive(Clone, Debug)]
struct SpanRec {
    index: usize,
    name: &'static str,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

impl SpanRec {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Seen {
    spans: Vec<SpanRec>,
    /// Live span ids (the registry reuses them) to their index.
    live: HashMap<u64, usize>,
    /// Every event's fields, as text.
    events: Vec<String>,
}

struct Capture(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent_id = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        let mut seen = self.0.lock().unwrap();
        let parent = parent_id.and_then(|p| seen.live.get(&p).copied());
        let index = seen.spans.len();
        seen.spans.push(SpanRec {
            index,
            name: attrs.metadata().name(),
            parent,
            fields,
        });
        seen.live.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(&index) = seen.live.get(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.spans[index].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().events.push(format!("{fields:?}"));
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id.into_u64());
    }
}

/// The binary's subscriber, installed once.
fn seen() -> &'static Arc<Mutex<Seen>> {
    static SEEN: OnceLock<Arc<Mutex<Seen>>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&seen)));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        seen
    })
}

/// The chain span whose first URL is `first` (the last such), and its hop
/// spans in order.
fn chain_of(first: &str) -> (SpanRec, Vec<SpanRec>) {
    let seen = seen().lock().unwrap();
    let (index, chain) = seen
        .spans
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| s.name == "redirect_policy.follow" && s.field("url") == Some(first))
        .unwrap_or_else(|| panic!("no chain span for {first}"));
    let hops = seen
        .spans
        .iter()
        .filter(|s| s.name == "redirect_policy.hop" && s.parent == Some(index))
        .cloned()
        .collect();
    (chain.clone(), hops)
}

/// The spans named `name` under `parent`.
fn children_named(parent: &SpanRec, name: &str) -> Vec<SpanRec> {
    let seen = seen().lock().unwrap();
    seen.spans
        .iter()
        .filter(|s| s.name == name && s.parent == Some(parent.index))
        .cloned()
        .collect()
}

/// What a chain through one of the ways gave back.
struct Got {
    status: StatusCode,
    history: History,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Adapter(Adapter),
    Ureq,
}

fn vias() -> Vec<Via> {
    let mut all: Vec<Via> = ADAPTERS.iter().copied().map(Via::Adapter).collect();
    all.push(Via::Ureq);
    all
}

const SECRET_AUTH: &str = "Bearer s3cr3t-t0ken-value";
const SECRET_COOKIE: &str = "session=c00kie-secret-value";

/// `POST url` with `body` and the secret headers, through `via`.
async fn post(
    via: Via,
    policy: Policy,
    url: String,
    body: Vec<u8>,
) -> Result<Got, redirect_policy::Error> {
    match via {
        Via::Adapter(Adapter::Client) => {
            let client = redirect_policy::Client::new(policy);
            let response = client
                .post(url)
                .header("authorization", SECRET_AUTH)
                .header("cookie", SECRET_COOKIE)
                .body(body)
                .send()
                .await?;
            Ok(Got {
                status: response.status(),
                history: response.extensions().get::<History>().cloned().unwrap(),
            })
        }
        Via::Adapter(Adapter::Middleware) => {
            let inner = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let client = reqwest_middleware::ClientBuilder::new(inner)
                .with(FollowRedirectsMiddleware::new(policy))
                .build();
            let response = client
                .post(url)
                .header("authorization", SECRET_AUTH)
                .header("cookie", SECRET_COOKIE)
                .body(body)
                .send()
                .await
                .map_err(|e| match e {
                    reqwest_middleware::Error::Middleware(e) => {
                        e.downcast::<redirect_policy::Error>().unwrap()
                    }
                    reqwest_middleware::Error::Reqwest(e) => redirect_policy::Error::from(e),
                })?;
            Ok(Got {
                status: response.status(),
                history: response.extensions().get::<History>().cloned().unwrap(),
            })
        }
        Via::Adapter(Adapter::Blocking) => tokio::task::spawn_blocking(move || {
            let client = redirect_policy::blocking::Client::new(policy);
            let response = client
                .post(url)
                .header("authorization", SECRET_AUTH)
                .header("cookie", SECRET_COOKIE)
                .body(body)
                .send()?;
            Ok(Got {
                status: response.status(),
                history: response.history().cloned().unwrap(),
            })
        })
        .await
        .unwrap(),
        Via::Adapter(Adapter::Tower) => {
            use tower::ServiceExt as _;
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<redirect_policy::ReplayBody<Upload>>();
            let service = tower_layer::Layer::layer(
                &redirect_policy::FollowRedirectLayer::new(policy),
                client,
            );
            let request = http::Request::builder()
                .method(Method::POST)
                .uri(url)
                .header("authorization", SECRET_AUTH)
                .header("cookie", SECRET_COOKIE)
                .body(Upload::new(http_body_util::Full::new(bytes::Bytes::from(
                    body,
                ))))
                .unwrap();
            let response = service.oneshot(request).await?;
            Ok(Got {
                status: response.status(),
                history: response.extensions().get::<History>().cloned().unwrap(),
            })
        }
        Via::Ureq => tokio::task::spawn_blocking(move || {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build();
            let agent = redirect_policy::ureq::Agent::new_with_config(config).with_policy(policy);
            let response = agent
                .post(&url)
                .header("authorization", SECRET_AUTH)
                .header("cookie", SECRET_COOKIE)
                .send(body)?;
            Ok(Got {
                status: response.status(),
                history: response.extensions().get::<History>().cloned().unwrap(),
            })
        })
        .await
        .unwrap(),
    }
}

/// The chain span's `url` field for `url`: scheme, host, port, path.
fn shown(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    format!(
        "{}://{}{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort],
        url.path()
    )
}

/// Three hops (a 307 that replays the body, a 302 to another origin that
/// drops it, a 200): three hop spans under one chain span, on every way,
/// with the conventions' fields; the history has the same figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hops_are_three_client_spans_under_the_chain() {
    seen();
    for via in vias() {
        let a = Server::start();
        let b = Server::start();
        a.route("/a", Reply::redirect(307, "/b"));
        a.route("/b", Reply::redirect(302, b.url("/c")));
        let body = pattern(20_000);
        let len = body.len().to_string();
        let first = a.url("/a");
        let got = post(via, Policy::standard(), first.clone(), body.clone())
            .await
            .unwrap();
        assert_eq!(got.status, StatusCode::OK, "{via:?}");
        // What arrived: the body at the first two hops, none at the third.
        assert!(
            a.one_at("/a").body == body && a.one_at("/b").body == body,
            "{via:?}"
        );
        assert!(b.one_at("/c").body.is_empty(), "{via:?}");

        let (chain, hops) = chain_of(&shown(&first));
        assert_eq!(
            chain.field("http.response.status_code"),
            Some("200"),
            "{via:?}"
        );
        assert_eq!(chain.field("redirect_policy.hops"), Some("2"), "{via:?}");
        assert_eq!(hops.len(), 3, "{via:?}: {hops:#?}");
        let expect = [
            ("POST", "307", None, a.port(), &len, "0"),
            ("POST", "302", Some("1"), a.port(), &len, len.as_str()),
            ("GET", "200", Some("2"), b.port(), &"0".to_owned(), "0"),
        ];
        for (hop, (method, status, resend, port, sent, replayed)) in hops.iter().zip(expect) {
            let what = format!("{via:?} {method} {status}");
            assert_eq!(hop.field("otel.kind"), Some("client"), "{what}");
            assert_eq!(hop.field("otel.name"), Some(method), "{what}");
            assert_eq!(hop.field("http.request.method"), Some(method), "{what}");
            assert_eq!(
                hop.field("http.response.status_code"),
                Some(status),
                "{what}"
            );
            assert_eq!(hop.field("http.request.resend_count"), resend, "{what}");
            assert_eq!(hop.field("server.address"), Some("127.0.0.1"), "{what}");
            assert_eq!(
                hop.field("server.port"),
                Some(port.to_string().as_str()),
                "{what}"
            );
            assert_eq!(hop.field("network.protocol.version"), Some("1.1"), "{what}");
            assert_eq!(
                hop.field("network.peer.port"),
                Some(port.to_string().as_str()),
                "{what}"
            );
            assert_eq!(
                hop.field("redirect_policy.body_bytes_sent"),
                Some(sent.as_str()),
                "{what}"
            );
            assert_eq!(
                hop.field("redirect_policy.replayed_bytes"),
                Some(replayed),
                "{what}"
            );
            assert!(hop.field("redirect_policy.elapsed_us").is_some(), "{what}");
            assert!(hop.field("error.type").is_none(), "{what}");
            assert!(
                hop.field("url.full")
                    .unwrap()
                    .starts_with("http://127.0.0.1:"),
                "{what}"
            );
        }
        assert_eq!(
            hops[1].field("redirect_policy.body_action"),
            Some("Replayed")
        );
        assert_eq!(
            hops[2].field("redirect_policy.body_action"),
            Some("Dropped")
        );
        let stripped = hops[2].field("redirect_policy.stripped_headers").unwrap();
        for name in ["authorization", "cookie"] {
            assert!(stripped.contains(name), "{via:?}: {stripped}");
        }

        check_history(via, &got.history, body.len() as u64, a.port());
    }
}

/// The history of a three-hop chain: what each redirected request cost.
fn check_history(via: Via, history: &History, len: u64, port: u16) {
    assert_eq!(history.len(), 2);
    let total: std::time::Duration = history.iter().map(redirect_policy::Hop::elapsed).sum();
    assert!(history.total_elapsed() >= total, "{via:?}");
    assert!(history
        .iter()
        .all(|hop| hop.elapsed() > std::time::Duration::ZERO));
    let figures: Vec<_> = history
        .iter()
        .map(|hop| {
            (
                hop.body_bytes_sent(),
                hop.replayed_bytes(),
                hop.remote_addr().map(|a| a.port()),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [(len, 0, Some(port)), (len, len, Some(port))],
        "{via:?}"
    );
}

/// A stream's figures: the first hop hands out the whole stream from its
/// source (none of it replayed); the 307's hop replays it from the buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_counts_what_came_from_the_buffer() {
    seen();
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    let body = pattern(100_000);
    let client = redirect_policy::Client::new(Policy::standard());
    let response = client
        .put(a.url("/a"))
        .body(support::slow_stream(
            body.clone(),
            16 * 1024,
            std::time::Duration::ZERO,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<History>().unwrap();
    let hop = &history.hops()[0];
    assert_eq!((hop.body_bytes_sent(), hop.replayed_bytes()), (100_000, 0));
    let (_, hops) = chain_of(&shown(&a.url("/a")));
    assert_eq!(
        hops[1].field("redirect_policy.replayed_bytes"),
        Some("100000")
    );
    assert_eq!(
        hops[1].field("redirect_policy.body_bytes_sent"),
        Some("100000")
    );
    assert!(a.one_at("/b").body == body);
}

/// `url.full`: a presigned URL's signature values are `REDACTED` (the
/// conventions' names and the policy's), other values stay, userinfo is
/// gone; no Authorization or Cookie value is in any span field or event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_full_is_redacted_and_no_secret_reaches_a_field_or_event() {
    seen();
    let a = Server::start();
    a.route(
        "/bucket/key",
        Reply::redirect(
            307,
            "/other/key?sig=SIGVALUE2&partNumber=3&api_key=APIKEYVALUE",
        ),
    );
    let first = format!(
        "{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=CREDVALUE&X-Amz-Signature=SIGVALUE1&X-Amz-Security-Token=TOKVALUE&uploadId=77",
        a.url("/bucket/key")
    );
    let policy = Policy::standard().redact_query_parameter("API_KEY");
    for via in vias() {
        let got = post(via, policy.clone(), first.clone(), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(got.status, StatusCode::OK);
        let (_, hops) = chain_of(&shown(&first));
        let urls: Vec<&str> = hops.iter().map(|h| h.field("url.full").unwrap()).collect();
        let port = a.port();
        assert_eq!(
            urls,
            [
                format!("http://127.0.0.1:{port}/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&uploadId=77"),
                format!("http://127.0.0.1:{port}/other/key?sig=REDACTED&partNumber=3&api_key=REDACTED"),
            ],
            "{via:?}"
        );
    }
    let seen = seen().lock().unwrap();
    for secret in [
        "s3cr3t-t0ken-value",
        "c00kie-secret-value",
        "SIGVALUE1",
        "SIGVALUE2",
        "CREDVALUE",
        "TOKVALUE",
        "APIKEYVALUE",
    ] {
        for span in &seen.spans {
            for (name, value) in &span.fields {
                assert!(
                    !value.contains(secret),
                    "{secret} in {} {name}={value}",
                    span.name
                );
            }
        }
        for event in &seen.events {
            assert!(!event.contains(secret), "{secret} in an event: {event}");
        }
    }
}

/// A userinfo in the URL is not in `url.full` (reqwest sends it as basic
/// auth; the span shows host and path only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_full_has_no_userinfo() {
    seen();
    let a = Server::start();
    let url = format!("http://alice:PASSWORDVALUE@127.0.0.1:{}/p?q=1", a.port());
    let response = redirect_policy::Client::new(Policy::standard())
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, hops) = chain_of(&format!("http://127.0.0.1:{}/p", a.port()));
    assert_eq!(
        hops[0].field("url.full"),
        Some(format!("http://127.0.0.1:{}/p?q=1", a.port()).as_str())
    );
}

/// A hop that fails carries `error.type`: the error's kind where the chain
/// fails, the status code for a final 4xx or 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hop_carries_error_type() {
    seen();
    for via in vias() {
        // A loop past the limit: the last hop's 3xx is where it fails.
        let a = Server::start();
        a.route("/loop", Reply::redirect(307, "/loop2"));
        a.route("/loop2", Reply::redirect(307, "/loop3"));
        a.route("/loop3", Reply::redirect(307, "/loop4"));
        let first = a.url("/loop");
        let err = post(
            via,
            Policy::standard().max_redirects(2),
            first.clone(),
            b"x".to_vec(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.kind(), redirect_policy::ErrorKind::TooManyRedirects);
        let (_, hops) = chain_of(&shown(&first));
        assert_eq!(hops.len(), 3, "{via:?}");
        assert!(
            hops[..2].iter().all(|h| h.field("error.type").is_none()),
            "{via:?}"
        );
        assert_eq!(
            hops[2].field("error.type"),
            Some("TooManyRedirects"),
            "{via:?}"
        );
        assert_eq!(hops[2].field("otel.status_code"), Some("ERROR"), "{via:?}");

        // A redirect to a port nobody listens on: a `Request` error there.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let b = Server::start();
        b.route(
            "/gone",
            Reply::redirect(307, format!("http://127.0.0.1:{port}/x")),
        );
        let first = b.url("/gone");
        let err = post(via, Policy::standard(), first.clone(), b"x".to_vec())
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.kind(),
            redirect_policy::ErrorKind::Request,
            "{via:?}: {err}"
        );
        let (_, hops) = chain_of(&shown(&first));
        assert_eq!(hops.len(), 2, "{via:?}");
        assert_eq!(hops[1].field("error.type"), Some("Request"), "{via:?}");

        // A final 404 after a redirect: its status is the type.
        let c = Server::start();
        c.route("/old", Reply::redirect(308, "/missing"));
        c.route("/missing", Reply::status(404));
        let first = c.url("/old");
        let got = post(via, Policy::standard(), first.clone(), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(got.status, StatusCode::NOT_FOUND);
        let (chain, hops) = chain_of(&shown(&first));
        assert_eq!(hops[1].field("error.type"), Some("404"), "{via:?}");
        assert_eq!(
            chain.field("http.response.status_code"),
            Some("404"),
            "{via:?}"
        );
    }
}

/// A span backend for reqwest-tracing that reads our `ResendCount`.
struct WithResendCount;

impl reqwest_tracing::ReqwestOtelSpanBackend for WithResendCount {
    fn on_request_start(req: &reqwest::Request, ext: &mut http::Extensions) -> tracing::Span {
        let resend = ResendCount::of(ext);
        let span = reqwest_otel_span!(
            name = "HTTP request",
            req,
            http.request.resend_count = tracing::field::Empty
        );
        if resend > 0 {
            span.record("http.request.resend_count", resend);
        }
        span
    }

    fn on_request_end(
        span: &tracing::Span,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
        _: &mut http::Extensions,
    ) {
        reqwest_tracing::default_on_request_end(span, outcome);
    }
}

/// reqwest-tracing registered after our middleware: one of its spans per
/// hop, each under our hop span, each with the resend count it read from
/// the `ResendCount` we put in the extensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_tracing_after_the_middleware_gives_a_span_per_hop() {
    seen();
    let a = Server::start();
    a.route("/a", Reply::redirect(307, "/b"));
    a.route("/b", Reply::redirect(303, "/c"));
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(inner)
        .with(FollowRedirectsMiddleware::new(Policy::standard()))
        .with(reqwest_tracing::TracingMiddleware::<WithResendCount>::new())
        .build();
    let response = client.post(a.url("/a")).body("data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, hops) = chain_of(&shown(&a.url("/a")));
    assert_eq!(hops.len(), 3);
    let mut counts = Vec::new();
    for hop in &hops {
        let below = children_named(hop, "HTTP request");
        assert_eq!(below.len(), 1, "one reqwest-tracing span under {hop:?}");
        assert_eq!(
            below[0].field("http.response.status_code"),
            hop.field("http.response.status_code")
        );
        counts.push(
            below[0]
                .field("http.request.resend_count")
                .map(str::to_owned),
        );
    }
    assert_eq!(counts, [None, Some("1".to_owned()), Some("2".to_owned())]);
}

/// A hop an HTTP/2 server refused unprocessed is sent again: the re-send is
/// a request of its own, with the next resend count.
#[cfg(feature = "http2")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_resend_after_a_refusal_has_the_next_resend_count() {
    use chaos::proxy::{Fault, Proxy};

    seen();
    let server = Server::start();
    server.route("/a", Reply::redirect(307, "/b"));
    let target = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let proxy = Proxy::scripted(target, vec![Fault::ResetStream(256 * 1024)]);
    let client = redirect_policy::Client::from_builder(
        reqwest::Client::builder().http2_prior_knowledge(),
        Policy::standard(),
    )
    .unwrap();
    let data = pattern(1024 * 1024);
    let first = format!("{}/a", proxy.base());
    // A stream: reqwest re-sends a refused body in memory by itself, below us.
    let body = support::slow_stream(data.clone(), 16 * 1024, std::time::Duration::ZERO);
    let response = client.post(&first).body(body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        proxy.stats.fired.lock().unwrap().len(),
        1,
        "the fault fired"
    );
    let (_, hops) = chain_of(&shown(&first));
    let got: Vec<_> = hops
        .iter()
        .map(|h| {
            (
                h.field("http.request.resend_count"),
                h.field("http.response.status_code"),
                h.field("network.protocol.version"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (None, None, None),
            (Some("1"), Some("307"), Some("2")),
            (Some("2"), Some("200"), Some("2")),
        ]
    );
}

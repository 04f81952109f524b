//! A real HTTP/1.1 server on 127.0.0.1:0 for the integration tests.
//!
//! Each `Server` runs on its own thread and runtime, answers routes that the
//! test sets, and records what arrived: method, target, headers and body
//! bytes. Two servers are two origins.
#![allow(dead_code)] // each test binary uses its own part of the support code
#![allow(unreachable_pub)] // a test helper module: `pub` is for the test files, not an API
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

pub mod raw;
pub mod spec;

/// What one request looked like when it reached the server.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    /// Path and query, as sent.
    pub target: String,
    pub headers: HeaderMap,
    /// The body bytes the server read before it answered.
    pub body: Vec<u8>,
    /// What the server read of the body after it answered (a `Prefix`
    /// route goes on reading), and how the body ended.
    pub rest: Arc<Mutex<Rest>>,
}

/// The part of a request body read after the answer, and its end.
#[derive(Debug, Default)]
pub struct Rest {
    pub bytes: Vec<u8>,
    pub end: Option<BodyEnd>,
}

/// How a request body ended at the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The framing said "complete": a request the client meant to be whole.
    Complete,
    /// The stream was reset or the connection closed mid-body: an aborted
    /// request, never mistaken for a whole one.
    Aborted,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Every body byte the server read, before and after it answered.
    pub fn full_body(&self) -> Vec<u8> {
        let mut all = self.body.clone();
        all.extend_from_slice(&self.rest.lock().unwrap().bytes);
        all
    }

    /// How the body ended; `None` while the server is still reading it.
    pub fn end(&self) -> Option<BodyEnd> {
        self.rest.lock().unwrap().end
    }

    /// Wait (bounded) until the server has seen the end of the body. Async:
    /// the client's connection tasks may have to run for the end to come.
    pub async fn wait_end(&self, within: Duration) -> Option<BodyEnd> {
        let until = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.end() {
                return Some(end);
            }
            if tokio::time::Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The hop's body is the original, or a prefix of it that the client
    /// aborted: never a shorter body presented as complete.
    pub fn assert_whole_or_aborted(&self, original: &[u8], what: &str) {
        // The end first: once it is known, every byte before it is in (read
        // the other way round, a body still filling could be taken whole).
        let end = self.end();
        let body = self.full_body();
        assert!(
            body.len() <= original.len() && body[..] == original[..body.len()],
            "{what}: {} bytes that are not a prefix of the original",
            body.len()
        );
        if end == Some(BodyEnd::Complete) {
            assert_eq!(
                body.len(),
                original.len(),
                "{what}: a short body was sent as complete"
            );
        }
    }
}

/// How much of the request body a route reads before it answers.
#[derive(Clone, Copy, Debug)]
pub enum Read {
    All,
    /// Read this many bytes, answer, then drain the rest in the background.
    Prefix(usize),
    /// Read it all but keep only its SHA-256 (for long chains of big bodies).
    Digest,
    /// Answer without reading any of it (a server that answers a request
    /// sent with `Expect: 100-continue` before its 100: hyper sends no 100).
    Nothing,
}

/// What the server does at a route.
#[derive(Clone, Debug)]
pub enum Action {
    Respond,
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
    /// Answer after a pause.
    Delay(Duration),
}

#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    /// Send the head at once, and the body only after this pause.
    body_after: Duration,
    read: Read,
    action: Action,
}

impl Reply {
    pub fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Bytes::from_static(b"ok"),
            body_after: Duration::ZERO,
            read: Read::All,
            action: Action::Respond,
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            ..Self::ok()
        }
        .body(Vec::new())
    }

    pub fn redirect(status: u16, location: impl AsRef<[u8]>) -> Self {
        Self::status(status).location(location)
    }

    /// A 307 to `location` sent after the first `prefix` body bytes, its
    /// own 10-byte body `stall`ed; the server goes on reading the upload in
    /// the background (the silent-body-loss case).
    pub fn early_307(location: impl AsRef<[u8]>, prefix: usize, stall: Duration) -> Self {
        Self::redirect(307, location)
            .read(Read::Prefix(prefix))
            .body("0123456789")
            .body_after(stall)
    }

    pub fn location(self, location: impl AsRef<[u8]>) -> Self {
        self.header("location", location)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_ref()).unwrap(),
        ));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Send the head (with its Content-Length) at once, and the body only
    /// after `stall`: a slow 3xx body.
    pub fn body_after(mut self, stall: Duration) -> Self {
        self.body_after = stall;
        self
    }

    pub fn read(mut self, read: Read) -> Self {
        self.read = read;
        self
    }

    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }
}

/// Decides whether a request is accepted; an error becomes a 403 with the
/// message as its body.
pub type Verifier = Arc<dyn Fn(&Seen) -> Result<(), String> + Send + Sync>;

#[derive(Default)]
struct State {
    verifier: Option<Verifier>,
    /// Each route answers its replies in turn; the last one repeats.
    routes: HashMap<String, (Vec<Reply>, usize)>,
    seen: Vec<Seen>,
    connections: usize,
    /// Connections being served now.
    open_connections: usize,
}

pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, made per test.
pub struct TestCert {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestCert {
    pub fn new() -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        Self {
            cert_der: certified.cert.der().to_vec(),
            key_der: certified.signing_key.serialize_der(),
        }
    }

    /// A reqwest builder that trusts this certificate only.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let cert = reqwest::Certificate::from_der(&self.cert_der).unwrap();
        reqwest::Client::builder().tls_certs_only([cert])
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

async fn serve<IO>(io: IO, state: Arc<Mutex<State>>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // HTTP/1.1, or HTTP/2 with prior knowledge (h2c), whichever the client
    // speaks.
    state.lock().unwrap().open_connections += 1;
    let counted = Arc::clone(&state);
    let service = service_fn(move |req| handle(Arc::clone(&state), req));
    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
    counted.lock().unwrap().open_connections -= 1;
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None, LOOPBACK, 0)
    }

    /// A server on `ip` (an address of this network namespace), any port.
    pub fn start_at(ip: std::net::IpAddr) -> Self {
        Self::start_with(None, ip, 0)
    }

    /// A server on a fixed port (for default-port rules: 80 and 443). Fails
    /// where the port cannot be bound.
    pub fn try_start_on(port: u16, cert: Option<&TestCert>) -> std::io::Result<Self> {
        // Probe first, so that a busy or privileged port is an error here,
        // not a panic on the server thread.
        drop(std::net::TcpListener::bind(("127.0.0.1", port))?);
        Ok(Self::start_with(
            cert.map(TestCert::acceptor),
            LOOPBACK,
            port,
        ))
    }

    /// An https server with `cert`.
    pub fn start_tls(cert: &TestCert) -> Self {
        Self::start_with(Some(cert.acceptor()), LOOPBACK, 0)
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>, ip: std::net::IpAddr, port: u16) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind((ip, port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{addr}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                shared.lock().unwrap().connections += 1;
                                let state = Arc::clone(&shared);
                                let tls = tls.clone();
                                tokio::spawn(async move {
                                    match tls {
                                        None => serve(stream, state).await,
                                        Some(tls) => {
                                            if let Ok(stream) = tls.accept(stream).await {
                                                serve(stream, state).await;
                                            }
                                        }
                                    }
                                });
                            }
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .unwrap();
        Self {
            addr,
            scheme,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (or https) with no trailing slash; the port
    /// is left out when it is the scheme's default.
    pub fn base(&self) -> String {
        match (self.scheme, self.addr.port()) {
            ("http", 80) | ("https", 443) => format!("{}://127.0.0.1", self.scheme),
            _ => format!("{}://{}", self.scheme, self.addr),
        }
    }

    /// The same server under the name `localhost`: another origin.
    pub fn base_localhost(&self) -> String {
        format!("{}://localhost:{}", self.scheme, self.addr.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        self.route_seq(path, vec![reply])
    }

    /// A route that answers `replies` in turn, then repeats the last one.
    pub fn route_seq(&self, path: &str, replies: Vec<Reply>) -> &Self {
        assert!(!replies.is_empty());
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), (replies, 0));
        self
    }

    /// Every request received so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests received at `path` (query ignored).
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.target.split('?').next() == Some(path))
            .collect()
    }

    /// The only request received at `path`.
    pub fn one_at(&self, path: &str) -> Seen {
        let mut all = self.seen_at(path);
        assert_eq!(all.len(), 1, "requests at {path}: {:?}", self.seen());
        all.remove(0)
    }

    /// Check every request with `verifier` before answering it.
    pub fn verify(&self, verifier: impl Fn(&Seen) -> Result<(), String> + Send + Sync + 'static) {
        self.state.lock().unwrap().verifier = Some(Arc::new(verifier));
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.state.lock().unwrap().open_connections
    }

    /// How many request bodies (h2: streams) the server is still reading.
    pub fn open_bodies(&self) -> usize {
        self.seen().iter().filter(|s| s.end().is_none()).count()
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Re-raise a panic of the server thread in the test.
            let failed = thread.join().is_err();
            assert!(
                !failed || std::thread::panicking(),
                "the test server panicked"
            );
        }
    }
}

/// Read a request body as `read` says: what came before the answer, and the
/// record of the rest, read on in the background where the answer comes
/// first.
async fn read_body(mut body: Incoming, read: Read) -> (Vec<u8>, Arc<Mutex<Rest>>) {
    let mut bytes = Vec::new();
    let limit = match read {
        Read::All | Read::Digest => usize::MAX,
        Read::Prefix(n) => n,
        Read::Nothing => return (bytes, Arc::new(Mutex::new(Rest::default()))),
    };
    let rest = Arc::new(Mutex::new(Rest::default()));
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    let mut end = None;
    while bytes.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if matches!(read, Read::Digest) {
                        sha2::Digest::update(&mut digest, &data);
                    } else {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
            Some(Err(_)) => {
                end = Some(BodyEnd::Aborted);
                break;
            }
            None => {
                end = Some(BodyEnd::Complete);
                break;
            }
        }
    }
    if matches!(read, Read::Digest) {
        bytes = sha2::Digest::finalize(digest).to_vec();
    }
    if end.is_none() && hyper::body::Body::is_end_stream(&body) {
        end = Some(BodyEnd::Complete);
    }
    if end.is_none() {
        // Answer now; keep reading the rest in the background (keeping the
        // connection healthy), and record it and how it ended.
        let rest = Arc::clone(&rest);
        tokio::spawn(async move {
            loop {
                let frame = body.frame().await;
                let mut rest = rest.lock().unwrap();
                match frame {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            rest.bytes.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) => {
                        rest.end = Some(BodyEnd::Aborted);
                        break;
                    }
                    None => {
                        rest.end = Some(BodyEnd::Complete);
                        break;
                    }
                }
            }
        });
    } else {
        rest.lock().unwrap().end = end;
    }
    (bytes, rest)
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, std::io::Error>>, std::io::Error> {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let path = req.uri().path().to_owned();
    // A route may name a full target (path and query) or just a path.
    let reply = {
        let mut state = state.lock().unwrap();
        let key = if state.routes.contains_key(&target) {
            target.clone()
        } else {
            path
        };
        match state.routes.get_mut(&key) {
            Some((replies, served)) => {
                let reply = replies[(*served).min(replies.len() - 1)].clone();
                *served += 1;
                reply
            }
            None => Reply::ok(),
        }
    };
    let (parts, body) = req.into_parts();
    let (bytes, rest) = read_body(body, reply.read).await;
    // Copy the header values: hyper's share the connection's read buffer,
    // and keeping them would keep every buffer alive.
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        headers.append(
            name.clone(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let seen = Seen {
        method: parts.method.clone(),
        target,
        headers,
        body: bytes,
        rest,
    };
    let verdict = {
        let mut state = state.lock().unwrap();
        let verdict = state
            .verifier
            .as_ref()
            .map_or(Ok(()), |verify| verify(&seen));
        state.seen.push(seen);
        verdict
    };
    if let Err(reason) = verdict {
        let mut response = Response::new(full(Bytes::from(reason)));
        *response.status_mut() = StatusCode::FORBIDDEN;
        return Ok(response);
    }
    match reply.action {
        Action::Respond => {}
        Action::Drop => return Err(std::io::Error::other("dropping the connection")),
        Action::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Action::Delay(pause) => tokio::time::sleep(pause).await,
    }
    let mut response = if reply.body_after.is_zero() {
        Response::new(full(reply.body.clone()))
    } else {
        let (body, stall) = (reply.body.clone(), reply.body_after);
        let mut response = Response::new(stalled(body.clone(), stall));
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        response
    };
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().append(name, value);
    }
    Ok::<_, std::io::Error>(response)
}

fn full(bytes: Bytes) -> BoxBody<Bytes, std::io::Error> {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// `bytes` as one frame, sent only after `stall`.
fn stalled(bytes: Bytes, stall: Duration) -> BoxBody<Bytes, std::io::Error> {
    let stream = futures_util::stream::once(async move {
        tokio::time::sleep(stall).await;
        Ok(hyper::body::Frame::data(bytes))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// A named request body type: with a bare boxed body as the type parameter,
/// rustc cannot prove a spawned future `Send` ("implementation of `Service`
/// is not general enough"), with this layer as with tower-http's.
pub struct Upload(pub BoxBody<Bytes, redirect_policy::BoxError>);

impl hyper::body::Body for Upload {
    type Data = Bytes;
    type Error = redirect_policy::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, redirect_policy::BoxError>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.0.size_hint()
    }
}

impl Upload {
    /// Any body whose error converts.
    pub fn new<B>(body: B) -> Self
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<redirect_policy::BoxError>,
    {
        Self(BodyExt::boxed(BodyExt::map_err(body, Into::into)))
    }
}

/// `data` as a tower upload of `chunk`-byte frames, `pause` apart.
pub fn upload_stream(data: Vec<u8>, chunk: usize, pause: Duration) -> Upload {
    let data = Bytes::from(data);
    let frames = futures_util::stream::unfold(0usize, move |at| {
        let data = data.clone();
        async move {
            if at >= data.len() {
                return None;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let end = (at + chunk).min(data.len());
            Some((
                Ok::<_, Infallible>(hyper::body::Frame::data(data.slice(at..end))),
                end,
            ))
        }
    });
    Upload(
        http_body_util::StreamBody::new(frames)
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// The test pattern's byte at `i`.
pub fn pattern_byte(i: usize) -> u8 {
    u8::try_from((i * 31 + i / 251) % 251).unwrap_or(0)
}

/// A body of `len` bytes whose content depends on position, so that a lost,
/// duplicated or reordered chunk shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(pattern_byte).collect()
}

/// `data` as a stream of `chunk`-byte pieces, with `pause` between them.
pub fn slow_stream(data: Vec<u8>, chunk: usize, pause: Duration) -> reqwest::Body {
    let data = Bytes::from(data);
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let data = data.clone();
        async move {
            if at >= data.len() {
                return None;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let end = (at + chunk).min(data.len());
            Some((Ok::<_, Infallible>(data.slice(at..end)), end))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// A short digest for messages.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data);
    digest.iter().take(8).fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Like [`slow_stream`], with a token that every chunk holds: when
/// `Arc::strong_count(&token)` is back to 1, no chunk is alive any more — not
/// in the replay buffer, not in a connection's queue — and neither is the
/// stream.
pub fn tracked_stream(data: Vec<u8>, chunk: usize, pause: Duration) -> (reqwest::Body, Arc<()>) {
    /// A chunk's bytes, and the token, alive as long as the chunk is.
    struct Owned(Vec<u8>, #[allow(dead_code)] Arc<()>);
    impl AsRef<[u8]> for Owned {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    let token = Arc::new(());
    let held = Arc::clone(&token);
    let data = Arc::new(data);
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let data = Arc::clone(&data);
        let held = Arc::clone(&held);
        async move {
            if at >= data.len() {
                return None;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let end = (at + chunk).min(data.len());
            let owned = Owned(data[at..end].to_vec(), held);
            Some((Ok::<_, Infallible>(Bytes::from_owner(owned)), end))
        }
    });
    (reqwest::Body::wrap_stream(stream), token)
}

/// `data` in `chunk`-byte pieces with `empties` empty chunks before each.
pub fn stream_with_empty_chunks(data: Vec<u8>, chunk: usize, empties: usize) -> reqwest::Body {
    let data = Bytes::from(data);
    let mut pieces = Vec::new();
    for start in (0..data.len()).step_by(chunk.max(1)) {
        pieces.extend(std::iter::repeat_n(Bytes::new(), empties));
        pieces.push(data.slice(start..(start + chunk).min(data.len())));
    }
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        pieces.into_iter().map(Ok::<_, Infallible>),
    ))
}

/// Wait (bounded) until `done` holds; false if it never did.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    while !done() {
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A test that cannot run here (no `/proc`, no root for a port or a network
/// namespace) calls this and returns. Under CI (`CI` set) it fails instead:
/// a skipped check proves nothing, and CI must run every one. Locally the
/// line goes straight to the process's stderr, past the test harness's
/// capture, so that it shows in `cargo test` output even when the test
/// passes.
pub fn skip_or_fail(what: &str) {
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI is set, so this test may not skip: {what}"
    );
    let line = format!("\nSKIPPED (set CI=1 to make this a failure): {what}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The four ways to drive the shared loop, for tests that run a case
/// through each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    Client,
    Middleware,
    Blocking,
    Tower,
}

pub const ADAPTERS: [Adapter; 4] = [
    Adapter::Client,
    Adapter::Middleware,
    Adapter::Blocking,
    Adapter::Tower,
];

/// The process's peak resident memory so far, in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A file of `size` bytes (the test's pattern), written and hashed 64 KiB
/// at a time, so that the test itself never holds its bytes; and its digest.
pub fn pattern_file(size: usize) -> (std::fs::File, Vec<u8>) {
    use std::io::{Seek as _, Write as _};
    let mut file = tempfile::tempfile().unwrap();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut chunk = vec![0; 64 * 1024];
    for start in (0..size).step_by(chunk.len()) {
        let piece = &mut chunk[..(size - start).min(64 * 1024)];
        for (i, byte) in piece.iter_mut().enumerate() {
            let i = start + i;
            *byte = pattern_byte(i);
        }
        sha2::Digest::update(&mut hasher, &*piece);
        file.write_all(piece).unwrap();
    }
    file.rewind().unwrap();
    (file, sha2::Digest::finalize(hasher).to_vec())
}

/// Send a `size`-byte pattern file with `send(file, url of /a on a)`, `a`
/// answering 307 to `b`: both hops must have the file whole, with its
/// length. The growth of the process's peak memory over the send.
pub fn file_through_307(
    a: &Server,
    b: &Server,
    size: usize,
    send: impl FnOnce(std::fs::File, String) -> StatusCode,
) -> u64 {
    a.clear();
    b.clear();
    let (file, digest) = pattern_file(size);
    let before = peak_rss();
    let status = send(file, a.url("/a"));
    let grown = peak_rss().saturating_sub(before);
    assert_eq!(status, StatusCode::OK);
    for seen in [a.one_at("/a"), b.one_at("/b")] {
        assert_eq!(seen.method, Method::PUT);
        assert_eq!(seen.body, digest, "the body differs from the file");
        assert_eq!(
            seen.header("content-length"),
            Some(size.to_string().as_str())
        );
    }
    eprintln!("{size}-byte file: peak RSS grew by {} KiB", grown / 1024);
    grown
}

//! The soak's server: it answers `/s/{id}/{hop}/{origin}` as the request's
//! plan says, and checks every body byte against the pattern as it reads.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{pattern_byte, Plan};

/// What one hop looked like at the server.
#[derive(Clone, Debug)]
pub struct Record {
    pub hop: usize,
    pub method: Method,
    /// Body bytes read so far.
    pub len: u64,
    /// The first offset whose byte was not the pattern's.
    pub mismatch: Option<u64>,
    pub end: Option<End>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The framing said the body was whole.
    Complete,
    /// Reset or closed mid-body.
    Aborted,
}

#[derive(Default)]
struct State {
    records: HashMap<u64, Vec<Arc<Mutex<Record>>>>,
}

/// A server on 127.0.0.1 (HTTP/1.1 and h2c), on a runtime of its own.
pub struct Server {
    pub addr: SocketAddr,
    seed: u64,
    state: Arc<Mutex<State>>,
    /// The two origins' base URLs (the proxies), known once they start.
    origins: Arc<OnceLock<[String; 2]>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(seed: u64) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let origins = Arc::new(OnceLock::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (shared, bases) = (Arc::clone(&state), Arc::clone(&origins));
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chaos-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    // Up and running: what it holds is counted before the soak.
                    let _ = ready_tx.send(());
                    let mut stopped = stopped;
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((io, _)) = accepted else { continue };
                                let (state, bases) = (Arc::clone(&shared), Arc::clone(&bases));
                                tokio::spawn(serve(io, seed, state, bases));
                            }
                        }
                    }
                });
                // Dropping the runtime closes every connection left.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        ready.recv().unwrap();
        Server {
            addr,
            seed,
            state,
            origins,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn set_origins(&self, origins: [String; 2]) {
        self.origins.set(origins).unwrap();
    }

    /// The hops of request `id` seen so far.
    pub fn records(&self, id: u64) -> Vec<Record> {
        let state = self.state.lock().unwrap();
        state
            .records
            .get(&id)
            .map(|all| all.iter().map(|r| r.lock().unwrap().clone()).collect())
            .unwrap_or_default()
    }

    /// Forget request `id` (its checks are done).
    pub fn forget(&self, id: u64) {
        self.state.lock().unwrap().records.remove(&id);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    io: tokio::net::TcpStream,
    seed: u64,
    state: Arc<Mutex<State>>,
    origins: Arc<OnceLock<[String; 2]>>,
) {
    let service = hyper::service::service_fn(move |request| {
        handle(seed, Arc::clone(&state), Arc::clone(&origins), request)
    });
    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(
    seed: u64,
    state: Arc<Mutex<State>>,
    origins: Arc<OnceLock<[String; 2]>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let parts: Vec<&str> = request.uri().path().split('/').collect();
    let parsed = match parts.as_slice() {
        ["", "s", id, hop, origin] => id
            .parse::<u64>()
            .ok()
            .zip(hop.parse::<usize>().ok())
            .zip(origin.parse::<usize>().ok()),
        _ => None,
    };
    let Some(((id, hop), origin)) = parsed else {
        return Ok(text(StatusCode::NOT_FOUND, "no such path".into()));
    };
    let plan = Plan::of(seed, id);
    let record = Arc::new(Mutex::new(Record {
        hop,
        method: request.method().clone(),
        len: 0,
        mismatch: None,
        end: None,
    }));
    state
        .lock()
        .unwrap()
        .records
        .entry(id)
        .or_default()
        .push(Arc::clone(&record));
    let redirect = plan.redirects.get(hop).copied();
    let early = redirect.and_then(|r| r.early).unwrap_or(u64::MAX);
    // The framing: a declared length is the body's end once it is read (hyper
    // reports that end only when the connection is read again, which after
    // an early answer may be never: the client has sent it all and waits).
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    let done = read(&mut body, &record, early, declared).await;
    if !done {
        // Answer now; read the rest in the background, and record its end.
        let rest = Arc::clone(&record);
        tokio::spawn(async move { read(&mut body, &rest, u64::MAX, declared).await });
    }
    let Some(redirect) = redirect else {
        let arrived = record.lock().unwrap().clone();
        let answer = format!(
            "{} {} {}",
            arrived.method,
            arrived.len,
            match (arrived.end, arrived.mismatch) {
                (Some(End::Complete), None) => "whole",
                (_, Some(_)) => "mismatch",
                _ => "aborted",
            }
        );
        return Ok(text(StatusCode::OK, answer));
    };
    let next = if redirect.cross { 1 - origin } else { origin };
    let base = origins.get().map_or("", |o| o[next].as_str());
    let mut response = text(
        StatusCode::from_u16(redirect.status).unwrap(),
        "moved; see Location".into(),
    );
    let location = format!("{base}/s/{id}/{}/{next}", hop + 1);
    response
        .headers_mut()
        .insert(http::header::LOCATION, location.parse().unwrap());
    Ok(response)
}

/// Read the body into the record, checking each byte, up to `limit` bytes
/// (then `false`) or its end (`true`): the end of the stream, an error, or
/// the `declared` length reached.
async fn read(
    body: &mut Incoming,
    record: &Mutex<Record>,
    limit: u64,
    declared: Option<u64>,
) -> bool {
    loop {
        {
            let mut record = record.lock().unwrap();
            if declared == Some(record.len) && record.end.is_none() {
                record.end = Some(End::Complete);
            }
            if record.end.is_some() {
                return true;
            }
            if record.len >= limit {
                return false;
            }
        }
        match body.frame().await {
            None => {
                let mut record = record.lock().unwrap();
                // A stream that ends short of its declared length is aborted.
                record.end = Some(if declared.is_none_or(|n| n == record.len) {
                    End::Complete
                } else {
                    End::Aborted
                });
                return true;
            }
            Some(Err(_)) => {
                record.lock().unwrap().end = Some(End::Aborted);
                return true;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let mut record = record.lock().unwrap();
                if record.mismatch.is_none() {
                    let start = record.len;
                    if let Some(bad) = data
                        .iter()
                        .zip(start..)
                        .find(|&(&byte, at)| byte != pattern_byte(at))
                        .map(|(_, at)| at)
                    {
                        record.mismatch = Some(bad);
                    }
                }
                record.len += data.len() as u64;
            }
        }
    }
}

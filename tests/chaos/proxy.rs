//! A fault-injecting TCP proxy on 127.0.0.1: each connection gets one fault,
//! drawn from `(seed, proxy, connection number)`. HTTP/1.1 is forwarded as
//! bytes; h2c (seen by its preface) frame by frame, so that frames can be
//! injected between the server's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

use super::Rng;

/// The request bytes after which a soak's h2c connection ends with a GOAWAY.
const H2_LIFE: u64 = 4 << 20;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Close both sides after this many request bytes (mid-head or mid-body).
    CloseAfterRequest(u64),
    /// Close both sides after this many response bytes.
    CloseAfterResponse(u64),
    /// Reset the client's side (`SO_LINGER` 0) after this many request bytes.
    Reset(u64),
    /// Stop forwarding the request for `ms` after this many bytes.
    Stall(u64, u64),
    /// HTTP/1.1: after this many request bytes, answer a raw `307` to the
    /// same path and close.
    Early307(u64),
    /// h2c: after this many request bytes, a GOAWAY whose last-stream-id is
    /// below the newest stream (which the server then never sees finish).
    GoAway(u64),
    /// h2c: the same GOAWAY, when the client opens its n-th stream (for
    /// tests that need the fault between two given requests).
    GoAwayAtStream(u32),
    /// h2c: after this many request bytes, the newest stream is reset
    /// (`REFUSED_STREAM` to the client, `CANCEL` to the server).
    ResetStream(u64),
    /// One of the first connections of a soak proxy, kind `.0` of
    /// [`Fault::forced`] with offset `.1` and stall `.2`: made sure to fire,
    /// so that even a short soak sees every kind.
    Forced(u64, u64, u64),
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::CloseAfterRequest(_) => "close mid-request",
            Fault::CloseAfterResponse(_) => "close mid-response",
            Fault::Reset(_) => "reset",
            Fault::Stall(..) => "stall",
            Fault::Early307(_) => "raw early 307",
            Fault::GoAway(_) | Fault::GoAwayAtStream(_) => "h2 GOAWAY",
            Fault::ResetStream(_) => "h2 RST_STREAM",
            Fault::Forced(..) => "forced (not yet adapted to its protocol)",
        }
    }

    /// The first connections of each soak proxy (proxy 1 takes them in the
    /// reverse order): one of every kind of the connection's protocol, at
    /// offsets small enough to fire on almost any connection, so that even a
    /// short soak sees each kind.
    fn forced(proxy: u64, n: u64, rng: &mut Rng, stall_max_ms: u64) -> Option<Self> {
        const KINDS: u64 = 6;
        if n >= KINDS {
            return None;
        }
        let kind = if proxy % 2 == 0 { n } else { KINDS - 1 - n };
        Some(Fault::Forced(
            kind,
            rng.range(200, 2 << 10),
            rng.range(1, stall_max_ms.max(2)),
        ))
    }

    /// What forced fault `kind` is on the connection's protocol: request-side
    /// offsets reach 8 times as far on h2c (its connections carry every
    /// request), and a close mid-answer stays under 600 bytes on both (an h2c
    /// connection ends at 4 MiB of requests, before the draws' later closes).
    fn unforce(kind: u64, k: u64, ms: u64, h2: bool) -> Self {
        let k = if h2 { k * 8 } else { k };
        match (kind, h2) {
            (1, _) => Fault::CloseAfterResponse(k % 600),
            (2, _) => Fault::Reset(k),
            (3, _) => Fault::Stall(k, ms),
            (4, false) => Fault::Early307(k),
            (4, true) => Fault::GoAway(k),
            (5, true) => Fault::ResetStream(k),
            _ => Fault::CloseAfterRequest(k),
        }
    }

    fn draw(rng: &mut Rng, stall_max_ms: u64) -> Self {
        // Request-side offsets reach into the body of most requests.
        let k = rng.below(384 << 10);
        match rng.below(100) {
            0..=29 => Fault::None,
            // A close after some hundreds of answers: mid-answer, or right
            // after one, under a pooled connection's next request.
            30..=49 => Fault::CloseAfterResponse(rng.range(600, 48 << 10)),
            50..=57 => Fault::CloseAfterRequest(k),
            58..=64 => Fault::CloseAfterResponse(rng.below(600)),
            65..=71 => Fault::Reset(k),
            72..=81 => Fault::Stall(k, rng.range(1, stall_max_ms.max(2))),
            82..=89 => Fault::Early307(k),
            90..=94 => Fault::GoAway(k),
            _ => Fault::ResetStream(k),
        }
    }

    /// The fault as it applies to the connection's protocol.
    fn for_protocol(self, h2: bool) -> Self {
        match (self, h2) {
            (Fault::Forced(kind, k, ms), _) => Fault::unforce(kind, k, ms, h2),
            (Fault::GoAway(k) | Fault::ResetStream(k), false) => Fault::CloseAfterRequest(k),
            (Fault::Early307(k), true) => Fault::GoAway(k),
            // h2 connections carry every request: reach further.
            (Fault::CloseAfterRequest(k), true) => Fault::CloseAfterRequest(k * 8),
            (Fault::Reset(k), true) => Fault::Reset(k * 8),
            (Fault::GoAway(k), true) => Fault::GoAway(k * 8),
            (Fault::ResetStream(k), true) => Fault::ResetStream(k * 8),
            (Fault::CloseAfterResponse(k), true) => Fault::CloseAfterResponse(k * 64),
            // One h2 connection carries every request: without an end of its
            // own it would take all the soak and see one fault at most.
            (Fault::None, true) => Fault::ResetStream(1 << 21),
            (other, _) => other,
        }
    }
}

/// The faults that fired, by name.
#[derive(Default)]
pub struct Stats {
    pub connections: AtomicU64,
    /// h2c: the streams that a fault cut (those in flight on the connection
    /// when it closed, reset or went away, and each stream it reset), each
    /// time one fired. A fault can fail no request but these: with one per
    /// fired fault on HTTP/1.1, where a connection carries one request at a
    /// time, it bounds how many requests the faults may fail.
    pub exposed: AtomicU64,
    /// Bytes forwarded from the server, over all connections.
    pub response_bytes: AtomicU64,
    pub fired: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    fn fired(&self, fault: Fault) {
        *self.fired.lock().unwrap().entry(fault.name()).or_default() += 1;
    }

    /// A fault cuts every h2 stream still in flight on its connection.
    fn expose(&self, in_flight: &InFlight) {
        let n = in_flight.lock().unwrap().len() as u64;
        self.exposed.fetch_add(n, Ordering::Relaxed);
    }
}

/// h2c: the streams a client opened on a connection that the server has not
/// finished (no `END_STREAM` or `RST_STREAM` from it has been passed on).
type InFlight = Mutex<std::collections::BTreeSet<u32>>;

pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `upstream`; connection `n` suffers `Fault::draw` of
    /// `(seed, number, n)` (none at all with `faults` off).
    pub fn start(
        upstream: SocketAddr,
        seed: u64,
        number: u64,
        faults: bool,
        stall_max_ms: u64,
    ) -> Self {
        Self::pick(upstream, move |n| {
            let fault = if faults {
                let mut rng = Rng::of(seed, 2 + number, n);
                Fault::forced(number, n, &mut rng, stall_max_ms)
                    .unwrap_or_else(|| Fault::draw(&mut rng, stall_max_ms))
            } else {
                Fault::None
            };
            (fault, false)
        })
    }

    /// A proxy whose connection `n` suffers `script[n]` exactly as written
    /// (no fault past the script's end), for tests of one fault.
    pub fn scripted(upstream: SocketAddr, script: Vec<Fault>) -> Self {
        Self::pick(upstream, move |n| {
            let fault = usize::try_from(n)
                .ok()
                .and_then(|n| script.get(n).copied())
                .unwrap_or(Fault::None);
            (fault, true)
        })
    }

    /// `fault_of(n)`: connection `n`'s fault, and whether it applies as it is
    /// (`true`) or as [`Fault::for_protocol`] adapts it.
    fn pick(
        upstream: SocketAddr,
        fault_of: impl Fn(u64) -> (Fault, bool) + Send + 'static,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let counted = Arc::clone(&stats);
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chaos-proxy".into())
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
                                let Ok((client, _)) = accepted else { continue };
                                let n = counted.connections.fetch_add(1, Ordering::Relaxed);
                                let (fault, exact) = fault_of(n);
                                tokio::spawn(connection(client, upstream, fault, exact, Arc::clone(&counted)));
                            }
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        ready.recv().unwrap();
        Proxy {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// With `CHAOS_TRACE` set, a line when a connection's request side ends.
struct Logged(bool, Fault);

impl Drop for Logged {
    fn drop(&mut self) {
        eprintln!("proxy: connection (h2: {}) with {:?} ends", self.0, self.1);
    }
}

/// A unit written as it is; an empty one asks the writer to stop the
/// connection once what came before it is written.
type Unit = Vec<u8>;

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    exact: bool,
    stats: Arc<Stats>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    if matches!(fault, Fault::Reset(_)) {
        // The reset is the point: SO_LINGER 0 makes the close an RST.
        #[allow(deprecated)] // `set_zero_linger` is newer than the dev-dependency's lower bound
        let _ = client.set_linger(Some(Duration::ZERO));
    }
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (to_server, for_server) = mpsc::channel::<Unit>(32);
    let (to_client, for_client) = mpsc::channel::<Unit>(32);
    let (mode_tx, mode_rx) = oneshot::channel::<bool>();
    let abort = Arc::new(Notify::new());
    let in_flight = InFlight::default();
    let work = async {
        tokio::join!(
            upstream_side(
                client_read,
                to_server,
                to_client.clone(),
                mode_tx,
                (fault, exact),
                (&stats, &in_flight)
            ),
            downstream_side(
                server_read,
                to_client,
                mode_rx,
                (fault, exact),
                (&stats, &in_flight)
            ),
            write(server_write, for_server, &abort),
            write(client_write, for_client, &abort),
        )
    };
    // The abort first: once a side has asked for it, nothing more is passed on.
    tokio::select! {
        biased;
        () = abort.notified() => {}
        _ = work => {}
    }
}

/// Write units until the channel closes (then shut down), or an empty unit
/// (then abort the connection).
async fn write(mut to: OwnedWriteHalf, mut units: mpsc::Receiver<Unit>, abort: &Notify) {
    while let Some(unit) = units.recv().await {
        if unit.is_empty() {
            let _ = to.flush().await;
            abort.notify_one();
            // Hold the half until the abort drops the whole connection: a
            // half dropped here would send its peer a FIN at once, and a
            // server that saw its request end that way could answer before
            // the abort, through a proxy that had cut the request (a request
            // cut at 216 bytes came back "200 POST 216 aborted").
            std::future::pending::<()>().await;
        }
        if to.write_all(&unit).await.is_err() {
            abort.notify_one();
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// One h2 frame (header and payload), or `None` at a clean end.
async fn read_frame(from: &mut OwnedReadHalf) -> Option<Unit> {
    let mut head = [0u8; 9];
    from.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut frame = vec![0; 9 + len];
    frame[..9].copy_from_slice(&head);
    from.read_exact(&mut frame[9..]).await.ok()?;
    Some(frame)
}

fn frame(kind: u8, stream: u32, payload: &[u8]) -> Unit {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, 0];
    frame.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn stream_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff
}

/// A frame the proxy drops: a DATA frame still counts against the
/// connection's window (RFC 9113 §6.9), so the client gets that much back,
/// as from a server that read and discarded it.
async fn give_back(unit: &[u8], to_client: &mpsc::Sender<Unit>) {
    let len = u32::from_be_bytes([0, unit[0], unit[1], unit[2]]);
    if unit[3] == 0x0 && len > 0 {
        let _ = to_client.send(frame(0x8, 0, &len.to_be_bytes())).await;
    }
}

/// The path of the last request line in `bytes`, if one is there.
fn request_path(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices(" /s/")
        .filter_map(|(at, _)| {
            let rest = &text[at + 1..];
            let end = rest.find(" HTTP/1.1")?;
            let path = &rest[..end];
            path.bytes()
                .all(|b| b.is_ascii_digit() || b == b'/' || b == b's')
                .then(|| path.to_owned())
        })
        .last()
}

#[allow(clippy::too_many_lines)] // one fault machine, read top to bottom
async fn upstream_side(
    mut from: OwnedReadHalf,
    to_server: mpsc::Sender<Unit>,
    to_client: mpsc::Sender<Unit>,
    mode: oneshot::Sender<bool>,
    (fault, exact): (Fault, bool),
    (stats, in_flight): (&Stats, &InFlight),
) {
    let mut first = [0u8; 24];
    if from.read_exact(&mut first).await.is_err() {
        let _ = mode.send(false);
        return;
    }
    let h2 = &first == PREFACE;
    let _ = mode.send(h2);
    let mut fault = if exact { fault } else { fault.for_protocol(h2) };
    let trace = std::env::var_os("CHAOS_TRACE").is_some();
    let _log = trace.then(|| Logged(h2, fault));
    let mut sent = 0u64;
    // The streams whose last frame (END_STREAM) went to the server: it may
    // have processed them, so no fault may call them refused.
    let mut ended = std::collections::HashSet::new();
    let mut path = None;
    let mut newest_stream = 0u32;
    let mut reset_stream = None;
    let mut fired = false;
    // After an h2 stream reset, the connection closes a while later: h2
    // connections are few and long, and each should see more than one fault.
    let mut close_at = None;
    let mut pending = Some(first.to_vec());
    // After a GOAWAY: its last-stream-id, and when the connection closes.
    let mut going_away: Option<(u32, tokio::time::Instant)> = None;
    loop {
        let unit = match pending.take() {
            Some(unit) => unit,
            None if h2 => {
                // After a fault has fired, a connection that goes quiet for
                // 2 s is closed: a harness must not leave streams open for
                // ever (a real server times them out too).
                let until = going_away.map(|(_, until)| until).or_else(|| {
                    close_at.map(|_| tokio::time::Instant::now() + Duration::from_secs(2))
                });
                let read = match until {
                    None => Some(read_frame(&mut from).await),
                    Some(until) => tokio::time::timeout_at(until, read_frame(&mut from))
                        .await
                        .ok(),
                };
                match read {
                    Some(Some(frame)) => frame,
                    Some(None) => return,
                    None => {
                        // The GOAWAY's grace is over, or the connection went quiet.
                        stats.expose(in_flight);
                        let _ = to_client.send(Vec::new()).await;
                        return;
                    }
                }
            }
            None => {
                let mut buf = vec![0; 16 << 10];
                match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        buf
                    }
                }
            }
        };
        if h2 && unit.len() >= 9 && sent > 0 {
            let stream = stream_of(&unit);
            // HEADERS from the client open a stream.
            if unit[3] == 0x1 {
                newest_stream = newest_stream.max(stream);
                in_flight.lock().unwrap().insert(stream);
            }
            let refused = going_away.is_some_and(|(last, _)| stream > last);
            if (refused || Some(stream) == reset_stream) && matches!(unit[3], 0x0 | 0x1 | 0x9) {
                // The stream was reset: its frames go nowhere.
                give_back(&unit, &to_client).await;
                continue;
            }
        }
        if !h2 {
            if let Some(found) = request_path(&unit) {
                if std::env::var_os("CHAOS_TRACE").is_some() {
                    eprintln!("proxy: {found} on a connection with {fault:?} at byte {sent}");
                }
                path = Some(found);
            }
        }
        // An h2 connection carries every request of its pool: past 4 MiB,
        // it ends with a GOAWAY (as a server's limit on a connection's
        // requests does), so that the soak sees many connections and faults.
        if h2
            && !exact
            && close_at.is_none()
            && going_away.is_none()
            && newest_stream > 0
            && sent > H2_LIFE
            && !matches!(fault, Fault::GoAway(_) | Fault::GoAwayAtStream(_))
        {
            fault = Fault::GoAway(sent);
            fired = false;
        }
        if close_at.is_some_and(|at| sent > at) {
            stats.fired(Fault::CloseAfterRequest(sent));
            if h2 {
                stats.expose(in_flight);
            }
            let _ = to_server.send(Vec::new()).await;
            return;
        }
        let at = match fault {
            Fault::CloseAfterRequest(k)
            | Fault::Reset(k)
            | Fault::Stall(k, _)
            | Fault::Early307(k)
            | Fault::GoAway(k)
            | Fault::ResetStream(k) => Some(k),
            Fault::None
            | Fault::CloseAfterResponse(_)
            | Fault::GoAwayAtStream(_)
            | Fault::Forced(..) => None,
        };
        let opens_nth =
            |n: u32| h2 && unit.len() >= 9 && unit[3] == 0x1 && stream_of(&unit) == 2 * n - 1;
        let due = !fired
            && (at.is_some_and(|k| sent + unit.len() as u64 > k)
                || matches!(fault, Fault::GoAwayAtStream(n) if opens_nth(n)));
        if !due {
            if h2 && unit.len() >= 9 && matches!(unit[3], 0x0 | 0x1) && unit[4] & 0x1 != 0 {
                ended.insert(stream_of(&unit));
            }
            sent += unit.len() as u64;
            if to_server.send(unit).await.is_err() {
                return;
            }
            continue;
        }
        let k = at.unwrap_or(0);
        // HTTP/1.1 faults land on the exact byte; h2 ones between frames.
        let cut = if h2 {
            0
        } else {
            usize::try_from(k.saturating_sub(sent)).unwrap_or(0)
        };
        match fault {
            Fault::CloseAfterRequest(_) | Fault::Reset(_) => {
                stats.fired(fault);
                if h2 {
                    stats.expose(in_flight);
                }
                if cut > 0 {
                    let _ = to_server.send(unit[..cut].to_vec()).await;
                }
                let _ = to_server.send(Vec::new()).await;
                return;
            }
            Fault::Stall(_, ms) => {
                stats.fired(fault);
                fired = true;
                if cut > 0 {
                    let _ = to_server.send(unit[..cut].to_vec()).await;
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
                sent += unit.len() as u64;
                if to_server.send(unit[cut..].to_vec()).await.is_err() {
                    return;
                }
            }
            Fault::Early307(_) => {
                let Some(path) = path.clone() else {
                    // No request line seen: a plain close.
                    stats.fired(Fault::CloseAfterRequest(k));
                    let _ = to_server.send(Vec::new()).await;
                    return;
                };
                stats.fired(fault);
                if cut > 0 {
                    let _ = to_server.send(unit[..cut].to_vec()).await;
                }
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {path}\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = to_client.send(answer.into_bytes()).await;
                let _ = to_client.send(Vec::new()).await;
                return;
            }
            Fault::GoAway(_) | Fault::GoAwayAtStream(_) if newest_stream > 0 => {
                stats.fired(fault);
                // Below the newest stream unless the server has all of it:
                // then the GOAWAY is a graceful close that refuses nothing.
                let last = if ended.contains(&newest_stream) {
                    newest_stream
                } else {
                    newest_stream.saturating_sub(2)
                };
                let mut payload = last.to_be_bytes().to_vec();
                payload.extend_from_slice(&0u32.to_be_bytes()); // NO_ERROR
                let _ = to_client.send(frame(0x7, 0, &payload)).await;
                if last < newest_stream {
                    let _ = to_server
                        .send(frame(0x3, newest_stream, &8u32.to_be_bytes()))
                        .await;
                }
                // The streams at or below `last` may finish for a while; the
                // frames of any above it go nowhere; then the close.
                fired = true;
                going_away = Some((last, tokio::time::Instant::now() + Duration::from_secs(2)));
                // The frame in hand goes on if its stream may finish.
                let stream = stream_of(&unit);
                if stream <= last || !matches!(unit[3], 0x0 | 0x1 | 0x9) {
                    if unit[3] == 0x0 && unit[4] & 0x1 != 0 {
                        ended.insert(stream);
                    }
                    sent += unit.len() as u64;
                    if to_server.send(unit).await.is_err() {
                        return;
                    }
                } else {
                    give_back(&unit, &to_client).await;
                }
            }
            Fault::ResetStream(_) if newest_stream > 0 => {
                stats.fired(fault);
                // The reset stream is cut (once: it is finished for the count).
                if in_flight.lock().unwrap().remove(&newest_stream) {
                    stats.exposed.fetch_add(1, Ordering::Relaxed);
                }
                fired = true;
                reset_stream = Some(newest_stream);
                if !exact {
                    close_at = Some(sent + (1 << 20));
                }
                // REFUSED_STREAM only if the server cannot have processed it;
                // INTERNAL_ERROR (a plain reset) otherwise.
                let reason: u32 = if ended.contains(&newest_stream) { 2 } else { 7 };
                let _ = to_client
                    .send(frame(0x3, newest_stream, &reason.to_be_bytes()))
                    .await;
                let _ = to_server
                    .send(frame(0x3, newest_stream, &8u32.to_be_bytes()))
                    .await;
                if stream_of(&unit) != newest_stream || !matches!(unit[3], 0x0 | 0x1 | 0x9) {
                    sent += unit.len() as u64;
                    if to_server.send(unit).await.is_err() {
                        return;
                    }
                } else {
                    give_back(&unit, &to_client).await;
                }
            }
            // An h2 fault before any stream: wait for one.
            _ => {
                sent += unit.len() as u64;
                if to_server.send(unit).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn downstream_side(
    mut from: OwnedReadHalf,
    to_client: mpsc::Sender<Unit>,
    mode: oneshot::Receiver<bool>,
    (fault, exact): (Fault, bool),
    (stats, in_flight): (&Stats, &InFlight),
) {
    let Ok(h2) = mode.await else {
        return;
    };
    let fault = if exact { fault } else { fault.for_protocol(h2) };
    let limit = match fault {
        Fault::CloseAfterResponse(k) => Some(k),
        _ => None,
    };
    let mut sent = 0u64;
    loop {
        let unit = if h2 {
            match read_frame(&mut from).await {
                Some(frame) => frame,
                None => return,
            }
        } else {
            let mut buf = vec![0; 16 << 10];
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
            }
        };
        if let Some(k) = limit {
            if sent + unit.len() as u64 > k {
                stats.fired(fault);
                if h2 {
                    stats.expose(in_flight);
                }
                let cut = if h2 {
                    0
                } else {
                    usize::try_from(k - sent).unwrap_or(0)
                };
                if cut > 0 {
                    let _ = to_client.send(unit[..cut].to_vec()).await;
                }
                let _ = to_client.send(Vec::new()).await;
                return;
            }
        }
        sent += unit.len() as u64;
        stats
            .response_bytes
            .fetch_add(unit.len() as u64, Ordering::Relaxed);
        // A stream the server ended (END_STREAM on DATA or HEADERS) or reset.
        let finished = h2
            && unit.len() >= 9
            && (matches!(unit[3], 0x0 | 0x1) && unit[4] & 0x1 != 0 || unit[3] == 0x3);
        let stream = if finished { stream_of(&unit) } else { 0 };
        if to_client.send(unit).await.is_err() {
            return;
        }
        if finished {
            in_flight.lock().unwrap().remove(&stream);
        }
        if limit == Some(sent) {
            // Exactly at the mark: close now, not when more comes.
            stats.fired(fault);
            if h2 {
                stats.expose(in_flight);
            }
            let _ = to_client.send(Vec::new()).await;
            return;
        }
    }
}

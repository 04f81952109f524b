//! The bytes: the replay buffer keeps a request body so that a 307/308 can
//! send it again, byte for byte, and [`ReplayBody`] is what each hop sends.
//! No rule lives here, and no transport: any `http_body::Body` goes in.
//!
//! - A body in memory is a reference-counted `Bytes`; each hop gets a clone
//!   of the handle, never of the bytes.
//! - A stream is sent at once through a tee. Each chunk goes to the wire and
//!   (by reference count, not copy) into the replay buffer, up to the cap.
//!   When a server answers before it has read the whole body, the next hop
//!   sends the buffered prefix and then the part of the source that was never
//!   pulled. Nothing is lost, duplicated or reordered.
//!
//! # The invariant
//!
//! A reader of the tee yields exactly the original bytes, or ends in an
//! error (so that the transport aborts its request instead of completing
//! it); its size hint is exactly what it will send. Only one reader, the
//! newest, may read. The loop talks to the tee in three moves:
//!
//! 1. [`Replay::pause`], the moment a 3xx head arrives and before anything
//!    else is awaited: the current reader can pull nothing more (it parks),
//!    and the answer is whether the body can be replayed *at that moment*.
//! 2. Then one of: [`Replay::resume`] (the 3xx is the final response: the
//!    hop goes on as it was), [`Replay::next_body`] (a replay: the old reader
//!    is woken and fails at once, so its transport resets or closes the old
//!    hop and lets its connection go), or [`Replay::retire`] (the body is
//!    dropped: the old reader fails the same way).
//! 3. Dropping the [`Replay`] while paused retires too, so that no reader is
//!    left parked for ever; dropping it otherwise lets the current reader
//!    finish on its own and stops buffering.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::engine::error::BoxError;
use crate::{BodyReplay, Policy};

#[cfg(feature = "tower")]
pub(crate) mod gate;
#[cfg(feature = "spill")]
pub(crate) mod spill;

/// How much of a stream is kept, and where.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// The most bytes kept for replay, in memory and on disk together.
    pub(crate) cap: usize,
    /// Past this many bytes in memory, the rest goes to a temporary file.
    #[cfg_attr(not(feature = "spill"), allow(dead_code))] // read by the spill path only
    pub(crate) spill_after: Option<usize>,
    /// Where the spill file goes (`None`: `std::env::temp_dir()`).
    #[cfg(feature = "spill")]
    pub(crate) spill_dir: Option<std::sync::Arc<std::path::Path>>,
}

impl Limits {
    /// The limits `policy` sets.
    pub(crate) fn of(policy: &Policy) -> Self {
        Self {
            cap: policy.max_replay_body_limit(),
            #[cfg(feature = "spill")]
            spill_after: policy.spill_threshold(),
            #[cfg(not(feature = "spill"))]
            spill_after: None,
            #[cfg(feature = "spill")]
            spill_dir: policy.spill_dir_arc(),
        }
    }
}

/// The request body of one chain, held by the loop for the hops that replay
/// it.
#[derive(Debug)]
pub(crate) enum Replay<B> {
    /// No body.
    None,
    /// In memory: each hop gets a reference-count clone.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    // only reqwest tells a body in memory
    Memory(Bytes),
    /// A stream, teed into a shared buffer.
    Stream(Arc<Mutex<Tee<B>>>),
}

/// The request body of one hop, as the transport sends it: the caller's
/// body on the first hop, its replay on a 307/308, nothing after a switch to
/// `GET`. On the tower layer, a hop sent with `Expect: 100-continue` holds
/// it back (`Pending`) until the 100 or the wait.
///
/// It is an [`http_body::Body`] with `Data = Bytes` and `Error = BoxError`,
/// `Send + Sync + Unpin + 'static` when `B: Send + 'static` (`B` itself need
/// not be `Sync`), so a hyper-util client can take it as its body type:
/// `Client<HttpConnector, ReplayBody<MyBody>>`. A replay yields exactly the
/// original bytes and trailers, or ends in an error, so that a transport
/// aborts the hop instead of completing it with fewer bytes; its size hint
/// is exact when the length is known, so the hop gets a `Content-Length`.
pub struct ReplayBody<B> {
    pub(crate) inner: Inner<B>,
}

/// Two variants, the reader boxed, so that a `ReplayBody` is no larger than
/// a `Full<Bytes>` (32 bytes; a test holds it): a hyper client moves the
/// request several times per send, and each extra word is copied each time.
pub(crate) enum Inner<B> {
    /// A body in memory, handed out whole on the first poll; empty when
    /// there is none or it was sent.
    Memory(Bytes),
    /// A reader of the tee, or a body held back for a `100 Continue`.
    Stream(Box<Reader<B>>),
}

/// What a boxed [`ReplayBody`] reads from: one box for both, so that a
/// `ReplayBody` stays two words and a tag.
pub(crate) enum Reader<B> {
    /// A reader of the tee.
    Tee(TeeReader<B>),
    /// A body (in memory or a tee's) held back until its gate opens.
    #[cfg(feature = "tower")]
    Held(gate::Held<B>),
}

impl<B> std::fmt::Debug for Reader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tee(reader) => reader.fmt(f),
            #[cfg(feature = "tower")]
            Self::Held(held) => held.fmt(f),
        }
    }
}

impl<B> Body for Reader<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Tee(reader) => Pin::new(reader).poll_frame(cx),
            #[cfg(feature = "tower")]
            Self::Held(held) => Pin::new(held).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Tee(reader) => reader.is_end_stream(),
            #[cfg(feature = "tower")]
            Self::Held(held) => held.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Tee(reader) => reader.size_hint(),
            #[cfg(feature = "tower")]
            Self::Held(held) => held.size_hint(),
        }
    }
}

impl<B> ReplayBody<B> {
    /// A body with no bytes.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            inner: Inner::Memory(Bytes::new()),
        }
    }

    fn stream(reader: TeeReader<B>) -> Self {
        Self {
            inner: Inner::Stream(Box::new(Reader::Tee(reader))),
        }
    }

    /// This body, held back behind `gate` until a `100 Continue` opens it or
    /// `wait` passes (timed by `sleep`).
    #[cfg(feature = "tower")]
    pub(crate) fn held(
        self,
        gate: std::sync::Arc<gate::Gate>,
        wait: std::time::Duration,
        sleep: fn(std::time::Duration) -> gate::Sleep,
    ) -> Self {
        Self {
            inner: Inner::Stream(Box::new(Reader::Held(gate::Held::new(
                self, gate, wait, sleep,
            )))),
        }
    }

    fn memory(bytes: Bytes) -> Self {
        Self {
            inner: Inner::Memory(bytes),
        }
    }
}

impl<B> Default for ReplayBody<B> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Memory(bytes) if bytes.is_empty() => f.write_str("ReplayBody::Empty"),
            Inner::Memory(bytes) => f
                .debug_struct("ReplayBody::Memory")
                .field("len", &bytes.len())
                .finish(),
            Inner::Stream(reader) => f.debug_tuple("ReplayBody::Stream").field(reader).finish(),
        }
    }
}

impl<B> Replay<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// Tee a streamed body; the returned body is the one to send on the
    /// first hop, at once.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the tower path looks first: `any`
    pub(crate) fn stream(source: B, limits: Limits) -> (Self, ReplayBody<B>) {
        let tee = Arc::new(Mutex::new(Tee::new(Box::pin(source), None, limits)));
        let first = ReplayBody::stream(TeeReader::new(Arc::clone(&tee), 0));
        (Self::Stream(tee), first)
    }

    /// Any body. One that is already at its end is none. One whose first
    /// frame is ready at once and is its last (a `Full<Bytes>`) is in
    /// memory: its `Bytes` are shared by every hop, with no tee. Any other is
    /// teed, the frame taken to look first handed out as if just pulled.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // reqwest knows its bodies in memory
    pub(crate) fn any(source: B, limits: Limits) -> (Self, ReplayBody<B>) {
        if source.is_end_stream() {
            return (Self::None, ReplayBody::empty());
        }
        let mut source = Box::pin(source);
        // A noop waker is enough: a source that is not ready registers the
        // real waker when the first hop polls it.
        let mut cx = Context::from_waker(Waker::noop());
        let prefetched = match source.as_mut().poll_frame(&mut cx) {
            Poll::Pending => None,
            Poll::Ready(None) => return (Self::None, ReplayBody::empty()),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if source.is_end_stream() => return Self::memory(data),
                Ok(data) => Some(Ok(Frame::data(data))),
                Err(frame) => Some(Ok(frame)),
            },
            Poll::Ready(Some(Err(e))) => Some(Err(e.into())),
        };
        let tee = Arc::new(Mutex::new(Tee::new(source, prefetched, limits)));
        let first = ReplayBody::stream(TeeReader::new(Arc::clone(&tee), 0));
        (Self::Stream(tee), first)
    }

    /// A body in memory: every hop shares its bytes.
    pub(crate) fn memory(bytes: Bytes) -> (Self, ReplayBody<B>) {
        (Self::Memory(bytes.clone()), ReplayBody::memory(bytes))
    }

    /// The body's whole length where it is known: in memory, or a stream
    /// whose source says how much it has left. `None` for a stream of
    /// unknown length.
    pub(crate) fn total_len(&self) -> Option<u64> {
        match self {
            Self::None => Some(0),
            Self::Memory(bytes) => Some(bytes.len() as u64),
            Self::Stream(tee) => {
                let tee = lock(tee);
                let prefetched = match &tee.prefetched {
                    Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => 0,
                };
                match &tee.source {
                    None => Some(tee.pulled),
                    Some(source) => source
                        .size_hint()
                        .exact()
                        .map(|left| left + tee.pulled + prefetched),
                }
            }
        }
    }

    /// Whether the body is there at all.
    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// Whether [`Replay::next_body`] would give a body now (a stream is
    /// still wholly kept). Changes nothing.
    pub(crate) fn can_replay(&self) -> bool {
        match self {
            Self::None | Self::Memory(_) => true,
            Self::Stream(tee) => lock(tee).replay() == BodyReplay::Available,
        }
    }

    /// Stop the current reader where it is (it parks until it is resumed or
    /// retired), and say whether the body can be sent again from its first
    /// byte. Deciding and stopping are one step under the tee's lock, so no
    /// chunk can be pulled past the answer given.
    pub(crate) fn pause(&self) -> BodyReplay {
        match self {
            Self::None | Self::Memory(_) => BodyReplay::Available,
            Self::Stream(tee) => {
                let mut tee = lock(tee);
                tee.paused = true;
                tee.replay()
            }
        }
    }

    /// Let a paused reader go on: the response that paused it is final.
    pub(crate) fn resume(&self) {
        if let Self::Stream(tee) = self {
            let mut tee = lock(tee);
            tee.paused = false;
            tee.wake();
        }
    }

    /// End the current reader: it fails when next polled, and it is woken so
    /// that its transport polls it now.
    pub(crate) fn retire(&self) {
        if let Self::Stream(tee) = self {
            lock(tee).retire();
        }
    }

    /// A body for the next send: the whole body from its first byte. The
    /// reader handed out before is retired. `None` when a stream can no
    /// longer be replayed (the chain was told so by [`Replay::pause`]).
    pub(crate) fn next_body(&self) -> Option<ReplayBody<B>> {
        match self {
            Self::None => None,
            Self::Memory(bytes) => Some(ReplayBody::memory(bytes.clone())),
            Self::Stream(tee) => {
                let generation = {
                    let mut tee = lock(tee);
                    if tee.replay() != BodyReplay::Available {
                        tee.retire();
                        return None;
                    }
                    tee.retire();
                    tee.hop_sent = 0;
                    tee.hop_replayed = 0;
                    tee.generation
                };
                Some(ReplayBody::stream(TeeReader::new(
                    Arc::clone(tee),
                    generation,
                )))
            }
        }
    }
}

impl<B> Replay<B> {
    /// The current hop's body bytes handed to the transport so far, and the
    /// part of them that came from the replay buffer. `has_body`: the hop
    /// was sent with the body; `again`: it was not the chain's first send
    /// (a body in memory is then all replayed).
    pub(crate) fn hop_figures(&self, has_body: bool, again: bool) -> (u64, u64) {
        if !has_body {
            return (0, 0);
        }
        match self {
            Self::None => (0, 0),
            Self::Memory(bytes) => {
                let len = bytes.len() as u64;
                (len, if again { len } else { 0 })
            }
            Self::Stream(tee) => {
                let tee = lock(tee);
                (tee.hop_sent, tee.hop_replayed)
            }
        }
    }
}

impl<B> Drop for Replay<B> {
    fn drop(&mut self) {
        if let Self::Stream(tee) = self {
            let mut tee = lock(tee);
            if tee.paused {
                tee.retire();
            } else {
                // No hop will replay it now: stop keeping what is sent.
                tee.keep = false;
            }
        }
    }
}

fn lock<B>(tee: &Mutex<Tee<B>>) -> MutexGuard<'_, Tee<B>> {
    // A panic while the lock was held leaves no broken invariant that
    // matters more than the panic itself; go on with the data as it is.
    tee.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TeeState {
    /// The source has more to give; everything pulled so far is buffered.
    Open,
    /// The source is finished and all of it is buffered.
    Ended,
    /// More than `cap` bytes were pulled: the buffer was let go.
    OverCap,
    /// The source failed, or the buffer could not be written.
    Failed,
}

/// The state shared by every reader of one streamed body.
pub(crate) struct Tee<B> {
    source: Option<Pin<Box<B>>>,
    /// A frame taken from the source before the first hop (to see whether
    /// the body was all in memory), handed out as if just pulled.
    prefetched: Option<Result<Frame<Bytes>, BoxError>>,
    /// The first `in_memory` bytes kept, as the chunks that came.
    chunks: Vec<Bytes>,
    in_memory: u64,
    /// Every data byte pulled from the source so far. While the state is
    /// `Open` or `Ended`, all of them are kept: `in_memory` in `chunks`, the
    /// rest in the file.
    pulled: u64,
    /// The source's trailers, once they came.
    trailers: Option<HeaderMap>,
    limits: Limits,
    /// The bytes past `in_memory`, when the stream outgrew the spill limit.
    #[cfg(feature = "spill")]
    file: Option<crate::body::spill::SpillFile>,
    state: TeeState,
    /// Keep what is pulled (false once no hop can replay it any more).
    keep: bool,
    /// A 3xx head came: the current reader must wait for the decision.
    paused: bool,
    /// Only the reader of this generation may read.
    generation: u64,
    /// The current reader's waker, from its last `Pending`.
    waker: Option<Waker>,
    /// Data bytes the current reader handed out, and how many of them came
    /// from the buffer (for the hop's cost in the history).
    hop_sent: u64,
    hop_replayed: u64,
}

impl<B> std::fmt::Debug for Tee<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("pulled", &self.pulled)
            .field("limits", &self.limits)
            .field("state", &self.state)
            .field("paused", &self.paused)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<B> Tee<B> {
    fn new(
        source: Pin<Box<B>>,
        prefetched: Option<Result<Frame<Bytes>, BoxError>>,
        limits: Limits,
    ) -> Self {
        Self {
            source: Some(source),
            prefetched,
            chunks: Vec::new(),
            in_memory: 0,
            pulled: 0,
            trailers: None,
            limits,
            #[cfg(feature = "spill")]
            file: None,
            state: TeeState::Open,
            keep: true,
            paused: false,
            generation: 0,
            waker: None,
            hop_sent: 0,
            hop_replayed: 0,
        }
    }

    fn replay(&self) -> BodyReplay {
        match self.state {
            TeeState::Open | TeeState::Ended => BodyReplay::Available,
            TeeState::OverCap => BodyReplay::OverCap,
            TeeState::Failed => BodyReplay::Failed,
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Make the current reader stale, and wake it so that it fails now
    /// rather than whenever its transport happens to poll it again.
    fn retire(&mut self) {
        self.generation += 1;
        self.paused = false;
        self.wake();
    }

    /// The current reader handed `len` bytes to its transport, from the
    /// buffer or not; `len` as a count.
    fn handed(&mut self, len: usize, replayed: bool) -> u64 {
        let len = len as u64;
        self.hop_sent += len;
        if replayed {
            self.hop_replayed += len;
        }
        len
    }

    /// Let the buffer go: what was pulled can no longer be sent again.
    fn drop_buffer(&mut self, state: TeeState) {
        self.state = state;
        self.chunks = Vec::new();
        self.in_memory = 0;
        self.trailers = None;
        #[cfg(feature = "spill")]
        {
            self.file = None;
        }
    }

    /// Keep a chunk just pulled from the source by the reader at the tail.
    fn keep(&mut self, data: &Bytes) {
        self.pulled += data.len() as u64;
        if !self.keep || self.state != TeeState::Open {
            return;
        }
        if self.pulled > self.limits.cap as u64 {
            self.drop_buffer(TeeState::OverCap);
            return;
        }
        #[cfg(feature = "spill")]
        if self.limits.spill_after.is_some_and(|limit| {
            self.file.is_some() || self.in_memory + data.len() as u64 > limit as u64
        }) {
            let written = match self.file.as_mut() {
                Some(file) => file.append(data),
                None => crate::body::spill::SpillFile::create(self.limits.spill_dir.as_deref())
                    .and_then(|mut file| {
                        file.append(data)?;
                        self.file = Some(file);
                        Ok(())
                    }),
            };
            if written.is_err() {
                // The upload goes on; only its replay is lost.
                self.drop_buffer(TeeState::Failed);
            }
            return;
        }
        self.in_memory += data.len() as u64;
        self.chunks.push(data.clone());
    }
}

/// One send of a streamed body: the buffered chunks first, then the source.
pub(crate) struct TeeReader<B> {
    tee: Arc<Mutex<Tee<B>>>,
    generation: u64,
    /// The next in-memory chunk to send.
    next_chunk: usize,
    /// Data bytes sent so far.
    sent: u64,
    /// The trailers were sent (or there were none and the end was).
    done: bool,
}

impl<B> std::fmt::Debug for TeeReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeeReader")
            .field("generation", &self.generation)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

/// The error of a reader that is no longer the newest.
#[derive(Debug, thiserror::Error)]
#[error("this request body was handed to a redirected request")]
pub(crate) struct Superseded;

impl<B> TeeReader<B> {
    fn new(tee: Arc<Mutex<Tee<B>>>, generation: u64) -> Self {
        Self {
            tee,
            generation,
            next_chunk: 0,
            sent: 0,
            done: false,
        }
    }
}

impl<B> Body for TeeReader<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut guard = lock(&this.tee);
        let tee = &mut *guard;
        if tee.generation != this.generation {
            // A stale reader that already sent the whole body just ends;
            // any other fails, so that its hop is aborted, never completed.
            if tee.state == TeeState::Ended && this.sent == tee.pulled && tee.trailers.is_none() {
                this.done = true;
                return Poll::Ready(None);
            }
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        if tee.paused {
            tee.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // What was kept, in order: the chunks in memory, then the file.
        if let Some(chunk) = tee.chunks.get_mut(this.next_chunk) {
            this.next_chunk += 1;
            // Once nothing can replay it, a chunk is handed over, not shared.
            let chunk = if tee.keep {
                chunk.clone()
            } else {
                std::mem::take(chunk)
            };
            this.sent += tee.handed(chunk.len(), true);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        #[cfg(feature = "spill")]
        if let Some(file) = tee.file.as_mut() {
            let offset = this.sent - tee.in_memory;
            if offset < file.len() {
                return Poll::Ready(Some(match file.read_at(offset) {
                    Ok(chunk) => {
                        this.sent += tee.handed(chunk.len(), true);
                        Ok(Frame::data(chunk))
                    }
                    Err(e) => {
                        tee.drop_buffer(TeeState::Failed);
                        Err(Box::new(e))
                    }
                }));
            }
        }
        if this.sent < tee.pulled {
            // Bytes were pulled that this reader never got and that are no
            // longer kept: sending on would send a body with a hole in it.
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        let Some(source) = tee.source.as_mut() else {
            this.done = true;
            return Poll::Ready(tee.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        loop {
            let polled = match tee.prefetched.take() {
                Some(frame) => Poll::Ready(Some(frame)),
                None => source
                    .as_mut()
                    .poll_frame(cx)
                    .map(|frame| frame.map(|f| f.map_err(Into::into))),
            };
            match polled {
                Poll::Pending => {
                    tee.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(None) => {
                    tee.source = None;
                    if tee.state == TeeState::Open {
                        tee.state = TeeState::Ended;
                    }
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    tee.source = None;
                    tee.drop_buffer(TeeState::Failed);
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    // An empty chunk says nothing; an h2 peer may even count
                    // empty DATA frames against the connection.
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => {
                        tee.keep(&data);
                        // The reader at the tail has what it just kept.
                        this.next_chunk = tee.chunks.len();
                        this.sent += tee.handed(data.len(), false);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Err(frame) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            // Trailers are a body's last frame: it has ended.
                            if tee.keep && tee.state == TeeState::Open {
                                tee.trailers = Some(trailers.clone());
                                tee.state = TeeState::Ended;
                            }
                            tee.source = None;
                            this.done = true;
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let tee = lock(&self.tee);
        tee.generation == self.generation
            && tee.source.is_none()
            && tee.trailers.is_none()
            && tee.state == TeeState::Ended
            && self.sent == tee.pulled
    }

    fn size_hint(&self) -> SizeHint {
        let tee = lock(&self.tee);
        // The frame taken to look counts as not yet pulled: the source's own
        // hint no longer includes it.
        let prefetched = match &tee.prefetched {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        let unsent = tee.pulled.saturating_sub(self.sent) + prefetched;
        match &tee.source {
            None => SizeHint::with_exact(unsent),
            Some(source) => {
                let hint = source.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(hint.lower() + unsent);
                if let Some(upper) = hint.upper() {
                    out.set_upper(upper + unsent);
                }
                out
            }
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Inner::Memory(bytes) if bytes.is_empty() => Poll::Ready(None),
            Inner::Memory(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Inner::Stream(reader) => Pin::new(&mut **reader).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Memory(bytes) => bytes.is_empty(),
            Inner::Stream(reader) => reader.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Memory(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Stream(reader) => reader.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use http_body_util::StreamBody;
    use proptest::prelude::*;

    use super::*;

    type Source = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    /// Counts its wake-ups, to check that a parked reader is woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_replay_body_is_no_larger_than_a_full_body() {
        // Each word more is copied on every move of the request inside a
        // hyper client (measured: ~0.4k instructions per request).
        assert_eq!(
            std::mem::size_of::<ReplayBody<http_body_util::Full<Bytes>>>(),
            std::mem::size_of::<http_body_util::Full<Bytes>>()
        );
        assert_eq!(
            std::mem::size_of::<ReplayBody<Source>>(),
            std::mem::size_of::<Bytes>()
        );
    }

    enum Polled {
        Data(Bytes),
        Trailers(HeaderMap),
        Error(String),
        End,
        Pending,
    }

    fn poll<B: Body<Data = Bytes> + Unpin>(body: &mut B, waker: &Waker) -> Polled
    where
        B::Error: std::fmt::Display,
    {
        let mut cx = Context::from_waker(waker);
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Polled::Data(data),
                Err(frame) => Polled::Trailers(frame.into_trailers().unwrap()),
            },
            Poll::Ready(Some(Err(e))) => Polled::Error(e.to_string()),
            Poll::Ready(None) => Polled::End,
            Poll::Pending => Polled::Pending,
        }
    }

    /// `data` in `chunk`-byte frames, with an empty frame after every
    /// `empty_every`-th one, and `trailers` at the end.
    fn source(data: &[u8], chunk: usize, empty_every: usize, trailers: bool) -> Source {
        let mut frames = Vec::new();
        for (i, c) in data.chunks(chunk.max(1)).enumerate() {
            frames.push(Ok(Frame::data(Bytes::copy_from_slice(c))));
            if empty_every > 0 && i % empty_every == 0 {
                frames.push(Ok(Frame::data(Bytes::new())));
            }
        }
        if trailers {
            let mut map = HeaderMap::new();
            map.insert("x-checksum", http::HeaderValue::from_static("abc"));
            frames.push(Ok(Frame::trailers(map)));
        }
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn limits(cap: usize, spill_after: Option<usize>) -> Limits {
        // Without the feature, a spill limit is never set.
        let spill_after = if cfg!(feature = "spill") {
            spill_after
        } else {
            None
        };
        Limits {
            cap,
            spill_after,
            #[cfg(feature = "spill")]
            spill_dir: None,
        }
    }

    /// Read a hop body to its end: its data, and whether trailers came.
    fn read_all<S>(body: &mut ReplayBody<S>) -> Result<(Vec<u8>, bool), String>
    where
        S: Body<Data = Bytes>,
        S::Error: Into<BoxError>,
    {
        let waker = Waker::noop();
        let mut out = Vec::new();
        let mut trailers = false;
        loop {
            match poll(body, waker) {
                Polled::Data(d) => {
                    assert!(!d.is_empty(), "no empty data frame is handed on");
                    out.extend_from_slice(&d);
                }
                Polled::Trailers(t) => {
                    assert_eq!(t["x-checksum"], "abc");
                    trailers = true;
                }
                Polled::Error(e) => return Err(e),
                Polled::End => return Ok((out, trailers)),
                Polled::Pending => panic!("test sources are always ready"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any number of hops, each answered by a 3xx after any number of
        /// frames: the body is paused at the head, the old reader can pull
        /// nothing more, and the next hop, when there is one, carries the
        /// original bytes; a body that crossed the cap is reported instead,
        /// and no short hop is ever handed out.
        #[test]
        fn a_replay_is_the_original_or_is_refused(
            data in prop::collection::vec(any::<u8>(), 0..20_000),
            chunk in 1usize..5_000,
            empty_every in 0usize..4,
            trailers in any::<bool>(),
            cuts in prop::collection::vec(0usize..12, 0..4),
            cap in prop_oneof![Just(usize::MAX), 0usize..25_000],
            spill in prop_oneof![Just(None), (0usize..8_000).prop_map(Some)],
            through_any in any::<bool>(),
        ) {
            let waker = Waker::noop();
            let body = source(&data, chunk, empty_every, trailers);
            let (replay, mut current) = if through_any {
                Replay::any(body, limits(cap, spill))
            } else {
                Replay::stream(body, limits(cap, spill))
            };
            let teed = matches!(replay, Replay::Stream(_));
            for cut in cuts {
                let mut sent = Vec::new();
                for _ in 0..cut {
                    match poll(&mut current, waker) {
                        Polled::Data(d) => sent.extend_from_slice(&d),
                        Polled::Error(e) => prop_assert!(false, "{e}"),
                        Polled::Trailers(_) | Polled::End => break,
                        Polled::Pending => prop_assert!(false, "always ready"),
                    }
                }
                prop_assert!(sent[..] == data[..sent.len()], "every send starts at byte 0");
                // A 3xx head: from now on the old reader gets nothing.
                let state = replay.pause();
                let complete = sent.len() == data.len();
                prop_assert!(
                    complete || !teed || matches!(poll(&mut current, waker), Polled::Pending),
                    "a paused reader pulls nothing"
                );
                if state != BodyReplay::Available {
                    prop_assert!(sent.len() > cap || data.len() > cap);
                    prop_assert!(replay.next_body().is_none(), "no short hop is handed out");
                    return Ok(());
                }
                let next = replay.next_body().unwrap();
                if !complete && teed {
                    prop_assert!(matches!(poll(&mut current, waker), Polled::Error(_)));
                }
                current = next;
            }
            let read = read_all(&mut current);
            if data.len() <= cap {
                let (last, got_trailers) = read.unwrap();
                prop_assert!(last == data, "{} vs {} bytes", last.len(), data.len());
                prop_assert_eq!(got_trailers, trailers, "trailers are replayed too");
            } else {
                // Over the cap on this hop: the hop itself is still whole.
                prop_assert!(read.unwrap().0 == data);
            }
        }
    }

    #[test]
    fn a_paused_reader_is_woken_and_fails_when_retired() {
        let data = vec![7u8; 10_000];
        let (replay, mut first) =
            Replay::stream(source(&data, 1000, 0, false), limits(usize::MAX, None));
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        assert!(matches!(poll(&mut first, &waker), Polled::Data(_)));
        assert_eq!(replay.pause(), BodyReplay::Available);
        assert!(matches!(poll(&mut first, &waker), Polled::Pending));
        let mut second = replay.next_body().unwrap();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "the old reader is woken"
        );
        assert!(matches!(poll(&mut first, &waker), Polled::Error(_)));
        assert!(read_all(&mut second).unwrap().0 == data);
    }

    #[test]
    fn a_resumed_reader_goes_on_where_it_was() {
        let data: Vec<u8> = (0..=255).cycle().take(9_000).collect();
        let (replay, mut first) =
            Replay::stream(source(&data, 1000, 1, false), limits(usize::MAX, None));
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut out = Vec::new();
        if let Polled::Data(d) = poll(&mut first, &waker) {
            out.extend_from_slice(&d);
        }
        replay.pause();
        assert!(matches!(poll(&mut first, &waker), Polled::Pending));
        replay.resume();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        out.extend(read_all(&mut first).unwrap().0);
        assert!(out == data);
    }

    #[test]
    fn dropping_the_replay_while_paused_retires_the_reader() {
        let data = vec![1u8; 5_000];
        let (replay, mut first) =
            Replay::stream(source(&data, 1000, 0, false), limits(usize::MAX, None));
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::Data(_)));
        replay.pause();
        drop(replay);
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::Error(_)));
    }

    #[test]
    fn after_the_chain_a_final_hop_finishes_and_nothing_more_is_kept() {
        let data = vec![3u8; 50_000];
        let (replay, mut first) =
            Replay::stream(source(&data, 1000, 0, false), limits(usize::MAX, None));
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::Data(_)));
        let tee = match &replay {
            Replay::Stream(tee) => Arc::clone(tee),
            _ => unreachable!(),
        };
        drop(replay); // the final response came: no hop will replay it
        let rest = read_all(&mut first).unwrap().0;
        assert_eq!(rest.len() + 1000, data.len());
        assert_eq!(lock(&tee).chunks.len(), 1, "only what came before is kept");
    }

    #[test]
    fn size_hint_is_exact_on_a_whole_replay() {
        let data = vec![9u8; 4_321];
        let (replay, mut first) =
            Replay::stream(source(&data, 1000, 2, false), limits(usize::MAX, None));
        read_all(&mut first).unwrap();
        replay.pause();
        let second = replay.next_body().unwrap();
        assert_eq!(second.size_hint().exact(), Some(4_321));
        // The stale first reader, which sent it all, just ends.
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::End));
    }

    #[test]
    fn a_failed_source_is_not_replayed() {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Err(std::io::Error::other("boom")),
        ];
        let (replay, mut first) = Replay::stream(
            StreamBody::new(futures_util::stream::iter(frames)),
            limits(usize::MAX, None),
        );
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::Data(_)));
        assert!(matches!(poll(&mut first, Waker::noop()), Polled::Error(_)));
        assert_eq!(replay.pause(), BodyReplay::Failed);
        assert!(replay.next_body().is_none());
    }

    #[test]
    fn memory_bodies_are_shared_not_copied() {
        let bytes = Bytes::from(vec![7u8; 1024]);
        let (replay, mut first) = Replay::<Source>::memory(bytes.clone());
        let mut second = replay.next_body().unwrap();
        assert_eq!(second.size_hint().exact(), Some(1024));
        for body in [&mut first, &mut second] {
            let Polled::Data(data) = poll(body, Waker::noop()) else {
                panic!("one frame")
            };
            // Same allocation: the pointers match.
            assert_eq!(data.as_ptr(), bytes.as_ptr());
            assert!(matches!(poll(body, Waker::noop()), Polled::End));
        }
        assert_eq!(replay.pause(), BodyReplay::Available);
    }

    #[test]
    fn a_full_body_is_shared_not_teed() {
        let bytes = Bytes::from(vec![4u8; 777]);
        let (replay, mut first) =
            Replay::any(http_body_util::Full::new(bytes.clone()), limits(0, None));
        assert!(
            matches!(replay, Replay::Memory(_)),
            "no tee, not even with a cap of 0"
        );
        let Polled::Data(data) = poll(&mut first, Waker::noop()) else {
            panic!("one frame")
        };
        assert_eq!(data.as_ptr(), bytes.as_ptr());
        let second = replay.next_body().unwrap();
        assert_eq!(second.size_hint().exact(), Some(777));
    }

    /// A stream that knows its length.
    struct Sized(Source, u64);
    impl Body for Sized {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            let polled = Pin::new(&mut self.0).poll_frame(cx);
            if let Poll::Ready(Some(Ok(frame))) = &polled {
                self.1 -= frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            polled
        }
        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.1)
        }
    }

    #[test]
    fn a_frame_taken_to_look_is_counted_in_the_size_hint() {
        let data = vec![1u8; 3000];
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = data
            .chunks(1000)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = Sized(StreamBody::new(futures_util::stream::iter(frames)), 3000);
        let (replay, mut first) = Replay::any(body, limits(usize::MAX, None));
        assert!(matches!(replay, Replay::Stream(_)));
        assert_eq!(first.size_hint().exact(), Some(3000));
        assert!(read_all(&mut first).unwrap().0 == data);
    }

    #[test]
    fn a_body_already_at_its_end_is_none() {
        let (replay, first) = Replay::any(http_body_util::Empty::<Bytes>::new(), limits(10, None));
        assert!(!replay.is_some());
        assert!(first.is_end_stream());
    }

    #[test]
    fn replay_body_is_send_sync_unpin_for_a_send_only_source() {
        fn check<T: Send + Sync + Unpin + 'static>() {}
        /// `Send` but not `Sync`.
        struct NotSync(#[allow(dead_code)] std::cell::Cell<u8>);
        impl Body for NotSync {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
                Poll::Ready(None)
            }
        }
        check::<ReplayBody<NotSync>>();
    }
}

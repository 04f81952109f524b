//! The replay buffer: keeps a request body so that a 307/308 can send it
//! again, byte for byte.
//!
//! - A body in memory is a reference-counted `Bytes` inside `reqwest::Body`;
//!   each hop gets a clone of the handle, never of the bytes.
//! - A stream is sent at once through a tee. Each chunk goes to the wire and
//!   (by reference count, not copy) into the replay buffer, up to the cap.
//!   When a server answers before it has read the whole body, the next hop
//!   sends the buffered prefix and then the part of the source that was never
//!   pulled. Nothing is lost, duplicated or reordered.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};

use crate::error::BoxError;
use crate::BodyReplay;

/// The request body of one chain, kept for the hops that replay it.
#[derive(Debug)]
pub(crate) enum ReplayBody {
    /// No body.
    None,
    /// In memory: each hop gets a reference-count clone.
    Memory(Bytes),
    /// A stream, teed into a shared buffer.
    Stream(Arc<Mutex<Tee>>),
}

impl ReplayBody {
    /// Take the body of a request. A streaming body is wrapped so that what
    /// it sends is buffered up to `cap` bytes; the returned body is the one
    /// to send on the first hop.
    pub(crate) fn new(
        body: Option<reqwest::Body>,
        limits: Limits,
    ) -> (Self, Option<reqwest::Body>) {
        match body {
            None => (Self::None, None),
            Some(body) if body.as_bytes().is_some() => match memory_bytes(body) {
                Ok(bytes) => (
                    Self::Memory(bytes.clone()),
                    Some(reqwest::Body::from(bytes)),
                ),
                // Not reached: a body with bytes is ready at once.
                Err(body) => Self::stream(body, limits),
            },
            Some(body) => Self::stream(body, limits),
        }
    }

    fn stream(body: reqwest::Body, limits: Limits) -> (Self, Option<reqwest::Body>) {
        let this = Self::Stream(Arc::new(Mutex::new(Tee {
            source: Some(Box::pin(body)),
            chunks: Vec::new(),
            in_memory: 0,
            buffered: 0,
            limits,
            #[cfg(feature = "spill")]
            file: None,
            state: TeeState::Open,
            generation: 0,
        })));
        let first = this.next_body();
        (this, first)
    }

    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// Whether the body can be sent again now.
    pub(crate) fn replay(&self) -> BodyReplay {
        match self {
            Self::None | Self::Memory(_) => BodyReplay::Available,
            Self::Stream(tee) => match lock(tee).state {
                TeeState::Open | TeeState::Ended => BodyReplay::Available,
                TeeState::OverCap => BodyReplay::OverCap,
                TeeState::Failed => BodyReplay::Failed,
            },
        }
    }

    /// A body for the next send: the whole body from its first byte. For a
    /// stream, any body handed out before stops working (it fails if still
    /// polled), so that an abandoned connection cannot take chunks away from
    /// the new request.
    pub(crate) fn next_body(&self) -> Option<reqwest::Body> {
        match self {
            Self::None => None,
            Self::Memory(bytes) => Some(reqwest::Body::from(bytes.clone())),
            Self::Stream(tee) => {
                let generation = {
                    let mut tee = lock(tee);
                    tee.generation += 1;
                    tee.generation
                };
                Some(reqwest::Body::wrap(TeeReader {
                    tee: Arc::clone(tee),
                    generation,
                    cursor: Cursor::default(),
                }))
            }
        }
    }
}

/// The `Bytes` inside an in-memory reqwest body, without copying them:
/// reqwest hands its reusable chunk out whole on the first poll.
fn memory_bytes(mut body: reqwest::Body) -> Result<Bytes, reqwest::Body> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(None) => Ok(Bytes::new()),
        Poll::Ready(Some(Ok(frame))) => frame.into_data().map_err(|_| body),
        Poll::Ready(Some(Err(_))) | Poll::Pending => Err(body),
    }
}

fn lock(tee: &Mutex<Tee>) -> MutexGuard<'_, Tee> {
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
    /// The source failed.
    Failed,
}

/// How much of a stream is kept, and where.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The most bytes kept for replay, in memory and on disk together.
    pub(crate) cap: usize,
    /// Past this many bytes in memory, the rest goes to a temporary file.
    #[cfg_attr(not(feature = "spill"), allow(dead_code))] // read by the spill path only
    pub(crate) spill_after: Option<usize>,
}

/// The state shared by every reader of one streamed body.
pub(crate) struct Tee {
    source: Option<Pin<Box<reqwest::Body>>>,
    /// The first `in_memory` bytes kept, as the chunks that came.
    chunks: Vec<Bytes>,
    in_memory: usize,
    /// All bytes kept: `in_memory` plus what went to the file.
    buffered: usize,
    limits: Limits,
    /// The bytes past `in_memory`, when the stream outgrew the spill limit.
    #[cfg(feature = "spill")]
    file: Option<crate::spill::SpillFile>,
    state: TeeState,
    /// Only the reader of the newest generation may read.
    generation: u64,
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("buffered", &self.buffered)
            .field("limits", &self.limits)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Tee {
    /// Keep a chunk just pulled from the source by `reader` (which is at the
    /// tail, so it must not read the chunk again).
    fn keep(&mut self, data: &Bytes, reader: &mut Cursor) {
        if self.buffered + data.len() > self.limits.cap {
            self.state = TeeState::OverCap;
            self.chunks = Vec::new();
            self.in_memory = 0;
            self.buffered = 0;
            reader.next_chunk = 0;
            #[cfg(feature = "spill")]
            {
                self.file = None;
            }
            return;
        }
        self.buffered += data.len();
        reader.consumed += data.len();
        #[cfg(feature = "spill")]
        if self
            .limits
            .spill_after
            .is_some_and(|limit| self.file.is_some() || self.in_memory + data.len() > limit)
        {
            let written = match self.file.as_mut() {
                Some(file) => file.append(data),
                None => crate::spill::SpillFile::create().and_then(|mut file| {
                    file.append(data)?;
                    self.file = Some(file);
                    Ok(())
                }),
            };
            if written.is_err() {
                // The upload goes on; only its replay is lost.
                self.state = TeeState::Failed;
            }
            return;
        }
        self.in_memory += data.len();
        self.chunks.push(data.clone());
        reader.next_chunk += 1;
    }
}

/// One send of a streamed body: the buffered chunks first, then the source.
struct TeeReader {
    tee: Arc<Mutex<Tee>>,
    generation: u64,
    cursor: Cursor,
}

/// How far a reader has got.
#[derive(Default)]
struct Cursor {
    /// The next in-memory chunk to send.
    next_chunk: usize,
    /// Bytes sent so far.
    consumed: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("this request body was handed to a redirected request")]
struct Superseded;

impl http_body::Body for TeeReader {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let mut tee = lock(&this.tee);
        if tee.generation != this.generation {
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        if let Some(chunk) = tee.chunks.get(this.cursor.next_chunk) {
            let chunk = chunk.clone();
            this.cursor.next_chunk += 1;
            this.cursor.consumed += chunk.len();
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let tee = &mut *tee;
        #[cfg(feature = "spill")]
        if let Some(file) = tee.file.as_mut() {
            let offset = (this.cursor.consumed - tee.in_memory) as u64;
            if offset < file.len() {
                return Poll::Ready(Some(match file.read_at(offset) {
                    Ok(chunk) => {
                        this.cursor.consumed += chunk.len();
                        Ok(Frame::data(chunk))
                    }
                    Err(e) => {
                        tee.state = TeeState::Failed;
                        Err(Box::new(e))
                    }
                }));
            }
        }
        let Some(source) = tee.source.as_mut() else {
            return Poll::Ready(None);
        };
        match source.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                tee.source = None;
                if tee.state == TeeState::Open {
                    tee.state = TeeState::Ended;
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                tee.source = None;
                tee.state = TeeState::Failed;
                tee.chunks = Vec::new();
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if tee.state == TeeState::Open {
                        tee.keep(data, &mut this.cursor);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        let tee = lock(&self.tee);
        let unread = tee.buffered.saturating_sub(self.cursor.consumed) as u64;
        match (&tee.source, tee.state) {
            (_, TeeState::Ended) | (None, _) => SizeHint::with_exact(unread),
            (Some(source), _) => {
                let hint = source.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(hint.lower() + unread);
                if let Some(upper) = hint.upper() {
                    out.set_upper(upper + unread);
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Poll a body with no runtime: the test streams are always ready.
    fn poll_data(body: &mut reqwest::Body) -> Option<Result<Bytes, String>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => Some(Ok(frame.into_data().unwrap_or_default())),
            Poll::Ready(Some(Err(e))) => Some(Err(e.to_string())),
            Poll::Ready(None) => None,
            Poll::Pending => panic!("test streams are always ready"),
        }
    }

    fn stream_of(data: &[u8], chunk: usize) -> reqwest::Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
    }

    fn read_all(body: &mut reqwest::Body) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = poll_data(body) {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any number of hops, each cut off after any number of chunks, then
        /// a last hop read to the end: it always carries the original bytes,
        /// unless the stream outgrew the cap, which is then reported.
        #[test]
        fn replay_after_any_early_cut_is_the_original(
            data in prop::collection::vec(any::<u8>(), 0..20_000),
            chunk in 1usize..5_000,
            cuts in prop::collection::vec(0usize..12, 0..4),
            cap in prop_oneof![Just(usize::MAX), 0usize..25_000],
            spill in prop_oneof![Just(None), (0usize..8_000).prop_map(Some)],
        ) {
            // Without the feature, a spill limit is never set.
            let spill_after = if cfg!(feature = "spill") { spill } else { None };
            let limits = Limits { cap, spill_after };
            let (replay, first) = ReplayBody::new(Some(stream_of(&data, chunk)), limits);
            let mut current = first.unwrap();
            let mut sent = Vec::new();
            for cut in cuts {
                for _ in 0..cut {
                    match poll_data(&mut current) {
                        Some(Ok(bytes)) => sent.extend_from_slice(&bytes),
                        Some(Err(e)) => prop_assert!(false, "{e}"),
                        None => break,
                    }
                }
                prop_assert_eq!(&sent[..], &data[..sent.len()], "every send starts at byte 0");
                if replay.replay() != BodyReplay::Available {
                    prop_assert!(data.len() > cap);
                    return Ok(());
                }
                let next = replay.next_body().unwrap();
                // The superseded body stops at once instead of stealing chunks.
                if sent.len() < data.len() {
                    prop_assert!(matches!(poll_data(&mut current), Some(Err(_))));
                }
                current = next;
                sent.clear();
            }
            let last = read_all(&mut current);
            if data.len() <= cap {
                prop_assert_eq!(replay.replay(), BodyReplay::Available);
            }
            prop_assert!(last == data, "{} vs {} bytes", last.len(), data.len());
        }
    }

    #[test]
    fn memory_bodies_are_shared_not_copied() {
        let bytes = Bytes::from(vec![7u8; 1024]);
        let (replay, first) = ReplayBody::new(
            Some(reqwest::Body::from(bytes.clone())),
            Limits {
                cap: 0,
                spill_after: None,
            },
        );
        let first = first.unwrap();
        let second = replay.next_body().unwrap();
        // Same allocation: the pointers match.
        assert_eq!(first.as_bytes().unwrap().as_ptr(), bytes.as_ptr());
        assert_eq!(second.as_bytes().unwrap().as_ptr(), bytes.as_ptr());
        assert_eq!(replay.replay(), BodyReplay::Available);
    }
}

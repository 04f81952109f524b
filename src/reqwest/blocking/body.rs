//! [`Body`]: what a blocking request sends — bytes in memory, or a reader
//! (a `File`, a pipe) that is streamed, never loaded whole.

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// How much one blocking read asks for.
const CHUNK: usize = 64 * 1024;

/// The body of a blocking request.
///
/// Bytes in memory are replayed by reference count on a 307/308. A reader
/// ([`Body::new`], [`Body::sized`], a [`File`]) is streamed: it is read on
/// the runtime's blocking threads a chunk at a time, as the connection asks
/// for it, and each chunk is kept for a replay as it goes out, up to
/// [`Policy::max_replay_body`](crate::Policy::max_replay_body) (with
/// [`Policy::spill_to_disk`](crate::Policy::spill_to_disk), beyond memory).
/// `reqwest::blocking` hands back the 307 for such a body; here it arrives
/// whole at every hop, or the request fails with
/// [`ErrorKind::BodyNotReplayable`](crate::ErrorKind::BodyNotReplayable).
///
/// ```no_run
/// use redirect_policy::{blocking, Policy};
///
/// // A replay of up to 64 MiB (with the `spill` feature, `spill_to_disk`
/// // keeps most of it on disk instead of in memory).
/// let client = blocking::Client::new(Policy::standard().max_replay_body(64 << 20));
/// let file = std::fs::File::open("backup.tar")?;
/// let response = client.put("http://localhost:8080/upload").body(file).send()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Bytes(Bytes),
    Async(reqwest::Body),
    Reader {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bytes(bytes) => f.debug_tuple("Body").field(&bytes.len()).finish(),
            Kind::Async(body) => f.debug_tuple("Body").field(body).finish(),
            Kind::Reader { len, .. } => f.debug_struct("Body").field("reader_len", len).finish(),
        }
    }
}

impl Body {
    /// A body read from `reader` until it ends, sent with chunked framing
    /// (HTTP/1.1) since its length is not known.
    pub fn new<R: Read + Send + 'static>(reader: R) -> Self {
        Self {
            kind: Kind::Reader {
                reader: Box::new(reader),
                len: None,
            },
        }
    }

    /// A body of exactly `len` bytes read from `reader`, sent with a
    /// `Content-Length`. A reader that ends before `len` bytes fails the
    /// request; one with more is read no further than `len`.
    pub fn sized<R: Read + Send + 'static>(reader: R, len: u64) -> Self {
        Self {
            kind: Kind::Reader {
                reader: Box::new(reader),
                len: Some(len),
            },
        }
    }

    /// The bytes, for a body in memory.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Bytes(bytes) => Some(bytes),
            Kind::Async(body) => body.as_bytes(),
            Kind::Reader { .. } => None,
        }
    }

    /// The length, where it is known.
    #[must_use]
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Bytes(bytes) => Some(bytes.len() as u64),
            Kind::Async(body) => http_body::Body::size_hint(body).exact(),
            Kind::Reader { len, .. } => *len,
        }
    }

    /// True for a body in memory with no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// As the async client's body: bytes stay reusable, a reader becomes a
    /// stream that reads on the blocking threads.
    pub(crate) fn into_reqwest(self) -> reqwest::Body {
        match self.kind {
            Kind::Bytes(bytes) => reqwest::Body::from(bytes),
            Kind::Async(body) => body,
            Kind::Reader { reader, len } => reqwest::Body::wrap(ReadBody {
                state: State::Idle(Mutex::new(reader)),
                left: len,
            }),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Bytes(bytes),
        }
    }
}

impl From<reqwest::Body> for Body {
    /// An async body (a `reqwest::Body::wrap_stream` stream, say), sent as
    /// the async client sends it.
    fn from(body: reqwest::Body) -> Self {
        Self {
            kind: Kind::Async(body),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Bytes::from(text).into()
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Bytes::from_static(text.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes).into()
    }
}

impl From<File> for Body {
    /// The file, streamed from where its cursor is; sent with a
    /// `Content-Length` of what is left of it when its size is known.
    fn from(mut file: File) -> Self {
        use std::io::Seek as _;
        let left = match (file.metadata(), file.stream_position()) {
            (Ok(meta), Ok(at)) if meta.is_file() => Some(meta.len().saturating_sub(at)),
            _ => None,
        };
        match left {
            Some(len) => Self::sized(file, len),
            None => Self::new(file),
        }
    }
}

/// A reader as an `http_body::Body`: each frame is one blocking read, run
/// on the runtime's blocking threads when the connection asks for it.
struct ReadBody {
    state: State,
    /// What a sized body has still to give.
    left: Option<u64>,
}

enum State {
    /// In a `Mutex` only so that the body is `Sync`, as reqwest asks: it is
    /// reached through `&mut`, never locked.
    Idle(Mutex<Box<dyn Read + Send>>),
    Reading(tokio::task::JoinHandle<(Box<dyn Read + Send>, io::Result<Bytes>)>),
    Done,
}

impl ReadBody {
    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.state = State::Done;
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for ReadBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Idle(_) => {
                    if this.left == Some(0) {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    let State::Idle(reader) = std::mem::replace(&mut this.state, State::Done)
                    else {
                        return Poll::Ready(None);
                    };
                    let Ok(handle) = tokio::runtime::Handle::try_current() else {
                        return this.fail(io::Error::other(
                            "a blocking::Body reader must be read inside the client's runtime",
                        ));
                    };
                    let mut reader = reader.into_inner().unwrap_or_else(|e| e.into_inner());
                    let want = this.left.map_or(CHUNK, |left| {
                        usize::try_from(left).unwrap_or(CHUNK).min(CHUNK)
                    });
                    this.state = State::Reading(handle.spawn_blocking(move || {
                        let mut buf = vec![0; want];
                        let read = loop {
                            match reader.read(&mut buf) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                other => break other,
                            }
                        };
                        let chunk = read.map(|n| {
                            buf.truncate(n);
                            Bytes::from(buf)
                        });
                        (reader, chunk)
                    }));
                }
                State::Reading(handle) => {
                    let (reader, chunk) = match ready!(Pin::new(handle).poll(cx)) {
                        Ok(done) => done,
                        Err(e) => return this.fail(io::Error::other(e)),
                    };
                    let chunk = match chunk {
                        Ok(chunk) => chunk,
                        Err(e) => return this.fail(e),
                    };
                    if chunk.is_empty() {
                        if let Some(left) = this.left.filter(|&left| left > 0) {
                            return this.fail(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "the body's reader ended {left} bytes short of the \
                                     length it was given"
                                ),
                            ));
                        }
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    if let Some(left) = &mut this.left {
                        *left -= chunk.len() as u64;
                    }
                    this.state = State::Idle(Mutex::new(reader));
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done) || self.left == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(left) => SizeHint::with_exact(left),
            None => SizeHint::default(),
        }
    }
}

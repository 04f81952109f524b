//! reqwest's errors in the crate's [`Error`]: `?` works across `send()` and
//! the body methods (`text`, `bytes`, `json`, `chunk`) of the response, and
//! what reqwest would tell stays answerable.
//!
//! The final response of a redirected chain reads its body through
//! [`WithChain`], so that an error while reading it (a timeout, a dropped
//! connection) leads back to the chain's history when it is converted.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use url::Url;

use crate::engine::error::{Detail, Marks};
use crate::{BoxError, Error, History};

impl From<reqwest::Error> for Error {
    /// A timeout is [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), a
    /// decoding error [`Decode`](crate::ErrorKind::Decode), an
    /// `error_for_status` error [`Status`](crate::ErrorKind::Status), a
    /// builder error [`Builder`](crate::ErrorKind::Builder), anything else
    /// [`Request`](crate::ErrorKind::Request). The reqwest error is the
    /// source; `is_connect()` and `is_body()` answer as reqwest's would.
    /// An error while reading the final body of a redirected chain carries
    /// the chain's history and final URL.
    fn from(error: reqwest::Error) -> Self {
        let marks = marks(&error);
        let status = error.status();
        let mut url = error.url().cloned();
        let mut history = History::default();
        if let Some(chain) = chain_of(&error) {
            url = url.or_else(|| Some(chain.url.clone()));
            history = chain.history.clone();
        }
        let detail = if error.is_timeout() {
            Detail::Timeout(Some(Box::new(error)))
        } else if error.is_decode() && !marks.body {
            // reqwest's `bytes()` calls any failure of the body a decode
            // error; only one that is not a body's failure is decoding.
            Detail::Decode(Box::new(error))
        } else if let (true, Some(status)) = (error.is_status(), status) {
            Detail::Status(status, Box::new(error))
        } else if error.is_builder() {
            Detail::InvalidRequest(Box::new(error))
        } else if error.is_redirect() {
            Detail::RedirectedBelow(Box::new(error))
        } else {
            Detail::Request(Box::new(error))
        };
        let mut converted = Error::new(detail).with_marks(marks).with_history(history);
        if let Some(url) = url {
            converted = converted.with_url(url);
        }
        if let Some(status) = status {
            converted = converted.with_status(status);
        }
        converted
    }
}

/// What reqwest says of an error that no kind answers. reqwest wraps a
/// body's failure in a decode error when it is read with `bytes()`, `text()`
/// or `json()`: the body mark looks through every reqwest error inside.
pub(crate) fn marks(error: &reqwest::Error) -> Marks {
    let mut body = error.is_body();
    let mut source = std::error::Error::source(error);
    while let (false, Some(inner)) = (body, source) {
        body = inner
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_body);
        source = inner.source();
    }
    Marks {
        connect: error.is_connect(),
        body,
    }
}

/// The chain context somewhere in an error's sources, if the error came
/// from a [`WithChain`] body.
fn chain_of(error: &reqwest::Error) -> Option<&ChainBodyError> {
    let mut source = std::error::Error::source(error);
    while let Some(error) = source {
        if let Some(found) = error.downcast_ref::<ChainBodyError>() {
            return Some(found);
        }
        source = error.source();
    }
    None
}

/// A redirected chain's final body: reqwest's own (with its timeouts),
/// whose errors say which chain they ended.
pub(crate) struct WithChain {
    inner: reqwest::Body,
    /// Taken by the first error: a body that failed yields nothing more.
    chain: Option<Box<ChainBodyError>>,
}

impl WithChain {
    pub(crate) fn new(inner: reqwest::Body, url: Url, history: History) -> Self {
        Self {
            inner,
            chain: Some(Box::new(ChainBodyError {
                url,
                history,
                source: None,
            })),
        }
    }
}

impl Body for WithChain {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(error))) => {
                let error: BoxError = match this.chain.take() {
                    Some(mut chain) => {
                        chain.source = Some(error);
                        chain
                    }
                    None => Box::new(error),
                };
                Poll::Ready(Some(Err(error)))
            }
            other => other.map(|frame| frame.map(|frame| frame.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An error reading the final body of a redirected chain; its source is
/// reqwest's error (a timeout stays a timeout to reqwest's `is_timeout`).
#[derive(Debug)]
pub(crate) struct ChainBodyError {
    url: Url,
    history: History,
    source: Option<reqwest::Error>,
}

impl fmt::Display for ChainBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error reading the response body after {} redirect(s)",
            self.history.len()
        )
    }
}

impl std::error::Error for ChainBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

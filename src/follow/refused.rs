//! Whether a failed send is one the server did not process, so that the
//! loop may send the hop again, once, from its replay buffer.
//!
//! Only HTTP/2 can say so (RFC 9113 §8.7), and through hyper only one of
//! its two signals is exact:
//!
//! - A stream reset by the server with `REFUSED_STREAM` is a stream-level
//!   answer about that very request: it was not processed. Any method may go
//!   again.
//! - A graceful `GOAWAY` (`NO_ERROR`) refuses the streams above its
//!   last-stream-id, and h2 0.4 hands its error to exactly those streams. But
//!   hyper 1.x also hands the connection's `GOAWAY` error to a request it has
//!   just given to h2 (`send_request` succeeded, then `poll_ready` failed):
//!   its head, with end-of-stream for an empty body, may already be on the
//!   wire, below the last-stream-id, and processed. The same error value
//!   comes either way, so a `GOAWAY` is taken as a refusal only for an
//!   idempotent method (RFC 9110 §9.2.2 lets a client repeat those); a `POST`
//!   or `PATCH` fails with the send's error. (reqwest's own retry re-sends on
//!   any `GOAWAY(NO_ERROR)`; `Client::new` turns it off.)
//! - A `GOAWAY` with an error code is no refusal: h2 may hand that one to
//!   processed streams too.
//!
//! HTTP/1.1 never says so. A request that could not be written on a pooled
//! connection because the server had closed it is re-sent by hyper-util
//! itself (it gets the request back untouched); once any byte was written,
//! the server may have acted on it, and the failure is the caller's to see.

/// What an HTTP/2 server said of a request it did not process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "h2"), allow(dead_code))] // only an h2 error names one
pub(crate) enum Refusal {
    /// `RST_STREAM(REFUSED_STREAM)`: exact.
    Stream,
    /// `GOAWAY(NO_ERROR)`: exact from h2, not always through hyper.
    GoAway,
}

impl Refusal {
    /// Whether a hop with `method` may be sent again after this refusal.
    pub(crate) fn allows(self, method: &http::Method) -> bool {
        match self {
            Refusal::Stream => true,
            Refusal::GoAway => method.is_idempotent(),
        }
    }
}

/// The refusal in `error` or one of its sources, if there is one.
#[cfg_attr(not(feature = "h2"), allow(unused_variables))] // nothing to look for without h2
#[cfg_attr(not(any(feature = "reqwest", feature = "tower")), allow(dead_code))] // ureq is HTTP/1.1 only
pub(crate) fn by_peer(error: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    #[cfg(feature = "h2")]
    {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(h2) = error.downcast_ref::<h2::Error>() {
                if !h2.is_remote() {
                    return None;
                }
                return match h2.reason() {
                    Some(h2::Reason::REFUSED_STREAM) if h2.is_reset() => Some(Refusal::Stream),
                    Some(h2::Reason::NO_ERROR) if h2.is_go_away() => Some(Refusal::GoAway),
                    _ => None,
                };
            }
            next = error.source();
        }
    }
    None
}

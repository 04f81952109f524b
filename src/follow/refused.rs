//! Whether a failed send is one the server provably did not process, so
//! that the loop may send the hop again, once, from its replay buffer.
//!
//! Only HTTP/2 says so (RFC 9113 §8.7): a stream reset by the server with
//! `REFUSED_STREAM`, or a graceful `GOAWAY` (`NO_ERROR`) whose last-stream-id
//! is below the stream. h2 0.4 hands the server's `GOAWAY` error to exactly
//! the streams above its last-stream-id, when the frame arrives; the streams
//! at or below it go on, and if the connection then closes they fail with an
//! I/O error, which is not a refusal. A `GOAWAY` with an error code is not
//! taken as a refusal: h2 may hand that one to processed streams too.
//!
//! HTTP/1.1 never says so. A request that could not be written on a pooled
//! connection because the server had closed it is re-sent by hyper-util
//! itself (it gets the request back untouched); once any byte was written,
//! the server may have acted on it, and the failure is the caller's to see.

/// Whether `error`, or one of its sources, is an HTTP/2 refusal by the peer.
#[cfg_attr(not(feature = "h2"), allow(unused_variables))] // nothing to look for without h2
pub(crate) fn by_peer(error: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(feature = "h2")]
    {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(h2) = error.downcast_ref::<h2::Error>() {
                return h2.is_remote()
                    && ((h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM))
                        || (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR)));
            }
            next = error.source();
        }
    }
    false
}

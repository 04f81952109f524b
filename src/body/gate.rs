//! A body held back behind `Expect: 100-continue`, for a transport that
//! sends the head first and polls the body after (hyper): the body gives
//! nothing until its [`Gate`] opens (a `100 Continue`, or the wait passing),
//! and fails, so that the transport closes the connection instead of
//! leaving a request half-written, once the hop was answered without it.
//! No timer of its own: the transport hands one in, so that this module is
//! tied to no runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::ReplayBody;
use crate::engine::error::BoxError;

/// A timer future from the transport.
pub(crate) type Sleep = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// How long a held body stays held once the hop was answered with a final
/// status, in waits: the connection is closed then at the latest (sooner if
/// the server closes it). Long enough that a caller reads the response's
/// body before it (failing the body while hyper still reads that response
/// would cut the response short); short enough that a server that waits
/// for the body does not keep the connection, and the caller's body
/// source, for long.
pub(crate) const LINGER_WAITS: u32 = 30;

/// Where a held body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing sent; waiting for a `100 Continue` or the wait.
    Closed,
    /// Send the body (a 100 came, or the wait passed).
    Open,
    /// Answered before it opened: never send it; fail once told to.
    Answered,
    /// Answered, the final response handed to the caller: fail after the
    /// linger.
    Lingering,
    /// Fail when polled: the transport then closes the connection.
    Failed,
}

/// What a held body, the transport's 1xx callback and the hop's response
/// share.
#[derive(Debug)]
pub(crate) struct Gate {
    inner: Mutex<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: State,
    waker: Option<Waker>,
    /// The transport has polled the body (it wrote the head first).
    polled: bool,
}

impl Gate {
    /// A closed gate.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Shared {
                state: State::Closed,
                waker: None,
                polled: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // No invariant a panic could break: go on with the state as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, from: &[State], to: State) -> bool {
        let mut shared = self.lock();
        if !from.contains(&shared.state) {
            return false;
        }
        shared.state = to;
        if let Some(waker) = shared.waker.take() {
            waker.wake();
        }
        true
    }

    /// A `100 Continue` came: send the body (unless the hop was answered).
    pub(crate) fn open(&self) {
        self.set(&[State::Closed], State::Open);
    }

    /// The transport let go of its 1xx callback. Before it ever polled the
    /// body, that means it will report no 1xx at all (hyper's HTTP/2 client
    /// drops the request's extensions as it sends the head): send the body
    /// now rather than after the wait. After (hyper's HTTP/1 client drops it
    /// when the final head comes), nothing: [`Gate::answered`] follows.
    pub(crate) fn unheard(&self) {
        let mut shared = self.lock();
        if shared.state == State::Closed && !shared.polled {
            shared.state = State::Open;
            if let Some(waker) = shared.waker.take() {
                waker.wake();
            }
        }
    }

    /// The hop was answered. `true` if the body was still held: nothing of
    /// it was sent, and nothing will be.
    pub(crate) fn answered(&self) -> bool {
        self.set(&[State::Closed], State::Answered)
    }

    /// Fail the held body now (its response is read or dropped).
    pub(crate) fn fail(&self) {
        self.set(
            &[State::Closed, State::Answered, State::Lingering],
            State::Failed,
        );
    }

    /// The final response went to the caller: fail after the linger.
    pub(crate) fn linger(&self) {
        self.set(&[State::Answered], State::Lingering);
    }

    /// Whether the body was held back and never sent (tests).
    #[cfg(test)]
    fn held(&self) -> bool {
        matches!(
            self.lock().state,
            State::Answered | State::Lingering | State::Failed
        )
    }

    fn state(&self, waker: &Waker) -> State {
        let mut shared = self.lock();
        shared.polled = true;
        if !matches!(shared.state, State::Open) {
            match &mut shared.waker {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        }
        shared.state
    }
}

/// The error of a held body that its hop no longer needs.
#[derive(Debug, thiserror::Error)]
#[error("the request body was held back for `Expect: 100-continue` and the server answered without it; not sent")]
pub(crate) struct NotSent;

/// A body held behind a [`Gate`].
pub(crate) struct Held<B> {
    body: ReplayBody<B>,
    gate: Arc<Gate>,
    wait: Duration,
    sleep: fn(Duration) -> Sleep,
    /// The running timer, and the state it was started for.
    timer: Option<(State, Sleep)>,
}

impl<B> std::fmt::Debug for Held<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("body", &self.body)
            .field("gate", &self.gate)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl<B> Held<B> {
    pub(crate) fn new(
        body: ReplayBody<B>,
        gate: Arc<Gate>,
        wait: Duration,
        sleep: fn(Duration) -> Sleep,
    ) -> Self {
        Self {
            body,
            gate,
            wait,
            sleep,
            timer: None,
        }
    }
}

impl<B> Body for Held<B>
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
        loop {
            let state = this.gate.state(cx.waker());
            let (after, then) = match state {
                State::Open => {
                    this.timer = None;
                    return Pin::new(&mut this.body).poll_frame(cx);
                }
                State::Failed => return Poll::Ready(Some(Err(Box::new(NotSent)))),
                // Held until told: the response is being read.
                State::Answered => {
                    this.timer = None;
                    return Poll::Pending;
                }
                // As curl does: a server that never sends 100 gets the body
                // after the wait.
                State::Closed => (this.wait, State::Open),
                State::Lingering => (this.wait.saturating_mul(LINGER_WAITS), State::Failed),
            };
            if this.timer.as_ref().is_none_or(|(of, _)| *of != state) {
                this.timer = Some((state, (this.sleep)(after)));
            }
            let Some((_, timer)) = this.timer.as_mut() else {
                return Poll::Pending;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
            this.gate.set(&[state], then);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use std::cell::Cell;

    use http_body_util::Full;

    use super::*;

    thread_local! {
        /// Whether this test's timers have fired (each test its own thread).
        static FIRED: Cell<bool> = const { Cell::new(false) };
    }

    /// A timer that is ready once `FIRED` is set on this thread.
    fn test_sleep(_: Duration) -> Sleep {
        Box::pin(std::future::poll_fn(|_| {
            if FIRED.with(Cell::get) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }))
    }

    fn poll(held: &mut Held<Full<Bytes>>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(held).poll_frame(&mut cx)
    }

    fn held(gate: &Arc<Gate>) -> Held<Full<Bytes>> {
        let body = ReplayBody::memory(Bytes::from_static(b"payload"));
        Held::new(body, Arc::clone(gate), Duration::from_secs(1), test_sleep)
    }

    #[test]
    fn a_held_body_gives_nothing_until_its_100_then_all_of_it() {
        let gate = Gate::new();
        let mut body = held(&gate);
        assert_eq!(
            body.size_hint().exact(),
            Some(7),
            "the length is known before"
        );
        assert!(poll(&mut body).is_pending());
        gate.open();
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else {
            panic!("the body after the 100")
        };
        assert_eq!(frame.into_data().unwrap(), "payload");
        assert!(!gate.answered(), "an open gate was not holding anything");
    }

    #[test]
    fn a_body_answered_before_its_100_is_never_sent_and_fails_when_told() {
        let gate = Gate::new();
        let mut body = held(&gate);
        assert!(poll(&mut body).is_pending());
        assert!(gate.answered());
        gate.open(); // a late 100 changes nothing
        assert!(poll(&mut body).is_pending());
        assert!(gate.held());
        gate.fail();
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Err(_)))));
    }

    #[test]
    fn a_callback_let_go_before_the_first_poll_opens_the_gate_and_after_it_does_not() {
        let gate = Gate::new();
        let mut body = held(&gate);
        gate.unheard();
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        let gate = Gate::new();
        let mut body = held(&gate);
        assert!(poll(&mut body).is_pending());
        gate.unheard();
        assert!(poll(&mut body).is_pending(), "a final head is coming");
        assert!(gate.answered());
    }

    #[test]
    fn the_wait_opens_the_gate() {
        let gate = Gate::new();
        let mut body = held(&gate);
        assert!(poll(&mut body).is_pending());
        FIRED.with(|fired| fired.set(true));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(!gate.answered());
    }
}

//! One logical connection to the server that survives disconnects.
//!
//! A background loop opens the WebSocket (with the subprotocol, waiting until
//! it is really open), pumps frames both ways, and on loss waits a backoff
//! delay (or until [`Socket::retry_now`]) and opens again. Calls pending on a
//! lost connection fail with [`CallError::Disconnected`]; a call that is
//! dropped or times out sends a Reset so the server stops its work.

use super::{backoff, now_ms, sleep_ms};
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::{
    SinkExt, StreamExt,
    future::{Either, select},
};
use gloo_net::websocket::{Message, State, WebSocketError, futures::WebSocket};
use shared::{Frame, Name, SUBPROTOCOL};
use std::{
    cell::RefCell,
    collections::HashMap,
    fmt,
    future::Future,
    pin::pin,
    rc::{Rc, Weak},
};

/// Close code after which the client must not come back on its own
/// (bad origin, abuse, or its session was resumed elsewhere).
pub const CLOSE_POLICY: u16 = shared::close::POLICY;
/// How long opening a socket may take.
const OPEN_TIMEOUT_MS: f64 = 10_000.0;

/// Where the connection is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Opening the socket.
    Connecting,
    /// Open: frames flow.
    Online,
    /// Lost; retry number `attempt` starts at `until_ms` (see [`now_ms`]).
    Reconnecting {
        /// Retry number, from 1.
        attempt: u32,
        /// When the retry starts.
        until_ms: f64,
    },
    /// Given up; only a new [`Socket`] (or [`Socket::retry_now`]) tries again.
    Offline {
        /// Why, for people.
        reason: String,
    },
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The connection is not open, or was lost before the answer came.
    Disconnected,
    /// No answer in time; a Reset was sent.
    TimedOut,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Disconnected => f.write_str("not connected"),
            CallError::TimedOut => f.write_str("no answer in time"),
        }
    }
}

type Reply = oneshot::Sender<Result<Bytes, CallError>>;

struct Inner {
    url: String,
    status: Status,
    /// Writer of the open connection.
    out: Option<mpsc::UnboundedSender<Bytes>>,
    /// The browser socket under gloo-net's wrapper, to close it ourselves.
    raw: Option<web_sys::WebSocket>,
    /// Counts connections, so a Reset never reaches a later one.
    generation: u64,
    next_id: u32,
    calls: HashMap<u32, Reply>,
    events: HashMap<&'static str, Vec<mpsc::UnboundedSender<Bytes>>>,
    status_subs: Vec<mpsc::UnboundedSender<Status>>,
    wake: Option<oneshot::Sender<()>>,
    stopped: bool,
    /// Made by [`Socket::dormant`] and not started yet.
    dormant: bool,
}

impl Inner {
    fn set_status(&mut self, status: Status) {
        self.status = status.clone();
        self.status_subs
            .retain(|s| s.unbounded_send(status.clone()).is_ok());
    }

    fn send(&self, frame: &Frame) -> bool {
        self.out
            .as_ref()
            .is_some_and(|out| out.unbounded_send(frame.encode()).is_ok())
    }
}

/// A cheap, cloneable handle to the connection.
#[derive(Clone)]
pub struct Socket {
    inner: Rc<RefCell<Inner>>,
}

impl Socket {
    /// Starts connecting to `url` (e.g. `ws://127.0.0.1:3000/socket`) and
    /// keeps reconnecting until [`Socket::close`].
    pub fn connect(url: &str) -> Self {
        let inner = Rc::new(RefCell::new(Inner {
            url: url.to_owned(),
            status: Status::Connecting,
            out: None,
            raw: None,
            generation: 0,
            next_id: 1,
            calls: HashMap::new(),
            events: HashMap::new(),
            status_subs: Vec::new(),
            wake: None,
            stopped: false,
            dormant: false,
        }));
        wasm_bindgen_futures::spawn_local(run(Rc::downgrade(&inner)));
        Self { inner }
    }

    /// A socket for `url` that waits (showing as connecting): it connects
    /// on the first [`Socket::retry_now`] (the app starts it once this tab
    /// may chat).
    pub fn dormant(url: &str) -> Self {
        let inner = Rc::new(RefCell::new(Inner {
            url: url.to_owned(),
            status: Status::Connecting,
            out: None,
            raw: None,
            generation: 0,
            next_id: 1,
            calls: HashMap::new(),
            events: HashMap::new(),
            status_subs: Vec::new(),
            wake: None,
            stopped: true,
            dormant: true,
        }));
        Self { inner }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.inner.borrow().status.clone()
    }

    /// Every status change from now on, starting with the current one.
    pub fn statuses(&self) -> mpsc::UnboundedReceiver<Status> {
        let (tx, rx) = mpsc::unbounded();
        let mut inner = self.inner.borrow_mut();
        let _ = tx.unbounded_send(inner.status.clone());
        inner.status_subs.push(tx);
        rx
    }

    /// Every payload of the Notify `event` from now on.
    pub fn on(&self, event: &'static str) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded();
        self.inner
            .borrow_mut()
            .events
            .entry(event)
            .or_default()
            .push(tx);
        rx
    }

    /// Sends a Notify; `false` when not connected.
    pub fn notify(&self, event: &'static str, payload: impl Into<Bytes>) -> bool {
        let frame = Frame::notify(Name::from_static(event), payload);
        self.inner.borrow().send(&frame)
    }

    /// Sends a Request now and returns its answer. Dropping the future
    /// before the answer, or `timeout_ms` passing, sends a Reset.
    pub fn call(
        &self,
        event: &'static str,
        payload: impl Into<Bytes>,
        timeout_ms: u32,
    ) -> impl Future<Output = Result<Bytes, CallError>> + 'static {
        let (reply, answer) = oneshot::channel();
        let (id, generation, sent) = {
            let mut inner = self.inner.borrow_mut();
            let id = inner.next_id;
            inner.next_id = inner.next_id.wrapping_add(1).max(1);
            let sent = inner.send(&Frame::request(id, Name::from_static(event), payload));
            if sent {
                inner.calls.insert(id, reply);
            }
            (id, inner.generation, sent)
        };
        let guard = ResetGuard {
            inner: Rc::downgrade(&self.inner),
            id,
            generation,
            armed: sent,
        };
        async move {
            if !sent {
                return Err(CallError::Disconnected);
            }
            let result = match select(answer, pin!(sleep_ms(timeout_ms))).await {
                Either::Left((Ok(result), _)) => result,
                Either::Left((Err(_), _)) => Err(CallError::Disconnected),
                // The guard, still armed, sends the Reset as it drops.
                Either::Right(_) => return Err(CallError::TimedOut),
            };
            guard.disarm();
            result
        }
    }

    /// Skips the wait before the next reconnect attempt.
    pub fn retry_now(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = false;
        if let Some(wake) = inner.wake.take() {
            let _ = wake.send(());
        } else if std::mem::take(&mut inner.dormant)
            || matches!(inner.status, Status::Offline { .. })
        {
            drop(inner);
            wasm_bindgen_futures::spawn_local(run(Rc::downgrade(&self.inner)));
        }
    }

    /// Closes the connection (normal closure) and stops reconnecting.
    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = true;
        // Close through the browser socket and let the pump see the close
        // event before gloo-net's wrapper is dropped: its Drop releases the
        // event callbacks, and a close event arriving after that would call
        // a released callback.
        if let Some(raw) = &inner.raw {
            let _ = raw.close_with_code(1000);
        } else {
            inner.out = None;
        }
        if let Some(wake) = inner.wake.take() {
            let _ = wake.send(());
        }
    }
}

/// Sends a Reset for a call that ends without its answer.
struct ResetGuard {
    inner: Weak<RefCell<Inner>>,
    id: u32,
    generation: u64,
    armed: bool,
}

impl ResetGuard {
    /// The call ended with its answer (or with its connection): no Reset.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ResetGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(inner) = self.inner.upgrade()
            && let Ok(mut inner) = inner.try_borrow_mut()
        {
            inner.calls.remove(&self.id);
            if inner.generation == self.generation {
                inner.send(&Frame::Reset { id: self.id });
            }
        }
    }
}

fn with<T>(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
    let inner = weak.upgrade()?;
    let mut inner = inner.borrow_mut();
    Some(f(&mut inner))
}

/// The connect / pump / wait loop.
async fn run(weak: Weak<RefCell<Inner>>) {
    let mut attempt = 0u32;
    loop {
        let Some(Some(url)) = with(&weak, |i| (!i.stopped).then(|| i.url.clone())) else {
            return;
        };
        with(&weak, |i| i.set_status(Status::Connecting));
        if let Ok((ws, raw)) = open(&url).await {
            attempt = 0;
            with(&weak, |i| i.raw = Some(raw));
            let ending = pump(&weak, ws).await;
            let stop = with(&weak, |i| {
                i.out = None;
                i.raw = None;
                for (_, reply) in i.calls.drain() {
                    let _ = reply.send(Err(CallError::Disconnected));
                }
                match ending {
                    Some((CLOSE_POLICY, reason)) => {
                        i.set_status(Status::Offline {
                            reason: if reason.is_empty() {
                                "the server closed the connection".into()
                            } else {
                                reason
                            },
                        });
                        true
                    }
                    _ if i.stopped => {
                        i.set_status(Status::Offline {
                            reason: "disconnected".into(),
                        });
                        true
                    }
                    _ => false,
                }
            });
            if stop != Some(false) {
                return;
            }
        }
        attempt += 1;
        let delay = backoff::delay_ms(attempt, js_sys::Math::random());
        let (wake, woken) = oneshot::channel();
        let go_on = with(&weak, |i| {
            if i.stopped {
                i.set_status(Status::Offline {
                    reason: "disconnected".into(),
                });
                return false;
            }
            i.wake = Some(wake);
            i.set_status(Status::Reconnecting {
                attempt,
                until_ms: now_ms() + f64::from(delay),
            });
            true
        });
        if go_on != Some(true) {
            return;
        }
        let _ = select(woken, pin!(sleep_ms(delay))).await;
        with(&weak, |i| i.wake = None);
    }
}

/// Opens the socket and waits until it is really open.
async fn open(url: &str) -> Result<(WebSocket, web_sys::WebSocket), ()> {
    let raw = web_sys::WebSocket::new_with_str(url, SUBPROTOCOL).map_err(|_| ())?;
    let ws = WebSocket::try_from(raw.clone()).map_err(|_| ())?;
    let start = now_ms();
    loop {
        match ws.state() {
            State::Open => return Ok((ws, raw)),
            State::Connecting if now_ms() - start < OPEN_TIMEOUT_MS => sleep_ms(10).await,
            State::Connecting => {
                // Too slow: close it and wait for the close event to pass
                // before the wrapper (and its callbacks) is dropped.
                let _ = raw.close();
                for _ in 0..100 {
                    if matches!(ws.state(), State::Closed) {
                        break;
                    }
                    sleep_ms(20).await;
                }
                return Err(());
            }
            State::Closing | State::Closed => return Err(()),
        }
    }
}

/// Moves frames until the connection ends; returns the close code and
/// reason when the server sent one.
async fn pump(weak: &Weak<RefCell<Inner>>, ws: WebSocket) -> Option<(u16, String)> {
    let (mut sink, mut stream) = ws.split();
    let (out, mut outgoing) = mpsc::unbounded::<Bytes>();
    with(weak, |i| {
        i.out = Some(out);
        i.generation += 1;
        i.set_status(Status::Online);
    });
    let writer = async move {
        while let Some(frame) = outgoing.next().await {
            if sink.send(Message::Bytes(frame.to_vec())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let reader = async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Bytes(bytes))) => dispatch(weak, Bytes::from(bytes)),
                Some(Ok(Message::Text(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(close))) => {
                    return Some((close.code, close.reason));
                }
                Some(Err(_)) | None => return None,
            }
        }
    };
    match select(pin!(writer), pin!(reader)).await {
        Either::Left(((), _)) => None,
        Either::Right((ending, _)) => ending,
    }
}

/// Routes one incoming frame.
fn dispatch(weak: &Weak<RefCell<Inner>>, bytes: Bytes) {
    let Ok(frame) = Frame::decode(&bytes) else {
        return;
    };
    // Take what is needed out of the borrow before anyone is woken.
    match frame {
        Frame::Response { id, payload } => {
            if let Some(Some(reply)) = with(weak, |i| i.calls.remove(&id)) {
                let _ = reply.send(Ok(payload));
            }
        }
        Frame::Notify { name, payload } => {
            with(weak, |i| {
                if let Some(subs) = i.events.get_mut(name.as_str()) {
                    subs.retain(|s| s.unbounded_send(payload.clone()).is_ok());
                }
            });
        }
        Frame::Request { .. } | Frame::Reset { .. } => {}
    }
}

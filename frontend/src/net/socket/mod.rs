//! One logical connection to the server that survives disconnects.
//!
//! A background loop opens the WebSocket (with the subprotocol, waiting until
//! it is really open), pumps frames both ways, and on loss waits a backoff
//! delay (or until [`Socket::retry_now`]) and opens again. Calls pending on a
//! lost connection fail with [`CallError::Disconnected`]; a call that is
//! dropped or times out sends a Reset so the server stops its work.
//!
//! One job per file: `status` (the connection's status and call errors,
//! plain data), `run` (the connect / pump / wait loop); this file holds the
//! handle: subscriptions, notify, call and its Reset, retry and close.

mod run;
mod status;

pub use status::{CLOSE_POLICY, CallError, Status};

use super::sleep_ms;
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::future::{Either, select};
use run::run;
use shared::{Frame, Name};
use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    pin::pin,
    rc::{Rc, Weak},
};

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

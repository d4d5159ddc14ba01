//! The connection's life: open the WebSocket, pump frames both ways until
//! it ends, wait a backoff delay (or until woken), and open it again.

use super::{CLOSE_POLICY, CallError, Inner, Status};
use crate::net::{backoff, now_ms, sleep_ms};
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::{
    SinkExt, StreamExt,
    future::{Either, select},
};
use gloo_net::websocket::{Message, State, WebSocketError, futures::WebSocket};
use shared::{Frame, SUBPROTOCOL};
use std::{
    cell::RefCell,
    pin::pin,
    rc::{Rc, Weak},
};
use wasm_bindgen::{JsCast, closure::Closure};

/// How long opening a socket may take.
const OPEN_TIMEOUT_MS: f64 = 10_000.0;

fn with<T>(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
    let inner = weak.upgrade()?;
    let mut inner = inner.borrow_mut();
    Some(f(&mut inner))
}

/// The connect / pump / wait loop.
pub(super) async fn run(weak: Weak<RefCell<Inner>>) {
    let mut attempt = 0u32;
    loop {
        let Some(Some(url)) = with(&weak, |i| (!i.stopped).then(|| i.url.clone())) else {
            return;
        };
        with(&weak, |i| i.set_status(Status::Connecting));
        let opened = match open(&url).await {
            Ok(opened) => Some(opened),
            // Refused by policy right after the upgrade (a server that
            // takes no guests): said why, and retrying would not help.
            Err(Some((CLOSE_POLICY, reason))) => {
                with(&weak, |i| i.set_status(Status::Offline { reason }));
                return;
            }
            Err(_) => None,
        };
        if let Some((ws, raw)) = opened {
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

/// Opens the socket and waits until it is really open. `Err` carries the
/// close code and reason when the server closed it before it was seen
/// open (a close right after the upgrade).
async fn open(url: &str) -> Result<(WebSocket, web_sys::WebSocket), Option<(u16, String)>> {
    let raw = web_sys::WebSocket::new_with_str(url, SUBPROTOCOL).map_err(|_| None)?;
    // The close may come before this loop sees the socket open: keep its
    // code and reason.
    let closed: Rc<RefCell<Option<(u16, String)>>> = Rc::default();
    let seen = closed.clone();
    let on_close = Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |e: web_sys::CloseEvent| {
        *seen.borrow_mut() = Some((e.code(), e.reason()));
    });
    let _ = raw.add_event_listener_with_callback("close", on_close.as_ref().unchecked_ref());
    let forget_listener = |raw: &web_sys::WebSocket| {
        let _ = raw.remove_event_listener_with_callback("close", on_close.as_ref().unchecked_ref());
    };
    let ws = WebSocket::try_from(raw.clone()).map_err(|_| None)?;
    let start = now_ms();
    loop {
        match ws.state() {
            State::Open => {
                forget_listener(&raw);
                return Ok((ws, raw));
            }
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
                forget_listener(&raw);
                return Err(None);
            }
            State::Closing | State::Closed => {
                // The close event follows the state; give it a moment.
                for _ in 0..50 {
                    if closed.borrow().is_some() || !matches!(ws.state(), State::Closing) {
                        break;
                    }
                    sleep_ms(20).await;
                }
                sleep_ms(0).await;
                forget_listener(&raw);
                return Err(closed.borrow_mut().take());
            }
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

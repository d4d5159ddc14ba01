//! Accepting connections, with every one of them bounded from its first
//! byte: counted against the connection limit and its address's limit from
//! the TCP accept (not only once it is a WebSocket), given a deadline for
//! its HTTP request head, and a deadline on every socket write for its
//! whole life (the upgraded WebSocket writes through the same stream).
//!
//! axum's own `serve` has none of these, so this is the small accept loop
//! it would be, on hyper's HTTP/1 connection directly.

use crate::addr::{AddrToken, Addresses, Net, client_ip, is_trusted};
use axum::{Router, extract::ConnectInfo};
use hyper::{Request, body::Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

/// Connections taken beyond the limit only to be told why they are
/// refused (a WebSocket gets its close code); beyond these, new
/// connections are closed at once.
const REFUSAL_SLOTS: usize = 64;
/// Head deadline of a connection taken only to be refused.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How a connection was let in; the socket handler reads it from the
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) enum Admission {
    /// Within every limit.
    Admitted {
        /// Counted against its address at the accept (false behind a
        /// trusted proxy, where the address is known only from the request).
        counted: bool,
    },
    /// Over a limit: served only to say so.
    Refused {
        /// WebSocket close code to send.
        code: u16,
        /// Why, for the client.
        reason: &'static str,
    },
}

/// What the accept loop enforces.
pub(crate) struct Limits {
    /// One permit per connection, from the accept to its end.
    pub slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    /// Per-address counts and budgets.
    pub addresses: Addresses,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted: Vec<Net>,
    /// Deadline of an HTTP request head.
    pub header_timeout: Duration,
    /// Deadline of one socket write.
    pub write_timeout: Duration,
    refused: prometheus_client::metrics::counter::Counter,
}

impl Limits {
    /// Limits for `max` connections in all.
    pub(crate) fn new(
        max: usize,
        addresses: Addresses,
        trusted: Vec<Net>,
        header_timeout: Duration,
        write_timeout: Duration,
        refused: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            refusals: Arc::new(Semaphore::new(REFUSAL_SLOTS)),
            addresses,
            trusted,
            header_timeout,
            write_timeout,
            refused,
        }
    }

    /// Connections open now (any kind, upgraded or not).
    pub(crate) fn open(&self, max: usize) -> usize {
        max.saturating_sub(self.slots.available_permits())
    }

    fn admit(&self, tcp: TcpStream, peer: SocketAddr) -> Option<(Guarded, Admission)> {
        let proxied = is_trusted(peer.ip(), &self.trusted);
        let token = if proxied {
            None
        } else {
            self.addresses.connect(peer.ip())
        };
        let refused = |tcp, code, reason| -> Option<(Guarded, Admission)> {
            self.refused.inc();
            let slot = self.refusals.clone().try_acquire_owned().ok()?;
            Some((
                Guarded::new(tcp, self.write_timeout, slot, None),
                Admission::Refused { code, reason },
            ))
        };
        if !proxied && token.is_none() {
            debug!(peer = %peer, "too many connections from this address");
            return refused(
                tcp,
                shared::close::POLICY,
                "too many connections from your address",
            );
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            warn!(peer = %peer, "connection limit reached");
            return refused(
                tcp,
                shared::close::TRY_LATER,
                "server is full; try again later",
            );
        };
        Some((
            Guarded::new(tcp, self.write_timeout, slot, token),
            Admission::Admitted { counted: !proxied },
        ))
    }

    /// The client address of a request: the peer, or behind a trusted
    /// proxy the address it forwarded for.
    pub(crate) fn client_ip(
        &self,
        peer: SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        client_ip(peer.ip(), headers, &self.trusted)
    }
}

/// A TCP stream that holds its connection's permits for as long as it
/// lives (an upgraded WebSocket keeps it), and fails a write that makes no
/// progress within its deadline: a peer that stopped reading (a zero TCP
/// window) is cut instead of holding memory and a slot forever.
pub(crate) struct Guarded {
    io: TcpStream,
    write_timeout: Duration,
    /// Allocated at the first write that has to wait.
    deadline: Option<Pin<Box<Sleep>>>,
    /// A write is waiting; `deadline` counts from when it started to.
    armed: bool,
    _slot: OwnedSemaphorePermit,
    _addr: Option<AddrToken>,
}

impl Guarded {
    fn new(
        io: TcpStream,
        write_timeout: Duration,
        slot: OwnedSemaphorePermit,
        addr: Option<AddrToken>,
    ) -> Self {
        Self {
            io,
            write_timeout,
            deadline: None,
            armed: false,
            _slot: slot,
            _addr: addr,
        }
    }

    fn watch<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.armed = false;
            return result;
        }
        if !self.armed {
            self.armed = true;
            let at = Instant::now() + self.write_timeout;
            match &mut self.deadline {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if expired {
            debug!("a socket write made no progress within its deadline");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "socket write timed out",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(result, cx)
    }
}

/// Serves `router` on `listener` until `stop` is cancelled; then stops
/// accepting, asks every HTTP connection to finish, and drops those that
/// have not by `deadline` (the caller's bound on the whole shutdown).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Arc<Limits>,
    stop: CancellationToken,
    grace: Duration,
) {
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (or a connection reset before it was
                // taken): wait a moment instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Small frames must leave at once (Nagle would hold a reply
            // for the peer's delayed ACK, ~40 ms on Linux).
            debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Some((io, admission)) = limits.admit(tcp, peer) else {
            continue;
        };
        let header_timeout = match admission {
            Admission::Admitted { .. } => limits.header_timeout,
            Admission::Refused { .. } => REFUSAL_HEADER_TIMEOUT.min(limits.header_timeout),
        };
        connections.spawn(connection(
            io,
            peer,
            admission,
            router.clone(),
            header_timeout,
            stop.clone(),
            force.clone(),
        ));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        warn!(
            open = connections.len(),
            "connections still open at the shutdown deadline: dropping them"
        );
        force.cancel();
        let _ = tokio::time::timeout(Duration::from_millis(200), connections.wait()).await;
    }
}

fn refusal() -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONNECTION, "close"), (header::RETRY_AFTER, "5")],
        "too many connections; try again later\n",
    )
        .into_response()
}

async fn connection(
    io: Guarded,
    peer: SocketAddr,
    admission: Admission,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    force: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let refused = matches!(admission, Admission::Refused { .. });
        // A connection over a limit is served only to be told so: its
        // socket gets the close code (the handler reads `admission`),
        // anything else a 503, and it is closed after that.
        let plain = refused && req.uri().path() != "/socket";
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(admission.clone());
        let mut router = router.clone();
        async move {
            if plain {
                return Ok(refusal());
            }
            tower_service::Service::call(&mut router, req).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = force.cancelled() => return,
        }
    }
}

//! The chat server: an axum app that serves `websocket.io-rpc-v0.1` at
//! `/socket` and hosts chat rooms as actors.
//!
//! - [`app`] builds the router; [`run`] serves it until a shutdown future
//!   resolves, then closes every socket with 1001. Both are what tests use.
//! - `session/`: one task per connection plus its writer; `room/`: the room
//!   actors; `history`: stored messages; `directory`: nicknames and sessions.

pub mod cluster;
pub mod config;
pub mod directory;
pub mod history;
mod http;
pub mod limits;
pub mod metrics;
pub mod room;
pub mod session;
pub mod sqlite;
pub mod web;

pub use config::Config;

use axum::{Router, routing::get, serve::ListenerExt};
use directory::Directory;
use history::{HistoryStore, MemoryStore};
use room::Rooms;
use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Counters an operator (or a test) can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open WebSocket sessions.
    pub connections: AtomicU64,
    /// Running `long_runing_task` calls.
    pub long_tasks: AtomicU64,
}

/// Everything the server shares between connections.
pub struct AppState {
    /// The configuration it runs with.
    pub config: Config,
    /// Every room.
    pub rooms: Rooms,
    /// Nicknames and sessions.
    pub directory: Directory,
    /// Counters.
    pub stats: Stats,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
    /// Where history (and sessions, when it keeps them) are stored.
    pub store: Arc<dyn HistoryStore>,
    /// Cluster mode: rooms, nicknames and sessions shared through Redis.
    pub cluster: Option<Arc<cluster::Cluster>>,
    next_conn: AtomicU64,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    sessions: TaskTracker,
}

impl AppState {
    /// The store the configuration asks for: SQLite in `data_dir`, or
    /// memory with `in_memory`.
    pub fn open_store(config: &Config) -> Result<Arc<dyn HistoryStore>, history::StoreError> {
        if config.in_memory {
            return Ok(Arc::new(MemoryStore::new(config.history)));
        }
        let retention = sqlite::Retention {
            max_messages: config.retention_messages,
            max_age: config.max_age(),
        };
        Ok(Arc::new(sqlite::SqliteStore::open(
            &config.data_dir,
            retention,
        )?))
    }

    /// State with in-memory history.
    pub fn new(config: Config) -> Arc<Self> {
        let store = Arc::new(MemoryStore::new(config.history));
        Self::with_store(config, store)
    }

    /// State with the given history store.
    pub fn with_store(config: Config, store: Arc<dyn HistoryStore>) -> Arc<Self> {
        Self::build(config, store, None)
    }

    /// State for cluster mode: history, presence, nicknames and sessions
    /// live in Redis (see [`cluster`]). Must be called in a Tokio runtime.
    pub fn with_cluster(config: Config, cluster: Arc<cluster::Cluster>) -> Arc<Self> {
        let store = Arc::new(MemoryStore::new(config.history));
        let takeovers = cluster.takeovers();
        let state = Self::build(config, store, Some(cluster));
        if let Some(mut takeovers) = takeovers {
            let weak = Arc::downgrade(&state);
            tokio::spawn(async move {
                while let Some((token, conn)) = takeovers.recv().await {
                    let Some(state) = weak.upgrade() else { return };
                    if state.directory.moved_away(&token, conn) {
                        tracing::info!(
                            conn_id = conn,
                            "session resumed on another process: closing"
                        );
                    }
                }
            });
        }
        state
    }

    fn build(
        config: Config,
        store: Arc<dyn HistoryStore>,
        cluster: Option<Arc<cluster::Cluster>>,
    ) -> Arc<Self> {
        let mut metrics = metrics::Metrics::default();
        if let Some(cluster) = &cluster {
            metrics = metrics.with_cluster(&cluster.metrics);
        }
        let metrics = Arc::new(metrics);
        let mut rooms = Rooms::new(
            store.clone(),
            config.max_rooms,
            metrics.fanout_seconds.clone(),
        );
        if let Some(cluster) = &cluster {
            rooms = rooms.clustered(cluster.clone(), config.history);
        }
        Arc::new(Self {
            rooms,
            metrics,
            store,
            cluster,
            directory: Directory::default(),
            stats: Stats::default(),
            next_conn: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            config,
        })
    }

    fn next_conn_id(&self) -> room::ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes `wanted` or a suffixed form of it; across the cluster in
    /// cluster mode. `None` when the cluster cannot be asked.
    async fn claim_free(
        &self,
        wanted: &str,
        conn: room::ConnId,
        session: Option<&str>,
    ) -> Option<String> {
        match &self.cluster {
            Some(c) => match c.claim_free(wanted, conn, session).await {
                Ok(nick) => Some(nick),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a nickname");
                    None
                }
            },
            None => Some(self.directory.claim_free(wanted, conn)),
        }
    }

    /// Takes exactly `wanted`: `Ok(false)` when somebody live has it.
    async fn claim_exact(
        &self,
        wanted: &str,
        conn: room::ConnId,
        session: Option<&str>,
    ) -> Result<bool, history::StoreError> {
        match &self.cluster {
            Some(c) => c.claim_exact(wanted, conn, session).await,
            None => Ok(self.directory.claim_exact(wanted, conn)),
        }
    }

    /// Gives a nickname back.
    fn release_nick(&self, nick: &str, conn: room::ConnId) {
        match &self.cluster {
            Some(c) => c.release(nick, conn),
            None => self.directory.release(nick, conn),
        }
    }

    /// The rooms that exist: this process's, or in cluster mode every
    /// process's (this process's when Redis cannot be asked).
    async fn list_rooms(&self) -> Vec<shared::chat::RoomInfo> {
        if let Some(cluster) = &self.cluster {
            match cluster.rooms(self.config.max_rooms).await {
                Ok(rooms) => return rooms,
                Err(e) => tracing::debug!(error = %e, "cannot list the cluster's rooms"),
            }
        }
        self.rooms.list()
    }

    /// A session saved by an earlier run (or, in cluster mode, any process).
    async fn load_session(&self, token: &str) -> Option<history::SavedSession> {
        match &self.cluster {
            Some(c) => c.load_session(token).await,
            None => self.store.load_session(token),
        }
    }

    /// Saves a session for a client that comes back later (or elsewhere).
    fn save_session(&self, token: &str, saved: &history::SavedSession) {
        match &self.cluster {
            Some(c) => c.save_session(token, saved),
            None => self.store.save_session(token, saved),
        }
    }
}

/// The router: the WebSocket at `/socket`, the embedded app everywhere else.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/socket", get(http::socket))
        .route("/healthz", get(http::healthz))
        .route("/metrics", get(http::metrics))
        .fallback(web::serve)
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops
/// accepting, closes every socket with 1001 and returns once they are
/// closed (or after five seconds).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    let sweeper = tokio::spawn(sweep_sessions(state.clone()));
    let router = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Small frames must leave at once: with Nagle's algorithm on, a reply
    // waits for the peer's delayed ACK (~40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing every socket with 1001");
            token.cancel();
        })
        .await;
    state.shutdown.cancel();
    state.sessions.close();
    if tokio::time::timeout(Duration::from_secs(5), state.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!("some sockets did not close within 5 s");
    }
    sweeper.abort();
    if let Some(cluster) = &state.cluster {
        cluster.shutdown().await;
    }
    result
}

/// Forgets sessions that nobody resumed within the configured time.
async fn sweep_sessions(state: Arc<AppState>) {
    let ttl = Duration::from_secs(state.config.session_ttl_secs);
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let gone = state.directory.sweep(ttl);
        if gone > 0 {
            tracing::debug!(sessions = gone, "forgot expired sessions");
        }
    }
}

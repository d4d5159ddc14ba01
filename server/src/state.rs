//! What every connection shares: [`AppState`], made once at start-up with
//! the ports chosen for this process (the rooms' log and bus, nicknames,
//! sessions, the store), and the questions connections ask of it.

use crate::{
    accounts::Accounts,
    addr, cluster,
    config::Config,
    credentials::{
        password::Hasher,
        throttle::{Rules as ThrottleRules, Throttle},
    },
    history::HistoryStore,
    identity::{self, Book, Nicks, Sessions, SignedIn},
    listen, log,
    memory::MemoryStore,
    metrics, origin,
    room::{self, Rooms},
    sqlite,
};
use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Counters an operator (or a test) can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open WebSocket sessions.
    pub connections: AtomicU64,
    /// Running `long_runing_task` calls.
    pub long_tasks: AtomicU64,
}

/// Suffixes tried for a nickname (`name-2` … ) before giving up.
const MAX_SUFFIX: u64 = 100;

/// Everything the server shares between connections.
pub struct AppState {
    /// The configuration it runs with.
    pub config: Config,
    /// Every room.
    pub rooms: Rooms,
    /// This process's nicknames and sessions (which connection uses which).
    pub book: Arc<Book>,
    /// Nicknames among everyone this process shares rooms with.
    pub nicks: Arc<dyn Nicks>,
    /// Saved sessions, for clients that come back (here or elsewhere).
    pub sessions: Arc<dyn Sessions>,
    /// The rooms' log.
    pub(crate) log: Arc<dyn log::Log>,
    /// Counters.
    pub stats: Stats,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
    /// Where history (and sessions, when it keeps them) are stored.
    pub store: Arc<dyn HistoryStore>,
    /// Cluster mode: rooms, nicknames and sessions shared through Redis.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Accounts and sign-in sessions, where the store keeps them (not yet
    /// in cluster mode: the API answers 503 there).
    pub accounts: Option<Arc<dyn Accounts>>,
    /// Rooms' access rules and roles, where the accounts are.
    pub access: Option<Arc<dyn crate::access::Access>>,
    /// Password hashing, `--password-hashes` at once.
    pub passwords: Hasher,
    /// Sign-in failures, by name and by address.
    pub signin_throttle: Throttle,
    /// This process's signed-in connections, by sign-in session.
    pub signed_in: SignedIn,
    /// Connection limits, per address and in all.
    pub(crate) limits: Arc<listen::Limits>,
    /// The origins that may open the socket (set by [`run`] from the
    /// address it listens on).
    pub(crate) origins: OnceLock<origin::Origins>,
    pub(crate) next_conn: AtomicU64,
    pub(crate) shutdown: CancellationToken,
    pub(crate) connections: TaskTracker,
}

impl AppState {
    /// The store the configuration asks for: SQLite in `data_dir`, or
    /// memory with `in_memory`.
    pub fn open_store(config: &Config) -> Result<Arc<dyn HistoryStore>, log::StoreError> {
        if config.in_memory {
            return Ok(Arc::new(MemoryStore::new(config.history)));
        }
        let options = sqlite::Options {
            retention: sqlite::Retention {
                max_messages: config.retention_messages,
                max_age: config.max_age(),
            },
            session_ttl: Duration::from_secs(config.session_ttl_secs),
            queue_bytes: config.store_queue_bytes,
        };
        let store = sqlite::SqliteStore::open_with(&config.data_dir, options)?;
        if config.test_commit_delay_ms > 0 {
            store.delay_writes(Duration::from_millis(config.test_commit_delay_ms));
        }
        Ok(Arc::new(store))
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
                    if state.book.moved_away(&token, conn) {
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
        let book = Arc::new(held_nicks(store.as_ref()));
        // The ports, chosen once: the cluster's in cluster mode, else the
        // embedded store's, with nobody else to hear from.
        let (ports, nicks, sessions): (room::Ports, Arc<dyn Nicks>, Arc<dyn Sessions>) =
            match &cluster {
                Some(cluster) => (
                    room::Ports {
                        log: cluster.clone(),
                        bus: cluster.clone(),
                    },
                    cluster.clone(),
                    cluster.clone(),
                ),
                None => {
                    let here = Arc::new(identity::Here {
                        book: book.clone(),
                        store: store.clone(),
                    });
                    (
                        room::Ports {
                            log: store.clone(),
                            bus: Arc::new(log::LocalBus),
                        },
                        here.clone(),
                        here,
                    )
                }
            };
        let log = ports.log.clone();
        let (accounts, access) = match &cluster {
            Some(_) => (None, None),
            None => (store.accounts(), store.access()),
        };
        // A room keeps at hand at most `--history` messages, and never more
        // than its log keeps.
        let kept = ports
            .log
            .kept_per_room()
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let cache = config.history.min(kept);
        let rooms = Rooms::new(
            ports,
            cache,
            config.max_rooms,
            metrics.fanout_seconds.clone(),
        )
        .with_limits(
            room::RoomLimits {
                max_recovery: config.max_recovery,
                rate: config.room_rate,
                stall: config.stall(),
            },
            room::RoomCounters {
                store_full: metrics.store_full.clone(),
                intake_waits: metrics.intake_waits.clone(),
            },
        );
        let limits = Arc::new(listen::Limits::new(
            config.max_connections,
            addr::Addresses::new(addr::Budgets {
                connections: config.max_connections_per_ip,
                rooms_per_minute: config.rooms_per_ip_per_minute,
                sessions_per_minute: config.sessions_per_ip_per_minute,
            }),
            config.trusted_proxies.clone(),
            config.header_timeout(),
            config.write_timeout(),
            metrics.refused_connections.clone(),
        ));
        Arc::new(Self {
            rooms,
            metrics,
            store,
            cluster,
            accounts,
            access,
            passwords: Hasher::bounded(config.password_hashes, config.password_queue),
            signin_throttle: Throttle::new(ThrottleRules::default()),
            signed_in: SignedIn::default(),
            book,
            nicks,
            sessions,
            log,
            stats: Stats::default(),
            next_conn: AtomicU64::new(1),
            limits,
            origins: OnceLock::new(),
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            config,
        })
    }

    /// The origins that may open the socket.
    pub fn origins(&self) -> &origin::Origins {
        self.origins.get_or_init(|| {
            origin::Origins::new(
                &self.config.public_origins,
                &self.config.allowed_origins,
                self.config.addr,
            )
            .unwrap_or_default()
        })
    }

    /// Bytes of messages waiting for the store (SQLite's writer, or Redis).
    pub fn store_queue_bytes(&self) -> usize {
        self.log.queued_bytes()
    }

    /// Per-address connection counts and budgets.
    pub fn addresses(&self) -> &addr::Addresses {
        &self.limits.addresses
    }

    pub(crate) fn next_conn_id(&self) -> room::ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes `wanted` or a suffixed form of it. `None` when the nicknames
    /// cannot be asked (Redis away).
    pub(crate) async fn claim_free(
        &self,
        wanted: &str,
        conn: room::ConnId,
        session: Option<&str>,
    ) -> Option<String> {
        // A registered name is never a guest's: the first of `wanted`,
        // `wanted-2`, … that no account has and nobody holds.
        let mut candidate = wanted.to_owned();
        for n in 2..=MAX_SUFFIX {
            if !self.registered(&candidate).await.unwrap_or(true) {
                match self.nicks.claim_free(&candidate, conn, session).await {
                    Ok(granted) if !self.registered(&granted).await.unwrap_or(true) => {
                        return Some(granted);
                    }
                    Ok(granted) => self.nicks.release(&granted, conn),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim a nickname");
                        return None;
                    }
                }
            }
            candidate = crate::names::suffixed(wanted, n);
        }
        None
    }

    /// Whether `nick` is an account's name (or a look-alike of one). Guest
    /// names (`guest-…`) never are, and cost no look-up.
    pub(crate) async fn registered(&self, nick: &str) -> Result<bool, log::StoreError> {
        let Some(accounts) = &self.accounts else {
            return Ok(false);
        };
        if nick.to_ascii_lowercase().starts_with("guest-") {
            return Ok(false);
        }
        Ok(accounts
            .find(&crate::names::nick_key(nick))
            .await?
            .is_some())
    }

    /// Whether a room exists (open, or with a stored history) without
    /// creating it.
    pub(crate) async fn room_exists(&self, name: &str) -> bool {
        self.rooms.is_open(name) || self.log.exists(name).await.unwrap_or(false)
    }

    /// The open rooms, busiest first, at most `max`: every process's when
    /// the bus knows them, else (or when it cannot be asked) this one's.
    pub(crate) async fn list_rooms(&self, max: usize) -> Vec<shared::chat::RoomInfo> {
        if let Some(everywhere) = self.rooms.bus().rooms(max) {
            match everywhere.await {
                Ok(rooms) => return rooms,
                Err(e) => tracing::debug!(error = %e, "cannot list every process's rooms"),
            }
        }
        self.rooms.list(max)
    }
}

/// A book that holds the nicknames of stored sessions which have not
/// expired, so nobody takes them while their owners are away.
fn held_nicks(store: &dyn HistoryStore) -> Book {
    let book = Book::default();
    let now = std::time::Instant::now();
    for (session, nick, left) in store.held_nicks() {
        book.hold(&nick, &session, now + left);
    }
    book
}

/// Forgets sessions that nobody resumed within the configured time, and
/// closes rooms nobody uses (their last member's handle may have been held
/// elsewhere for a moment when it left).
pub(crate) async fn sweep_sessions(state: Arc<AppState>) {
    let ttl = Duration::from_secs(state.config.session_ttl_secs);
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut every = tokio::time::interval(every);
    loop {
        every.tick().await;
        let gone = state.book.sweep(ttl);
        if gone > 0 {
            tracing::debug!(sessions = gone, "forgot expired sessions");
        }
        let closed = state.rooms.retire_unused();
        if closed > 0 {
            tracing::debug!(rooms = closed, "closed rooms nobody uses");
        }
    }
}

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

/// How many times a sign-in the store could not answer for is asked
/// again after the notices came back, and how long apart.
const RECHECK_TRIES: u32 = 20;
const RECHECK_PAUSE: Duration = Duration::from_millis(500);

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
    /// Accounts and sign-in sessions, where history is kept (SQLite, or
    /// Redis in cluster mode; `None` for a store that keeps none).
    pub accounts: Option<Arc<dyn Accounts>>,
    /// Rooms' access rules and roles, where the accounts are.
    pub access: Option<Arc<dyn crate::access::Access>>,
    /// Full-text search, where history is.
    pub(crate) search: Option<Arc<dyn crate::search::Search>>,
    /// Searches running at once, at most (`--search-running`).
    pub(crate) searches: tokio::sync::Semaphore,
    /// Password hashing, `--password-hashes` at once.
    pub passwords: Hasher,
    /// Sign-in failures, by name and by address.
    pub signin_throttle: Throttle,
    /// This process's signed-in connections, by sign-in session.
    pub signed_in: SignedIn,
    /// Between the processes (nothing in one process).
    pub(crate) bus: Arc<dyn log::Bus>,
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
        let bus = ports.bus.clone();
        let accounts: Option<Arc<dyn Accounts>> = match &cluster {
            Some(cluster) => Some(cluster.accounts()),
            None => store.accounts(),
        };
        let access: Option<Arc<dyn crate::access::Access>> = match &cluster {
            Some(cluster) => Some(cluster.accounts()),
            None => store.access(),
        };
        let search: Option<Arc<dyn crate::search::Search>> = match &cluster {
            Some(cluster) => Some(cluster.clone()),
            None => store.search(),
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
        let state = Arc::new(Self {
            rooms,
            metrics,
            store,
            cluster,
            accounts,
            access,
            search,
            searches: tokio::sync::Semaphore::new(config.search_running.max(1)),
            passwords: Hasher::bounded(config.password_hashes, config.password_queue),
            signin_throttle: Throttle::new(ThrottleRules::default()),
            signed_in: SignedIn::default(),
            bus,
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
        });
        state.hear_notices();
        state
    }

    /// What other processes say about accounts reaches this one's
    /// connections (in one process nothing comes).
    fn hear_notices(self: &Arc<Self>) {
        let Some(mut notices) = self.bus.notices() else {
            return;
        };
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                let Some(state) = weak.upgrade() else { return };
                match notice {
                    log::Notice::SignedOut(session) => {
                        state.signed_in.close(&session, identity::SIGNED_OUT);
                    }
                    log::Notice::ToAccount(key, frame) => {
                        state.signed_in.push_to_account(&key, &frame);
                    }
                    log::Notice::Recheck => {
                        tokio::spawn(async move { state.recheck_sign_ins().await });
                    }
                }
            }
        });
    }

    /// How long sign-in sessions live (`--signin-idle-secs`,
    /// `--signin-max-secs`).
    pub(crate) fn signin_lifetime(&self) -> crate::accounts::Lifetime {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        crate::accounts::Lifetime {
            idle_ms: ms(self.config.signin_idle_secs),
            max_ms: ms(self.config.signin_max_secs),
        }
    }

    /// Closes the sockets of every sign-in session here that has ended
    /// (its end may have been told while the notices could not arrive).
    /// Sessions the store cannot answer for yet are asked again, a few
    /// times, as the store comes back.
    async fn recheck_sign_ins(&self) {
        let Some(accounts) = &self.accounts else {
            return;
        };
        let life = self.signin_lifetime();
        let mut unsure = self.signed_in.sessions();
        let mut closed = 0;
        for attempt in 0..RECHECK_TRIES {
            if attempt > 0 {
                tokio::time::sleep(RECHECK_PAUSE).await;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let mut again = Vec::new();
            for session in unsure {
                match accounts.session(&session, now, life).await {
                    Ok(Some(_)) => {}
                    Ok(None) => closed += self.signed_in.close(&session, identity::SIGNED_OUT),
                    Err(_) => again.push(session),
                }
            }
            unsure = again;
            if unsure.is_empty() {
                break;
            }
        }
        if closed > 0 {
            tracing::info!(
                sockets = closed,
                "closed sockets of sign-ins that ended meanwhile"
            );
        }
        if !unsure.is_empty() {
            tracing::warn!(
                sessions = unsure.len(),
                "could not check some sign-ins again; they are checked at the next reconnect"
            );
        }
    }

    /// Sign-in sessions (their token hashes) ended: their sockets close,
    /// here and on every other process. How many closed here.
    pub(crate) fn signed_out(&self, sessions: &[String]) -> usize {
        sessions
            .iter()
            .map(|session| {
                self.bus.notify(&log::Notice::SignedOut(session.clone()));
                self.signed_in.close(session, identity::SIGNED_OUT)
            })
            .sum()
    }

    /// Pushes `frame` to every connection of the account with `key`, here
    /// and on every other process.
    pub(crate) fn push_to_account(&self, key: &str, frame: &bytes::Bytes) {
        self.bus
            .notify(&log::Notice::ToAccount(key.to_owned(), frame.clone()));
        self.signed_in.push_to_account(key, frame);
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
        let cannot = |e: log::StoreError| {
            tracing::warn!(error = %e, "cannot claim a nickname");
            None
        };
        for n in 2..=MAX_SUFFIX {
            // A store that cannot answer is not asked again for every suffix.
            match self.registered(&candidate).await {
                Err(e) => return cannot(e),
                Ok(true) => {}
                Ok(false) => {
                    let granted = match self.nicks.claim_free(&candidate, conn, session).await {
                        Ok(granted) => granted,
                        Err(e) => return cannot(e),
                    };
                    match self.registered(&granted).await {
                        Ok(false) => return Some(granted),
                        Ok(true) => self.nicks.release(&granted, conn),
                        Err(e) => {
                            self.nicks.release(&granted, conn);
                            return cannot(e);
                        }
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

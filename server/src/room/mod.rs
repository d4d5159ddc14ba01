//! Room actors. Each room is one task that owns the room's members and
//! history; everybody else talks to it through a cloneable [`RoomHandle`].
//!
//! The actor never waits on a member: a message is stored, encoded once per
//! flavour (`msg` for chat clients, `message` for seed clients), and the same
//! bytes are pushed into each member's bounded outbox. A member whose outbox
//! is full is being disconnected (4008) and is removed here at once.

mod actor;
pub mod registry;

use crate::{
    cluster::{Cluster, Remote, Snapshot},
    history::{History, StoreError},
    session::outbox::Outbox,
};
use shared::chat::{Cursor, ErrorBody, ErrorCode, Msg, RoomState, Said};
use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};
use tokio::sync::{mpsc, oneshot};

pub use registry::Rooms;

/// Unique id of a connection, for the life of the process.
pub type ConnId = u64;

/// A connection as a room sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Which connection.
    pub conn: ConnId,
    /// Its nickname.
    pub nick: String,
    /// Where to push its frames.
    pub outbox: Outbox,
    /// Said `hello`: gets `msg`/`presence`/`typing`, not the seed `message`.
    pub rich: bool,
}

/// A message to post.
#[derive(Debug)]
pub struct Post {
    /// Author connection (must be a member).
    pub conn: ConnId,
    /// Author nickname.
    pub from: String,
    /// The text, already validated.
    pub text: String,
    /// Client message id.
    pub cid: Option<String>,
    /// Author's session, which scopes the `cid`.
    pub session: Option<String>,
    /// When the server read it (for the fan-out latency metric).
    pub received: std::time::Instant,
}

pub(crate) enum Command {
    Join {
        member: Member,
        since: Option<Cursor>,
        /// `None`: nobody needs the room's state (a seed connection entering
        /// the lobby), so it is not built.
        reply: Option<oneshot::Sender<Result<RoomState, ErrorBody>>>,
    },
    Leave {
        conn: ConnId,
        reply: Option<oneshot::Sender<bool>>,
    },
    Post {
        post: Post,
        reply: Option<oneshot::Sender<Result<Said, ErrorBody>>>,
    },
    History {
        before: u64,
        limit: usize,
        reply: oneshot::Sender<Vec<Msg>>,
    },
    Typing {
        conn: ConnId,
        on: bool,
    },
    Rename {
        conn: ConnId,
        nick: String,
    },
    // Cluster mode only: what Redis and the other processes say.
    /// Published on the room's channel.
    Remote(Remote),
    /// The room's latest `seq` in Redis.
    Head(u64),
    /// The room's state as read from Redis (start and resynchronisation).
    Snapshot(Result<Snapshot, StoreError>),
    /// Messages read back from the stream, asked for from `from`.
    Fetched {
        from: u64,
        result: Result<Vec<Msg>, StoreError>,
    },
    /// Redis became reachable (`true`) or not.
    Health(bool),
    /// Redis may have missed updates: re-read the state and re-register.
    Resync,
}

/// Cloneable handle to a room actor.
#[derive(Clone)]
pub struct RoomHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Command>,
    members: Arc<AtomicU32>,
}

fn gone() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "room is not running")
}

impl RoomHandle {
    /// Starts the actor for a room with its history.
    pub(crate) fn spawn(
        name: &str,
        history: Box<dyn History>,
        mailbox: usize,
        fanout: prometheus_client::metrics::histogram::Histogram,
        cluster: Option<(Arc<Cluster>, usize)>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(mailbox.max(1));
        let members = Arc::new(AtomicU32::new(0));
        let name: Arc<str> = name.into();
        let cluster = cluster.map(|(cluster, capacity)| {
            cluster.register(name.clone(), tx.clone());
            actor::Clustered {
                cluster,
                me: tx.downgrade(),
                capacity,
            }
        });
        tokio::spawn(actor::run(
            name.clone(),
            history,
            rx,
            members.clone(),
            fanout,
            cluster,
        ));
        Self { name, tx, members }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Members connected now.
    pub fn member_count(&self) -> u32 {
        self.members.load(Ordering::Relaxed)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ErrorBody> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Adds (or updates) a member and returns the room's state for it,
    /// recovering from `since` when possible.
    pub async fn join(
        &self,
        member: Member,
        since: Option<Cursor>,
    ) -> Result<RoomState, ErrorBody> {
        self.ask(|reply| Command::Join {
            member,
            since,
            reply: Some(reply),
        })
        .await?
    }

    /// Adds a member without asking for the room's state. Commands from one
    /// caller are handled in order, so what it sends next finds it a member.
    pub async fn enter(&self, member: Member) -> Result<(), ErrorBody> {
        self.tx
            .send(Command::Join {
                member,
                since: None,
                reply: None,
            })
            .await
            .map_err(|_| gone())
    }

    /// Removes a member; `true` when it was one.
    pub async fn leave(&self, conn: ConnId) -> Result<bool, ErrorBody> {
        self.ask(|reply| Command::Leave {
            conn,
            reply: Some(reply),
        })
        .await
    }

    /// Removes a member without waiting for the answer (teardown).
    pub async fn forget(&self, conn: ConnId) {
        let _ = self.tx.send(Command::Leave { conn, reply: None }).await;
    }

    /// Queues a post in order and returns where its acknowledgement will
    /// arrive. The queueing happens before this returns, so posts from one
    /// connection are stored in the order it made them.
    pub async fn post(
        &self,
        post: Post,
    ) -> Result<oneshot::Receiver<Result<Said, ErrorBody>>, ErrorBody> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Post {
                post,
                reply: Some(reply),
            })
            .await
            .map_err(|_| gone())?;
        Ok(rx)
    }

    /// Posts without wanting an acknowledgement (seed `broadcast`).
    pub async fn post_unacked(&self, post: Post) {
        let _ = self.tx.send(Command::Post { post, reply: None }).await;
    }

    /// Up to `limit` messages before `before`, oldest first.
    pub async fn history(&self, before: u64, limit: usize) -> Result<Vec<Msg>, ErrorBody> {
        self.ask(|reply| Command::History {
            before,
            limit,
            reply,
        })
        .await
    }

    /// Tells the other members that `conn` is (not) typing.
    pub async fn typing(&self, conn: ConnId, on: bool) {
        let _ = self.tx.send(Command::Typing { conn, on }).await;
    }

    /// Renames a member.
    pub async fn rename(&self, conn: ConnId, nick: String) {
        let _ = self.tx.send(Command::Rename { conn, nick }).await;
    }
}

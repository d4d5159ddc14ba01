//! Room actors. Each room is one task that owns the room's members and
//! history; everybody else talks to it through a cloneable [`RoomHandle`].
//!
//! The actor never waits on a member: a message is stored, encoded once per
//! flavour (`msg` for chat clients, `message` for demo clients), and the same
//! bytes are pushed into each member's bounded outbox. A member whose outbox
//! is full is being disconnected (4008) and is removed here at once.

mod actor;
mod gate;
pub mod registry;
#[cfg(test)]
mod tests;

use crate::outbox::Outbox;
use bytes::Bytes;
use gate::Intake;
use shared::chat::{Cursor, ErrorBody, ErrorCode, Msg, RoomState, Said};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

pub(crate) use actor::Ports;
pub use registry::Rooms;

pub use crate::ids::ConnId;

/// A connection as a room sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Which connection.
    pub conn: ConnId,
    /// Its nickname.
    pub nick: String,
    /// Where to push its frames.
    pub outbox: Outbox,
    /// Said `hello`: gets `msg`/`presence`/`typing`, not the demo's `message`.
    pub chat_client: bool,
    /// Signed in: its nickname is its account's, and the same account may
    /// be here on several connections (announced once, as one person).
    pub signed_in: bool,
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
    /// Who the author is, for edits and deletes (see [`crate::log::Entry`]).
    pub author: Option<String>,
    /// An edit or delete of an earlier message.
    pub change: Option<crate::log::ChangeOf>,
    /// The message this one answers.
    pub reply: Option<u64>,
    /// When the server read it (for the fan-out latency metric).
    pub received: std::time::Instant,
}

/// What rooms count (registered in `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct RoomCounters {
    /// Posts refused at once because the store's queue was full.
    pub store_full: prometheus_client::metrics::counter::Counter,
    /// Posts that waited for a slow member before the room took them.
    pub intake_waits: prometheus_client::metrics::counter::Counter,
}

/// What a room's replies and intake are bounded by.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Messages a cursor recovers at most.
    pub max_recovery: usize,
    /// Messages per second the room takes (0: no limit).
    pub rate: u32,
    /// How long a member past its outbox's high-water mark holds posts back.
    pub stall: Duration,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            max_recovery: 1_000,
            rate: 0,
            stall: Duration::from_millis(500),
        }
    }
}

pub(crate) enum Command {
    Join {
        member: Member,
        since: Option<Cursor>,
        /// Bytes the state's history may take.
        budget: usize,
        /// `None`: nobody needs the room's state (a demo connection entering
        /// the lobby), so it is not built.
        reply: Option<oneshot::Sender<Result<RoomState, ErrorBody>>>,
    },
    Leave {
        conn: ConnId,
        reply: Option<oneshot::Sender<bool>>,
        /// The server is shutting down: this process's members (all about
        /// to be closed) are not told.
        quiet: bool,
    },
    Post {
        post: Post,
        /// Its share of the room's intake budget, given back once handled.
        permit: Option<OwnedSemaphorePermit>,
        reply: Option<oneshot::Sender<Result<Said, ErrorBody>>>,
    },
    /// Bytes of a demo `broadcast` that are not UTF-8: relayed to demo
    /// members as they are (not stored, no `seq`), as the original does.
    Relay {
        payload: Bytes,
        permit: Option<OwnedSemaphorePermit>,
    },
    History {
        /// Who asks: a member, or nobody gets anything.
        conn: ConnId,
        before: u64,
        limit: usize,
        /// Bytes the page may take.
        budget: usize,
        reply: oneshot::Sender<Result<Vec<Msg>, ErrorBody>>,
    },
    /// Takes a person's connections out of the room (kick, ban): an
    /// account's (`signed_in`) or a guest's with that nickname. Each is
    /// sent `removed` with this payload; the others see it leave.
    Remove {
        nick: String,
        signed_in: bool,
        removed: Bytes,
        reply: oneshot::Sender<usize>,
    },
    Typing {
        conn: ConnId,
        on: bool,
    },
    Rename {
        conn: ConnId,
        nick: String,
    },
}

/// Cloneable handle to a room actor. The actor stops once the last
/// handle is gone (see [`Rooms`]: a room without members retires).
#[derive(Clone)]
pub struct RoomHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Command>,
    members: Arc<AtomicU32>,
    intake: Arc<Intake>,
}

fn gone() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "room is not running")
}

impl RoomHandle {
    /// Starts the actor for a room: it reads the room's snapshot from the
    /// log, keeps its latest `capacity` messages at hand, and hears from
    /// other processes on the bus.
    pub(crate) fn spawn(
        name: &str,
        ports: Ports,
        capacity: usize,
        mailbox: usize,
        (fanout, counters): (
            prometheus_client::metrics::histogram::Histogram,
            RoomCounters,
        ),
        limits: RoomLimits,
    ) -> Self {
        let (tx, rx) = mpsc::channel(mailbox.max(1));
        let members = Arc::new(AtomicU32::new(0));
        let intake = Arc::new(Intake::new(limits.stall, counters.intake_waits.clone()));
        let name: Arc<str> = name.into();
        tokio::spawn(actor::run(
            actor::Setup {
                name: name.clone(),
                ports,
                capacity,
                count: members.clone(),
                fanout,
                store_full: counters.store_full,
                limits,
                intake: intake.clone(),
            },
            rx,
        ));
        Self {
            name,
            tx,
            members,
            intake,
        }
    }

    /// Whether this is the only handle left (nobody else uses the room).
    pub(crate) fn is_unused(&self) -> bool {
        self.tx.strong_count() == 1
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
    /// `budget` bounds the bytes of the state's history.
    pub async fn join(
        &self,
        member: Member,
        since: Option<Cursor>,
        budget: usize,
    ) -> Result<RoomState, ErrorBody> {
        self.ask(|reply| Command::Join {
            member,
            since,
            budget,
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
                budget: 0,
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
            quiet: false,
        })
        .await
    }

    /// Removes a member without waiting for the answer (teardown); `quiet`
    /// while the server shuts down (see [`Command::Leave`]).
    pub async fn forget(&self, conn: ConnId, quiet: bool) {
        let _ = self
            .tx
            .send(Command::Leave {
                conn,
                reply: None,
                quiet,
            })
            .await;
    }

    /// Queues a post in order and returns where its acknowledgement will
    /// arrive. The queueing happens before this returns, so posts from one
    /// connection are stored in the order it made them. Waits first while
    /// the room holds posts back (a member is slow, or the room's intake
    /// budget is spent): the sender is slowed, nothing is lost.
    pub async fn post(
        &self,
        post: Post,
    ) -> Result<oneshot::Receiver<Result<Said, ErrorBody>>, ErrorBody> {
        let permit = self.intake.admit(post.text.len()).await;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Post {
                post,
                permit,
                reply: Some(reply),
            })
            .await
            .map_err(|_| gone())?;
        Ok(rx)
    }

    /// Posts without wanting an acknowledgement (the demo's `broadcast`); waits
    /// like [`RoomHandle::post`].
    pub async fn post_unacked(&self, post: Post) {
        let permit = self.intake.admit(post.text.len()).await;
        let _ = self
            .tx
            .send(Command::Post {
                post,
                permit,
                reply: None,
            })
            .await;
    }

    /// Relays bytes that are not text to the room's demo clients (the
    /// original demo's `broadcast` of binary data); waits like a post.
    pub async fn relay(&self, payload: Bytes) {
        let permit = self.intake.admit(payload.len()).await;
        let _ = self.tx.send(Command::Relay { payload, permit }).await;
    }

    /// Up to `limit` messages before `before`, oldest first, within
    /// `budget` bytes (the newest of them).
    pub async fn history(
        &self,
        conn: ConnId,
        before: u64,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<Msg>, ErrorBody> {
        self.ask(|reply| Command::History {
            conn,
            before,
            limit,
            budget,
            reply,
        })
        .await?
    }

    /// Takes every connection of the account `nick` (`signed_in`), or of
    /// the guest `nick`, out of the room, sending each `removed` (a JSON
    /// payload); how many there were.
    pub async fn remove(&self, nick: String, signed_in: bool, removed: Bytes) -> usize {
        self.ask(|reply| Command::Remove {
            nick,
            signed_in,
            removed,
            reply,
        })
        .await
        .unwrap_or(0)
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

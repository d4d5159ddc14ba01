//! What the chat client knows and decides, with no browser in it: the
//! session, a cursor per room, the messages held back while a room
//! (re)syncs, and the queue of `say`s. The glue (`super`) does the I/O and
//! does what these methods answer; this part is tested natively (`tests`).

#[cfg(test)]
mod tests;

use super::events::ChatError;
use crate::net::socket::CallError;
use shared::chat::{Cursor, ErrorBody, ErrorCode, Hello, Msg, RoomState, Said, Say, Welcome};
use std::collections::{BTreeMap, HashSet};

/// One `say` not acknowledged yet.
#[derive(Debug, Clone)]
struct Queued {
    say: Say,
    in_flight: bool,
}

/// When to say `hello` again after one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Again {
    /// Not on this connection: it was lost (the next one says hello), or
    /// trying again cannot help.
    Never,
    /// At once: the stored nickname the server refused was dropped.
    Now,
    /// After a pause, if connection number `connection` is still the
    /// current one and not welcomed yet ([`SyncState::still_waiting`]).
    Later {
        /// The connection the failed `hello` went on.
        connection: u64,
    },
}

/// What a failed `hello` leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HelloFailed {
    /// What the user is told, if anything.
    pub(super) tell: Option<String>,
    /// When to say hello again.
    pub(super) again: Again,
}

/// What the server's answer to a `say` leads to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Settled {
    /// Final: the message left the queue and the app hears this.
    Done(Result<Said, ErrorBody>),
    /// The server could not store it for now and said so: it stays queued
    /// (same cid, so a retry is never stored twice) and goes again shortly,
    /// or when the room is back.
    Later,
    /// The connection was lost: it stays queued and goes again after the
    /// next `hello`.
    AfterHello,
}

/// The client's state between the socket and the app.
#[derive(Debug)]
pub(super) struct SyncState {
    nick: Option<String>,
    session: Option<String>,
    /// Rooms this client is in, with the last message seen.
    cursors: BTreeMap<String, Cursor>,
    /// `hello` in flight on this connection: hold every message back.
    syncing: bool,
    /// `join`s in flight: hold their rooms' messages back.
    joining: HashSet<String>,
    held: Vec<Msg>,
    /// `say`s not acknowledged yet, in order.
    queue: Vec<Queued>,
    /// `hello` done on the current connection.
    ready: bool,
    /// A nickname was chosen while a `hello` (sent without it) was on its
    /// way: once welcomed, it is asked for with `nick`.
    nick_after_hello: bool,
    /// Counts connections (each `Online`), so a late retry can tell it is stale.
    online_count: u64,
    cid_prefix: String,
    cid_counter: u64,
}

impl SyncState {
    /// A client that has not connected yet; `nick` and `session` come from
    /// an earlier visit, and its `cid`s start with `cid_prefix`.
    pub(super) fn new(nick: Option<String>, session: Option<String>, cid_prefix: String) -> Self {
        Self {
            nick,
            session,
            cursors: BTreeMap::new(),
            syncing: false,
            joining: HashSet::new(),
            held: Vec::new(),
            queue: Vec::new(),
            ready: false,
            nick_after_hello: false,
            online_count: 0,
            cid_prefix,
            cid_counter: 0,
        }
    }

    /// The nickname and session the next `hello` asks for (only those
    /// given replace what is known).
    pub(super) fn adopt(&mut self, nick: Option<String>, session: Option<String>) {
        if session.is_some() {
            self.session = session;
        }
        if nick.is_some() {
            self.nick = nick;
        }
    }

    /// The nickname granted by the server (or wanted, before `hello`).
    pub(super) fn nick(&self) -> Option<String> {
        self.nick.clone()
    }

    /// Keeps `nick` as this client's nickname (granted, or wanted by the
    /// next `hello`).
    pub(super) fn set_nick(&mut self, nick: String) {
        if self.syncing && !self.ready {
            self.nick_after_hello = true;
        }
        self.nick = Some(nick);
    }

    /// The nickname chosen while the `hello` now answered was on its way,
    /// if the server granted another one: to ask for with `nick`. Call
    /// before [`SyncState::welcomed`].
    pub(super) fn unasked_nick(&mut self, granted: &str) -> Option<String> {
        let wanted = std::mem::take(&mut self.nick_after_hello)
            .then(|| self.nick.clone())
            .flatten();
        wanted.filter(|n| n != granted)
    }

    /// The session token, once known.
    pub(super) fn session(&self) -> Option<String> {
        self.session.clone()
    }

    /// Rooms this client is in.
    pub(super) fn rooms(&self) -> Vec<String> {
        self.cursors.keys().cloned().collect()
    }

    /// `hello` is done on the current connection.
    pub(super) fn ready(&self) -> bool {
        self.ready
    }

    /// The connection went online (a new connection) or away: either way
    /// it needs a `hello` first; `say`s on a lost one are no longer on
    /// their way.
    pub(super) fn connection_changed(&mut self, online: bool) {
        self.ready = false;
        if online {
            self.online_count += 1;
        } else {
            for q in &mut self.queue {
                q.in_flight = false;
            }
        }
    }

    /// The `hello` to say now, with the session and a cursor per room;
    /// messages are held back until its answer.
    pub(super) fn hello(&mut self) -> Hello {
        self.syncing = true;
        Hello {
            v: 1,
            nick: self.nick.clone(),
            session: self.session.clone(),
            resume: Some(self.cursors.values().cloned().collect()),
        }
    }

    /// The server welcomed this client: the session is in exactly the
    /// welcome's rooms, each at the `seq` it reports. Returns the messages
    /// held back meanwhile that are still new, for after the welcome.
    pub(super) fn welcomed(&mut self, welcome: &Welcome) -> Vec<Msg> {
        self.session = Some(welcome.session.clone());
        self.nick = Some(welcome.nick.clone());
        self.cursors = welcome
            .rooms
            .iter()
            .map(|r| (r.room.clone(), cursor_of(r)))
            .collect();
        self.syncing = false;
        self.ready = true;
        self.release_held()
    }

    /// A `hello` failed with `error`.
    pub(super) fn hello_failed(&mut self, error: &ChatError) -> HelloFailed {
        match error {
            ChatError::Server(e)
                if e.code == ErrorCode::TooLong || e.code == ErrorCode::BadRequest =>
            {
                // A stored nickname the server refuses: forget it and retry.
                let had_nick = self.nick.take().is_some();
                HelloFailed {
                    tell: Some(e.message.clone()),
                    again: if had_nick { Again::Now } else { Again::Never },
                }
            }
            // The next connection says hello again.
            ChatError::Call(_) => HelloFailed {
                tell: None,
                again: Again::Never,
            },
            // The server cannot reach what it shares with other processes
            // yet: hello again shortly, on this connection if it is still
            // the current one (else its own hello runs).
            ChatError::Server(e) if e.code == ErrorCode::Unavailable => HelloFailed {
                tell: Some(e.message.clone()),
                again: Again::Later {
                    connection: self.online_count,
                },
            },
            e => HelloFailed {
                tell: Some(e.to_string()),
                again: Again::Never,
            },
        }
    }

    /// Whether connection number `connection` is still the current one and
    /// still waits for its welcome.
    pub(super) fn still_waiting(&self, connection: u64) -> bool {
        self.online_count == connection && !self.ready
    }

    /// One `msg` arrived: `Some` when the app should see it (the cursor
    /// moved to it); `None` when it is held back while its room syncs, or
    /// already seen (at or below the cursor in the same epoch), or of a
    /// room this client is not in.
    pub(super) fn accept(&mut self, msg: Msg) -> Option<Msg> {
        if self.syncing || self.joining.contains(&msg.room) {
            self.held.push(msg);
            return None;
        }
        let fresh = match self.cursors.get_mut(&msg.room) {
            None => false,
            Some(cursor) if cursor.epoch == msg.epoch && msg.seq <= cursor.seq => false,
            Some(cursor) => {
                cursor.epoch.clone_from(&msg.epoch);
                cursor.seq = msg.seq;
                true
            }
        };
        fresh.then_some(msg)
    }

    /// A `join` of `room` starts: its messages are held back until the
    /// answer. Returns the cursor to recover from, if it was in the room.
    pub(super) fn join_started(&mut self, room: &str) -> Option<Cursor> {
        self.joining.insert(room.to_owned());
        self.cursors.get(room).cloned()
    }

    /// The `join` of `room` ended (`state` when it succeeded; the server
    /// may name the room its own way). Returns the held messages that are
    /// still new, for after the `Joined` event.
    pub(super) fn join_ended(&mut self, room: &str, state: Option<&RoomState>) -> Vec<Msg> {
        self.joining.remove(room);
        if let Some(state) = state {
            self.joining.remove(&state.room);
            self.cursors.insert(state.room.clone(), cursor_of(state));
        }
        if self.syncing {
            // The welcome releases them.
            return Vec::new();
        }
        self.release_held()
    }

    /// This client left `room`.
    pub(super) fn left(&mut self, room: &str) {
        self.cursors.remove(room);
    }

    /// Runs every held message through [`SyncState::accept`] again (those
    /// of rooms still syncing stay held).
    fn release_held(&mut self) -> Vec<Msg> {
        std::mem::take(&mut self.held)
            .into_iter()
            .filter_map(|msg| self.accept(msg))
            .collect()
    }

    /// A new client id (for a `say`, an `edit` or a `delete`).
    pub(super) fn next_cid(&mut self) -> String {
        self.cid_counter += 1;
        format!("{}-{}", self.cid_prefix, self.cid_counter)
    }

    /// Queues a message (answering message `reply` of the room, if
    /// given); returns its new `cid`.
    pub(super) fn say(&mut self, room: &str, text: &str, reply: Option<u64>) -> String {
        let cid = self.next_cid();
        self.queue.push(Queued {
            say: Say {
                room: room.to_owned(),
                text: text.to_owned(),
                cid: cid.clone(),
                reply,
            },
            in_flight: false,
        });
        cid
    }

    /// Queues a failed (or reloaded) message again with its original
    /// `cid` and reply; `false` when that `cid` is queued already.
    pub(super) fn requeue(&mut self, say: Say) -> bool {
        if self.queue.iter().any(|q| q.say.cid == say.cid) {
            return false;
        }
        self.queue.push(Queued {
            say,
            in_flight: false,
        });
        true
    }

    /// How many messages wait for an acknowledgement.
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The messages waiting for an acknowledgement, in order.
    pub(super) fn pending(&self) -> Vec<Say> {
        self.queue.iter().map(|q| q.say.clone()).collect()
    }

    /// The queued `say`s to send now, in order: none before `hello` is
    /// done, else every one not already on its way (now marked so).
    pub(super) fn take_unsent(&mut self) -> Vec<Say> {
        if !self.ready {
            return Vec::new();
        }
        self.queue
            .iter_mut()
            .filter(|q| !q.in_flight)
            .map(|q| {
                q.in_flight = true;
                q.say.clone()
            })
            .collect()
    }

    /// The answer to the `say` with this `cid` came.
    pub(super) fn settle(&mut self, cid: &str, result: Result<Said, ChatError>) -> Settled {
        let result = match result {
            Ok(said) => Ok(said),
            Err(ChatError::Server(e)) if e.code == ErrorCode::Unavailable => {
                self.not_in_flight(cid);
                return Settled::Later;
            }
            Err(ChatError::Server(e)) => Err(e),
            Err(ChatError::Call(CallError::Disconnected)) => {
                self.not_in_flight(cid);
                return Settled::AfterHello;
            }
            Err(e) => Err(ErrorBody::new(ErrorCode::Unavailable, e.to_string())),
        };
        self.queue.retain(|q| q.say.cid != cid);
        Settled::Done(result)
    }

    fn not_in_flight(&mut self, cid: &str) {
        if let Some(q) = self.queue.iter_mut().find(|q| q.say.cid == cid) {
            q.in_flight = false;
        }
    }
}

/// Where a room's state leaves this client.
fn cursor_of(state: &RoomState) -> Cursor {
    Cursor {
        room: state.room.clone(),
        epoch: state.epoch.clone(),
        seq: state.seq,
    }
}

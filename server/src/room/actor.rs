//! The room actor's loop: the only code that touches a room's state.

use super::{Command, ConnId, Member, Post};
use crate::history::History;
use bytes::Bytes;
use shared::{
    Frame,
    chat::{Cursor, ErrorBody, ErrorCode, Msg, Presence, PresenceKind, RoomState, Said, TypingOut},
    event::name,
};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

struct Room {
    name: Arc<str>,
    history: Box<dyn History>,
    members: HashMap<ConnId, Member>,
    count: Arc<AtomicU32>,
}

/// Runs until every handle is dropped.
pub(super) async fn run(
    name: Arc<str>,
    history: Box<dyn History>,
    mut rx: mpsc::Receiver<Command>,
    count: Arc<AtomicU32>,
) {
    let mut room = Room {
        name,
        history,
        members: HashMap::new(),
        count,
    };
    while let Some(cmd) = rx.recv().await {
        room.handle(cmd);
    }
    debug!(room = %room.name, "room actor stopped");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn json(value: &impl serde::Serialize) -> Bytes {
    // Plain data types: serialization cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

impl Room {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join {
                member,
                since,
                reply,
            } => {
                let state = self.join(member, since);
                let _ = reply.send(state);
            }
            Command::Leave { conn, reply } => {
                let was = self.remove(conn);
                if let Some(reply) = reply {
                    let _ = reply.send(was);
                }
            }
            Command::Post { post, reply } => {
                let result = self.post(post);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::History {
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(self.history.before(before, limit));
            }
            Command::Typing { conn, on } => self.typing(conn, on),
            Command::Rename { conn, nick } => self.rename(conn, nick),
        }
    }

    fn set_count(&self) {
        let n = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        self.count.store(n, Ordering::Relaxed);
    }

    fn members_sorted(&self) -> Vec<String> {
        let mut nicks: Vec<String> = self.members.values().map(|m| m.nick.clone()).collect();
        nicks.sort_unstable_by_key(|n| n.to_lowercase());
        nicks
    }

    fn join(&mut self, member: Member, since: Option<Cursor>) -> RoomState {
        let conn = member.conn;
        let nick = member.nick.clone();
        match self.members.insert(conn, member) {
            None => {
                self.set_count();
                debug!(room = %self.name, conn_id = conn, %nick, "joined");
                self.presence(&nick, PresenceKind::Join, None, Some(conn));
            }
            Some(before) if before.nick != nick => {
                self.presence(&nick, PresenceKind::Rename, Some(before.nick), None);
            }
            Some(_) => {}
        }
        self.state(since)
    }

    fn state(&self, since: Option<Cursor>) -> RoomState {
        let epoch = self.history.epoch().to_owned();
        let recovered = since
            .filter(|c| c.epoch == epoch)
            .and_then(|c| self.history.since(c.seq));
        let (history, recovered) = match recovered {
            Some(missed) => (missed, true),
            None => (
                self.history.before(u64::MAX, crate::limits::JOIN_HISTORY),
                false,
            ),
        };
        RoomState {
            room: self.name.to_string(),
            epoch,
            seq: self.history.last_seq(),
            members: self.members_sorted(),
            history,
            recovered,
        }
    }

    fn remove(&mut self, conn: ConnId) -> bool {
        let Some(member) = self.members.remove(&conn) else {
            return false;
        };
        self.set_count();
        debug!(room = %self.name, conn_id = conn, nick = %member.nick, "left");
        self.presence(&member.nick, PresenceKind::Leave, None, None);
        true
    }

    fn post(&mut self, post: Post) -> Result<Said, ErrorBody> {
        if !self.members.contains_key(&post.conn) {
            return Err(ErrorBody::new(
                ErrorCode::NotJoined,
                format!("join '{}' before posting to it", self.name),
            ));
        }
        if let (Some(session), Some(cid)) = (&post.session, &post.cid)
            && let Some(earlier) = self.history.find_cid(session, cid)
        {
            return Ok(Said {
                seq: earlier.seq,
                ts: earlier.ts,
            });
        }
        let msg = Msg {
            room: self.name.to_string(),
            epoch: self.history.epoch().to_owned(),
            seq: self.history.last_seq() + 1,
            from: post.from,
            text: post.text,
            ts: now_ms(),
            cid: post.cid,
        };
        let said = Said {
            seq: msg.seq,
            ts: msg.ts,
        };
        let rich = Frame::notify(name::MSG, json(&msg)).encode();
        // Seed clients get the raw text; encode that flavour only if one is here.
        let seed = self
            .members
            .values()
            .any(|m| !m.rich)
            .then(|| Frame::notify(name::MESSAGE, Bytes::from(msg.text.clone())).encode());
        if let Err(e) = self.history.append(msg, post.session.as_deref()) {
            warn!(room = %self.name, error = %e, "could not store a message");
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the message could not be stored; try again",
            ));
        }
        self.deliver(None, |m| {
            if m.rich {
                Some(rich.clone())
            } else {
                seed.clone()
            }
        });
        Ok(said)
    }

    fn typing(&mut self, conn: ConnId, on: bool) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let frame = Frame::notify(
            name::TYPING,
            json(&TypingOut {
                room: self.name.to_string(),
                nick: member.nick.clone(),
                on,
            }),
        )
        .encode();
        self.deliver(Some(conn), |m| m.rich.then(|| frame.clone()));
    }

    fn rename(&mut self, conn: ConnId, nick: String) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        if member.nick == nick {
            return;
        }
        let old = std::mem::replace(&mut member.nick, nick.clone());
        self.presence(&nick, PresenceKind::Rename, Some(old), None);
    }

    /// Tells rich members (but `except`) about a presence change.
    fn presence(
        &mut self,
        nick: &str,
        what: PresenceKind,
        old: Option<String>,
        except: Option<ConnId>,
    ) {
        let frame = Frame::notify(
            name::PRESENCE,
            json(&Presence {
                room: self.name.to_string(),
                nick: nick.to_owned(),
                what,
                old,
                members: u32::try_from(self.members.len()).unwrap_or(u32::MAX),
            }),
        )
        .encode();
        self.deliver(except, |m| m.rich.then(|| frame.clone()));
    }

    /// Pushes a frame to every member (but `except`) without waiting.
    /// Members that cannot take it are gone or too slow: they are removed,
    /// and the others are told they left.
    fn deliver(&mut self, except: Option<ConnId>, frame_for: impl Fn(&Member) -> Option<Bytes>) {
        let mut dropped = Vec::new();
        for (conn, member) in &self.members {
            if Some(*conn) == except {
                continue;
            }
            if let Some(frame) = frame_for(member)
                && !member.outbox.push(frame)
            {
                dropped.push(*conn);
            }
        }
        for conn in dropped {
            if let Some(member) = self.members.remove(&conn) {
                warn!(room = %self.name, conn_id = conn, nick = %member.nick, "dropping a member that cannot keep up");
                self.set_count();
                self.presence(&member.nick, PresenceKind::Leave, None, None);
            }
        }
    }
}

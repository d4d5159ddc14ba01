//! A room's members: here and on other processes; presence, typing, and
//! pushing frames to everyone without waiting on anyone.

use super::{ConnId, Member, Room, json};
use crate::{log::RemotePresence, outbox::Pushed};
use bytes::Bytes;
use shared::{
    Frame,
    chat::{Presence, PresenceKind, TypingOut},
    event::name,
};
use std::sync::atomic::Ordering;
use tracing::{debug, warn};

impl Room {
    /// Members in the whole room: here, and on other processes.
    pub(super) fn total_members(&self) -> usize {
        self.members.len() + self.remote.len()
    }

    pub(super) fn set_count(&self) {
        let n = u32::try_from(self.total_members()).unwrap_or(u32::MAX);
        self.count.store(n, Ordering::Relaxed);
    }

    /// Member nicks in order; past [`crate::limits::PRESENCE_LIMIT`]
    /// members, that many of them (any; picking would cost a pass over
    /// everyone for every join).
    pub(super) fn members_sorted(&self) -> Vec<String> {
        let remote = self.remote.values();
        let mut nicks: Vec<String> = self
            .members
            .values()
            .map(|m| &m.nick)
            .chain(remote)
            .take(crate::limits::PRESENCE_LIMIT)
            .cloned()
            .collect();
        nicks.sort_by_cached_key(|n| n.to_lowercase());
        // One session on two processes for a moment (a client that moved
        // before its old process was reaped) is one member.
        nicks.dedup();
        nicks
    }

    /// Whether another local connection is here as `nick` (an account
    /// signed in on several): it is one person, announced once.
    fn also_here(&self, conn: ConnId, nick: &str) -> bool {
        self.members
            .values()
            .any(|m| m.conn != conn && m.signed_in && m.nick == nick)
    }

    pub(super) fn join(&mut self, member: Member) {
        let conn = member.conn;
        let nick = member.nick.clone();
        let again = member.signed_in && self.also_here(conn, &nick);
        match self.members.insert(conn, member) {
            None if again => {
                self.set_count();
                debug!(room = %self.name, conn_id = conn, %nick, "joined again");
            }
            None => {
                self.set_count();
                debug!(room = %self.name, conn_id = conn, %nick, "joined");
                self.presence(&nick, PresenceKind::Join, None, Some(conn));
                self.publish_presence(conn, PresenceKind::Join, &nick, None);
            }
            Some(before) if before.nick != nick => {
                self.presence(&nick, PresenceKind::Rename, Some(before.nick.clone()), None);
                self.publish_presence(conn, PresenceKind::Rename, &nick, Some(before.nick));
            }
            Some(_) => {}
        }
    }

    pub(super) fn remove(&mut self, conn: ConnId, quiet: bool) -> bool {
        let Some(member) = self.members.remove(&conn) else {
            return false;
        };
        self.set_count();
        debug!(room = %self.name, conn_id = conn, nick = %member.nick, "left");
        if member.signed_in && self.also_here(conn, &member.nick) {
            return true;
        }
        if !quiet {
            self.presence(&member.nick, PresenceKind::Leave, None, None);
        }
        self.publish_presence(conn, PresenceKind::Leave, &member.nick, None);
        true
    }

    /// Takes the account (`signed_in`) or guest `nick`'s connections out:
    /// each gets `removed` (pushed before it goes), the others see it
    /// leave once.
    pub(super) fn remove_person(&mut self, nick: &str, signed_in: bool, removed: &Bytes) -> usize {
        let conns: Vec<ConnId> = self
            .members
            .values()
            .filter(|m| m.signed_in == signed_in && m.nick == nick)
            .map(|m| m.conn)
            .collect();
        let frame = Frame::notify(name::REMOVED, removed.clone()).encode();
        for conn in &conns {
            if let Some(member) = self.members.get(conn) {
                member.outbox.push(frame.clone());
            }
            self.remove(*conn, false);
        }
        conns.len()
    }

    pub(super) fn typing(&mut self, conn: ConnId, on: bool) {
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
        self.bus.typing(&self.name, &member.nick, on);
        self.deliver(Some(conn), |m| m.chat_client.then(|| frame.clone()));
    }

    pub(super) fn rename(&mut self, conn: ConnId, nick: String) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        if member.nick == nick {
            return;
        }
        let old = std::mem::replace(&mut member.nick, nick.clone());
        self.presence(&nick, PresenceKind::Rename, Some(old.clone()), None);
        self.publish_presence(conn, PresenceKind::Rename, &nick, Some(old));
    }

    /// Tells chat clients (but `except`) about a presence change.
    pub(super) fn presence(
        &mut self,
        nick: &str,
        what: PresenceKind,
        old: Option<String>,
        except: Option<ConnId>,
    ) {
        if let Some(frame) = self.presence_frame(nick, what, old, except) {
            self.deliver(except, |m| m.chat_client.then(|| frame.clone()));
        }
    }

    /// The presence frame for a change, unless nobody would get it: demo
    /// connections get no presence (a lobby full of them encodes nothing),
    /// and rooms past the presence limit send none.
    pub(super) fn presence_frame(
        &self,
        nick: &str,
        what: PresenceKind,
        old: Option<String>,
        except: Option<ConnId>,
    ) -> Option<Bytes> {
        if self.total_members() > crate::limits::PRESENCE_LIMIT
            || !self
                .members
                .iter()
                .any(|(c, m)| m.chat_client && Some(*c) != except)
        {
            return None;
        }
        Some(
            Frame::notify(
                name::PRESENCE,
                json(&Presence {
                    room: self.name.to_string(),
                    nick: nick.to_owned(),
                    what,
                    old,
                    members: u32::try_from(self.total_members()).unwrap_or(u32::MAX),
                }),
            )
            .encode(),
        )
    }

    /// Pushes a frame to every member (but `except`) without waiting.
    /// Members that cannot take it are gone or too slow: they are removed,
    /// and the others are told they left (which can find more of them: a
    /// work list, not recursion, so a cascade cannot exhaust the stack).
    pub(super) fn deliver(
        &mut self,
        except: Option<ConnId>,
        frame_for: impl Fn(&Member) -> Option<Bytes>,
    ) {
        let mut dropped = self.push_all(except, |m| frame_for(m));
        while let Some(conn) = dropped.pop() {
            let Some(member) = self.members.remove(&conn) else {
                continue;
            };
            warn!(room = %self.name, conn_id = conn, nick = %member.nick, "dropping a member that cannot keep up");
            self.set_count();
            self.publish_presence(conn, PresenceKind::Leave, &member.nick, None);
            if let Some(frame) = self.presence_frame(&member.nick, PresenceKind::Leave, None, None)
            {
                dropped.extend(self.push_all(None, |m| m.chat_client.then(|| frame.clone())));
            }
        }
    }

    /// Pushes to every member but `except`; returns those that could not
    /// take it.
    /// Members past their outbox's high-water mark close the room's
    /// intake until they drain (see [`Intake`]).
    pub(super) fn push_all(
        &self,
        except: Option<ConnId>,
        frame_for: impl Fn(&Member) -> Option<Bytes>,
    ) -> Vec<ConnId> {
        let mut dropped = Vec::new();
        let mut slow = Vec::new();
        for (conn, member) in &self.members {
            if Some(*conn) == except {
                continue;
            }
            if let Some(frame) = frame_for(member) {
                match member.outbox.send(frame) {
                    Pushed::Queued => {}
                    Pushed::Slow => slow.push(member.outbox.clone()),
                    Pushed::Gone => dropped.push(*conn),
                }
            }
        }
        self.intake.hold(slow);
        dropped
    }

    /// Tells the other processes about a local presence change.
    pub(super) fn publish_presence(
        &self,
        conn: ConnId,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        if self.ready {
            self.bus.presence(&self.name, conn, kind, nick, old);
        }
    }

    /// Whether somebody in the room (here or elsewhere) goes by `nick`.
    fn nick_present(&self, nick: &str) -> bool {
        self.members.values().any(|m| m.nick == nick) || self.remote.values().any(|n| n == nick)
    }

    /// A member on another process joined, left or renamed.
    pub(super) fn remote_presence(&mut self, p: RemotePresence) {
        if p.node == self.bus.node() {
            return;
        }
        let was_here = self.nick_present(&p.nick);
        match p.kind {
            PresenceKind::Join | PresenceKind::Rename => {
                let old = self.remote.insert(p.key, p.nick.clone());
                self.set_count();
                match old {
                    // One session on two processes (it moved before its
                    // old process was reaped) is one member.
                    None if was_here => {}
                    None => self.presence(&p.nick, PresenceKind::Join, None, None),
                    Some(old) if old != p.nick => {
                        self.presence(&p.nick, PresenceKind::Rename, Some(old), None);
                    }
                    Some(_) => {}
                }
            }
            PresenceKind::Leave => {
                if self.remote.remove(&p.key).is_some() {
                    self.set_count();
                    if !self.nick_present(&p.nick) {
                        self.presence(&p.nick, PresenceKind::Leave, None, None);
                    }
                }
            }
        }
    }

    /// Somebody on another process is (not) typing.
    pub(super) fn remote_typing(&mut self, node: &str, nick: String, on: bool) {
        if node == self.bus.node() {
            return;
        }
        let frame = Frame::notify(
            name::TYPING,
            json(&TypingOut {
                room: self.name.to_string(),
                nick,
                on,
            }),
        )
        .encode();
        self.deliver(None, |m| m.chat_client.then(|| frame.clone()));
    }
}

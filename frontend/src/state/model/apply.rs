//! What each [`ChatEvent`] does to the [`Model`].

use super::{Delivery, Model, Typist, label};
use crate::net::chat::ChatEvent;
use shared::chat::PresenceKind;

impl Model {
    /// Applies what the client reported.
    pub fn apply(&mut self, event: ChatEvent, now: i64) {
        match event {
            ChatEvent::Status(status) => self.status = status,
            ChatEvent::Welcome(welcome) => {
                self.nick = welcome.nick;
                // The session is in exactly these rooms (a room it was in
                // may be gone, e.g. a server that lost its last save).
                self.rooms
                    .retain(|r| welcome.rooms.iter().any(|s| s.room == r.name));
                for state in &welcome.rooms {
                    self.room_or_new(&state.room).apply_state(state);
                }
                if self.room(&self.current).is_none() {
                    self.current = shared::event::LOBBY.to_owned();
                }
                let current = self.current.clone();
                if self.room(&current).is_some_and(|r| r.new_from.is_none()) {
                    self.arrive(&current);
                } else {
                    self.mark_read(&current);
                }
            }
            ChatEvent::Joined(state) => {
                self.room_or_new(&state.room).apply_state(&state);
            }
            ChatEvent::Left(room) => {
                self.rooms.retain(|r| r.name != room);
                if self.current == room {
                    self.current = self
                        .rooms
                        .first()
                        .map_or_else(|| shared::event::LOBBY.to_owned(), |r| r.name.clone());
                }
            }
            ChatEvent::Msg(m) => {
                let on_screen = self.current == m.room;
                if let Some(room) = self.room_mut(&m.room)
                    && room.push_msg(&m)
                    && !on_screen
                {
                    room.unread += 1;
                }
                if on_screen {
                    self.mark_read(&m.room);
                }
            }
            ChatEvent::Presence(p) => {
                let me = self.nick.clone();
                if let Some(room) = self.room_mut(&p.room) {
                    let text = match p.what {
                        PresenceKind::Join => {
                            if !room.members.contains(&p.nick) {
                                room.members.push(p.nick.clone());
                            }
                            format!("{} joined", p.nick)
                        }
                        PresenceKind::Leave => {
                            room.members.retain(|n| n != &p.nick);
                            room.stop_typing(&p.nick);
                            format!("{} left", p.nick)
                        }
                        PresenceKind::Rename => {
                            let old = p.old.clone().unwrap_or_default();
                            room.members.retain(|n| n != &old);
                            if !room.members.contains(&p.nick) {
                                room.members.push(p.nick.clone());
                            }
                            format!("{old} is now {}", p.nick)
                        }
                    };
                    room.members.sort_by_key(|n| n.to_lowercase());
                    // Guests coming, going and naming themselves in the
                    // lobby would drown it.
                    let guest = |n: &str| n.starts_with("guest-");
                    let noisy = p.room == shared::event::LOBBY
                        && (guest(&p.nick) || p.old.as_deref().is_some_and(guest));
                    if !noisy && p.nick != me {
                        room.notice(text, now);
                    }
                }
            }
            ChatEvent::RoomStatus(status) => {
                if let Some(room) = self.room_mut(&status.room) {
                    let degraded = status.state == shared::chat::Health::Degraded;
                    if room.degraded != degraded {
                        room.degraded = degraded;
                        room.notice(
                            if degraded {
                                "The chat service is degraded: new messages wait until it is back"
                            } else {
                                "The chat service is back"
                            },
                            now,
                        );
                    }
                }
            }
            ChatEvent::Typing(t) => {
                if let Some(room) = self.room_mut(&t.room) {
                    match room.typing.iter_mut().find(|x| x.nick == t.nick) {
                        Some(typist) if t.on => typist.at = now,
                        Some(_) => room.stop_typing(&t.nick),
                        None if t.on => room.typing.push(Typist {
                            nick: t.nick,
                            at: now,
                        }),
                        None => {}
                    }
                }
            }
            ChatEvent::Said { cid, result } => {
                for room in &mut self.rooms {
                    if let Some(line) = room
                        .lines
                        .iter_mut()
                        .find(|l| l.cid.as_deref() == Some(cid.as_str()))
                    {
                        match &result {
                            Ok(said) => {
                                line.delivery = Delivery::Sent;
                                if line.seq.is_none() {
                                    line.ts = said.ts;
                                }
                            }
                            Err(e) => line.delivery = Delivery::Failed(e.message.clone()),
                        }
                    }
                }
            }
            ChatEvent::Nick(nick) => self.nick = nick,
            ChatEvent::Invited(i) => {
                let what = label(&i.room, Some(&i.title), &self.nick);
                self.notice(format!("{} let you into {what}", i.by), now);
            }
            ChatEvent::Removed(r) => {
                let what = self.room(&r.room).map_or_else(
                    || format!("#{}", r.room),
                    |room| label(&room.name, room.title.as_deref(), &self.nick),
                );
                self.rooms.retain(|room| room.name != r.room);
                if self.current == r.room {
                    self.current = shared::event::LOBBY.to_owned();
                }
                let how = if r.banned {
                    "banned from"
                } else {
                    "removed from"
                };
                self.notice(format!("you were {how} {what} by {}", r.by), now);
            }
            ChatEvent::Error(message) => self.notice(message, now),
        }
    }
}

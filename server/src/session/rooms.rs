//! A connection's rooms and name over its life: the lobby from the start,
//! rooms opened on demand (a new one spends its address's budget), and at
//! the end every room left, the session saved and the nickname given back.

use super::Conn;
use crate::{
    history::SavedSession,
    room::{Member, RoomHandle},
};
use shared::{chat::ErrorBody, event};

impl Conn {
    /// The room named, opened if needed, and whether this made it; a room
    /// that does not exist yet spends the client address's budget for new
    /// rooms (and a signed-in maker owns it).
    pub(super) async fn open_room(&self, name: &str) -> Result<(RoomHandle, bool), ErrorBody> {
        if let Some(room) = self.app.rooms.get(name) {
            return Ok((room, false));
        }
        let exists = self.app.room_exists(name).await;
        let addresses = self.app.addresses();
        let ip = self.ip;
        let room = self
            .app
            .rooms
            .get_or_create(name, || exists || addresses.create_room(ip))?;
        if !exists {
            self.created(name).await;
        }
        Ok((room, !exists))
    }

    /// Lets go of a room's handle; the room closes if nobody else uses it.
    pub(super) fn drop_room(&self, name: &str, room: RoomHandle) {
        drop(room);
        self.app.rooms.retire(name);
    }

    pub(super) fn member(&self) -> Member {
        Member {
            conn: self.id,
            nick: self.nick.clone(),
            outbox: self.outbox.clone(),
            chat_client: self.session.is_some(),
            signed_in: self.account.is_some(),
        }
    }

    /// Every connection is in `lobby` from the start (but an account
    /// banned from it).
    pub(super) async fn enter_lobby(&mut self) {
        if self.account.is_some() && self.may_enter(event::LOBBY).await.is_err() {
            return;
        }
        match self.app.rooms.get_or_create(event::LOBBY, || true) {
            Ok(lobby) => {
                if lobby.enter(self.member()).await.is_ok() {
                    self.rooms.insert(event::LOBBY.to_owned(), lobby);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot enter the lobby"),
        }
    }

    /// Leaves every room (closing those nobody else is in), saves the
    /// session, and gives the nickname back, unless a session keeps it.
    pub(super) async fn teardown(&mut self) {
        self.tasks.abort_all();
        // Shutting down, everyone here is being closed: nobody is told of
        // the others leaving (their lists stay as they were, and they come
        // back as they were when the server does).
        let quiet = self.app.shutdown.is_cancelled();
        for room in self.rooms.values() {
            room.forget(self.id, quiet).await;
        }
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        if let Some(token) = &self.session {
            self.app
                .book
                .close_session(token, self.id, &self.nick, rooms.clone());
            let saved = SavedSession {
                nick: self.nick.clone(),
                rooms: rooms.clone(),
            };
            // Saved as it ends, so its TTL counts from now after a restart.
            self.app.sessions.save(token, &saved);
            self.app.nicks.detach(&self.nick, self.id, token);
        } else {
            self.app.nicks.release(&self.nick, self.id);
        }
        for (name, room) in std::mem::take(&mut self.rooms) {
            self.drop_room(&name, room);
        }
    }

    /// Records the session's nickname and rooms (in the store too, so a
    /// client can resume after a restart).
    pub(super) fn remember(&self) {
        if let Some(token) = &self.session {
            let rooms: Vec<String> = self.rooms.keys().cloned().collect();
            self.app
                .book
                .update_session(token, self.id, &self.nick, rooms.clone());
            let saved = SavedSession {
                nick: self.nick.clone(),
                rooms,
            };
            self.app.sessions.save(token, &saved);
        }
    }
}

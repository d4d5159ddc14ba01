//! Accounts' rooms: a new private room, a direct message, and what owners
//! and moderators do (invite, kick, ban). A room the server answers with
//! is joined here as `join` would be.

use super::{CALL_TIMEOUT_MS, ChatClient, ChatError, ChatEvent};
use shared::{
    chat::{Empty, RoomRef, RoomState},
    event,
    rooms::{ActionInfo, Create, Dm, RoomUser},
};

impl ChatClient {
    /// A new private room with this title, joined.
    pub async fn create_private(&self, title: &str) -> Result<RoomState, ChatError> {
        let body = Create {
            title: title.to_owned(),
        };
        let state = self
            .request::<RoomState>(event::CREATE, &body, CALL_TIMEOUT_MS)
            .await?;
        self.entered(&state);
        Ok(state)
    }

    /// The direct-message room with the account `user`, joined.
    pub async fn dm(&self, user: &str) -> Result<RoomState, ChatError> {
        let body = Dm {
            user: user.to_owned(),
        };
        let state = self
            .request::<RoomState>(event::DM, &body, CALL_TIMEOUT_MS)
            .await?;
        self.entered(&state);
        Ok(state)
    }

    /// `invite`, `kick`, `ban` or `unban` of the account `user` in `room`.
    pub async fn moderate(
        &self,
        what: &'static str,
        room: &str,
        user: &str,
    ) -> Result<(), ChatError> {
        let body = RoomUser {
            room: room.to_owned(),
            user: user.to_owned(),
        };
        self.request::<Empty>(what, &body, CALL_TIMEOUT_MS).await?;
        Ok(())
    }

    /// The room's moderation record, newest first (its moderators only).
    pub async fn actions(&self, room: &str) -> Result<Vec<ActionInfo>, ChatError> {
        let body = RoomRef {
            room: room.to_owned(),
        };
        self.request(event::ACTIONS, &body, CALL_TIMEOUT_MS).await
    }

    /// A room the server put this client in (as `join` would have).
    fn entered(&self, state: &RoomState) {
        let _ = self.inner.borrow_mut().sync.join_started(&state.room);
        let fresh = self
            .inner
            .borrow_mut()
            .sync
            .join_ended(&state.room, Some(state));
        self.emit(ChatEvent::Joined(state.clone()));
        for msg in fresh {
            self.emit(ChatEvent::Msg(msg));
        }
    }
}

//! Editing and deleting messages: one request each, answered with the
//! change's own `seq`; the change itself comes back as a `msg`, like a
//! message, to this client and everyone else in the room. A `cid` makes
//! sending the same change again safe (the server applies it once).

use super::{CALL_TIMEOUT_MS, ChatClient, ChatError};
use shared::{
    chat::{Delete, Edit, Said},
    event,
};

impl ChatClient {
    /// A new client id, for an edit or a deletion (kept while it is sent
    /// again).
    pub fn new_cid(&self) -> String {
        self.inner.borrow_mut().sync.next_cid()
    }

    /// New text for message `seq` of `room` (one of this user's).
    pub async fn edit(
        &self,
        room: &str,
        seq: u64,
        text: &str,
        cid: &str,
    ) -> Result<Said, ChatError> {
        let body = Edit {
            room: room.to_owned(),
            seq,
            text: text.to_owned(),
            cid: cid.to_owned(),
        };
        self.request(event::EDIT, &body, CALL_TIMEOUT_MS).await
    }

    /// Deletes message `seq` of `room` (this user's, or anyone's in a room
    /// this account owns or moderates).
    pub async fn delete(&self, room: &str, seq: u64, cid: &str) -> Result<Said, ChatError> {
        let body = Delete {
            room: room.to_owned(),
            seq,
            cid: cid.to_owned(),
        };
        self.request(event::DELETE, &body, CALL_TIMEOUT_MS).await
    }
}

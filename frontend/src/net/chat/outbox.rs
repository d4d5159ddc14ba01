//! The queue of `say`s on the wire: queued messages go out in order once
//! `hello` is done, and each answer is settled as [`SyncState::settle`]
//! says (stored, refused, or sent again with the same `cid`).
//!
//! [`SyncState::settle`]: super::sync::SyncState::settle

use super::{
    CALL_TIMEOUT_MS, ChatClient, ChatError, ChatEvent, UNAVAILABLE_RETRY_MS, sync::Settled,
};
use shared::{
    chat::{Said, Say},
    event,
};

impl ChatClient {
    /// Queues a message (answering message `reply` of the room, if given)
    /// and sends it as soon as the connection allows. Returns its `cid`,
    /// which the `Msg` and `Said` events carry.
    pub fn say(&self, room: &str, text: &str, reply: Option<u64>) -> String {
        let cid = self.inner.borrow_mut().sync.say(room, text, reply);
        self.flush_queue();
        cid
    }

    /// Queues a failed message again, with its original `cid` (and what it
    /// answers).
    pub fn retry(&self, say: Say) {
        let queued = self.inner.borrow_mut().sync.requeue(say);
        if queued {
            self.flush_queue();
        }
    }

    /// How many messages wait for an acknowledgement.
    pub fn queued(&self) -> usize {
        self.inner.borrow().sync.queued()
    }

    /// The messages waiting for an acknowledgement, in order (the app
    /// keeps them across a reload and queues them again with
    /// [`ChatClient::retry`], so each is stored once, replies included).
    pub fn pending(&self) -> Vec<Say> {
        self.inner.borrow().sync.pending()
    }

    /// Sends every queued `say` not already on its way, in order.
    pub(super) fn flush_queue(&self) {
        let to_send = self.inner.borrow_mut().sync.take_unsent();
        for body in to_send {
            // The frame goes out now, in queue order; the answer comes later.
            let answer = self.request::<Said>(event::SAY, &body, CALL_TIMEOUT_MS);
            let (client, cid) = (self.clone(), body.cid);
            wasm_bindgen_futures::spawn_local(async move {
                let result = answer.await;
                client.said(&cid, result);
            });
        }
    }

    fn said(&self, cid: &str, result: Result<Said, ChatError>) {
        let settled = self.inner.borrow_mut().sync.settle(cid, result);
        match settled {
            Settled::Done(result) => self.emit(ChatEvent::Said {
                cid: cid.to_owned(),
                result,
            }),
            Settled::Later => {
                let client = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    crate::net::sleep_ms(UNAVAILABLE_RETRY_MS).await;
                    client.flush_queue();
                });
            }
            // Re-sent after the next hello.
            Settled::AfterHello => {}
        }
    }
}

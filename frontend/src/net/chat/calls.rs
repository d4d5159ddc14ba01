//! One-off requests that need none of the sync state: history, search,
//! the rooms list, typing, ping, and the seed protocol's calls (myip, upper, the
//! long task).

use super::{CALL_TIMEOUT_MS, ChatClient, ChatError, json, random_hex};
use crate::net::{now_ms, sleep_ms, socket::CallError};
use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{Either, select};
use shared::{
    chat::{HistoryQuery, Msg, RoomInfo, SearchQuery, TypingIn},
    event,
};
use std::pin::pin;

impl ChatClient {
    /// Up to `limit` messages before `before`, oldest first.
    pub async fn history(
        &self,
        room: &str,
        before: u64,
        limit: u16,
    ) -> Result<Vec<Msg>, ChatError> {
        let body = HistoryQuery {
            room: room.to_owned(),
            before,
            limit,
        };
        self.request(event::HISTORY, &body, CALL_TIMEOUT_MS).await
    }

    /// Messages matching `q` in every room this user may read, newest
    /// first (the server's most); a query it cannot run is a
    /// [`ChatError::Server`] saying why.
    pub async fn search(&self, q: &str) -> Result<Vec<Msg>, ChatError> {
        let body = SearchQuery {
            q: q.to_owned(),
            limit: None,
        };
        self.request(event::SEARCH, &body, CALL_TIMEOUT_MS).await
    }

    /// Every room on the server.
    pub async fn list_rooms(&self) -> Result<Vec<RoomInfo>, ChatError> {
        self.request(event::ROOMS, &shared::chat::Empty {}, CALL_TIMEOUT_MS)
            .await
    }

    /// Tells the room this user is (not) typing.
    pub fn typing(&self, room: &str, on: bool) {
        if self.inner.borrow().sync.ready() {
            let body = TypingIn {
                room: room.to_owned(),
                on,
            };
            self.socket.notify(event::TYPING, json(&body));
        }
    }

    /// Round-trip time of a `ping`, in milliseconds.
    pub async fn ping(&self) -> Result<f64, CallError> {
        let nonce = random_hex(8);
        let (tx, rx) = oneshot::channel();
        self.inner.borrow_mut().pings.insert(nonce.clone(), tx);
        let start = now_ms();
        if !self.socket.notify(event::PING, nonce.clone().into_bytes()) {
            self.inner.borrow_mut().pings.remove(&nonce);
            return Err(CallError::Disconnected);
        }
        match select(rx, pin!(sleep_ms(CALL_TIMEOUT_MS))).await {
            Either::Left((Ok(()), _)) => Ok(now_ms() - start),
            _ => {
                self.inner.borrow_mut().pings.remove(&nonce);
                Err(CallError::TimedOut)
            }
        }
    }

    /// The address the server sees.
    pub async fn myip(&self) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(event::MYIP, Bytes::new(), CALL_TIMEOUT_MS)
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// The text upper-cased by the server.
    pub async fn upper(&self, text: &str) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(
                event::UPPERCASE,
                text.to_owned().into_bytes(),
                CALL_TIMEOUT_MS,
            )
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Runs `long_runing_task`; past `timeout_ms` the call is reset.
    pub async fn long_task(&self, timeout_ms: u32) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(event::LONG_RUNNING_TASK, Bytes::new(), timeout_ms)
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
}

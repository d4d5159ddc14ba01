//! Searching from the app: the search panel's state (open, the query
//! asked, its results or why there are none), running a search (a newer
//! one wins over one still on its way), and going to a result: its room
//! (joined first when this user is not in it), then the message (see
//! [`Chat::go_to`]).

use super::{Chat, model::Hit};
use leptos::{prelude::*, task::spawn_local};

/// What the search panel shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    /// The panel is open.
    pub open: bool,
    /// The query last asked for (empty: none yet).
    pub query: String,
    /// Asked, not answered yet.
    pub busy: bool,
    /// Its results, newest first.
    pub hits: Vec<Hit>,
    /// Why it has none (the server's words for a query it cannot run).
    pub error: Option<String>,
    /// Counts searches, so an answer to an older one is dropped.
    asked: u64,
}

impl Chat {
    /// Opens the search panel.
    pub fn open_search(&self) {
        self.search.update(|s| s.open = true);
    }

    /// Closes the search panel (its results stay for next time).
    pub fn close_search(&self) {
        self.search.update(|s| s.open = false);
    }

    /// Searches for `q` and shows what comes in the panel.
    pub fn run_search(&self, q: &str) {
        let q = q.trim().to_owned();
        let mut asked = 0;
        self.search.update(|s| {
            s.asked += 1;
            asked = s.asked;
            s.open = true;
            s.busy = true;
            s.error = None;
            s.hits.clear();
            s.query.clone_from(&q);
        });
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            let result = client.search(&q).await;
            let hits = result.map(|found| chat.model.with_untracked(|m| m.hits(&q, &found)));
            chat.search.try_update(|s| {
                if s.asked != asked {
                    return;
                }
                s.busy = false;
                match hits {
                    Ok(hits) => s.hits = hits,
                    Err(e) => s.error = Some(e.to_string()),
                }
            });
        });
    }

    /// Goes to message `seq` of `room` (a search result): shows its room,
    /// joining it first when this user is not in it, then the message.
    /// The panel closes; a refusal to join is said in it.
    pub fn open_result(&self, room: &str, seq: u64) {
        let joined = self.model.with_untracked(|m| m.room(room).is_some());
        let (chat, room) = (*self, room.to_owned());
        if joined {
            self.close_search();
            self.show(&room);
            self.go_to(&room, seq);
            return;
        }
        let client = self.client();
        spawn_local(async move {
            match client.join(&room).await {
                Ok(state) => {
                    chat.close_search();
                    chat.show(&state.room);
                    chat.go_to(&state.room, seq);
                }
                Err(e) => {
                    chat.search
                        .try_update(|s| s.error = Some(format!("cannot join #{room}: {e}")));
                }
            }
        });
    }
}

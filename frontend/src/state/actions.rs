//! The actions components call: what the composer sent (a message or a
//! slash command), retry, join, leave, nickname, showing a room, older
//! messages, the rooms list, typing, reconnecting now.

use super::{Chat, NICK_KEY, command, command::Command, now, store};
use crate::net::chat::ChatError;
use leptos::{prelude::*, task::spawn_local};

impl Chat {
    /// Runs what the composer sent: a message or a slash command. `Err`
    /// says why it was not done (the composer shows it and keeps the text).
    pub fn submit(&self, input: &str) -> Result<(), String> {
        match command::parse(input) {
            Command::Say(text) => self.say(&text),
            Command::Nick(nick) => self.set_nick(nick),
            Command::Join(room) => {
                let room = shared::room_name::room_name(&room).map_err(|e| e.to_string())?;
                self.join(room, self.composer_error);
            }
            Command::Leave => {
                let room = self.model.with_untracked(|m| m.current.clone());
                if room == shared::event::LOBBY {
                    return Err("#lobby cannot be left: everyone is in it".into());
                }
                self.leave(room);
            }
            Command::Ping => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.ping().await {
                        Ok(ms) => chat.note(format!("pong: round trip {ms:.1} ms")),
                        Err(e) => chat.note(format!("ping failed: {e}")),
                    }
                });
            }
            Command::MyIp => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.myip().await {
                        Ok(ip) => chat.note(format!("the server sees you as {ip}")),
                        Err(e) => chat.note(format!("myip failed: {e}")),
                    }
                });
            }
            Command::Upper(text) => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.upper(&text).await {
                        Ok(up) => chat.note(up),
                        Err(e) => chat.note(format!("upper failed: {e}")),
                    }
                });
            }
            Command::Long(timeout) => {
                let (chat, client) = (*self, self.client());
                let timeout = timeout.unwrap_or(10_000);
                chat.note(format!("long task started (timeout {timeout} ms)…"));
                spawn_local(async move {
                    let started = crate::net::now_ms();
                    let result = client.long_task(timeout).await;
                    let took = crate::net::now_ms() - started;
                    match result {
                        Ok(answer) => chat.note(format!("long task: {answer} after {took:.0} ms")),
                        Err(crate::net::socket::CallError::TimedOut) => chat.note(format!(
                            "long task cancelled with a Reset after {timeout} ms"
                        )),
                        Err(e) => chat.note(format!("long task failed: {e}")),
                    }
                });
            }
            Command::Help => self.note(command::HELP),
            Command::Invalid(why) => return Err(why),
        }
        Ok(())
    }

    /// Sends a message to the room on screen (queued while offline),
    /// answering what its composer answers (which then answers nothing).
    pub fn say(&self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let room = self.model.with_untracked(|m| m.current.clone());
        let reply = self.model.try_update(|m| m.take_reply(&room)).flatten();
        let cid = self.client().say(&room, text, reply);
        self.model
            .update(|m| m.local_say(&room, &cid, text, reply, now()));
        self.keep_outbox();
    }

    /// Sends a failed message again (with its `cid`, answering what it
    /// answered).
    pub fn retry(&self, say: shared::chat::Say) {
        self.model.update(|m| m.retrying(&say.cid));
        self.client().retry(say);
        self.keep_outbox();
    }

    /// Joins (or creates) a room and shows it; a refusal goes to `errors`.
    pub fn join(&self, room: String, errors: RwSignal<Option<String>>) {
        let (chat, client) = (*self, self.client());
        errors.set(None);
        spawn_local(async move {
            match client.join(&room).await {
                Ok(state) => chat.show(&state.room),
                Err(e) => {
                    errors.try_set(Some(format!("cannot join #{room}: {e}")));
                }
            }
        });
    }

    /// Leaves a room.
    pub fn leave(&self, room: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            if let Err(e) = client.leave(&room).await {
                chat.note(format!("cannot leave {room}: {e}"));
            }
        });
    }

    /// Changes nickname and remembers it. A refusal is shown in the
    /// dialog when it is open, else under the composer.
    pub fn set_nick(&self, nick: String) {
        let (chat, client) = (*self, self.client());
        chat.nick_error.set(None);
        spawn_local(async move {
            let why = match client.set_nick(&nick).await {
                Ok(granted) => {
                    store(true, NICK_KEY, &granted);
                    chat.model.update(|m| m.nick = granted);
                    chat.asking_nick.set(false);
                    return;
                }
                Err(ChatError::Server(e)) => format!("cannot use that nickname: {}", e.message),
                Err(e) => format!("cannot change nickname: {e}"),
            };
            if chat.asking_nick.get_untracked() {
                chat.nick_error.set(Some(why));
            } else {
                chat.composer_error.set(Some(why));
            }
        });
    }

    /// Shows a room (a person picked it: the cursor goes to its composer,
    /// and the phone's rooms drawer closes; an edit or a deletion asked
    /// about in another room is dropped).
    pub fn show(&self, room: &str) {
        self.typing(false);
        if self
            .acting
            .with_untracked(|a| a.as_ref().is_some_and(|a| a.room != room))
        {
            self.acting.set(None);
        }
        self.model.update(|m| m.show(room));
        self.rooms_open.try_set(false);
        self.focus_composer.try_update(|n| *n += 1);
    }

    /// Loads older messages of `room` (a page of [`OLDER_PAGE`]); `done`
    /// runs once they are in the model (or none came).
    ///
    /// [`OLDER_PAGE`]: super::OLDER_PAGE
    pub fn load_older(&self, room: &str, done: impl FnOnce() + 'static) {
        let (chat, room) = (*self, room.to_owned());
        spawn_local(async move {
            chat.older_page(&room).await;
            done();
        });
    }

    /// Refreshes the list of all rooms.
    pub fn refresh_directory(&self) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            if let Ok(rooms) = client.list_rooms().await {
                chat.directory.set(rooms);
            }
        });
    }

    /// Tells the room on screen that this user is typing (`on`), or the
    /// room it was told so that they stopped.
    pub fn typing(&self, on: bool) {
        let Some(before) = self.typing_in.try_get_value() else {
            return;
        };
        let client = self.client();
        if on {
            let room = self.model.with_untracked(|m| m.current.clone());
            if let Some(old) = before.filter(|old| *old != room) {
                client.typing(&old, false);
            }
            client.typing(&room, true);
            self.typing_in.set_value(Some(room));
        } else if let Some(old) = before {
            client.typing(&old, false);
            self.typing_in.set_value(None);
        }
    }

    /// Reconnects now instead of waiting.
    pub fn retry_now(&self) {
        self.client().socket().retry_now();
    }
}

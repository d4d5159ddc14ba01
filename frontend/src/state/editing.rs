//! Editing and deleting messages from the app: the one message a person
//! is acting on (its editor is open, or "Delete this message?" is asked
//! under it), and sending the change. The message's row shows what
//! [`Acting`] says; the change itself shows once it comes back as a
//! `msg`, the same way everyone else in the room sees it.

use super::{Chat, MAX_TEXT_CHARS};
use leptos::{prelude::*, task::spawn_local};

/// What is being done to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Its editor is open.
    Edit,
    /// Its deletion waits for a yes.
    Delete,
}

/// The message a person is acting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    /// Its room.
    pub room: String,
    /// Its `seq`.
    pub seq: u64,
    /// Editing it, or asking before deleting it.
    pub act: Act,
    /// The editor's text (kept here, so a row drawn again keeps it).
    pub draft: String,
    /// Sent: waiting for the server's answer.
    pub busy: bool,
    /// Why the last try failed.
    pub error: Option<String>,
    /// Opened from the composer (ArrowUp): the cursor goes back there.
    pub from_composer: bool,
    /// The row should take the cursor when it next draws this (once: a
    /// row drawn again later, after scrolling, does not take it).
    pub focus: bool,
    /// The `cid` of the last try and what it sent: the same change sent
    /// again goes with the same `cid`.
    sent: Option<(String, String)>,
}

impl Acting {
    fn new(room: String, seq: u64, act: Act, draft: String, from_composer: bool) -> Self {
        Acting {
            room,
            seq,
            act,
            draft,
            busy: false,
            error: None,
            from_composer,
            focus: true,
            sent: None,
        }
    }

    /// Whether this is about message `seq` of `room`.
    pub fn is(&self, room: &str, seq: u64) -> bool {
        self.room == room && self.seq == seq
    }
}

impl Chat {
    /// Opens the editor of message `seq` of `room`.
    pub fn start_edit(&self, room: &str, seq: u64) {
        let text = self.model.with_untracked(|m| {
            m.room(room)?
                .lines
                .iter()
                .rev()
                .find(|l| l.seq == Some(seq))
                .map(|l| l.text.clone())
        });
        if let Some(text) = text {
            let acting = Acting::new(room.to_owned(), seq, Act::Edit, text, false);
            self.acting.set(Some(acting));
        }
    }

    /// Opens the editor of this user's newest message in the room on
    /// screen that may still be edited, among its last `within` lines (the
    /// composer's ArrowUp); `false` when there is none.
    pub fn edit_last(&self, within: usize) -> bool {
        let found = self.model.with_untracked(|m| {
            let line = m
                .current_room()?
                .last_editable(&m.nick, super::now(), within)?;
            Some((m.current.clone(), line.seq?, line.text.clone()))
        });
        let Some((room, seq, text)) = found else {
            return false;
        };
        self.acting
            .set(Some(Acting::new(room, seq, Act::Edit, text, true)));
        true
    }

    /// Asks "Delete this message?" under message `seq` of `room`.
    pub fn ask_delete(&self, room: &str, seq: u64) {
        let acting = Acting::new(room.to_owned(), seq, Act::Delete, String::new(), false);
        self.acting.set(Some(acting));
    }

    /// Closes the editor or the question, sending nothing.
    pub fn stop_acting(&self) {
        self.acting.set(None);
    }

    /// Keeps what the editor holds (its row reads it when drawn again; no
    /// row needs to change for it).
    pub fn keep_draft(&self, text: String) {
        self.acting.update_untracked(|a| {
            if let Some(a) = a {
                a.draft = text;
            }
        });
    }

    /// Whether the row of message `seq` of `room` should take the cursor
    /// now (asked once: the next call answers `false`).
    pub fn take_focus(&self, room: &str, seq: u64) -> bool {
        self.acting
            .try_update_untracked(|a| match a {
                Some(a) if a.is(room, seq) => std::mem::take(&mut a.focus),
                _ => false,
            })
            .unwrap_or(false)
    }

    /// Sends the edit (the editor's text) or the deletion being asked
    /// about. Once the server took it, the editor or question closes and
    /// `done` runs; a refusal is said under it. An edit that changes
    /// nothing just closes.
    pub fn finish(&self, done: impl FnOnce() + 'static) {
        let Some(acting) = self.acting.get_untracked().filter(|a| !a.busy) else {
            return;
        };
        let payload = match acting.act {
            Act::Edit => match self.checked_edit(&acting) {
                Ok(Some(text)) => text,
                Ok(None) => {
                    self.stop_acting();
                    done();
                    return;
                }
                Err(why) => return self.failed(&acting, why),
            },
            Act::Delete => String::new(),
        };
        let cid = match &acting.sent {
            Some((cid, sent)) if *sent == payload => cid.clone(),
            _ => self.client().new_cid(),
        };
        self.acting.update(|a| {
            if let Some(a) = a.as_mut().filter(|a| a.is(&acting.room, acting.seq)) {
                a.busy = true;
                a.error = None;
                a.sent = Some((cid.clone(), payload.clone()));
            }
        });
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            let (room, seq) = (acting.room.as_str(), acting.seq);
            let result = match acting.act {
                Act::Edit => client.edit(room, seq, &payload, &cid).await,
                Act::Delete => client.delete(room, seq, &cid).await,
            };
            match result {
                Ok(_) => {
                    let still = chat
                        .acting
                        .try_with_untracked(|a| a.as_ref().is_some_and(|a| a.is(room, seq)));
                    if still == Some(true) {
                        chat.acting.set(None);
                        done();
                    }
                }
                Err(e) => chat.failed(&acting, e.to_string()),
            }
        });
    }

    /// The text to send for an edit: `Ok(None)` when it changes nothing,
    /// `Err` when it cannot be sent.
    fn checked_edit(&self, acting: &Acting) -> Result<Option<String>, String> {
        let text = acting.draft.trim_end().to_owned();
        if text.trim().is_empty() {
            return Err("a message cannot be empty (delete it instead)".into());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!("too long (at most {MAX_TEXT_CHARS} characters)"));
        }
        let current = self.model.with_untracked(|m| {
            m.room(&acting.room)?
                .lines
                .iter()
                .rev()
                .find(|l| l.seq == Some(acting.seq))
                .map(|l| l.text.clone())
        });
        Ok((current.as_deref() != Some(text.as_str())).then_some(text))
    }

    /// Says why the change was not made, under the message.
    fn failed(&self, acting: &Acting, why: String) {
        let what = match acting.act {
            Act::Edit => "Not saved",
            Act::Delete => "Not deleted",
        };
        self.acting.try_update(|a| {
            if let Some(a) = a.as_mut().filter(|a| a.is(&acting.room, acting.seq)) {
                a.busy = false;
                a.error = Some(format!("{what}: {why}"));
            }
        });
    }
}

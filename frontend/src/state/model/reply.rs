//! Replies in the model: the message each room's composer answers (one
//! per room, kept while switching rooms, like drafts), and what a reply
//! shows of the message it answers.

use super::{Model, RoomView};

/// Longest excerpt of a quoted message, in characters (with the "…").
pub const EXCERPT_CHARS: usize = 80;

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quote {
    /// The message is loaded: its author and a one-line excerpt.
    Loaded {
        /// Its author.
        from: String,
        /// Its text on one line, cut at [`EXCERPT_CHARS`].
        excerpt: String,
    },
    /// The message was deleted.
    Deleted,
    /// The message is not loaded (older history may hold it).
    Unknown,
}

impl Quote {
    /// What the quote says, in words: "NAME: excerpt", "a deleted
    /// message" or "an earlier message".
    pub fn words(&self) -> String {
        match self {
            Quote::Loaded { from, excerpt } => format!("{from}: {excerpt}"),
            Quote::Deleted => "a deleted message".into(),
            Quote::Unknown => "an earlier message".into(),
        }
    }
}

/// `text` on one line (runs of white space, line breaks included, become
/// one space), cut to [`EXCERPT_CHARS`] characters with "…".
pub fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= EXCERPT_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(EXCERPT_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

impl RoomView {
    /// What a reply to message `seq` of this room shows of it.
    pub fn quote(&self, seq: u64) -> Quote {
        match self.lines.iter().find(|l| l.seq == Some(seq)) {
            Some(line) if line.deleted => Quote::Deleted,
            Some(line) => Quote::Loaded {
                from: line.from.clone(),
                excerpt: excerpt(&line.text),
            },
            None => Quote::Unknown,
        }
    }

    /// Whether message `seq` is loaded.
    pub fn has(&self, seq: u64) -> bool {
        self.lines.iter().any(|l| l.seq == Some(seq))
    }
}

impl Model {
    /// The composer of `room` now answers message `seq` (in place of
    /// whatever it answered).
    pub fn start_reply(&mut self, room: &str, seq: u64) {
        if let Some(view) = self.room_mut(room) {
            view.replying = Some(seq);
        }
    }

    /// The composer of `room` answers nothing any more.
    pub fn cancel_reply(&mut self, room: &str) {
        if let Some(view) = self.room_mut(room) {
            view.replying = None;
        }
    }

    /// What the composer of `room` answers, which a message sent now
    /// takes (the composer then answers nothing).
    pub fn take_reply(&mut self, room: &str) -> Option<u64> {
        self.room_mut(room)?.replying.take()
    }
}

//! Edits and deletions in the model, and who may make them.
//!
//! They are entries of the room like messages (each has its own `seq`, so
//! recovery brings them back), but never lines of their own: each changes
//! the line of the message it names, by [`Msg::apply`]'s rules (only a
//! change newer than the last one applied; a deleted message stays
//! deleted). One that names a message not loaded is kept, and applied when
//! older history brings that message: history carries messages in their
//! final state, so this only matters for a change that overtook the page
//! its message came in.

use super::{Line, RoomView};
use shared::chat::Msg;

/// A message can be edited this long after it was posted (the server's
/// rule): past it, the app offers no "Edit".
pub const EDIT_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Changes kept for messages not loaded, at most (the oldest go first).
const KEPT_CHANGES: usize = 1_000;

impl Line {
    /// Applies an edit or deletion if it names this message and is newer
    /// than what was applied: `true` if it did.
    pub fn apply(&mut self, change: &Msg) -> bool {
        let Some(seq) = self.seq.filter(|_| !self.system) else {
            return false;
        };
        // The protocol's rules, run on the message this line shows (room,
        // epoch and author play no part in them).
        let text = std::mem::take(&mut self.text);
        let mut msg = Msg::new(
            String::new(),
            String::new(),
            seq,
            String::new(),
            text,
            self.ts,
        );
        msg.changed = self.changed;
        msg.deleted = self.deleted;
        let applied = msg.apply(change);
        self.text = msg.text;
        self.changed = msg.changed;
        self.deleted = msg.deleted;
        applied
    }

    /// Whether `me` may edit it at `now`: their own stored message, not
    /// deleted, younger than [`EDIT_WINDOW_MS`].
    pub fn editable_by(&self, me: &str, now: i64) -> bool {
        self.stored() && self.from == me && now - self.ts < EDIT_WINDOW_MS
    }

    /// A stored message that is still there (not a notice, not pending).
    fn stored(&self) -> bool {
        self.seq.is_some() && !self.system && !self.deleted
    }
}

impl RoomView {
    /// Whether `me` may delete `line`: their own message, or anyone's in a
    /// room they own or moderate.
    pub fn may_delete(&self, line: &Line, me: &str) -> bool {
        line.stored() && (line.from == me || self.moderated_by_me())
    }

    /// `me`'s newest message they may edit at `now`, among the last
    /// `within` lines (what the composer's ArrowUp edits).
    pub fn last_editable(&self, me: &str, now: i64, within: usize) -> Option<&Line> {
        self.lines
            .iter()
            .rev()
            .take(within)
            .find(|l| l.editable_by(me, now))
    }

    /// An edit or deletion arrived: applied to its message's line, or kept
    /// until that message is loaded.
    pub(super) fn apply_change(&mut self, change: &Msg) {
        let Some(of) = change.of else { return };
        if let Some(line) = self.lines.iter_mut().rev().find(|l| l.seq == Some(of)) {
            line.apply(change);
            return;
        }
        if self.kept_changes.iter().any(|c| c.seq == change.seq) {
            return;
        }
        if self.kept_changes.len() >= KEPT_CHANGES {
            self.kept_changes.remove(0);
        }
        self.kept_changes.push(change.clone());
    }

    /// The line of a message just loaded, with the changes kept for it
    /// applied (oldest first).
    pub(super) fn line_of(&mut self, m: &Msg) -> Line {
        let mut line = Line::from_msg(m);
        if self.kept_changes.iter().any(|c| c.of == Some(m.seq)) {
            let (mut its, others): (Vec<Msg>, Vec<Msg>) = std::mem::take(&mut self.kept_changes)
                .into_iter()
                .partition(|c| c.of == Some(m.seq));
            self.kept_changes = others;
            its.sort_by_key(|c| c.seq);
            for change in &its {
                line.apply(change);
            }
        }
        line
    }
}

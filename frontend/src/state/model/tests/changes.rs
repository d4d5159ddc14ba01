//! Edits and deletions in the model: they are never lines and never
//! unread; they change their message's line, live, in a recovered or
//! replaced state, and in older history loaded later; who may make them.

use super::*;
use shared::chat::Change;

/// An edit (with `text`) or deletion by `from` of message `of`.
fn change(room: &str, seq: u64, kind: Change, of: u64, text: &str) -> Msg {
    let mut m = Msg::new(room.into(), "e".into(), seq, "ann".into(), text.into(), 2);
    m.kind = Some(kind);
    m.of = Some(of);
    m
}

/// The message lines of `room`: text, edited, deleted.
fn shown(m: &Model, room: &str) -> Vec<(String, bool, bool)> {
    m.room(room)
        .map(|r| {
            r.lines
                .iter()
                .filter(|l| !l.system)
                .map(|l| (l.text.clone(), l.edited(), l.deleted))
                .collect()
        })
        .unwrap_or_default()
}

fn line(text: &str, edited: bool, deleted: bool) -> (String, bool, bool) {
    (text.into(), edited, deleted)
}

#[test]
fn changes_are_never_lines_and_never_unread() {
    let mut m = welcomed();
    m.apply(
        ChatEvent::Joined(state("r", vec![msg("r", 1, "bob", None)], false)),
        0,
    );
    // Not on screen: an edit and a deletion change the line, count nothing.
    m.apply(ChatEvent::Msg(change("r", 2, Change::Edit, 1, "fixed")), 0);
    assert_eq!(shown(&m, "r"), [line("fixed", true, false)]);
    m.apply(ChatEvent::Msg(change("r", 3, Change::Delete, 1, "")), 0);
    assert_eq!(shown(&m, "r"), [line("", false, true)]);
    assert_eq!(m.room("r").map(|r| r.unread), Some(0));
    assert_eq!(m.unread_elsewhere(), 0);
    // On screen: no "new" line for them either.
    m.show("r");
    assert_eq!(m.room("r").and_then(|r| r.new_from), None);
    m.apply(ChatEvent::Msg(msg("r", 4, "bob", None)), 0);
    m.show("lobby");
    m.apply(ChatEvent::Msg(change("r", 5, Change::Edit, 4, "again")), 0);
    assert_eq!(m.room("r").map(|r| r.unread), Some(0));
    assert_eq!(m.room("r").map(|r| r.lines.len()), Some(2));
}

#[test]
fn a_live_edit_replaces_the_text_and_a_deletion_is_final() {
    let mut m = welcomed();
    m.apply(ChatEvent::Msg(msg("lobby", 2, "ann", None)), 0);
    m.apply(
        ChatEvent::Msg(change("lobby", 3, Change::Edit, 2, "helo")),
        0,
    );
    m.apply(
        ChatEvent::Msg(change("lobby", 4, Change::Edit, 2, "hello")),
        0,
    );
    assert_eq!(shown(&m, "lobby")[1], line("hello", true, false));
    assert_eq!(m.rooms[0].lines[1].changed, Some(4));
    // An older edit replayed late changes nothing.
    m.apply(
        ChatEvent::Joined(state(
            "lobby",
            vec![change("lobby", 3, Change::Edit, 2, "helo")],
            true,
        )),
        0,
    );
    assert_eq!(shown(&m, "lobby")[1], line("hello", true, false));
    m.apply(ChatEvent::Msg(change("lobby", 5, Change::Delete, 2, "")), 0);
    m.apply(
        ChatEvent::Msg(change("lobby", 6, Change::Edit, 2, "back")),
        0,
    );
    assert_eq!(
        shown(&m, "lobby")[1],
        line("", false, true),
        "gone for good"
    );
    // The first message was not touched.
    assert_eq!(shown(&m, "lobby")[0], line("t1", false, false));
}

#[test]
fn a_replaced_state_carries_final_messages_and_their_changes_apply_once() {
    let mut m = Model::default();
    let mut gone = msg("r", 1, "bob", None);
    gone.text.clear();
    gone.deleted = true;
    gone.changed = Some(4);
    let mut edited = msg("r", 2, "bob", None);
    edited.text = "new".into();
    edited.changed = Some(3);
    let history = vec![
        gone,
        edited,
        change("r", 3, Change::Edit, 2, "new"),
        change("r", 4, Change::Delete, 1, ""),
    ];
    m.apply(ChatEvent::Joined(state("r", history, false)), 0);
    assert_eq!(
        shown(&m, "r"),
        [line("", false, true), line("new", true, false)]
    );
    assert_eq!(m.rooms[0].newest_seq(), Some(2), "marks go by messages");
}

#[test]
fn a_change_of_a_message_not_loaded_applies_when_older_history_brings_it() {
    let mut m = Model::default();
    m.apply(
        ChatEvent::Joined(state("r", vec![msg("r", 5, "bob", None)], false)),
        0,
    );
    m.apply(
        ChatEvent::Msg(change("r", 6, Change::Edit, 2, "late fix")),
        0,
    );
    m.apply(ChatEvent::Msg(change("r", 7, Change::Delete, 3, "")), 0);
    // The page was read before those changes: it has the old texts.
    let room = m.room_mut("r").expect("room");
    room.prepend(&[
        msg("r", 1, "bob", None),
        msg("r", 2, "bob", None),
        msg("r", 3, "bob", None),
    ]);
    assert_eq!(
        shown(&m, "r"),
        [
            line("t1", false, false),
            line("late fix", true, false),
            line("", false, true),
            line("t5", false, false),
        ]
    );
    // Applied once: the same page again (final state) changes nothing.
    let mut fixed = msg("r", 2, "bob", None);
    fixed.text = "late fix".into();
    fixed.changed = Some(6);
    m.room_mut("r").expect("room").prepend(&[fixed]);
    assert_eq!(shown(&m, "r")[1], line("late fix", true, false));
}

#[test]
fn a_page_of_changes_only_still_moves_where_older_history_is_asked_from() {
    let mut m = Model::default();
    m.apply(
        ChatEvent::Joined(state("r", vec![msg("r", 9, "bob", None)], false)),
        0,
    );
    assert_eq!(m.rooms[0].oldest_seq(), Some(9));
    let page: Vec<Msg> = (5..9)
        .map(|seq| change("r", seq, Change::Edit, 1, "x"))
        .collect();
    m.room_mut("r").expect("room").prepend(&page);
    assert_eq!(
        m.rooms[0].oldest_seq(),
        Some(5),
        "the next page is before 5"
    );
    assert!(m.rooms[0].has_older);
    assert_eq!(m.rooms[0].lines.len(), 1);
}

#[test]
fn authors_edit_their_own_recent_messages_and_moderators_delete_anyones() {
    let now = 10 * EDIT_WINDOW_MS;
    let mut m = welcomed();
    let mut old = msg("lobby", 2, "ann", None);
    old.ts = now - EDIT_WINDOW_MS - 1;
    let mut recent = msg("lobby", 3, "ann", None);
    recent.ts = now - 1_000;
    for x in [old, recent, msg("lobby", 4, "bob", None)] {
        m.apply(ChatEvent::Msg(x), 0);
    }
    m.local_say("lobby", "c1", "pending", None, now);
    let room = &m.rooms[0];
    let lines = &room.lines;
    let edits: Vec<bool> = lines.iter().map(|l| l.editable_by("ann", now)).collect();
    assert_eq!(
        edits,
        [false, false, true, false, false],
        "bob's, too old, ann's, bob's, pending"
    );
    let deletes: Vec<bool> = lines.iter().map(|l| room.may_delete(l, "ann")).collect();
    assert_eq!(deletes, [false, true, true, false, false]);
    assert_eq!(
        room.last_editable("ann", now, 100).and_then(|l| l.seq),
        Some(3)
    );
    assert_eq!(
        room.last_editable("ann", now, 2).map(|l| l.seq),
        None,
        "not among the last 2 lines"
    );

    // The room's owner (or a moderator) deletes anyone's message.
    m.rooms[0].role = Some("owner".into());
    let room = &m.rooms[0];
    assert!(room.may_delete(&room.lines[3], "ann"));
    assert!(
        !room.lines[3].editable_by("ann", now),
        "but edits only their own"
    );
    m.apply(ChatEvent::Msg(change("lobby", 5, Change::Delete, 3, "")), 0);
    let room = &m.rooms[0];
    assert!(!room.may_delete(&room.lines[2], "ann"), "deleted already");
    assert!(!room.lines[2].editable_by("ann", now));
    assert_eq!(room.last_editable("ann", now, 100).map(|l| l.seq), None);
}

//! The model, event by event: ordering of lines, own messages and their
//! delivery, unread counts, the "new" line, recovered and replaced
//! states, presence and typing. Edits and deletions: `changes`; replies:
//! `replies`; search results: `search`.

mod changes;
mod replies;
mod search;

use super::*;
use crate::net::chat::ChatEvent;
use shared::chat::{ErrorBody, ErrorCode, Msg, Presence, PresenceKind, RoomState, Said, Welcome};

fn msg(room: &str, seq: u64, from: &str, cid: Option<&str>) -> Msg {
    let mut m = Msg::new(
        room.into(),
        "e".into(),
        seq,
        from.into(),
        format!("t{seq}"),
        1,
    );
    m.cid = cid.map(Into::into);
    m
}

fn state(room: &str, history: Vec<Msg>, recovered: bool) -> RoomState {
    RoomState {
        room: room.into(),
        epoch: "e".into(),
        seq: history.last().map_or(0, |m| m.seq),
        members: vec!["ann".into(), "bob".into()],
        history,
        recovered,
        title: None,
        role: None,
    }
}

fn welcomed() -> Model {
    let mut m = Model::default();
    m.apply(
        ChatEvent::Welcome(Welcome {
            session: "s".into(),
            nick: "ann".into(),
            rooms: vec![state("lobby", vec![msg("lobby", 1, "bob", None)], false)],
        }),
        0,
    );
    m
}

#[test]
fn own_message_goes_sending_then_replaced_by_the_stored_one() {
    let mut m = welcomed();
    m.local_say("lobby", "c1", "hi", None, 5);
    assert_eq!(
        m.rooms[0].lines.last().map(|l| &l.delivery),
        Some(&Delivery::Sending)
    );
    m.apply(ChatEvent::Msg(msg("lobby", 2, "ann", Some("c1"))), 0);
    m.apply(
        ChatEvent::Said {
            cid: "c1".into(),
            result: Ok(Said { seq: 2, ts: 1 }),
        },
        0,
    );
    let lines = &m.rooms[0].lines;
    assert_eq!(lines.len(), 2, "replaced, not duplicated");
    assert_eq!(lines[1].seq, Some(2));
    assert_eq!(lines[1].delivery, Delivery::Sent);
}

#[test]
fn new_messages_follow_notices_and_precede_own_pending_ones() {
    let mut m = welcomed();
    m.room_mut("lobby").expect("lobby").notice("bob joined", 0);
    m.local_say("lobby", "c1", "mine", None, 5);
    m.apply(ChatEvent::Msg(msg("lobby", 2, "bob", None)), 0);
    let order: Vec<_> = m.rooms[0].lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(order, ["t1", "bob joined", "t2", "mine"]);
}

#[test]
fn failed_say_is_marked_and_retry_marks_it_sending() {
    let mut m = welcomed();
    m.local_say("lobby", "c9", "x", None, 5);
    m.apply(
        ChatEvent::Said {
            cid: "c9".into(),
            result: Err(ErrorBody::new(ErrorCode::TooLong, "too long")),
        },
        0,
    );
    assert_eq!(
        m.rooms[0].lines.last().map(|l| l.delivery.clone()),
        Some(Delivery::Failed("too long".into()))
    );
    m.retrying("c9");
    assert_eq!(
        m.rooms[0].lines.last().map(|l| l.delivery.clone()),
        Some(Delivery::Sending)
    );
}

#[test]
fn unread_counts_only_rooms_not_on_screen() {
    let mut m = welcomed();
    m.apply(ChatEvent::Joined(state("rust", vec![], false)), 0);
    m.apply(ChatEvent::Msg(msg("rust", 1, "bob", None)), 0);
    m.apply(ChatEvent::Msg(msg("lobby", 2, "bob", None)), 0);
    assert_eq!(m.room("rust").map(|r| r.unread), Some(1));
    assert_eq!(m.room("lobby").map(|r| r.unread), Some(0));
    m.show("rust");
    assert_eq!(m.room("rust").map(|r| r.unread), Some(0));
}

#[test]
fn recovered_state_appends_and_unrecovered_replaces_but_keeps_pending() {
    let mut m = welcomed();
    m.local_say("lobby", "p1", "queued", None, 5);
    let recovered = state("lobby", vec![msg("lobby", 2, "bob", None)], true);
    m.apply(ChatEvent::Joined(recovered), 0);
    let seqs: Vec<_> = m.rooms[0].lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [Some(1), Some(2), None]);
    let fresh = state("lobby", vec![msg("lobby", 7, "bob", None)], false);
    m.apply(ChatEvent::Joined(fresh), 0);
    let seqs: Vec<_> = m.rooms[0].lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [Some(7), None], "replaced; the queued message stays");
}

#[test]
fn room_status_flags_the_room_once() {
    let mut m = welcomed();
    let status = |state| {
        ChatEvent::RoomStatus(shared::chat::RoomStatus {
            room: "lobby".into(),
            state,
        })
    };
    let notices = |m: &Model| m.rooms[0].lines.iter().filter(|l| l.system).count();
    let start = notices(&m);
    m.apply(status(shared::chat::Health::Degraded), 1);
    m.apply(status(shared::chat::Health::Degraded), 2);
    assert!(m.rooms[0].degraded);
    assert_eq!(notices(&m), start + 1, "told once");
    m.apply(status(shared::chat::Health::Ok), 3);
    assert!(!m.rooms[0].degraded);
    assert_eq!(notices(&m), start + 2);
}

#[test]
fn presence_and_typing_update_members() {
    let mut m = welcomed();
    m.apply(
        ChatEvent::Presence(Presence {
            room: "lobby".into(),
            nick: "cy".into(),
            what: PresenceKind::Join,
            old: None,
            members: 3,
        }),
        0,
    );
    assert_eq!(m.rooms[0].members, ["ann", "bob", "cy"]);
    m.apply(
        ChatEvent::Presence(Presence {
            room: "lobby".into(),
            nick: "Bo".into(),
            what: PresenceKind::Rename,
            old: Some("bob".into()),
            members: 3,
        }),
        0,
    );
    assert_eq!(m.rooms[0].members, ["ann", "Bo", "cy"]);
    m.apply(
        ChatEvent::Typing(shared::chat::TypingOut {
            room: "lobby".into(),
            nick: "cy".into(),
            on: true,
        }),
        0,
    );
    assert_eq!(m.rooms[0].typists(), ["cy"]);
    m.apply(ChatEvent::Msg(msg("lobby", 2, "cy", None)), 0);
    assert!(m.rooms[0].typing.is_empty(), "a message ends typing");
}

fn typing(room: &str, nick: &str, on: bool) -> ChatEvent {
    ChatEvent::Typing(shared::chat::TypingOut {
        room: room.into(),
        nick: nick.into(),
        on,
    })
}

#[test]
fn typing_ends_when_it_is_no_longer_repeated() {
    let mut m = welcomed();
    m.apply(typing("lobby", "cy", true), 1_000);
    assert!(!m.expire_typing(1_000 + TYPING_TTL_MS - 1));
    // Repeated "on" keeps it alive; silence ends it.
    m.apply(typing("lobby", "cy", true), 4_000);
    assert!(!m.expire_typing(1_000 + TYPING_TTL_MS + 1));
    assert_eq!(m.rooms[0].typists(), ["cy"]);
    assert!(m.expire_typing(4_000 + TYPING_TTL_MS));
    assert!(m.rooms[0].typing.is_empty());
    assert!(!m.anyone_typing());
}

#[test]
fn a_welcome_drops_rooms_the_session_is_not_in() {
    let mut m = welcomed();
    m.apply(ChatEvent::Joined(state("gone", vec![], false)), 0);
    m.show("gone");
    m.apply(
        ChatEvent::Welcome(Welcome {
            session: "s".into(),
            nick: "ann".into(),
            rooms: vec![state("lobby", vec![], true)],
        }),
        0,
    );
    assert!(m.room("gone").is_none());
    assert_eq!(m.current, "lobby");
}

#[test]
fn messages_that_came_while_away_get_a_new_line() {
    let mut m = welcomed();
    m.apply(
        ChatEvent::Joined(state("r", vec![msg("r", 1, "bob", None)], false)),
        0,
    );
    m.show("r");
    assert_eq!(m.room("r").and_then(|r| r.new_from), None);
    m.show("lobby");
    m.apply(ChatEvent::Msg(msg("r", 2, "bob", None)), 0);
    m.apply(ChatEvent::Msg(msg("r", 3, "bob", None)), 0);
    m.show("r");
    assert_eq!(m.room("r").and_then(|r| r.new_from), Some(2));
    assert_eq!(m.read.get("r"), Some(&3));
    // Seen now: the next visit has no line.
    m.show("lobby");
    assert_eq!(m.room("r").and_then(|r| r.new_from), None);
    m.show("r");
    assert_eq!(m.room("r").and_then(|r| r.new_from), None);
    assert!(m.marks_changed);
}

#[test]
fn only_own_messages_are_own_and_guests_renaming_in_the_lobby_are_quiet() {
    let mut m = welcomed();
    m.local_say("lobby", "c1", "mine", None, 5);
    m.apply(ChatEvent::Msg(msg("lobby", 2, "ann", Some("c1"))), 0);
    m.apply(ChatEvent::Msg(msg("lobby", 3, "bob", Some("other"))), 0);
    let own: Vec<bool> = m.rooms[0].lines.iter().map(|l| l.own).collect();
    assert_eq!(own, [false, true, false]);
    let before = m.rooms[0].lines.len();
    m.apply(
        ChatEvent::Presence(Presence {
            room: "lobby".into(),
            nick: "kira".into(),
            what: PresenceKind::Rename,
            old: Some("guest-3".into()),
            members: 3,
        }),
        0,
    );
    assert_eq!(m.rooms[0].lines.len(), before, "no 'guest-3 is now kira'");
    assert!(m.rooms[0].members.contains(&"kira".to_owned()));
}

#[test]
fn older_history_goes_in_front_in_order() {
    let mut m = Model::default();
    m.apply(
        ChatEvent::Joined(state(
            "r",
            vec![msg("r", 5, "a", None), msg("r", 6, "a", None)],
            false,
        )),
        0,
    );
    assert!(m.rooms[0].has_older);
    m.room_mut("r")
        .expect("room")
        .prepend(&[msg("r", 1, "a", None), msg("r", 4, "a", None)]);
    let seqs: Vec<_> = m.rooms[0].lines.iter().filter_map(|l| l.seq).collect();
    assert_eq!(seqs, [1, 4, 5, 6]);
    assert!(!m.rooms[0].has_older);
}

#[test]
fn a_state_without_history_but_with_messages_offers_older_ones() {
    let mut m = Model::default();
    let mut empty = state("r", Vec::new(), false);
    empty.seq = 40;
    m.apply(ChatEvent::Joined(empty), 0);
    assert!(m.rooms[0].has_older, "40 messages are there to load");
    let mut m = Model::default();
    m.apply(ChatEvent::Joined(state("r", Vec::new(), false)), 0);
    assert!(!m.rooms[0].has_older, "an empty room has nothing older");
}

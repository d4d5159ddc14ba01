//! Replies in the model: each room's composer answers its own message
//! (kept while switching rooms, taken by the message sent); a reply's
//! quote of a loaded, deleted or not loaded message; excerpts.

use super::*;
use shared::chat::Change;

fn reply(room: &str, seq: u64, to: u64) -> Msg {
    let mut m = msg(room, seq, "bob", None);
    m.reply = Some(to);
    m
}

#[test]
fn each_room_keeps_what_its_composer_answers_until_a_message_takes_it() {
    let mut m = welcomed();
    m.apply(
        ChatEvent::Joined(state("ops", vec![msg("ops", 4, "bob", None)], false)),
        0,
    );
    m.start_reply("lobby", 1);
    m.show("ops");
    m.start_reply("ops", 4);
    m.show("lobby");
    assert_eq!(m.room("lobby").and_then(|r| r.replying), Some(1));
    assert_eq!(m.room("ops").and_then(|r| r.replying), Some(4));
    assert_eq!(m.take_reply("lobby"), Some(1));
    assert_eq!(m.take_reply("lobby"), None, "taken once");
    m.cancel_reply("ops");
    assert_eq!(m.take_reply("ops"), None, "cancelled");
}

#[test]
fn an_own_reply_keeps_what_it_answers_while_sending_and_once_stored() {
    let mut m = welcomed();
    m.local_say("lobby", "c1", "answer!", Some(1), 5);
    let line = |m: &Model| m.room("lobby").and_then(|r| r.lines.last().cloned());
    assert_eq!(line(&m).and_then(|l| l.reply), Some(1));
    let mut stored = reply("lobby", 2, 1);
    stored.cid = Some("c1".into());
    m.apply(ChatEvent::Msg(stored), 6);
    assert_eq!(line(&m).map(|l| (l.seq, l.reply)), Some((Some(2), Some(1))));
}

#[test]
fn a_quote_shows_the_answered_message_or_says_it_was_deleted_or_is_not_loaded() {
    let mut m = welcomed();
    m.apply(ChatEvent::Msg(reply("lobby", 2, 1)), 0);
    m.apply(ChatEvent::Msg(reply("lobby", 3, 99)), 0);
    let room = |m: &Model| m.room("lobby").cloned().unwrap_or_default();
    assert_eq!(
        room(&m).quote(1),
        Quote::Loaded {
            from: "bob".into(),
            excerpt: "t1".into()
        }
    );
    assert_eq!(room(&m).quote(99), Quote::Unknown);
    assert_eq!(room(&m).quote(99).words(), "an earlier message");
    let mut delete = Msg::new(
        "lobby".into(),
        "e".into(),
        4,
        "bob".into(),
        String::new(),
        2,
    );
    delete.kind = Some(Change::Delete);
    delete.of = Some(1);
    m.apply(ChatEvent::Msg(delete), 0);
    assert_eq!(room(&m).quote(1), Quote::Deleted);
    assert_eq!(room(&m).quote(1).words(), "a deleted message");
    assert_eq!(
        room(&m)
            .lines
            .iter()
            .filter_map(|l| l.reply)
            .collect::<Vec<_>>(),
        [1, 99],
        "replies come with their messages"
    );
}

#[test]
fn a_reply_to_a_message_in_older_history_finds_it_once_loaded() {
    let mut m = welcomed();
    m.apply(
        ChatEvent::Joined(state("ops", vec![reply("ops", 300, 12)], false)),
        0,
    );
    assert!(!m.room("ops").is_some_and(|r| r.has(12)));
    let older: Vec<Msg> = (1..=200).map(|s| msg("ops", s, "ann", None)).collect();
    if let Some(r) = m.room_mut("ops") {
        r.prepend(&older);
    }
    let ops = m.room("ops").cloned().unwrap_or_default();
    assert!(ops.has(12));
    assert_eq!(ops.quote(12).words(), "ann: t12");
}

#[test]
fn excerpts_are_one_line_and_cut_with_an_ellipsis() {
    assert_eq!(excerpt("  a\n\n b\tc  "), "a b c");
    let long = "word ".repeat(40);
    let cut = excerpt(&long);
    assert_eq!(cut.chars().count(), EXCERPT_CHARS);
    assert!(cut.ends_with("word…"));
    assert!(!cut.contains("  "));
    let exact = "é".repeat(EXCERPT_CHARS);
    assert_eq!(excerpt(&exact), exact, "not cut at the limit");
}

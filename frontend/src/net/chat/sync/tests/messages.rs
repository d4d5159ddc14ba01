//! Which messages reach the app: the resume list `hello` sends, what a
//! welcome or a join answer does to the cursors, and messages held back
//! while a room syncs.

use super::*;

#[test]
fn hello_resumes_every_room_at_its_cursor_and_the_welcome_replaces_them() {
    let mut s = welcomed();
    assert_eq!(s.accept(msg("lobby", "e", 4)).map(|m| m.seq), Some(4));
    s.join_started("rust");
    s.join_ended("rust", Some(&state("rust", "r", 10, false)));
    assert_eq!(
        s.hello(),
        Hello {
            v: 1,
            nick: Some("ann-2".into()),
            session: Some("s2".into()),
            resume: Some(vec![cursor("lobby", "e", 4), cursor("rust", "r", 10)]),
        }
    );
    // The session is in exactly the welcome's rooms, at the seq it reports
    // (recovered or not: a new epoch replaces the cursor).
    s.welcomed(&Welcome {
        session: "s3".into(),
        nick: "ann".into(),
        rooms: vec![state("rust", "r2", 1, false)],
    });
    assert_eq!(s.rooms(), ["rust"]);
    assert_eq!(s.session().as_deref(), Some("s3"));
    assert_eq!(s.nick().as_deref(), Some("ann"));
    assert_eq!(
        s.hello().resume,
        Some(vec![cursor("rust", "r2", 1)]),
        "lobby is gone from the resume list"
    );
}

#[test]
fn messages_during_hello_are_held_and_only_new_ones_follow_the_welcome() {
    let mut s = welcomed();
    s.connection_changed(false);
    s.connection_changed(true);
    s.hello();
    for seq in [3, 4, 5] {
        assert_eq!(s.accept(msg("lobby", "e", seq)), None, "held while syncing");
    }
    // The welcome's replay already covered up to 4.
    let fresh = s.welcomed(&welcome(vec![state("lobby", "e", 4, true)]));
    assert_eq!(seqs(&fresh), [5]);
    assert_eq!(s.accept(msg("lobby", "e", 5)), None, "seen once");
}

#[test]
fn the_cursor_moves_to_any_later_seq_and_never_back() {
    let mut s = welcomed();
    assert_eq!(s.accept(msg("lobby", "e", 3)), None, "at the cursor");
    assert_eq!(s.accept(msg("lobby", "e", 2)), None, "below it");
    // A jump is passed on (the server orders; the client only dedups).
    assert_eq!(s.accept(msg("lobby", "e", 6)).map(|m| m.seq), Some(6));
    assert_eq!(s.accept(msg("lobby", "e", 5)), None, "older than 6 now");
    assert_eq!(s.accept(msg("lobby", "e", 7)).map(|m| m.seq), Some(7));
    assert_eq!(s.hello().resume, Some(vec![cursor("lobby", "e", 7)]));
}

#[test]
fn another_epoch_is_new_whatever_its_seq_and_becomes_the_cursor() {
    let mut s = welcomed();
    assert_eq!(
        s.accept(msg("lobby", "f", 1)).map(|m| m.epoch),
        Some("f".into())
    );
    assert_eq!(s.accept(msg("lobby", "f", 1)), None);
    assert_eq!(s.hello().resume, Some(vec![cursor("lobby", "f", 1)]));
}

#[test]
fn messages_of_rooms_this_client_is_not_in_are_dropped() {
    let mut s = welcomed();
    assert_eq!(s.accept(msg("elsewhere", "e", 1)), None);
    s.left("lobby");
    assert_eq!(s.accept(msg("lobby", "e", 9)), None, "left");
    assert!(s.rooms().is_empty());
    assert_eq!(s.hello().resume, Some(Vec::new()));
}

#[test]
fn a_join_holds_its_room_and_releases_what_its_state_did_not_cover() {
    let mut s = welcomed();
    assert_eq!(s.join_started("rust"), None, "not in it before");
    assert_eq!(s.accept(msg("rust", "r", 2)), None, "held");
    assert_eq!(s.accept(msg("rust", "r", 3)), None, "held");
    // Other rooms flow meanwhile.
    assert_eq!(s.accept(msg("lobby", "e", 4)).map(|m| m.seq), Some(4));
    let fresh = s.join_ended("rust", Some(&state("rust", "r", 2, false)));
    assert_eq!(seqs(&fresh), [3]);
    assert_eq!(fresh[0].room, "rust");
    // Joining again recovers from the cursor.
    assert_eq!(s.join_started("rust"), Some(cursor("rust", "r", 3)));
}

#[test]
fn a_join_answered_under_the_servers_name_ends_both_and_keys_the_cursor_by_it() {
    let mut s = welcomed();
    s.join_started("rust");
    s.join_started("Rust");
    assert_eq!(s.accept(msg("rust", "r", 1)), None, "held");
    // The server knows both as `rust`: the first answer ends both joins.
    let fresh = s.join_ended("Rust", Some(&state("rust", "r", 0, false)));
    assert_eq!(fresh, [msg("rust", "r", 1)]);
    assert_eq!(s.rooms(), ["lobby", "rust"]);
    assert_eq!(s.accept(msg("rust", "r", 2)).map(|m| m.seq), Some(2));
}

#[test]
fn a_failed_join_drops_its_held_messages_and_keeps_other_joins_held() {
    let mut s = welcomed();
    s.join_started("a");
    s.join_started("b");
    s.accept(msg("a", "x", 1));
    s.accept(msg("b", "y", 1));
    assert!(s.join_ended("a", None).is_empty(), "not in `a`");
    assert_eq!(s.rooms(), ["lobby"]);
    let fresh = s.join_ended("b", Some(&state("b", "y", 0, false)));
    assert_eq!(fresh, [msg("b", "y", 1)], "still held until b's answer");
}

#[test]
fn a_join_that_ends_during_hello_leaves_its_messages_to_the_welcome() {
    let mut s = welcomed();
    s.join_started("rust");
    s.accept(msg("rust", "r", 5));
    s.connection_changed(true);
    s.hello();
    assert!(
        s.join_ended("rust", Some(&state("rust", "r", 4, false)))
            .is_empty()
    );
    let fresh = s.welcomed(&welcome(vec![
        state("lobby", "e", 3, true),
        state("rust", "r", 4, true),
    ]));
    assert_eq!(fresh, [msg("rust", "r", 5)]);
}

#[test]
fn an_edit_or_deletion_is_an_entry_like_a_message_for_the_cursor() {
    let mut s = welcomed();
    let mut edit = msg("lobby", "e", 4);
    edit.kind = Some(shared::chat::Change::Edit);
    edit.of = Some(2);
    assert_eq!(s.accept(edit.clone()), Some(edit.clone()));
    assert_eq!(s.accept(edit), None, "seen once");
    assert_eq!(s.hello().resume, Some(vec![cursor("lobby", "e", 4)]));
}

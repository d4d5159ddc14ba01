//! The queue of `say`s: nothing goes before the welcome, each goes once
//! in order, and each answer settles it (stored, refused, again later
//! with the same `cid`, or after the next `hello`).

use super::*;

#[test]
fn says_wait_for_hello_then_go_once_each_in_order() {
    let mut s = SyncState::new(None, None, "abc".into());
    assert_eq!(s.say("lobby", "one", None), "abc-1");
    assert_eq!(s.say("rust", "two", None), "abc-2");
    assert!(s.take_unsent().is_empty(), "no hello yet");
    s.connection_changed(true);
    s.hello();
    assert!(s.take_unsent().is_empty(), "hello not answered yet");
    s.welcomed(&welcome(Vec::new()));
    let sent = s.take_unsent();
    assert_eq!(
        sent,
        [
            Say {
                room: "lobby".into(),
                text: "one".into(),
                cid: "abc-1".into(),
                reply: None,
            },
            Say {
                room: "rust".into(),
                text: "two".into(),
                cid: "abc-2".into(),
                reply: None,
            },
        ]
    );
    assert!(s.take_unsent().is_empty(), "both on their way");
    assert_eq!(s.queued(), 2, "until answered");
}

#[test]
fn a_stored_say_leaves_the_queue_and_a_refused_one_fails() {
    let mut s = welcomed();
    let a = s.say("lobby", "a", None);
    let b = s.say("lobby", "b", None);
    s.take_unsent();
    let said = Said { seq: 4, ts: 9 };
    assert_eq!(s.settle(&a, Ok(said)), Settled::Done(Ok(said)));
    let refused = ErrorBody::new(ErrorCode::TooLong, "too long");
    assert_eq!(
        s.settle(&b, Err(ChatError::Server(refused.clone()))),
        Settled::Done(Err(refused))
    );
    assert_eq!(s.queued(), 0);
}

#[test]
fn no_answer_or_a_bad_one_fails_as_unavailable() {
    let mut s = welcomed();
    let a = s.say("lobby", "a", None);
    let b = s.say("lobby", "b", None);
    s.take_unsent();
    assert_eq!(
        s.settle(&a, Err(ChatError::Call(CallError::TimedOut))),
        Settled::Done(Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "no answer in time"
        )))
    );
    assert_eq!(
        s.settle(&b, Err(ChatError::BadAnswer)),
        Settled::Done(Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "the server's answer was not understood"
        )))
    );
    assert!(s.pending().is_empty());
}

#[test]
fn unavailable_keeps_the_say_queued_and_sends_it_again_with_its_cid() {
    let mut s = welcomed();
    let cid = s.say("lobby", "hi", None);
    s.take_unsent();
    assert_eq!(
        s.settle(&cid, Err(server(ErrorCode::Unavailable, "busy"))),
        Settled::Later
    );
    assert_eq!(s.pending(), [say("lobby", "hi", &cid, None)]);
    let again = s.take_unsent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].cid, cid);
}

#[test]
fn a_lost_connection_resends_the_queue_after_the_next_hello_with_the_same_cids() {
    let mut s = welcomed();
    let a = s.say("lobby", "a", None);
    s.take_unsent();
    assert_eq!(
        s.settle(&a, Err(ChatError::Call(CallError::Disconnected))),
        Settled::AfterHello
    );
    let b = s.say("lobby", "b", None);
    s.take_unsent();
    s.connection_changed(false);
    assert!(s.take_unsent().is_empty(), "offline");
    s.connection_changed(true);
    s.hello();
    assert!(s.take_unsent().is_empty(), "before the welcome");
    s.welcomed(&welcome(vec![state("lobby", "e", 3, true)]));
    let cids: Vec<String> = s.take_unsent().into_iter().map(|q| q.cid).collect();
    assert_eq!(cids, [a, b]);
}

#[test]
fn a_retry_keeps_its_cid_and_is_queued_once() {
    let mut s = welcomed();
    assert!(s.requeue(say("lobby", "again", "old-7", Some(3))));
    assert!(
        !s.requeue(say("lobby", "again", "old-7", Some(3))),
        "already queued"
    );
    assert_eq!(s.pending(), [say("lobby", "again", "old-7", Some(3))]);
    let sent = s.take_unsent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].cid, "old-7");
    assert_eq!(sent[0].reply, Some(3), "the reply goes with it");
    // New messages keep their own numbering.
    assert_eq!(s.say("lobby", "new", None), "p-1");
}

#[test]
fn a_new_connection_needs_a_new_hello() {
    let mut s = welcomed();
    assert!(s.ready());
    s.connection_changed(true);
    assert!(!s.ready());
    s.say("lobby", "x", None);
    assert!(s.take_unsent().is_empty());
}

#[test]
fn edits_and_deletions_take_cids_that_no_say_shares_and_queue_nothing() {
    let mut s = welcomed();
    assert_eq!(s.say("lobby", "one", None), "p-1");
    assert_eq!(s.next_cid(), "p-2");
    assert_eq!(s.say("lobby", "two", None), "p-3");
    assert_eq!(s.queued(), 2, "only the says wait in the queue");
}

#[test]
fn a_reply_keeps_what_it_answers_while_queued_and_when_sent() {
    let mut s = SyncState::new(None, None, "r".into());
    let cid = s.say("lobby", "answer!", Some(7));
    assert_eq!(s.pending(), [say("lobby", "answer!", &cid, Some(7))]);
    s.connection_changed(true);
    s.hello();
    s.welcomed(&welcome(Vec::new()));
    assert_eq!(s.take_unsent(), [say("lobby", "answer!", &cid, Some(7))]);
}

#[test]
fn an_outbox_list_reads_with_or_without_its_reply() {
    // The app keeps `[room, text, cid, reply]`; before replies, `[room,
    // text, cid]`.
    let kept: Vec<Say> = serde_json::from_str(
        r#"[["lobby","hi","c-1"],["lobby","yes","c-2",4],["ops","no","c-3",null]]"#,
    )
    .expect("an outbox");
    assert_eq!(
        kept,
        [
            say("lobby", "hi", "c-1", None),
            say("lobby", "yes", "c-2", Some(4)),
            say("ops", "no", "c-3", None),
        ]
    );
}

fn say(room: &str, text: &str, cid: &str, reply: Option<u64>) -> Say {
    Say {
        room: room.into(),
        text: text.into(),
        cid: cid.into(),
        reply,
    }
}

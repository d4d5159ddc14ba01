//! What a failed `hello` leads to, and the nickname and session the next
//! one asks for.

use super::*;

#[test]
fn a_refused_stored_nickname_is_dropped_and_hello_goes_again_at_once() {
    let mut s = SyncState::new(Some("x".repeat(99)), None, "p".into());
    s.connection_changed(true);
    s.hello();
    let refused = server(ErrorCode::TooLong, "nickname too long");
    assert_eq!(
        s.hello_failed(&refused),
        HelloFailed {
            tell: Some("nickname too long".into()),
            again: Again::Now
        }
    );
    assert_eq!(s.hello().nick, None);
    // Refused again with no nickname to drop: stop.
    let bad = server(ErrorCode::BadRequest, "bad hello");
    assert_eq!(s.hello_failed(&bad).again, Again::Never);
}

#[test]
fn an_unavailable_server_gets_hello_again_on_the_same_connection_only() {
    let mut s = SyncState::new(None, None, "p".into());
    s.connection_changed(true);
    s.connection_changed(false);
    s.connection_changed(true);
    s.hello();
    let failed = s.hello_failed(&server(ErrorCode::Unavailable, "later"));
    assert_eq!(
        failed,
        HelloFailed {
            tell: Some("later".into()),
            again: Again::Later { connection: 2 }
        }
    );
    assert!(s.still_waiting(2));
    s.connection_changed(false);
    s.connection_changed(true);
    assert!(!s.still_waiting(2), "a newer connection says its own hello");
    assert!(s.still_waiting(3));
    s.hello();
    s.welcomed(&welcome(Vec::new()));
    assert!(!s.still_waiting(3), "welcomed already");
}

#[test]
fn a_lost_connection_fails_hello_silently_and_other_errors_are_told() {
    let mut s = welcomed();
    assert_eq!(
        s.hello_failed(&ChatError::Call(CallError::TimedOut)),
        HelloFailed {
            tell: None,
            again: Again::Never
        }
    );
    assert_eq!(
        s.hello_failed(&server(ErrorCode::Internal, "boom")),
        HelloFailed {
            tell: Some("boom".into()),
            again: Again::Never
        }
    );
    assert_eq!(s.nick().as_deref(), Some("ann-2"), "kept");
}

#[test]
fn adopt_replaces_only_what_it_is_given() {
    let mut s = SyncState::new(Some("ann".into()), Some("s1".into()), "p".into());
    s.adopt(None, Some("s9".into()));
    assert_eq!(
        (s.nick(), s.session()),
        (Some("ann".into()), Some("s9".into()))
    );
    s.adopt(Some("bo".into()), None);
    let hello = s.hello();
    assert_eq!(
        (hello.nick, hello.session),
        (Some("bo".into()), Some("s9".into()))
    );
}

#[test]
fn a_nickname_chosen_while_hello_is_on_its_way_is_asked_for_after_it() {
    // Chosen before the hello: the hello carries it; nothing to ask after.
    let mut s = SyncState::new(None, None, "p".into());
    s.connection_changed(true);
    s.set_nick("bob".into());
    assert_eq!(s.hello().nick.as_deref(), Some("bob"));
    assert_eq!(s.unasked_nick("bob"), None);
    // Chosen while a hello without it is on its way: the welcome's name
    // ("ann-2") is not the chosen one, which is asked for after.
    let mut s = SyncState::new(None, None, "p".into());
    s.connection_changed(true);
    assert_eq!(s.hello().nick, None);
    s.set_nick("bob".into());
    assert_eq!(s.unasked_nick("ann-2").as_deref(), Some("bob"));
    s.welcomed(&welcome(Vec::new()));
    assert_eq!(s.unasked_nick("ann-2"), None, "asked once");
    // Granted anyway (the same name): nothing to ask.
    let mut s = SyncState::new(None, None, "p".into());
    s.connection_changed(true);
    s.hello();
    s.set_nick("ann-2".into());
    assert_eq!(s.unasked_nick("ann-2"), None);
}

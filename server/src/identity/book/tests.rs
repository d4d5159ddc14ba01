use super::*;

#[test]
fn taken_nicks_get_a_suffix_and_look_alikes_do_not_matter() {
    let d = Book::default();
    assert_eq!(d.claim_free("ann", 1, None), "ann");
    assert_eq!(d.claim_free("Ann", 2, None), "Ann-2");
    assert_eq!(d.claim_free("аnn", 3, None), "аnn-3", "Cyrillic а");
    assert_eq!(d.claim_free("ann", 1, None), "ann", "the holder keeps it");
    assert!(!d.claim_exact("ANN", 2, None));
    d.release("ann", 1);
    assert!(d.claim_exact("ANN", 2, None));
}

#[test]
fn suffixed_nicks_stay_within_the_limit() {
    let d = Book::default();
    let long = "x".repeat(32);
    d.claim_free(&long, 1, None);
    let second = d.claim_free(&long, 2, None);
    assert_eq!(second.chars().count(), 32);
    assert!(second.ends_with("-2"));
}

#[test]
fn a_session_keeps_its_nick_while_disconnected_until_it_expires() {
    let d = Book::default();
    let s = token_hash("token");
    d.open_session(&s, 1, Kill::default());
    assert_eq!(d.claim_free("alice", 1, Some(&s)), "alice");
    d.close_session(&s, 1, "alice", Vec::new());
    d.detach("alice", 1);
    assert_eq!(d.claim_free("alice", 2, None), "alice-2", "still hers");
    assert!(!d.claim_exact("alice", 2, None));
    // She comes back on another connection: it is hers again.
    d.open_session(&s, 3, Kill::default());
    assert_eq!(d.claim_free("alice", 3, Some(&s)), "alice");
    d.close_session(&s, 3, "alice", Vec::new());
    d.detach("alice", 3);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(d.sweep(Duration::from_millis(10)), 1);
    assert!(
        d.claim_exact("alice", 2, None),
        "free once the session expired"
    );
    // A connection without a session holds its nick only while live.
    assert_eq!(d.claim_free("guest", 4, None), "guest");
    d.detach("guest", 4);
    assert!(d.claim_exact("guest", 5, None));
}

#[test]
fn stored_sessions_hold_their_nicks_until_their_time_is_up() {
    let d = Book::default();
    d.hold("bob", "h1", Instant::now() + Duration::from_secs(60));
    d.hold("carol", "h2", Instant::now());
    assert!(!d.claim_exact("bob", 1, None));
    assert!(d.claim_exact("bob", 2, Some("h1")), "its own session");
    d.sweep(Duration::from_secs(60));
    assert!(d.claim_exact("carol", 3, None), "expired");
}

#[test]
fn sessions_resume_and_report_takeover() {
    let d = Book::default();
    let first = Kill::default();
    let s = token_hash(&new_token());
    assert_eq!(s.len(), 32);
    let (before, prev) = d.open_session(&s, 1, first.clone());
    assert!(before.is_none() && prev.is_none());
    d.update_session(&s, 1, "ann", vec!["a".into()]);
    let (before, prev) = d.open_session(&s, 2, Kill::default());
    assert_eq!(before.map(|r| r.rooms), Some(vec!["a".to_string()]));
    prev.expect("the first connection is handed back")
        .close(shared::close::POLICY, "taken over");
    assert!(first.is_fired());
    assert!(d.knows(&s));
    assert!(!d.knows(&token_hash("nonsense")));
}

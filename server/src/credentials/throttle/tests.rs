use super::*;

fn rules() -> Rules {
    Rules {
        free: 3,
        every: Duration::from_secs(5),
        forget_after: Duration::from_secs(60),
        max_keys: 4,
    }
}

#[test]
fn three_failures_are_free_then_one_try_every_five_seconds() {
    let t = Throttle::new(rules());
    let at = Instant::now();
    for i in 0..3 {
        assert_eq!(t.check("alice", at), Verdict::Go, "failure {i} is free");
        t.failed("alice", at);
    }
    assert_eq!(t.check("alice", at), Verdict::Wait(Duration::from_secs(5)));
    let later = at + Duration::from_secs(2);
    assert_eq!(
        t.check("alice", later),
        Verdict::Wait(Duration::from_secs(3))
    );
    let open = at + Duration::from_secs(5);
    assert_eq!(t.check("alice", open), Verdict::Go);
    // Another failure: another wait, from that failure.
    t.failed("alice", open);
    assert_eq!(
        t.check("alice", open + Duration::from_secs(1)),
        Verdict::Wait(Duration::from_secs(4))
    );
    // Other keys are not slowed.
    assert_eq!(t.check("bob", open), Verdict::Go);
}

#[test]
fn a_success_clears_and_quiet_keys_are_forgotten() {
    let t = Throttle::new(rules());
    let at = Instant::now();
    for _ in 0..3 {
        t.failed("alice", at);
        t.failed("10.0.0.1", at);
    }
    t.succeeded("alice");
    assert_eq!(t.check("alice", at), Verdict::Go);
    assert!(matches!(t.check("10.0.0.1", at), Verdict::Wait(_)));
    // A minute later the address starts afresh.
    let quiet = at + Duration::from_secs(60);
    assert_eq!(t.check("10.0.0.1", quiet), Verdict::Go);
    t.failed("10.0.0.1", quiet);
    assert_eq!(
        t.check("10.0.0.1", quiet),
        Verdict::Go,
        "one failure, not four"
    );
}

#[test]
fn held_keys_are_bounded() {
    let t = Throttle::new(rules());
    let at = Instant::now();
    for _ in 0..3 {
        t.failed("target", at);
    }
    assert!(matches!(t.check("target", at), Verdict::Wait(_)));
    for i in 0..100u64 {
        t.failed(&format!("made-up-{i}"), at + Duration::from_millis(i + 1));
        assert!(t.len() <= 4, "{} keys after {i}", t.len());
    }
    // The flood pushed the oldest out: the target's wait got shorter,
    // never longer.
    assert_eq!(t.check("target", at), Verdict::Go);
}

use super::*;

#[test]
fn the_rules_refuse_short_long_common_and_username_passwords() {
    assert_eq!(check("short1!", "alice"), Err(Weak::TooShort));
    assert_eq!(
        check(&"x".repeat(MAX_BYTES + 1), "alice"),
        Err(Weak::TooLong)
    );
    // On the shipped list, whatever the case.
    assert_eq!(check("password", "alice"), Err(Weak::Common));
    assert_eq!(check("PassWord1", "alice"), Err(Weak::Common));
    assert_eq!(check("iloveyou2", "alice"), Err(Weak::Common));
    assert_eq!(check("Alice123", "alice"), Err(Weak::Username));
    assert_eq!(check("xalice12", "alice"), Err(Weak::Username));
    assert_eq!(check("bob12345", "bob"), Err(Weak::Username));
    // The name inside a longer phrase is not the name.
    assert_eq!(check("alice drinks tea", "alice"), Ok(()));
    // Eight characters, none of the above.
    assert_eq!(check("tq7-vexa", "alice"), Ok(()));
    assert_eq!(check("correct horse battery staple", "alice"), Ok(()));
    // Characters are counted, not bytes: eight of them is enough.
    assert_eq!(check("ñandú-92", "alice"), Ok(()));
}

#[test]
fn the_list_is_the_shipped_one() {
    let list = common();
    assert!(list.len() > 17_000, "{} entries", list.len());
    assert!(list.iter().all(|p| p.chars().count() >= MIN_CHARS));
    assert!(!list.iter().any(|p| p.starts_with('#')));
}

#[tokio::test]
async fn a_hash_is_argon2id_with_owasp_parameters_and_verifies() {
    let hasher = Hasher::new(2);
    let hash = hasher.hash("tq7-vexa").await.expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(
        hasher
            .verify("tq7-vexa", Some(&hash))
            .await
            .expect("verify")
    );
    assert!(
        !hasher
            .verify("tq7-vexb", Some(&hash))
            .await
            .expect("verify")
    );
    // A fresh salt each time.
    let again = hasher.hash("tq7-vexa").await.expect("hash");
    assert_ne!(hash, again);
    assert!(
        hasher
            .verify("tq7-vexa", Some(&again))
            .await
            .expect("verify")
    );
}

#[tokio::test]
async fn an_unknown_name_is_refused_after_the_same_work() {
    let hasher = Hasher::new(1);
    assert!(!hasher.verify("tq7-vexa", None).await.expect("verify"));
    // The dummy is a real argon2id hash, so the work done is the same.
    assert!(dummy().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(matches!(
        hasher.verify("x", Some("not a hash")).await,
        Err(Error::Stored(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_bound_run_at_once() {
    let hasher = Arc::new(Hasher::new(2));
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&format!("pass-{i}-word")).await })
        })
        .collect();
    for run in runs {
        run.await.expect("task").expect("hash");
    }
    assert!(
        hasher.peak() >= 1 && hasher.peak() <= 2,
        "peak {}",
        hasher.peak()
    );
    let one = Arc::new(Hasher::new(1));
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let one = one.clone();
            tokio::spawn(async move { one.verify(&format!("w{i}"), None).await })
        })
        .collect();
    for run in runs {
        assert!(!run.await.expect("task").expect("verify"));
    }
    assert_eq!(one.peak(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_a_hash_is_refused_at_once_and_the_queue_drains() {
    // One runs, two wait: of ten asked at once, the rest are refused.
    let hasher = Arc::new(Hasher::bounded(1, 2));
    let runs: Vec<_> = (0..10)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.verify(&format!("w{i}"), None).await })
        })
        .collect();
    let mut done = 0;
    let mut busy = 0;
    for run in runs {
        match run.await.expect("task") {
            Ok(false) => done += 1,
            Err(Error::Busy) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((1..=3).contains(&done), "{done} ran");
    assert_eq!(done + busy, 10);
    assert!(busy >= 7, "{busy} refused");
    // Nobody is left counted as waiting: the next ones run.
    for _ in 0..3 {
        assert!(!hasher.verify("again", None).await.expect("runs"));
    }
    // A waiter whose request goes away gives its place back.
    let slow = Arc::new(Hasher::bounded(1, 1));
    let first = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.hash("first-pass").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let waiting = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.hash("second-pass").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    waiting.abort();
    let _ = waiting.await;
    first.await.expect("task").expect("hash");
    assert!(
        slow.hash("third-pass").await.is_ok(),
        "the dropped waiter was counted out"
    );
}

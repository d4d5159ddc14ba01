//! Names: nobody passes for somebody else, texts cannot disguise
//! themselves, and what is stored cannot be used to resume a session.

use super::*;
use serde_json::json;
use shared::chat::{ErrorCode, Msg, Nick, RoomState, Welcome};

/// Look-alikes of `alice` (each must be refused or come out as another,
/// visibly different name).
const LOOK_ALIKES: [&str; 20] = [
    "аlice",          // Cyrillic а
    "alіce",          // Ukrainian і
    "аlісе",          // Cyrillic а, і, с, е
    "ａｌｉｃｅ",     // fullwidth
    "alice\u{200d}",  // zero-width joiner
    "al\u{200b}ice",  // zero-width space
    "\u{202e}ecila",  // right-to-left override
    "alice\u{2066}",  // isolate
    "\u{feff}alice",  // byte order mark
    "alice\u{00ad}",  // soft hyphen
    "ALICE",          // case
    "Alice",          // case
    "aIice",          // capital I for l
    "a1ice",          // digit one for l
    "alic\u{0435}",   // Cyrillic е
    "ɑlice",          // Latin alpha
    "alice\u{180e}",  // Mongolian vowel separator
    "alice\u{e0041}", // tag character
    "\u{3164}alice",  // Hangul filler
    "\u{2800}",       // braille blank: invisible only
];

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn look_alikes_of_a_connected_nick_are_refused_or_suffixed() {
    const T: &str = "look-alikes";
    let server = Server::start(&["--in-memory", "--sessions-per-ip-per-minute", "0"]);
    let mut alice = server.client().await;
    assert_eq!(hello(&mut alice, "alice").await.nick, "alice");
    let mut passed = Vec::new();
    let mut outcome = std::collections::BTreeMap::new();
    for raw in LOOK_ALIKES {
        let mut c = server.client().await;
        let welcome: Result<Welcome, _> = c.rich("hello", &json!({"v": 1, "nick": raw})).await;
        let what = match welcome {
            Err(_) => "refused",
            Ok(w)
                if w.nick.rsplit_once('-').is_some_and(|(base, n)| {
                    crate::names_key(base) == crate::names_key("alice")
                        && n.chars().all(|c| c.is_ascii_digit())
                }) =>
            {
                "suffixed"
            }
            Ok(w) => {
                passed.push((raw, w.nick));
                "accepted as is"
            }
        };
        *outcome.entry(what).or_insert(0) += 1;
        // A rename to it is refused too.
        let mut other = server.client().await;
        hello(&mut other, "someone").await;
        let renamed = other.rich::<Nick>("nick", &json!({"nick": raw})).await;
        assert!(renamed.is_err(), "rename to {raw:?} accepted: {renamed:?}");
    }
    report(
        T,
        format!("20 look-alikes of a connected 'alice': {outcome:?}"),
    );
    assert!(passed.is_empty(), "passed for alice: {passed:?}");
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_nick_stays_its_sessions_after_a_disconnect() {
    const T: &str = "nick-held";
    let server = Server::start(&["--in-memory", "--sessions-per-ip-per-minute", "0"]);
    let mut victim = server.client().await;
    let w = hello(&mut victim, "victim").await;
    victim.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut thief = server.client().await;
    let got = hello(&mut thief, "victim").await.nick;
    let renamed = thief.rich::<Nick>("nick", &json!({"nick": "victim"})).await;
    let mut back = server.client().await;
    let again: Welcome = back
        .rich("hello", &json!({"v": 1, "session": w.session}))
        .await
        .expect("resume");
    report(
        T,
        format!(
            "after 'victim' disconnected: a newcomer got {got:?}, a rename got {:?}; the owner came back as {:?}",
            renamed.as_ref().map_err(|e| e.code),
            again.nick
        ),
    );
    assert_eq!(got, "victim-2");
    assert_eq!(renamed.map_err(|e| e.code), Err(ErrorCode::NickTaken));
    assert_eq!(again.nick, "victim");
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn texts_lose_bidi_overrides_nul_and_terminal_escapes() {
    const T: &str = "texts";
    let server = Server::start(&["--in-memory"]);
    let mut a = server.client().await;
    hello(&mut a, "writer").await;
    let _: RoomState = a.rich("join", &json!({"room": "t"})).await.expect("join");
    let raw = "pay \u{202e}txt.exe\u{202c} now\0\u{1b}[2J\u{1b}]0;pwned\u{7}\nline two\tok";
    let _ = a
        .rich::<shared::chat::Said>("say", &json!({"room": "t", "text": raw, "cid": "x"}))
        .await
        .expect("say");
    let m: Msg = a.next_msg("t").await;
    report(
        T,
        format!("sent {raw:?}, stored and delivered {:?}", m.text),
    );
    assert_eq!(m.text, "pay txt.exe now[2J]0;pwned\nline two\tok");
    // A broadcast from the original demo is cleaned the same way.
    let mut seed = server.client().await;
    seed.notify("broadcast", "hi\u{202e}\0there".as_bytes().to_vec())
        .await;
    assert_eq!(&seed.event("message").await[..], b"hithere");
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn stored_sessions_expire_hold_only_token_hashes_and_are_private() {
    const T: &str = "sessions";
    let data = data_dir(T);
    let dir = data.to_str().expect("path").to_owned();
    let server = Server::start(&["--data-dir", &dir, "--session-ttl-secs", "2"]);
    let mut c = server.client().await;
    let w = hello(&mut c, "keeper").await;
    let _: RoomState = c.rich("join", &json!({"room": "k"})).await.expect("join");
    let _ = c
        .rich::<shared::chat::Said>("say", &json!({"room": "k", "text": "hi", "cid": "c1"}))
        .await
        .expect("say");
    c.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nothing on disk holds the token.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        let found = bytes
            .windows(w.session.len())
            .any(|win| win == w.session.as_bytes());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        files.push((
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            format!("{mode:o}"),
            found,
        ));
        assert!(!found, "{} holds the session token", path.display());
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(&data).expect("meta").permissions().mode() & 0o777;
    report(
        T,
        format!("data dir {dir_mode:o}; files (name, mode, holds the token): {files:?}"),
    );
    assert_eq!(dir_mode, 0o700);
    // A restart, then a resume after the 2 s TTL: the session is gone.
    let server = server.restart_with(&["--data-dir", &dir, "--session-ttl-secs", "2"]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut late = server.client().await;
    let again: Welcome = late
        .rich("hello", &json!({"v": 1, "session": w.session}))
        .await
        .expect("hello");
    report(
        T,
        format!(
            "resumed 2.5 s after a 2 s TTL (across a restart): new session {}, nick {:?}",
            again.session != w.session,
            again.nick
        ),
    );
    assert_ne!(
        again.session, w.session,
        "an expired session does not resume"
    );
    assert_ne!(again.nick, "keeper");
}

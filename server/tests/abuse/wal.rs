//! A damaged write-ahead log never makes a position name two messages:
//! the rooms start a new epoch. And an intact one is never mistaken for
//! damage (a crash or a restart keeps the epoch and every message).

use super::*;
use serde_json::json;
use shared::chat::{Cursor, RoomState, Said};

const N: usize = 60;

/// A server in `dir` with `N` acknowledged messages in room `w`; its
/// epoch. Killed (SIGKILL) afterwards: the log is not checkpointed.
async fn crashed_after_writes(dir: &str) -> (Server, String) {
    let server = Server::start(&["--data-dir", dir, "--rate-limit", "0"]);
    let mut c = server.client().await;
    hello(&mut c, "writer").await;
    let state: RoomState = c.rich("join", &json!({"room": "w"})).await.expect("join");
    fill(&mut c, "w", N, "an acknowledged message", 8).await;
    server.signal("-KILL");
    (server, state.epoch)
}

async fn rejoin(server: &Server, epoch: &str) -> RoomState {
    let mut c = server.client().await;
    hello(&mut c, "reader").await;
    let cursor = Cursor {
        room: "w".into(),
        epoch: epoch.into(),
        seq: N as u64,
    };
    c.rich("join", &json!({"room": "w", "since": cursor}))
        .await
        .expect("join")
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_crash_with_an_intact_log_keeps_the_epoch_and_every_message() {
    const T: &str = "wal-intact";
    let data = data_dir(T);
    let dir = data.to_str().expect("path").to_owned();
    let (crashed, epoch) = crashed_after_writes(&dir).await;
    drop(crashed);
    let server = Server::start(&["--data-dir", &dir]);
    let state = rejoin(&server, &epoch).await;
    report(
        T,
        format!(
            "after SIGKILL: epoch kept {}, seq {} of {N}, recovered {}",
            state.epoch == epoch,
            state.seq,
            state.recovered
        ),
    );
    assert_eq!(state.epoch, epoch);
    assert_eq!(state.seq, N as u64);
    assert!(state.recovered);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_truncated_or_deleted_log_starts_the_rooms_under_a_new_epoch() {
    const T: &str = "wal-damaged";
    for damage in ["truncated", "deleted"] {
        let data = data_dir(T);
        let dir = data.to_str().expect("path").to_owned();
        let (crashed, epoch) = crashed_after_writes(&dir).await;
        drop(crashed);
        let wal = data.join("chat.db-wal");
        let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "the log holds the writes");
        match damage {
            "truncated" => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&wal)
                    .expect("wal");
                f.set_len(len / 2).expect("truncate");
            }
            _ => std::fs::remove_file(&wal).expect("delete"),
        }
        let server = Server::start(&["--data-dir", &dir]);
        let state = rejoin(&server, &epoch).await;
        let mut c = server.client().await;
        hello(&mut c, "next").await;
        let _: RoomState = c.rich("join", &json!({"room": "w"})).await.expect("join");
        let said: Said = c
            .rich(
                "say",
                &json!({"room": "w", "text": "after", "cid": "after"}),
            )
            .await
            .expect("say");
        report(
            T,
            format!(
                "log {damage} ({len} bytes) after {N} acknowledged messages: {} stored, new epoch {}, recovered {}, next message at seq {}",
                state.seq,
                state.epoch != epoch,
                state.recovered,
                said.seq
            ),
        );
        assert!(state.seq < N as u64, "the damage lost messages");
        assert_ne!(
            state.epoch, epoch,
            "positions of the old epoch are never reused"
        );
        assert!(!state.recovered);
    }
}

//! The client's decisions, natively: what `hello` and `join` send, what
//! their answers do to the cursors and to messages held back meanwhile,
//! which messages (and edits and deletions) reach the app, and what
//! becomes of each queued `say`.

mod hello;
mod messages;
mod outbox;

use super::*;

fn msg(room: &str, epoch: &str, seq: u64) -> Msg {
    Msg::new(
        room.into(),
        epoch.into(),
        seq,
        "bob".into(),
        format!("t{seq}"),
        1,
    )
}

fn state(room: &str, epoch: &str, seq: u64, recovered: bool) -> RoomState {
    RoomState {
        room: room.into(),
        epoch: epoch.into(),
        seq,
        members: vec!["ann".into()],
        history: Vec::new(),
        recovered,
        title: None,
        role: None,
    }
}

fn cursor(room: &str, epoch: &str, seq: u64) -> Cursor {
    Cursor {
        room: room.into(),
        epoch: epoch.into(),
        seq,
    }
}

fn welcome(rooms: Vec<RoomState>) -> Welcome {
    Welcome {
        session: "s2".into(),
        nick: "ann-2".into(),
        rooms,
    }
}

/// A client welcomed into `lobby` (epoch `e`, at seq 3).
fn welcomed() -> SyncState {
    let mut s = SyncState::new(Some("ann".into()), Some("s1".into()), "p".into());
    s.connection_changed(true);
    s.hello();
    let fresh = s.welcomed(&welcome(vec![state("lobby", "e", 3, false)]));
    assert!(fresh.is_empty());
    s
}

/// The `seq`s of messages that reached the app.
fn seqs(msgs: &[Msg]) -> Vec<u64> {
    msgs.iter().map(|m| m.seq).collect()
}

fn server(code: ErrorCode, message: &str) -> ChatError {
    ChatError::Server(ErrorBody::new(code, message))
}

//! A flood is slowed where it enters, so members that keep reading are
//! never cut because of it: only a member that makes no progress is.
//!
//! With `--rate-limit 0`, one client sends 20,000 broadcasts of 1 KB as
//! fast as it can; a plain Python `websockets` client reads the lobby the
//! whole time; a third member never reads. The reader must get all
//! 20,000 in order, the sender must be slowed (not cut, and it too gets
//! every message), and only the one that never reads is cut.

use super::*;
use futures_util::{SinkExt, StreamExt};
use std::io::BufRead;
use tokio_tungstenite::tungstenite::Message;

const COUNT: usize = 20_000;

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_flood_slows_its_sender_and_never_cuts_a_member_that_reads() {
    const T: &str = "flood";
    let mut server = Server::start(&["--in-memory", "--rate-limit", "0", "--history", "100"]);
    // The Python reader.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/abuse/reader.py");
    let mut python = std::process::Command::new("python3")
        .arg(script)
        .arg(&server.url)
        .arg(COUNT.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/setup.sh installs the websockets package)");
    let mut lines = std::io::BufReader::new(python.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("ready"),
        "the Python reader connected"
    );
    // The member that never reads.
    let mut stuck = server.client().await;
    stuck.notify("ping", &b"hi"[..]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The sender reads what comes back while it sends.
    let (ws, _) = tokio_tungstenite::connect_async(common::request(&server.url))
        .await
        .expect("sender connects");
    let (mut sink, mut stream) = ws.split();
    let echoed = tokio::spawn(async move {
        let mut got = 0usize;
        let mut ending = None;
        while got < COUNT {
            match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => {
                    if let Ok(shared::Frame::Notify { name, .. }) = shared::Frame::decode(&b)
                        && name == "message"
                    {
                        got += 1;
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    ending = Some(format!("closed {frame:?}"));
                    break;
                }
                Ok(Some(Ok(_))) => {}
                other => {
                    ending = Some(format!("ended: {other:?}"));
                    break;
                }
            }
        }
        (got, ending)
    });
    let padding = "x".repeat(1_000);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..COUNT {
        let frame = shared::Frame::notify(
            common::name("broadcast"),
            format!("{i:05} {padding}").into_bytes(),
        );
        let sent = Instant::now();
        sink.send(Message::Binary(frame.encode()))
            .await
            .expect("the sender is never cut");
        slowest = slowest.max(sent.elapsed());
    }
    let sending = started.elapsed();
    let (echo, ending) = echoed.await.expect("sender's reader");
    let reader_done = tokio::task::spawn_blocking(move || {
        let last = lines.next().and_then(Result::ok);
        let status = python.wait().expect("python exits");
        (last, status)
    })
    .await
    .expect("reader");
    let total = started.elapsed();
    let slow = metric_reaches(
        &server,
        "chat_slow_consumer_disconnects_total",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    let stuck_end = stuck.next_frame_or_end_within(Duration::from_secs(1)).await;
    report(
        T,
        format!(
            "20,000 broadcasts of 1 KB with --rate-limit 0: sent in {sending:.2?} (longest wait for one send {slowest:.2?}); Python reader: {:?} ({}); sender got {echo} back ({ending:?}); all done in {total:.2?}; cut for being too slow: {slow} (the member that never reads: {stuck_end:?})",
            reader_done.0, reader_done.1
        ),
    );
    assert_eq!(
        reader_done.0.as_deref(),
        Some("received 20000"),
        "the reader got every message in order"
    );
    assert!(reader_done.1.success());
    assert_eq!(echo, COUNT, "the sender was slowed, not cut: {ending:?}");
    assert_eq!(slow, 1.0, "only the member that never reads was cut");
    assert!(server.alive());
}

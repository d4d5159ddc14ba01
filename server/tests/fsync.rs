//! Acknowledged means on disk: no `say` is acknowledged, or shown to
//! anyone, before the fsync that covers it.
//!
//! A kill -9 test cannot show this (the page cache outlives a killed
//! process), so this one watches the real binary's system calls with
//! `strace` (Debian's; scripts/setup.sh installs it): for every message it
//! finds the write that put its text into SQLite's write-ahead log, the
//! first `fsync`/`fdatasync` of that log after it, and the first write to
//! a socket that carries the message or its acknowledgement, and requires
//! them in that order. With `synchronous=OFF` (no sync at all) or
//! `NORMAL` (WAL synced only at checkpoints) it fails.

mod common;

use common::{Client, temp_dir};
use serde_json::json;
use shared::chat::Said;
use std::{
    collections::HashMap,
    io::BufRead,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// One system call as strace printed it.
#[derive(Debug)]
struct Call {
    /// Its position in the trace: calls are numbered in the order strace
    /// saw them start (writes) or finish (syncs).
    at: usize,
    /// The file descriptor's annotation (`-y`): a path, or `socket:[…]`.
    fd: String,
    /// The rest of the line: the data written.
    text: String,
}

/// The calls of a trace: writes (where they start) and successful syncs
/// (where they finish).
#[derive(Debug, Default)]
struct Trace {
    writes: Vec<Call>,
    syncs: Vec<Call>,
}

const WRITES: [&str; 7] = [
    "write(",
    "pwrite64(",
    "writev(",
    "pwritev(",
    "pwritev2(",
    "sendto(",
    "sendmsg(",
];
const SYNCS: [&str; 2] = ["fdatasync(", "fsync("];

/// The descriptor's annotation in `name(3</path/file>, …`.
fn annotation(call: &str) -> String {
    call.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(fd, _)| fd.to_owned())
        .unwrap_or_default()
}

/// Parses `strace -f -y` output.
fn parse(trace: &str) -> Trace {
    let mut out = Trace::default();
    // Syncs that strace printed as unfinished, by thread.
    let mut open_syncs: HashMap<String, String> = HashMap::new();
    for (at, line) in trace.lines().enumerate() {
        let Some((pid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if let Some(resumed) = call.strip_prefix("<... ") {
            let is_sync = SYNCS.iter().any(|s| resumed.starts_with(&s[..s.len() - 1]));
            if is_sync
                && let Some(fd) = open_syncs.remove(pid)
                && resumed.trim_end().ends_with("= 0")
            {
                out.syncs.push(Call {
                    at,
                    fd,
                    text: String::new(),
                });
            }
            continue;
        }
        if SYNCS.iter().any(|s| call.starts_with(s)) {
            let fd = annotation(call);
            if call.contains("<unfinished ...>") {
                open_syncs.insert(pid.to_owned(), fd);
            } else if call.trim_end().ends_with("= 0") {
                out.syncs.push(Call {
                    at,
                    fd,
                    text: String::new(),
                });
            }
        } else if WRITES.iter().any(|w| call.starts_with(w)) {
            out.writes.push(Call {
                at,
                fd: annotation(call),
                text: call.to_owned(),
            });
        }
    }
    out
}

fn is_socket(fd: &str) -> bool {
    fd.starts_with("socket:") || fd.starts_with("TCP")
}

/// Checks one message: `text` stored as `seq`. Returns the positions of
/// its log write, the sync that covered it and the first socket write
/// that revealed it.
fn check(trace: &Trace, text: &str, seq: u64) -> (usize, usize, usize) {
    let wal = |fd: &str| fd.ends_with("chat.db-wal");
    let logged = trace
        .writes
        .iter()
        .find(|w| wal(&w.fd) && w.text.contains(text))
        .unwrap_or_else(|| panic!("{text:?} was never written to the write-ahead log"))
        .at;
    let synced = trace
        .syncs
        .iter()
        .find(|s| wal(&s.fd) && s.at > logged)
        .unwrap_or_else(|| {
            panic!("the write-ahead log was never synced after {text:?} was written to it")
        })
        .at;
    // The acknowledgement carries `"seq":N`, the `msg` both; strace shows
    // quotes escaped.
    let seq_field = format!("\\\"seq\\\":{seq},");
    let revealed = trace
        .writes
        .iter()
        .find(|w| is_socket(&w.fd) && (w.text.contains(text) || w.text.contains(&seq_field)))
        .unwrap_or_else(|| panic!("no socket write carried {text:?} or its acknowledgement"))
        .at;
    (logged, synced, revealed)
}

/// The server binary under strace, on a fresh data directory.
struct Traced {
    child: std::process::Child,
    url: String,
    trace: std::path::PathBuf,
}

impl Traced {
    fn start(data: &Path) -> Self {
        let trace = data.join("strace.txt");
        let mut child = Command::new("strace")
            .args(["-f", "-y", "-qq", "-s", "100000"])
            .args([
                "-e",
                "trace=write,pwrite64,writev,pwritev,pwritev2,sendto,sendmsg,fsync,fdatasync",
            ])
            .arg("-o")
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", "127.0.0.1:0", "--rate-limit", "0"])
            .arg("--data-dir")
            .arg(data.join("db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run strace ({e}): scripts/setup.sh installs Debian's strace")
            });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self {
            child,
            url: format!("ws://{addr}/socket"),
            trace,
        }
    }

    /// Stops the server (SIGTERM: it closes the database) and returns the
    /// trace once strace has written all of it.
    fn finish(mut self) -> Trace {
        // The server is strace's child (strace itself would only detach).
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        let server = std::fs::read_to_string(&children).expect("strace's children");
        let server = server.split_whitespace().next().expect("the traced server");
        let ok = Command::new("kill")
            .args(["-TERM", server])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "signal delivered");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "the traced server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        let raw = std::fs::read_to_string(&self.trace).expect("trace");
        parse(&raw)
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn no_say_is_acknowledged_or_shown_before_the_fsync_that_covers_it() {
    let data = temp_dir("fsync");
    let server = Traced::start(&data);

    // One at a time, then three senders with ten each in flight at once
    // (so that commits group several messages).
    let mut stored: Vec<(String, u64)> = Vec::new();
    let mut first = Client::connect(&server.url).await;
    let _: shared::chat::Welcome = first
        .rich("hello", &json!({"v": 1, "nick": "one"}))
        .await
        .expect("hello");
    let _: shared::chat::RoomState = first
        .rich("join", &json!({"room": "disk"}))
        .await
        .expect("join");
    for i in 0..5 {
        let text = format!("probe-alone-{i}-kq7");
        let said: Said = first
            .rich(
                "say",
                &json!({"room": "disk", "text": text, "cid": format!("a{i}")}),
            )
            .await
            .expect("say");
        stored.push((text, said.seq));
    }
    let mut senders = Vec::new();
    for s in 0..3 {
        let url = server.url.clone();
        senders.push(tokio::spawn(async move {
            let mut c = Client::connect(&url).await;
            let _: shared::chat::Welcome = c
                .rich("hello", &json!({"v": 1, "nick": format!("group{s}")}))
                .await
                .expect("hello");
            let _: shared::chat::RoomState = c
                .rich("join", &json!({"room": "disk"}))
                .await
                .expect("join");
            let mut asked = Vec::new();
            for i in 0..10 {
                let text = format!("probe-group-{s}-{i}-kq7");
                let body = json!({"room": "disk", "text": text, "cid": format!("g{i}")});
                let id = c
                    .request("say", serde_json::to_vec(&body).expect("json"))
                    .await;
                asked.push((id, text));
            }
            let mut out = Vec::new();
            for (id, text) in asked {
                let said: Said = shared::chat::parse_envelope(&c.response(id).await)
                    .expect("envelope")
                    .expect("stored");
                out.push((text, said.seq));
            }
            out
        }));
    }
    for sender in senders {
        stored.extend(sender.await.expect("sender"));
    }
    let mut seqs: Vec<u64> = stored.iter().map(|(_, seq)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=35).collect::<Vec<_>>(), "one seq per message");
    drop(first);

    let trace = server.finish();
    let mut syncs_used = std::collections::BTreeSet::new();
    for (text, seq) in &stored {
        let (logged, synced, revealed) = check(&trace, text, *seq);
        assert!(
            revealed > synced,
            "{text:?} (seq {seq}) reached a socket (trace line {revealed}) before the fsync \
             of the log (line {synced}) that covers its write (line {logged})"
        );
        syncs_used.insert(synced);
    }
    eprintln!(
        "[fsync] 35 messages: each written to the log, synced, then revealed; {} distinct \
         syncs covered them (group commit)",
        syncs_used.len()
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_trace_parser_orders_unfinished_syncs_by_their_end() {
    let trace = parse(
        "7 pwrite64(5</d/chat.db-wal>, \"..probe-x..\", 4120, 32) = 4120\n\
         7 fdatasync(5</d/chat.db-wal> <unfinished ...>\n\
         9 write(12<socket:[77]>, \"\\202\\\"seq\\\":1,\", 9) = 9\n\
         7 <... fdatasync resumed>) = 0\n\
         9 writev(12<socket:[77]>, [{iov_base=\"probe-x\"}], 1) = 7\n",
    );
    assert_eq!(trace.syncs.len(), 1);
    assert_eq!(trace.syncs[0].at, 3, "a sync counts where it ends");
    assert_eq!(trace.syncs[0].fd, "/d/chat.db-wal");
    let (logged, synced, revealed) = check(&trace, "probe-x", 1);
    assert_eq!((logged, synced, revealed), (0, 3, 2));
    assert!(revealed < synced, "this trace reveals before the sync");
}

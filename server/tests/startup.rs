//! "A data directory that cannot be opened, or a damaged database, stops
//! start-up with a message naming the file and what to do" (README,
//! "Durability"), with the real binary.
//!
//! Each case starts the server on a data directory that cannot be used and
//! requires that it exits by itself, within [`DEADLINE`], with status 1,
//! before it listens (nothing on standard output, where it announces its
//! address), with a message that names the path at fault, says what is
//! wrong with it and what to do; and that it leaves the file at fault as
//! it was. A server that started anyway would still be running at the
//! deadline: it is then killed and the test fails.
//!
//! Tests run as root in CI, and root ignores permission bits, so "a
//! directory without permission" would start fine there: every case here
//! fails for root too (a path that is a file or runs through one, a
//! `chat.db` that is a directory, bytes that are no database, a database
//! with damaged pages, a damaged record of acknowledged writes, a schema
//! from a newer version).

mod common;

use common::temp_dir;
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// How long a refused start may take (a debug build on a busy machine).
const DEADLINE: Duration = Duration::from_secs(30);

/// What every refusal says about what to do.
fn refusal(dir: &Path) -> String {
    format!(
        "Error: cannot open the history store in {} (use --data-dir to choose another place, or --in-memory)",
        dir.display()
    )
}

struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the server with `--data-dir dir` until it exits by itself, or fails
/// the test (after killing it) if it is still running at the deadline.
fn start(dir: &Path) -> Exit {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("RUST_LOG")
        // anyhow adds a backtrace to the message when these ask for one.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let begun = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if begun.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "the server was still running {DEADLINE:?} after starting on {}: an unusable \
                 data directory must stop start-up\nstdout: {out}\nstderr: {err}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exit {
        code: status.code(),
        stdout: stdout.join().expect("stdout read"),
        stderr: stderr.join().expect("stderr read"),
    }
}

/// Starts on `dir` and requires the refusal, then `cause` as the reason.
fn refused(dir: &Path, cause: &str) {
    let exit = start(dir);
    assert_eq!(
        exit.code,
        Some(1),
        "start-up stops with status 1; stderr: {}",
        exit.stderr
    );
    assert_eq!(exit.stdout, "", "it never listened");
    let expected = format!(
        "{}\n\nCaused by:\n    history store: {cause}\n",
        refusal(dir)
    );
    assert_eq!(
        exit.stderr, expected,
        "the message names the file, what is wrong and what to do"
    );
}

fn chat_db(dir: &Path) -> PathBuf {
    dir.join("chat.db")
}

#[test]
fn a_data_dir_that_is_a_regular_file_stops_start_up() {
    let base = temp_dir("startup-file");
    let dir = base.join("data");
    std::fs::write(&dir, b"not a directory\n").expect("a file");
    refused(
        &dir,
        &format!("cannot create {}: File exists (os error 17)", dir.display()),
    );
    assert_eq!(
        std::fs::read(&dir).expect("still there"),
        b"not a directory\n",
        "the file is left as it was"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_data_dir_under_a_regular_file_stops_start_up() {
    let base = temp_dir("startup-under-file");
    let file = base.join("file");
    std::fs::write(&file, b"x").expect("a file");
    let dir = file.join("data");
    refused(
        &dir,
        &format!(
            "cannot create {}: Not a directory (os error 20)",
            dir.display()
        ),
    );
    assert_eq!(std::fs::read(&file).expect("still there"), b"x");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_chat_db_that_is_a_directory_stops_start_up() {
    let dir = temp_dir("startup-db-dir");
    std::fs::create_dir(chat_db(&dir)).expect("a directory named chat.db");
    refused(
        &dir,
        &format!(
            "cannot open {}: Is a directory (os error 21)",
            chat_db(&dir).display()
        ),
    );
    assert!(chat_db(&dir).is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chat_db_of_bytes_that_are_no_database_stops_start_up() {
    let dir = temp_dir("startup-garbage");
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(chat_db(&dir), &garbage).expect("garbage");
    refused(
        &dir,
        &format!("{}: file is not a database", chat_db(&dir).display()),
    );
    assert_eq!(
        std::fs::read(chat_db(&dir)).expect("still there"),
        garbage,
        "the damaged file is left as it was, for its owner to recover"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real SQLite database (WAL, closed cleanly, about 60 pages of 4 KiB)
/// at schema `version`.
fn sqlite_file(path: &Path, version: i64) {
    let conn = rusqlite::Connection::open(path).expect("create");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "CREATE TABLE filler (n INTEGER PRIMARY KEY, text TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO filler SELECT i, printf('%0100d', i) FROM n;",
    )
    .expect("fill");
    conn.pragma_update(None, "user_version", version)
        .expect("version");
    drop(conn);
    assert!(
        !Path::new(&format!("{}-wal", path.display())).exists(),
        "closed cleanly: everything is in the file"
    );
}

#[test]
fn a_database_with_damaged_pages_stops_start_up() {
    let dir = temp_dir("startup-damaged");
    let db = chat_db(&dir);
    sqlite_file(&db, 1);
    let mut bytes = std::fs::read(&db).expect("read");
    let page = 4096;
    assert!(bytes.len() >= 10 * page, "{} bytes", bytes.len());
    // The header and schema (page 1) stay intact, so SQLite opens the file;
    // pages 3 to 5 of the table become noise.
    for (i, b) in bytes[2 * page..5 * page].iter_mut().enumerate() {
        *b = (i * 7 % 256) as u8 ^ 0x5a;
    }
    std::fs::write(&db, &bytes).expect("damage");
    let exit = start(&dir);
    assert_eq!(exit.code, Some(1), "stderr: {}", exit.stderr);
    assert_eq!(exit.stdout, "", "it never listened");
    let head = format!(
        "{}\n\nCaused by:\n    history store: {} is damaged: ",
        refusal(&dir),
        db.display()
    );
    let tail = ". Restore it from a backup, or move it away to start with an empty history\n";
    assert!(
        exit.stderr.starts_with(&head) && exit.stderr.ends_with(tail),
        "names the file, what is wrong and what to do: {}",
        exit.stderr
    );
    // What SQLite found is in between.
    let found = &exit.stderr[head.len()..exit.stderr.len() - tail.len()];
    assert!(
        found.starts_with("*** in database main ***") && found.contains(" page "),
        "SQLite's finding (PRAGMA quick_check): {found}"
    );
    assert_eq!(
        std::fs::read(&db).expect("still there"),
        bytes,
        "the damaged file is left as it was"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_record_of_acknowledged_writes_stops_start_up() {
    let dir = temp_dir("startup-commits");
    sqlite_file(&chat_db(&dir), 1);
    let commits = dir.join("chat.db-commits");
    std::fs::write(&commits, b"not sixteen bytes of a record").expect("damage");
    refused(
        &dir,
        &format!(
            "{} is damaged (it records how many writes were acknowledged). If the database is \
             intact, delete it and start again: every room will start a new epoch",
            commits.display()
        ),
    );
    assert_eq!(
        std::fs::read(&commits).expect("still there"),
        b"not sixteen bytes of a record"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_database_from_a_newer_version_stops_start_up() {
    let dir = temp_dir("startup-newer");
    let db = chat_db(&dir);
    sqlite_file(&db, 7);
    let before = std::fs::read(&db).expect("read");
    refused(
        &dir,
        &format!(
            "{} was written by a newer version of this server (schema 7; this one knows 2)",
            db.display()
        ),
    );
    assert_eq!(
        std::fs::read(&db).expect("still there"),
        before,
        "left as it was"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

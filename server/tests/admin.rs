//! `server admin create NAME` on a data directory: the password from
//! standard input, the sign-up rules applied, and the account signs in
//! to the server started on that directory as an administrator.

mod common;

use common::{
    Binary,
    api::{Api, PASSWORD},
    temp_dir,
};
use std::{io::Write, process::Stdio};

/// Runs `server admin create NAME --data-dir DIR` with `stdin`; its exit
/// status and what it printed (stdout and stderr).
fn admin_create(name: &str, dir: &std::path::Path, stdin: &str) -> (bool, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["admin", "create", name, "--data-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server admin runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("password written");
    let out = child.wait_with_output().expect("server admin ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn an_administrator_made_on_the_data_directory_signs_in_as_one() {
    let dir = temp_dir("admin");
    let (ok, said) = admin_create("Root", &dir, &format!("{PASSWORD}\n"));
    assert!(ok, "{said}");
    assert!(said.contains("administrator 'Root' created"), "{said}");
    // The same name again, a weak password, a guest's name: refused, and said why.
    let (ok, said) = admin_create("root", &dir, &format!("{PASSWORD}\n"));
    assert!(!ok);
    assert!(said.contains("'root' (or a look-alike) is taken"), "{said}");
    let (ok, said) = admin_create("other", &dir, "password\n");
    assert!(!ok, "{said}");
    let (ok, said) = admin_create("guest-1", &dir, &format!("{PASSWORD}\n"));
    assert!(!ok);
    assert!(
        said.contains("names starting with 'guest-' are for guests"),
        "{said}"
    );

    let server = Binary::start(&[std::ffi::OsStr::new("--data-dir"), dir.as_os_str()]);
    let addr: std::net::SocketAddr = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/socket")
        .parse()
        .expect("address");
    let api = Api {
        addr,
        origin: format!("http://{addr}"),
    };
    let signed = api.signin("root", PASSWORD).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let me = api.me(&signed.token()).await;
    assert_eq!(
        me.json(),
        serde_json::json!({"username": "Root", "admin": true})
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

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

/// A server whose accounts include the administrator `root`; its API.
async fn with_root(config: server::Config) -> (common::TestServer, Api, String) {
    let server = common::TestServer::start(config).await;
    let accounts = server.state.accounts.clone().expect("accounts");
    server::admin::create(accounts, "root", PASSWORD)
        .await
        .expect("root");
    let api = Api::of(&server);
    let root = api.signin("root", PASSWORD).await.token();
    (server, api, root)
}

fn cookie(token: &str) -> String {
    format!("chat_session={token}")
}

#[tokio::test]
async fn with_registration_by_invite_only_an_administrators_invite_signs_up() {
    let (server, api, root) = with_root(server::Config {
        registration: server::config::Registration::Invite,
        ..common::api::api_config()
    })
    .await;
    let signup = |name: &str, invite: Option<&str>| {
        let mut body = serde_json::json!({"username": name, "password": PASSWORD});
        if let Some(code) = invite {
            body["invite"] = serde_json::json!(code);
        }
        body.to_string()
    };
    let refused = api.post("/api/signup", &signup("ann", None), &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["error"],
        "signing up here needs an invite; this one is unknown, used up or expired"
    );
    // Only an administrator makes invites.
    let anon = api.post("/api/invites", "", &[]).await;
    assert_eq!(anon.status, 401);
    let made = api
        .post(
            "/api/invites",
            r#"{"uses": 2}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let code = made.json()["invite"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 32);
    let ann = api
        .post("/api/signup", &signup("ann", Some(&code)), &[])
        .await;
    assert_eq!(ann.status, 201);
    let not_admin = api
        .post("/api/invites", "", &[("Cookie", &cookie(&ann.token()))])
        .await;
    assert_eq!(not_admin.status, 403);
    assert_eq!(
        api.post("/api/signup", &signup("ben", Some(&code)), &[])
            .await
            .status,
        201
    );
    assert_eq!(
        api.post("/api/signup", &signup("cat", Some(&code)), &[])
            .await
            .status,
        403,
        "used up"
    );
    assert_eq!(
        api.post("/api/signup", &signup("cat", Some(&"0".repeat(32))), &[])
            .await
            .status,
        403,
        "unknown"
    );
    // Bounded, and it expires.
    let big = api
        .post(
            "/api/invites",
            r#"{"uses": 100000}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    assert_eq!(big.status, 400);
    let short = api
        .post(
            "/api/invites",
            r#"{"uses": 5, "expires_in_secs": 1}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    let code = short.json()["invite"].as_str().expect("code").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        api.post("/api/signup", &signup("cat", Some(&code)), &[])
            .await
            .status,
        403,
        "expired"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_account_is_signed_out_everywhere_and_cannot_sign_in() {
    let (server, api, root) = with_root(common::api::api_config()).await;
    let bob = api.signup("bob", PASSWORD).await.token();
    let origin = format!("http://{}", server.addr);
    let mut req = common::request(&server.url());
    req.headers_mut()
        .insert("Cookie", cookie(&bob).parse().expect("header"));
    req.headers_mut()
        .insert("Origin", origin.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let mut socket = common::Client::from_ws(ws);
    let welcome: shared::chat::Welcome = socket
        .rich("hello", &serde_json::json!({"v": 1}))
        .await
        .expect("hello");
    assert_eq!(welcome.nick, "bob");

    let as_bob = api
        .post(
            "/api/admin/disable",
            r#"{"username": "root"}"#,
            &[("Cookie", &cookie(&bob))],
        )
        .await;
    assert_eq!(as_bob.status, 403, "not an administrator");
    let unknown = api
        .post(
            "/api/admin/disable",
            r#"{"username": "nobody"}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    assert_eq!(unknown.status, 404);
    let done = api
        .post(
            "/api/admin/disable",
            r#"{"username": "BOB"}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    assert_eq!(done.status, 204);
    assert_eq!(
        socket.close_reason().await,
        Some((1008, "signed out".to_owned()))
    );
    assert_eq!(api.me(&bob).await.status, 401);
    let again = api.signin("bob", PASSWORD).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.json()["error"], "wrong username or password");
    let enabled = api
        .post(
            "/api/admin/disable",
            r#"{"username": "bob", "disabled": false}"#,
            &[("Cookie", &cookie(&root))],
        )
        .await;
    assert_eq!(enabled.status, 204);
    assert_eq!(
        api.signin_from("bob", PASSWORD, "192.0.2.9").await.status,
        200
    );
    server.stop().await;
}

//! The accounts API from a test: one HTTP/1.1 request at a time, and the
//! calls a client makes (sign up, sign in, who am I, sign out).

use super::{TestServer, config};
use server::Config;
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A password every rule accepts.
pub const PASSWORD: &str = "tq7-vexa-plum";

pub struct Reply {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The session token the reply's `Set-Cookie` gives.
    pub fn token(&self) -> String {
        let cookie = self.header("set-cookie").expect("a cookie");
        let value = cookie
            .strip_prefix("chat_session=")
            .and_then(|rest| rest.split(';').next())
            .expect("chat_session=…");
        value.to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// One HTTP/1.1 request; `origin` and `cookie` when given.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

pub fn creds(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

pub struct Api {
    pub addr: SocketAddr,
    pub origin: String,
}

impl Api {
    pub fn of(server: &TestServer) -> Self {
        Self {
            addr: server.addr,
            origin: format!("http://{}", server.addr),
        }
    }

    pub async fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        let mut headers = vec![("Origin", self.origin.as_str())];
        headers.extend_from_slice(extra);
        call(self.addr, "POST", path, &headers, body).await
    }

    pub async fn signup(&self, username: &str, password: &str) -> Reply {
        self.post("/api/signup", &creds(username, password), &[])
            .await
    }

    pub async fn signin_from(&self, username: &str, password: &str, ip: &str) -> Reply {
        self.post(
            "/api/signin",
            &creds(username, password),
            &[("X-Forwarded-For", ip)],
        )
        .await
    }

    pub async fn signin(&self, username: &str, password: &str) -> Reply {
        self.signin_from(username, password, "192.0.2.1").await
    }

    pub async fn me(&self, token: &str) -> Reply {
        let cookie = format!("chat_session={token}");
        call(self.addr, "GET", "/api/me", &[("Cookie", &cookie)], "").await
    }

    pub async fn signout(&self, token: &str) -> Reply {
        let cookie = format!("chat_session={token}");
        self.post("/api/signout", "", &[("Cookie", &cookie)]).await
    }
}

/// Test clients are all 127.0.0.1: the throttle's addresses come from
/// `X-Forwarded-For`, believed from there.
pub fn api_config() -> Config {
    Config {
        trusted_proxies: vec![server::addr::parse_net("127.0.0.1").expect("net")],
        ..config()
    }
}

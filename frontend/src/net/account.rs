//! The accounts API (docs/PROTOCOL.md, "Accounts"): `GET /api/me`,
//! `POST /api/signup`, `/api/signin`, `/api/signout`. The server sets and
//! clears the session cookie (`HttpOnly`: this code never sees it); the
//! socket carries it on its next upgrade.

use gloo_net::http::{Request, Response};
use serde::Deserialize;

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Me {
    /// The account's name (the socket's nickname).
    pub username: String,
    /// A server administrator.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
}

/// The API's address: this page's `/api/`, or under `trunk serve` the
/// same through its proxy (Trunk.toml), so the cookie is the page's.
fn url(path: &str) -> String {
    format!("/api/{path}")
}

async fn refusal(response: Response) -> String {
    let status = response.status();
    match response.json::<Refusal>().await {
        Ok(r) => r.error,
        Err(_) if status == 503 => "accounts are not available on this server".into(),
        Err(_) => format!("the server answered {status}"),
    }
}

/// Who this browser is signed in as (`None`: nobody, or no accounts here).
pub async fn me() -> Result<Option<Me>, String> {
    let response = Request::get(&url("me"))
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    match response.status() {
        200 => response
            .json::<Me>()
            .await
            .map(Some)
            .map_err(|e| format!("unexpected answer: {e}")),
        401 | 404 | 503 => Ok(None),
        _ => Err(refusal(response).await),
    }
}

/// Signs in (`create`: signs up first); the server sets the cookie.
pub async fn sign_in(username: &str, password: &str, create: bool) -> Result<Me, String> {
    let body = serde_json::json!({ "username": username, "password": password });
    let path = if create { "signup" } else { "signin" };
    let response = Request::post(&url(path))
        .json(&body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    match response.status() {
        200 | 201 => response
            .json::<Me>()
            .await
            .map_err(|e| format!("unexpected answer: {e}")),
        429 => {
            let wait = response
                .headers()
                .get("retry-after")
                .unwrap_or_else(|| "a few".into());
            Err(format!("too many tries: wait {wait} seconds and try again"))
        }
        _ => Err(refusal(response).await),
    }
}

/// Signs out: the session ends and the server clears the cookie.
pub async fn sign_out() -> Result<(), String> {
    let response = Request::post(&url("signout"))
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if response.ok() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}

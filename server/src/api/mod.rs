//! The accounts API, JSON over HTTP (docs/PROTOCOL.md, "Accounts"):
//! `POST /api/signup`, `POST /api/signin`, `POST /api/signout`,
//! `GET /api/me`.
//!
//! - A request whose `Origin` is not one the socket accepts is refused
//!   (403) before anything else; a `POST` must name its origin.
//! - A sign-in gives a fresh 128-bit token in an `HttpOnly; SameSite=Lax;
//!   Path=/` cookie (`Secure` and `__Host-` with `--secure-cookies`); only
//!   its hash is stored.
//! - Sign-in failures are throttled by name and by address; an unknown
//!   name costs, waits and answers exactly as a wrong password does.

use crate::{
    AppState,
    accounts::Account,
    config::Registration,
    credentials::{password, throttle::Verdict},
    identity::{new_token, token_hash},
    names,
};
use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::{net::SocketAddr, sync::Arc, time::Instant};
use tracing::{info, warn};

mod admin;
mod changes;
mod cookie;

pub(crate) use admin::{disable, invite};
pub(crate) use changes::{change_password, signout_everywhere};

pub(crate) use cookie::signed_in_as;
use cookie::{cleared_cookie, now_ms, session_cookie};
pub use cookie::{cookie_name, cookie_token};

/// Largest request body the API reads.
pub(crate) const MAX_BODY: usize = 4 * 1024;

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    /// An invite code (`--registration invite`).
    #[serde(default)]
    invite: Option<String>,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "error": message }))
}

/// The one answer to a failed sign-in, whatever failed.
fn wrong() -> Response {
    error(StatusCode::UNAUTHORIZED, "wrong username or password")
}

/// Refuses a request from an origin the socket would refuse; a `POST`
/// without `Origin` too (browsers always send it on a `POST`).
fn foreign(app: &AppState, method: &Method, headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let allowed = match origin {
        Some(o) => app.origins().allows(o),
        None => method == Method::GET,
    };
    (!allowed).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "this origin may not use the chat's accounts",
        )
    })
}

fn parse(body: &[u8]) -> Option<Credentials> {
    serde_json::from_slice(body).ok()
}

fn not_credentials() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "send {\"username\": \"…\", \"password\": \"…\"} as JSON",
    )
}

/// The address started too many sessions this minute
/// (`--sessions-per-ip-per-minute`, shared with the socket's `hello`).
fn too_many_sessions() -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many new sessions from your address; try again in a minute",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this server keeps no accounts",
    )
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    warn!(error = %e, "accounts store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the accounts store failed; try again",
    )
}

/// 429 with `Retry-After` while any of these throttle keys must wait.
fn must_wait(app: &AppState, keys: &[&str], now: Instant) -> Option<Response> {
    let wait = keys
        .iter()
        .filter_map(|k| match app.signin_throttle.check(k, now) {
            Verdict::Go => None,
            Verdict::Wait(d) => Some(d),
        })
        .max()?;
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed sign-ins; wait before trying again",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(response)
}

/// Hashing refused (too many waiting: 503 with `Retry-After: 1`) or failed.
fn hash_failed(e: password::Error) -> Response {
    if matches!(e, password::Error::Busy) {
        let mut response = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    store_failed(e)
}

/// A new session for `account`: `200`/`201` with the cookie and the name.
async fn signed_in(app: &AppState, account: &Account, status: StatusCode) -> Response {
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    let token = new_token();
    if let Err(e) = accounts
        .open_session(&token_hash(&token), &account.key, now_ms())
        .await
    {
        return store_failed(e);
    }
    let mut response = answer(status, json!({ "username": account.name }));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(app, &token));
    response
}

/// `POST /api/signup` `{"username", "password"}`: 201 and a session
/// cookie; 409 if the name (or a look-alike) is taken; 400 with the reason
/// if either is not valid; 403 when registration is closed.
pub(crate) async fn signup(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = foreign(&app, &method, &headers) {
        return refused;
    }
    if app.config.registration == Registration::Closed {
        return error(
            StatusCode::FORBIDDEN,
            "registration is closed on this server",
        );
    }
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    let Some(creds) = parse(&body) else {
        return not_credentials();
    };
    let name = match names::username(&creds.username) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message),
    };
    if let Err(weak) = password::check(&creds.password, &name) {
        return error(StatusCode::BAD_REQUEST, &weak.to_string());
    }
    // Each new account is a new session: the address's budget for them.
    if !app
        .addresses()
        .start_session(app.limits.client_ip(peer, &headers))
    {
        return too_many_sessions();
    }
    let key = names::nick_key(&name);
    match accounts.find(&key).await {
        Ok(Some(_)) => return error(StatusCode::CONFLICT, "that name is taken"),
        Ok(None) => {}
        Err(e) => return store_failed(e),
    }
    let hash = match app.passwords.hash(&creds.password).await {
        Ok(h) => h,
        Err(e) => return hash_failed(e),
    };
    if app.config.registration == Registration::Invite {
        let code = creds.invite.as_deref().unwrap_or_default();
        match accounts.use_invite(&token_hash(code), now_ms()).await {
            Ok(true) => {}
            Ok(false) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "signing up here needs an invite; this one is unknown, used up or expired",
                );
            }
            Err(e) => return store_failed(e),
        }
    }
    let account = Account {
        name,
        key,
        hash,
        admin: false,
        disabled: false,
    };
    match accounts.create(account.clone()).await {
        Ok(true) => {
            info!(username = %account.name, "account created");
            signed_in(&app, &account, StatusCode::CREATED).await
        }
        Ok(false) => error(StatusCode::CONFLICT, "that name is taken"),
        Err(e) => store_failed(e),
    }
}

/// `POST /api/signin` `{"username", "password"}`: 200 and a session
/// cookie; 401 for a wrong password and for an unknown name alike; 429
/// with `Retry-After` when the name or the address must wait.
pub(crate) async fn signin(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = foreign(&app, &method, &headers) {
        return refused;
    }
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    let Some(creds) = parse(&body) else {
        return not_credentials();
    };
    // Names that are not valid are keyed as typed: throttled all the same.
    let key = names::nick(&creds.username)
        .map(|n| names::nick_key(&n))
        .unwrap_or_else(|_| creds.username.to_lowercase());
    let name_key = format!("name:{key}");
    let addr_key = format!("addr:{}", app.limits.client_ip(peer, &headers));
    let now = Instant::now();
    let throttle = &app.signin_throttle;
    if let Some(refused) = must_wait(&app, &[&name_key, &addr_key], now) {
        return refused;
    }
    let account = match accounts.find(&key).await {
        Ok(a) => a,
        Err(e) => return store_failed(e),
    };
    let stored = account.as_ref().map(|a| a.hash.as_str());
    let matches = match app.passwords.verify(&creds.password, stored).await {
        Ok(m) => m,
        Err(e) => return hash_failed(e),
    };
    match account {
        Some(account) if matches && !account.disabled => {
            throttle.succeeded(&name_key);
            throttle.succeeded(&addr_key);
            if !app
                .addresses()
                .start_session(app.limits.client_ip(peer, &headers))
            {
                return too_many_sessions();
            }
            signed_in(&app, &account, StatusCode::OK).await
        }
        _ => {
            throttle.failed(&name_key, now);
            throttle.failed(&addr_key, now);
            wrong()
        }
    }
}

/// `POST /api/signout`: 204; the session ends, its sockets are closed
/// (1008 "signed out") and its cookie is cleared.
pub(crate) async fn signout(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = foreign(&app, &method, &headers) {
        return refused;
    }
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    if let Some(token) = cookie_token(&headers, app.config.secure_cookies) {
        let session = token_hash(&token);
        if let Err(e) = accounts.close_session(&session).await {
            return store_failed(e);
        }
        // Its sockets end now (on every process), not at their next reconnect.
        let closed = app.signed_out(std::slice::from_ref(&session));
        info!(sockets = closed, "signed out");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie(&app));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/me`: 200 `{"username", "admin"}` for a live session, else 401.
pub(crate) async fn me(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = foreign(&app, &method, &headers) {
        return refused;
    }
    if app.accounts.is_none() {
        return unavailable();
    }
    match signed_in_as(&app, &headers).await {
        Ok(Some(signed)) => answer(
            StatusCode::OK,
            json!({ "username": signed.name, "admin": signed.admin }),
        ),
        Ok(None) => error(StatusCode::UNAUTHORIZED, "not signed in"),
        Err(e) => store_failed(e),
    }
}

//! Changes to a signed-in account: `POST /api/password` (a new password;
//! every other session of the account ends) and `POST
//! /api/signout-everywhere` (every session ends, this one too). Sessions
//! that end have their sockets closed (1008 `signed out`).

use super::{
    cleared_cookie, error, foreign, hash_failed, must_wait, now_ms, store_failed, unavailable,
};
use crate::{AppState, credentials::password, identity::Signed};
use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use std::{net::SocketAddr, sync::Arc, time::Instant};
use tracing::info;

#[derive(Deserialize)]
struct NewPassword {
    password: String,
    new_password: String,
}

/// The signed-in account of the request, or the answer to give instead
/// (401 without a live session).
async fn signed(app: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    match super::signed_in_as(app, headers).await {
        Ok(Some(signed)) => Ok(signed),
        Ok(None) => Err(error(StatusCode::UNAUTHORIZED, "not signed in")),
        Err(e) => Err(store_failed(e)),
    }
}

fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Closes the sockets of these sessions (token hashes), on every
/// process; how many here.
fn close_sockets(app: &AppState, sessions: &[String]) -> usize {
    app.signed_out(sessions)
}

/// `POST /api/password` `{"password", "new_password"}`: 204 and every
/// other session of the account ends; 401 without a session or for a
/// wrong current password (throttled like a sign-in); 400 with the reason
/// for a new password the rules refuse.
pub(crate) async fn change_password(
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
    let me = match signed(&app, &headers).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let Ok(req) = serde_json::from_slice::<NewPassword>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "send {\"password\": \"…\", \"new_password\": \"…\"}",
        );
    };
    let name_key = format!("name:{}", me.key);
    let addr_key = format!("addr:{}", app.limits.client_ip(peer, &headers));
    let now = Instant::now();
    if let Some(refused) = must_wait(&app, &[&name_key, &addr_key], now) {
        return refused;
    }
    let stored = match accounts.find(&me.key).await {
        Ok(Some(account)) => account.hash,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "not signed in"),
        Err(e) => return store_failed(e),
    };
    match app.passwords.verify(&req.password, Some(&stored)).await {
        Ok(true) => {}
        Ok(false) => {
            app.signin_throttle.failed(&name_key, now);
            app.signin_throttle.failed(&addr_key, now);
            return error(StatusCode::UNAUTHORIZED, "the current password is wrong");
        }
        Err(e) => return hash_failed(e),
    }
    if let Err(weak) = password::check(&req.new_password, &me.name) {
        return error(StatusCode::BAD_REQUEST, &weak.to_string());
    }
    let hash = match app.passwords.hash(&req.new_password).await {
        Ok(h) => h,
        Err(e) => return hash_failed(e),
    };
    if let Err(e) = accounts.set_password(&me.key, hash).await {
        return store_failed(e);
    }
    let ended = match accounts.close_sessions(&me.key, Some(&me.session)).await {
        Ok(ended) => ended,
        Err(e) => return store_failed(e),
    };
    let sockets = close_sockets(&app, &ended);
    info!(username = %me.name, sessions = ended.len(), sockets, "password changed");
    no_content()
}

/// `POST /api/signout-everywhere`: 204; every session of the account ends
/// (this one too) and their sockets close; 401 without a session.
pub(crate) async fn signout_everywhere(
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
    let me = match signed(&app, &headers).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let ended = match accounts.close_sessions(&me.key, None).await {
        Ok(ended) => ended,
        Err(e) => return store_failed(e),
    };
    let sockets = close_sockets(&app, &ended);
    info!(username = %me.name, sessions = ended.len(), sockets, at = now_ms(), "signed out everywhere");
    let mut response = no_content();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie(&app));
    response
}

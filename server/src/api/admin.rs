//! What server administrators do over the API: `POST /api/invites` (an
//! invite code for `--registration invite`) and `POST /api/admin/disable`
//! (an account that can no longer sign in; its sessions end and its
//! sockets close). Anyone else: 401 without a session, 403 with one.

use super::{answer, error, foreign, now_ms, store_failed, unavailable};
use crate::{
    AppState,
    identity::{Signed, new_token, token_hash},
    names,
};
use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tracing::info;

/// Most sign-ups one invite allows.
const MAX_INVITE_USES: u32 = 1_000;
/// Longest an invite lasts: 30 days.
const MAX_INVITE_SECS: u64 = 30 * 86_400;

/// The request's administrator, or the answer to give instead.
async fn administrator(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Signed, Response> {
    if let Some(refused) = foreign(app, method, headers) {
        return Err(refused);
    }
    if app.accounts.is_none() {
        return Err(unavailable());
    }
    match super::signed_in_as(app, headers).await {
        Ok(Some(signed)) if signed.admin => Ok(signed),
        Ok(Some(_)) => Err(error(
            StatusCode::FORBIDDEN,
            "only server administrators may do this",
        )),
        Ok(None) => Err(error(StatusCode::UNAUTHORIZED, "not signed in")),
        Err(e) => Err(store_failed(e)),
    }
}

#[derive(Deserialize)]
struct NewInvite {
    #[serde(default = "one")]
    uses: u32,
    #[serde(default = "a_week")]
    expires_in_secs: u64,
}

fn one() -> u32 {
    1
}

fn a_week() -> u64 {
    7 * 86_400
}

/// `POST /api/invites` `{"uses"?, "expires_in_secs"?}` (default one use,
/// a week): 201 `{"invite", "uses", "expires_at"}` (Unix ms). Only the
/// code's hash is stored.
pub(crate) async fn invite(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let me = match administrator(&app, &method, &headers).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let req: NewInvite = if body.is_empty() {
        NewInvite {
            uses: one(),
            expires_in_secs: a_week(),
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(req) => req,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "send {\"uses\": N, \"expires_in_secs\": S}",
                );
            }
        }
    };
    if !(1..=MAX_INVITE_USES).contains(&req.uses)
        || !(1..=MAX_INVITE_SECS).contains(&req.expires_in_secs)
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "an invite allows 1 to {MAX_INVITE_USES} sign-ups and lasts 1 s to {MAX_INVITE_SECS} s"
            ),
        );
    }
    let code = new_token();
    let expires_at = now_ms()
        .saturating_add(i64::try_from(req.expires_in_secs.saturating_mul(1000)).unwrap_or(0));
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    if let Err(e) = accounts
        .create_invite(&token_hash(&code), req.uses, expires_at, &me.key)
        .await
    {
        return store_failed(e);
    }
    info!(by = %me.name, uses = req.uses, "invite made");
    answer(
        StatusCode::CREATED,
        json!({ "invite": code, "uses": req.uses, "expires_at": expires_at }),
    )
}

#[derive(Deserialize)]
struct Disable {
    username: String,
    #[serde(default = "yes")]
    disabled: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/admin/disable` `{"username", "disabled"?}`: 204; a disabled
/// account's sessions end and its sockets close, and it cannot sign in
/// until enabled again (`"disabled": false`); 404 for no such account.
pub(crate) async fn disable(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let me = match administrator(&app, &method, &headers).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let Ok(req) = serde_json::from_slice::<Disable>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "send {\"username\": \"…\", \"disabled\": true}",
        );
    };
    let key = names::nick_key(&req.username);
    let Some(accounts) = &app.accounts else {
        return unavailable();
    };
    match accounts.set_disabled(&key, req.disabled).await {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::NOT_FOUND, "no such account"),
        Err(e) => return store_failed(e),
    }
    let mut sockets = 0;
    if req.disabled {
        match accounts.close_sessions(&key, None).await {
            Ok(ended) => {
                sockets = app.signed_out(&ended);
            }
            Err(e) => return store_failed(e),
        }
    }
    info!(by = %me.name, account = %req.username, disabled = req.disabled, sockets, "account disabled");
    StatusCode::NO_CONTENT.into_response()
}

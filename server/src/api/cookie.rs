//! The sign-in session cookie: its name and attributes, reading it from a
//! request, and who it signs in (the API's `me`, and the socket's upgrade).

use crate::{
    AppState,
    accounts::Lifetime,
    identity::{Signed, token_hash},
    log::StoreError,
};
use axum::http::{HeaderMap, HeaderValue, header};
use std::time::{SystemTime, UNIX_EPOCH};

/// The cookie's name: `__Host-` needs `Secure`.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-chat_session"
    } else {
        "chat_session"
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn lifetime(app: &AppState) -> Lifetime {
    app.signin_lifetime()
}

/// `Set-Cookie` for a new session's token.
pub(super) fn session_cookie(app: &AppState, token: &str) -> HeaderValue {
    let secure = app.config.secure_cookies;
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        cookie_name(secure),
        app.config.signin_max_secs,
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub(super) fn cleared_cookie(app: &AppState) -> HeaderValue {
    let secure = app.config.secure_cookies;
    let value = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// The session token the request's cookie carries.
pub fn cookie_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Who the request's cookie signs in: `None` without a cookie, or for a
/// session that ended, expired or whose account is disabled. Marks the
/// session as used.
pub(crate) async fn signed_in_as(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Signed>, StoreError> {
    let (Some(accounts), Some(token)) = (
        &app.accounts,
        cookie_token(headers, app.config.secure_cookies),
    ) else {
        return Ok(None);
    };
    let session = token_hash(&token);
    let account = accounts.session(&session, now_ms(), lifetime(app)).await?;
    Ok(account.filter(|a| !a.disabled).map(|a| Signed {
        name: a.name,
        key: a.key,
        admin: a.admin,
        session,
    }))
}

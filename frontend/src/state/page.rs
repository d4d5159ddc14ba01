//! What the page gives the app: the clock, the socket address, and
//! storage that outlives a reload (nickname, session, outbox, read marks,
//! drafts).

use super::DRAFT_KEY;

/// Unix milliseconds now.
pub fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// The socket address: `?socket=` if given; under `trunk serve` (port
/// 8080) the server on port 3000 of the same host; else this page's own.
pub fn socket_url() -> String {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return "ws://127.0.0.1:3000/socket".into();
    };
    let search = location.search().unwrap_or_default();
    if let Some(url) = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("socket="))
    {
        return js_sys::decode_uri_component(url)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| url.to_owned());
    }
    let scheme = if location.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().unwrap_or_default();
    if location.port().unwrap_or_default() == "8080" {
        let hostname = location.hostname().unwrap_or_default();
        return format!("{scheme}://{hostname}:3000/socket");
    }
    format!("{scheme}://{host}/socket")
}

fn storage(local: bool) -> Option<web_sys::Storage> {
    let window = web_sys::window()?;
    if local {
        window.local_storage().ok().flatten()
    } else {
        window.session_storage().ok().flatten()
    }
}

/// Reads a stored string.
pub fn load(local: bool, key: &str) -> Option<String> {
    storage(local)?
        .get_item(key)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

/// Stores a string (best effort: private modes may refuse).
pub fn store(local: bool, key: &str, value: &str) {
    if let Some(s) = storage(local) {
        let _ = s.set_item(key, value);
    }
}

/// Removes a stored string.
pub fn forget(local: bool, key: &str) {
    if let Some(s) = storage(local) {
        let _ = s.remove_item(key);
    }
}

/// A room's draft, kept across reloads.
pub fn draft(room: &str) -> String {
    load(true, &format!("{DRAFT_KEY}{room}")).unwrap_or_default()
}

/// Keeps a room's draft (an empty one is forgotten).
pub fn set_draft(room: &str, text: &str) {
    let key = format!("{DRAFT_KEY}{room}");
    if text.is_empty() {
        forget(true, &key);
    } else {
        store(true, &key, text);
    }
}

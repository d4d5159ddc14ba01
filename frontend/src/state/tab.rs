//! One tab per person per browser. Tabs of one browser share a session
//! (it is kept in `localStorage`), and the server keeps one connection per
//! session, so two tabs would take the session from each other forever.
//! The tab that holds the Web Lock chats; another one says so plainly and
//! offers to take over (the lock is stolen, and the first tab stops).
//! Where Web Locks are missing, every tab chats.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};

/// The lock's name (Web Locks are per origin).
const LOCK: &str = "chat.tab";

/// Asks for this tab's right to chat: `granted(true)` once it has it,
/// `granted(false)` when another tab has it (and `steal` is false).
/// `lost` runs if another tab takes it later.
pub fn claim(steal: bool, granted: impl FnOnce(bool) + 'static, lost: impl FnOnce() + 'static) {
    let locks = web_sys::window()
        .and_then(|w| Reflect::get(&w.navigator(), &JsValue::from_str("locks")).ok())
        .filter(JsValue::is_object);
    let request = locks.as_ref().and_then(|l| {
        Reflect::get(l, &JsValue::from_str("request"))
            .ok()?
            .dyn_into::<Function>()
            .ok()
    });
    let (Some(locks), Some(request)) = (locks, request) else {
        granted(true);
        return;
    };
    let options = Object::new();
    let key = if steal { "steal" } else { "ifAvailable" };
    let _ = Reflect::set(&options, &JsValue::from_str(key), &JsValue::TRUE);
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if lock.is_null() {
            granted(false);
            return JsValue::UNDEFINED;
        }
        granted(true);
        // Held for as long as the page lives.
        Promise::new(&mut |_, _| {}).into()
    });
    let held = request
        .call3(&locks, &JsValue::from_str(LOCK), &options, &callback)
        .ok()
        .and_then(|p| p.dyn_into::<Promise>().ok());
    if let Some(held) = held {
        wasm_bindgen_futures::spawn_local(async move {
            // Rejected (AbortError) when another tab steals the lock.
            if wasm_bindgen_futures::JsFuture::from(held).await.is_err() {
                lost();
            }
        });
    }
}

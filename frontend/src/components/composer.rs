//! The composer: Enter sends, Shift+Enter adds a line, a counter near the
//! limit, typing notifications, slash commands.

use crate::state::{Chat, MAX_TEXT_CHARS};
use leptos::{ev::KeyboardEvent, html, prelude::*};

/// Show the counter from this share of the limit on.
const COUNTER_FROM: usize = MAX_TEXT_CHARS * 8 / 10;
/// Typing "on" is repeated at most this often, and "off" follows this long
/// after the last key.
const TYPING_MS: f64 = 3_000.0;

/// The message box.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = RwSignal::new(String::new());
    let area = NodeRef::<html::Textarea>::new();
    // When "typing on" was last sent; NEG_INFINITY: not typing.
    let last_typing = StoredValue::new(f64::NEG_INFINITY);
    let idle = StoredValue::new(None::<TimeoutHandle>);

    let stop_typing = move || {
        if last_typing.try_get_value().is_some_and(f64::is_finite) {
            last_typing.set_value(f64::NEG_INFINITY);
            chat.typing(false);
        }
        if let Some(Some(h)) = idle.try_get_value() {
            h.clear();
        }
    };
    on_cleanup(move || {
        if let Some(Some(h)) = idle.try_get_value() {
            h.clear();
        }
    });
    let send = move || {
        let value = text.get_untracked();
        if value.trim().is_empty() || value.chars().count() > MAX_TEXT_CHARS {
            return;
        }
        chat.submit(&value);
        text.set(String::new());
        stop_typing();
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let typing_command = value.starts_with('/');
        text.set(value);
        if typing_command {
            return;
        }
        let now = crate::net::now_ms();
        if now - last_typing.get_value() > TYPING_MS {
            last_typing.set_value(now);
            chat.typing(true);
        }
        if let Some(h) = idle.get_value() {
            h.clear();
        }
        if let Ok(h) = set_timeout_with_handle(
            stop_typing,
            std::time::Duration::from_millis(TYPING_MS as u64),
        ) {
            idle.set_value(Some(h));
        }
    };
    let count = move || text.with(|t| t.chars().count());
    let counter = move || {
        let n = count();
        (n >= COUNTER_FROM).then(|| format!("{}", MAX_TEXT_CHARS as i64 - n as i64))
    };
    Effect::new(move |_| {
        // Keep focus in the composer when the room changes.
        chat.model.with(|m| m.current.len());
        if let Some(el) = area.get() {
            let _ = el.focus();
        }
    });
    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <label for="composer-input" class="sr-only">"Message"</label>
            <textarea
                id="composer-input"
                node_ref=area
                data-testid="composer"
                rows="1"
                placeholder=move || chat.model.with(|m| format!("Message #{} — Enter sends, Shift+Enter for a new line, /help", m.current))
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
            <span class="counter" class:over={move || count() > MAX_TEXT_CHARS} data-testid="counter" aria-live="polite">{counter}</span>
            <button type="submit" data-testid="send" disabled={move || count() > MAX_TEXT_CHARS}>"Send"</button>
        </form>
    }
}

//! The composer: Enter sends, Shift+Enter adds a line, ArrowUp in an
//! empty box edits one's last message, Escape cancels a reply (see
//! `reply_bar`), a counter near the limit, typing notifications, slash
//! commands, one draft per room (kept across reloads), and errors said at
//! the input.

use super::WINDOW;
use crate::state::{Chat, MAX_TEXT_CHARS, draft, set_draft};
use leptos::{ev::KeyboardEvent, html, prelude::*};

/// Show the counter from this share of the limit on.
const COUNTER_FROM: usize = MAX_TEXT_CHARS * 8 / 10;
/// Typing "on" is repeated at most this often, and "off" follows this long
/// after the last key.
const TYPING_MS: f64 = 3_000.0;

/// "2,000"
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The message box.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let room = Memo::new(move |_| chat.model.with(|m| m.current.clone()));
    let text = RwSignal::new(draft(&room.get_untracked()));
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
    // Each room has its own draft: switching rooms swaps them.
    Effect::new(move |previous: Option<String>| {
        let now = room.get();
        if previous.as_ref().is_some_and(|p| *p != now) {
            stop_typing();
            text.set(draft(&now));
            chat.composer_error.set(None);
        }
        now
    });
    // Focus moves here when the page opens (unless the nickname dialog
    // does) and when a person's action asks for it; never on its own.
    Effect::new(move |previous: Option<u64>| {
        let asked = chat.focus_composer.get();
        let wanted = previous.is_some() || !chat.asking_nick.get_untracked();
        if wanted && let Some(el) = area.get_untracked() {
            let _ = el.focus();
        }
        asked
    });
    let count = move || text.with(|t| t.chars().count());
    let send = move || {
        let value = text.get_untracked();
        if value.trim().is_empty() {
            return;
        }
        let n = value.chars().count();
        if n > MAX_TEXT_CHARS {
            let over = n - MAX_TEXT_CHARS;
            chat.composer_error.set(Some(format!(
                "This message is {} character{} too long (the limit is {}).",
                thousands(over),
                if over == 1 { "" } else { "s" },
                thousands(MAX_TEXT_CHARS)
            )));
            return;
        }
        match chat.submit(&value) {
            Ok(()) => {
                text.set(String::new());
                set_draft(&room.get_untracked(), "");
                chat.composer_error.set(None);
            }
            Err(why) => chat.composer_error.set(Some(why)),
        }
        stop_typing();
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
        let replying = chat
            .model
            .with_untracked(|m| m.current_room().is_some_and(|r| r.replying.is_some()));
        if ev.key() == "Escape" && replying {
            ev.prevent_default();
            chat.cancel_reply(&room.get_untracked());
        }
        let plain = !(ev.shift_key() || ev.alt_key() || ev.ctrl_key() || ev.meta_key());
        if ev.key() == "ArrowUp"
            && plain
            && text.with_untracked(String::is_empty)
            && chat.edit_last(WINDOW)
        {
            ev.prevent_default();
        }
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let typing_command = value.starts_with('/');
        set_draft(&room.get_untracked(), &value);
        text.set(value);
        // An error about what was there goes once it changes (a length
        // error stays while it is still too long).
        if count() <= MAX_TEXT_CHARS {
            chat.composer_error.set(None);
        }
        if typing_command || count() == 0 {
            // A command is not a message; an emptied box is not typing.
            stop_typing();
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
    let counter = move || {
        let n = count();
        if n > MAX_TEXT_CHARS {
            Some(format!("{} too many", thousands(n - MAX_TEXT_CHARS)))
        } else {
            (n >= COUNTER_FROM).then(|| format!("{} left", thousands(MAX_TEXT_CHARS - n)))
        }
    };
    let error = move || chat.composer_error.get();
    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <label for="composer-input" class="sr-only">"Message"</label>
            <div class="composer-field">
                <textarea
                    id="composer-input"
                    node_ref=area
                    data-testid="composer"
                    rows="1"
                    dir="auto"
                    aria-invalid=move || error().is_some().to_string()
                    aria-describedby="composer-error composer-counter"
                    placeholder=move || format!("Message #{} — Enter sends, Shift+Enter for a new line, /help", room.get())
                    prop:value=move || text.get()
                    on:input=on_input
                    on:keydown=on_keydown
                    on:blur=move |_| stop_typing()
                ></textarea>
                <p id="composer-error" class="error" data-testid="composer-error" role="alert">{error}</p>
            </div>
            <span id="composer-counter" class="counter" class:over={move || count() > MAX_TEXT_CHARS} data-testid="counter">{counter}</span>
            <button type="submit" data-testid="send">"Send"</button>
        </form>
    }
}

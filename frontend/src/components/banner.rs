//! The connection banner: connecting / online (or degraded) /
//! reconnecting, with a countdown and "retry now" / offline. Screen readers
//! hear a change of state once: the live region holds the state alone,
//! and the countdown that ticks beside it is not announced.

use crate::{
    net::{now_ms, socket::Status},
    state::Chat,
};
use leptos::prelude::*;

/// Shows where the connection is, with "retry now" while waiting.
#[component]
pub fn Banner() -> impl IntoView {
    let chat = expect_context::<Chat>();
    // A clock for the countdown.
    let tick = RwSignal::new(0u32);
    if let Ok(handle) = set_interval_with_handle(
        move || tick.update(|t| *t += 1),
        std::time::Duration::from_millis(500),
    ) {
        on_cleanup(move || handle.clear());
    }
    let status = Memo::new(move |_| chat.model.with(|m| m.status.clone()));
    // The room on screen cannot store messages for now (cluster mode).
    let degraded = Memo::new(move |_| {
        chat.model
            .with(|m| m.current_room().is_some_and(|r| r.degraded))
    });
    // Once online, a new attempt to connect is part of reconnecting.
    let was_online = StoredValue::new(false);
    // What is announced: changes only when the state does.
    let state = Memo::new(move |_| {
        let status = status.get();
        if status == Status::Online {
            was_online.set_value(true);
        }
        match status {
            Status::Connecting if was_online.get_value() => "Reconnecting".to_owned(),
            Status::Connecting => "Connecting…".to_owned(),
            Status::Online if degraded.get() => "Online · degraded".to_owned(),
            Status::Online => "Online".to_owned(),
            Status::Reconnecting { .. } => "Reconnecting".to_owned(),
            Status::Offline { reason } => format!("Offline: {reason}"),
        }
    });
    let countdown = move || {
        tick.track();
        match status.get() {
            Status::Reconnecting { until_ms, .. } => {
                // Whole seconds, never below 0 (a ceiling of a hair under
                // zero would print "-0").
                let left = ((until_ms - now_ms()) / 1000.0).ceil();
                let secs = if left > 0.0 { left as u64 } else { 0 };
                Some(format!("in {secs} s"))
            }
            Status::Connecting if was_online.get_value() => Some("connecting…".to_owned()),
            _ => None,
        }
    };
    let class = move || match status.get() {
        Status::Online if degraded.get() => "banner degraded",
        Status::Online => "banner online",
        Status::Connecting => "banner connecting",
        Status::Reconnecting { .. } => "banner reconnecting",
        Status::Offline { .. } => "banner offline",
    };
    let can_retry = move || !matches!(status.get(), Status::Online | Status::Connecting);
    view! {
        <div class=class data-testid="banner">
            <span class="dot" aria-hidden="true"></span>
            <span role="status" data-testid="banner-text">{move || state.get()}</span>
            <span class="countdown" aria-hidden="true" data-testid="banner-countdown">{countdown}</span>
            <Show when=can_retry>
                <button type="button" class="link" data-testid="retry-now" on:click=move |_| chat.retry_now()>"Retry now"</button>
            </Show>
        </div>
    }
}

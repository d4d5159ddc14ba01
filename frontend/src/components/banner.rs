//! The connection banner: connecting / online (or degraded) / reconnecting
//! in N s / offline.

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
    let status = move || chat.model.with(|m| m.status.clone());
    // The room on screen cannot store messages for now (cluster mode).
    let degraded = move || {
        chat.model
            .with(|m| m.current_room().is_some_and(|r| r.degraded))
    };
    let text = move || {
        tick.track();
        match status() {
            Status::Connecting => "Connecting…".to_owned(),
            Status::Online if degraded() => "Online · degraded".to_owned(),
            Status::Online => "Online".to_owned(),
            Status::Reconnecting { until_ms, .. } => {
                let secs = ((until_ms - now_ms()) / 1000.0).ceil().max(0.0);
                format!("Reconnecting in {secs} s")
            }
            Status::Offline { reason } => format!("Offline: {reason}"),
        }
    };
    let class = move || match status() {
        Status::Online if degraded() => "banner degraded",
        Status::Online => "banner online",
        Status::Connecting => "banner connecting",
        Status::Reconnecting { .. } => "banner reconnecting",
        Status::Offline { .. } => "banner offline",
    };
    let can_retry = move || !matches!(status(), Status::Online | Status::Connecting);
    view! {
        <div class=class role="status" aria-live="polite" data-testid="banner">
            <span class="dot" aria-hidden="true"></span>
            <span data-testid="banner-text">{text}</span>
            <Show when=can_retry>
                <button class="link" data-testid="retry-now" on:click=move |_| chat.retry_now()>"Retry now"</button>
            </Show>
        </div>
    }
}

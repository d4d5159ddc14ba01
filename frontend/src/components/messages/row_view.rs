//! One row on the page: a day divider, the "new" line, or a message with
//! its author, time and delivery mark (and retry when it failed).

use super::{
    rows::{Row, delivery_tag},
    time::{date, full_date, local_time},
};
use crate::state::{
    Chat,
    model::{Delivery, Line},
};
use leptos::prelude::*;

/// One row: a day divider, the "new" line, or a message.
#[component]
pub(super) fn RowView(row: Row) -> impl IntoView {
    match row {
        Row::Day { day, label } => view! {
            <div class="day" data-testid="day-divider" data-day=day role="separator">
                <span>{label}</span>
            </div>
        }
        .into_any(),
        Row::New => view! {
            <div class="new-line" data-testid="new-line" role="separator">
                <span>"New"</span>
            </div>
        }
        .into_any(),
        Row::Line { line, first } => view! { <MessageRow line=line first=first /> }.into_any(),
    }
}

/// One message (or notice). Text is always shown as text, never as HTML.
#[component]
fn MessageRow(line: Line, first: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let key = line.key.clone();
    if line.system {
        return view! {
            <div class="notice" data-testid="notice" data-key=key dir="auto">{line.text}</div>
        }
        .into_any();
    }
    let tag = delivery_tag(&line.delivery);
    let failed = match &line.delivery {
        Delivery::Failed(why) => Some(why.clone()),
        _ => None,
    };
    let retry = {
        let room = chat.model.with_untracked(|m| m.current.clone());
        let (cid, text) = (line.cid.clone().unwrap_or_default(), line.text.clone());
        move |_| chat.retry(room.clone(), cid.clone(), text.clone())
    };
    let mark = match (line.own, tag) {
        (true, "sending") => Some(("…", "sending")),
        (true, "sent") => Some(("✓", "delivered")),
        _ => None,
    };
    let iso = String::from(date(line.ts).to_iso_string());
    view! {
        <div
            class="message"
            class:first=first
            class:mine=line.own
            data-testid="message"
            data-delivery=tag
            data-key=key
        >
            <Show when=move || first>
                <div class="meta">
                    <span class="author" data-testid="author">{line.from.clone()}</span>
                    <time class="time" datetime=iso.clone() title=full_date(line.ts)>{local_time(line.ts)}</time>
                </div>
            </Show>
            <div class="body">
                <span class="text" data-testid="message-text" dir="auto">{line.text.clone()}</span>
                {mark.map(|(glyph, name)| view! {
                    <span class="state" data-testid="delivery-mark" role="img" aria-label=name title=name>{glyph}</span>
                })}
            </div>
            {failed.map(|why| view! {
                <div class="failed" role="alert" data-testid="failed">
                    "Not sent: " {why} " "
                    <button type="button" class="link" data-testid="retry" on:click=retry.clone()>"Retry"</button>
                </div>
            })}
        </div>
    }
    .into_any()
}

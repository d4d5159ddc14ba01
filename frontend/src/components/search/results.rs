//! The search panel's list: each result (its room, author, local time and
//! text with the matched word starts marked, built as nodes, never as
//! HTML) is a button that goes to the message; what is going on
//! ("Searching…", how many) and why there are none.

use crate::{
    components::local_time,
    state::{Chat, model::Hit},
};
use leptos::prelude::*;

/// The results of the last search, or why there are none.
#[component]
pub(super) fn Results() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let status = move || {
        chat.search.with(|s| {
            if s.busy {
                "Searching…".to_owned()
            } else if s.query.is_empty() || s.error.is_some() {
                String::new()
            } else {
                match s.hits.len() {
                    0 => format!("No messages match “{}”.", s.query),
                    1 => "1 message, newest first.".to_owned(),
                    n => format!("{n} messages, newest first."),
                }
            }
        })
    };
    let error = move || chat.search.with(|s| s.error.clone());
    let hits = move || chat.search.with(|s| s.hits.clone());
    view! {
        <p class="search-status" data-testid="search-status" role="status">{status}</p>
        <p class="error" data-testid="search-error" role="alert">{error}</p>
        <ul class="search-results" data-testid="search-results" aria-label="Results">
            <For each=hits key=|h| format!("{}|{}", h.room, h.seq) let:hit>
                <li><Found hit=hit /></li>
            </For>
        </ul>
    }
}

/// One result: goes to its message.
#[component]
fn Found(hit: Hit) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (room, seq) = (hit.room.clone(), hit.seq);
    let parts = hit
        .parts
        .into_iter()
        .map(|(text, matched)| {
            if matched {
                view! { <mark>{text}</mark> }.into_any()
            } else {
                text.into_any()
            }
        })
        .collect_view();
    view! {
        <button
            type="button"
            class="search-result"
            data-testid="search-result"
            data-room=hit.room
            data-seq=hit.seq
            on:click=move |_| chat.open_result(&room, seq)
        >
            <span class="hit-meta">
                <span class="hit-place" data-testid="result-room">{hit.place}</span>
                " "
                <span class="hit-from" data-testid="result-author">{hit.from}</span>
                " "
                <span class="hit-time">{local_time(hit.ts)}</span>
            </span>
            " "
            <span class="hit-text" data-testid="result-text" dir="auto">{parts}</span>
        </button>
    }
}

//! A reply's quote, above its text: the answered message's author and a
//! one-line excerpt ("a deleted message", "an earlier message" when it
//! is gone or not loaded). It is a button that goes to that message,
//! loading older history as needed.

use crate::state::{Chat, model::Quote};
use leptos::prelude::*;

/// The quote of message `seq` of `room`, which a reply answers.
#[component]
pub(super) fn ReplyQuote(room: String, seq: u64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let quote = {
        let room = room.clone();
        Memo::new(move |_| {
            chat.model
                .with(|m| m.room(&room).map_or(Quote::Unknown, |r| r.quote(seq)))
        })
    };
    let name = move || format!("In reply to {}. Go to message", quote.with(Quote::words));
    let shown = move || match quote.get() {
        Quote::Loaded { from, excerpt } => view! {
            <span class="quote-author">{from}</span>
            ": "
            <span class="quote-text" dir="auto">{excerpt}</span>
        }
        .into_any(),
        other => view! { <span class="quote-text gone">{other.words()}</span> }.into_any(),
    };
    view! {
        <button
            type="button"
            class="quote"
            data-testid="reply-quote"
            aria-label=name
            title="Go to the message this answers"
            on:click=move |_| chat.go_to(&room, seq)
        >
            <span class="quote-mark" aria-hidden="true">"↩"</span>
            {shown}
        </button>
    }
}

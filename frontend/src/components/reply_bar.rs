//! "Replying to NAME: excerpt… ✕" above the composer while the room on
//! screen's composer answers a message. ✕ (or Escape in the composer)
//! cancels; the cursor stays in (or goes back to) the composer.

use crate::state::{Chat, model::Quote};
use leptos::prelude::*;

/// The reply bar of the room on screen (nothing when it answers nothing).
#[component]
pub fn ReplyBar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let replying = Memo::new(move |_| {
        chat.model.with(|m| {
            let room = m.current_room()?;
            let seq = room.replying?;
            Some((room.name.clone(), room.quote(seq)))
        })
    });
    move || {
        replying.get().map(|(room, quote)| {
            let what = match quote {
                Quote::Loaded { from, excerpt } => view! {
                    <strong>{from}</strong>": "<span dir="auto">{excerpt}</span>
                }
                .into_any(),
                other => other.words().into_any(),
            };
            view! {
                <div class="reply-bar" data-testid="reply-bar">
                    <span class="reply-what" data-testid="reply-what">"Replying to " {what}</span>
                    <button
                        type="button"
                        class="icon"
                        data-testid="reply-cancel"
                        aria-label="Cancel reply"
                        title="Cancel reply (Escape)"
                        on:click=move |_| {
                            chat.cancel_reply(&room);
                            chat.focus_composer.update(|n| *n += 1);
                        }
                    >
                        <span aria-hidden="true">"✕"</span>
                    </button>
                </div>
            }
        })
    }
}

//! Search: a field in the top bar (on a phone, a button that opens it),
//! and the panel of results under it (`results`). Enter runs the search;
//! Escape (or ✕) closes the panel, and the cursor goes back to the field
//! (to the button on a phone). The panel is not modal: the rest of the
//! page stays usable.

mod results;

use crate::state::Chat;
use leptos::{ev::KeyboardEvent, html, prelude::*};
use results::Results;

/// What the filters are, under the field.
const HINT: &str = "Filters: from:NAME, in:ROOM or #ROOM, before:YYYY-MM-DD, after:YYYY-MM-DD. Words match the start of words.";

/// The search field, its phone button, and the results panel.
#[component]
pub fn SearchBox() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let field = NodeRef::<html::Input>::new();
    let toggle = NodeRef::<html::Button>::new();
    let text = RwSignal::new(String::new());
    let open = Memo::new(move |_| chat.search.with(|s| s.open));
    // Back to the field, or to the phone's button when the field is not
    // shown (it hides with the panel there).
    let close = move || {
        chat.close_search();
        request_animation_frame(move || {
            let shown = field
                .get_untracked()
                .filter(|f| f.offset_width() > 0 || f.offset_height() > 0);
            match (shown, toggle.get_untracked()) {
                (Some(f), _) => {
                    let _ = f.focus();
                }
                (None, Some(t)) => {
                    let _ = t.focus();
                }
                (None, None) => {}
            }
        });
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" && open.get_untracked() {
            ev.prevent_default();
            close();
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        chat.run_search(&text.get_untracked());
    };
    let open_on_phone = move |_| {
        if open.get_untracked() {
            close();
        } else {
            chat.open_search();
            request_animation_frame(move || {
                if let Some(f) = field.get_untracked() {
                    let _ = f.focus();
                }
            });
        }
    };
    view! {
        <button
            type="button"
            class="icon only-phone search-toggle"
            data-testid="search-toggle"
            node_ref=toggle
            aria-controls="search-panel"
            aria-expanded=move || open.get().to_string()
            on:click=open_on_phone
        >
            <span class="glass" aria-hidden="true"></span>
            <span class="sr-only">"Search"</span>
        </button>
        <form class="search" class:open=open role="search" on:submit=submit on:keydown=on_keydown>
            <label for="search-input" class="sr-only">"Search messages"</label>
            <input
                id="search-input"
                type="search"
                data-testid="search-input"
                node_ref=field
                placeholder="Search"
                autocomplete="off"
                aria-describedby="search-hint"
                aria-controls="search-panel"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            />
        </form>
        // Always in the page (hidden when closed), so what points at it
        // always finds it.
        <section
            class="search-panel"
            id="search-panel"
            data-testid="search-panel"
            aria-label="Search results"
            hidden=move || !open.get()
            on:keydown=on_keydown
        >
            <div class="search-head">
                <p id="search-hint" class="hint" data-testid="search-hint">{HINT}</p>
                <button
                    type="button"
                    class="icon"
                    data-testid="search-close"
                    aria-label="Close search"
                    title="Close search (Escape)"
                    on:click=move |_| close()
                >
                    <span aria-hidden="true">"✕"</span>
                </button>
            </div>
            <Results />
        </section>
    }
}

//! The nickname dialog: asked on the first visit, editable later.

use crate::state::Chat;
use leptos::{ev::SubmitEvent, html, prelude::*};

/// A modal that asks for a nickname.
#[component]
pub fn NickDialog() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let input = NodeRef::<html::Input>::new();
    let draft = RwSignal::new(String::new());
    Effect::new(move |_| {
        if chat.asking_nick.get() {
            draft.set(chat.model.with_untracked(|m| m.nick.clone()));
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let nick = draft.get_untracked().trim().to_owned();
        if !nick.is_empty() {
            chat.set_nick(nick);
        }
    };
    view! {
        <Show when=move || chat.asking_nick.get()>
            <div class="overlay">
                <form class="dialog" role="dialog" aria-modal="true" aria-labelledby="nick-title" on:submit=submit data-testid="nick-dialog">
                    <h2 id="nick-title">"Choose a nickname"</h2>
                    <label for="nick-input">"Nickname"</label>
                    <input
                        id="nick-input"
                        node_ref=input
                        data-testid="nick-input"
                        maxlength="32"
                        autocomplete="nickname"
                        prop:value=move || draft.get()
                        on:input=move |ev| draft.set(event_target_value(&ev))
                    />
                    <div class="actions">
                        <button type="button" class="link" on:click=move |_| chat.asking_nick.set(false)>"Cancel"</button>
                        <button type="submit" data-testid="nick-save">"Start chatting"</button>
                    </div>
                </form>
            </div>
        </Show>
    }
}

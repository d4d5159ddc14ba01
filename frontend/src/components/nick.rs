//! The nickname dialog: asked on the first visit, editable later. A real
//! modal (`<dialog>` opened with `showModal`): the page behind is inert, so
//! Tab stays inside; Escape closes it; focus goes back where it was; a
//! refused nickname is said inside it, at the input.

use crate::state::Chat;
use leptos::{ev::SubmitEvent, html, prelude::*};
use wasm_bindgen::JsCast;

/// A modal that asks for a nickname.
#[component]
pub fn NickDialog() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let dialog = NodeRef::<html::Dialog>::new();
    let input = NodeRef::<html::Input>::new();
    let draft = RwSignal::new(String::new());
    // Where focus was when the dialog opened, to give it back.
    let opener = StoredValue::new(None::<send_wrapper::SendWrapper<web_sys::HtmlElement>>);

    // The dialog is always in the page (closed: hidden, and out of the
    // accessibility tree); this opens it as a modal, or closes it.
    Effect::new(move |_| {
        let asking = chat.asking_nick.get();
        let Some(el) = dialog.get() else { return };
        if asking && !el.open() {
            let active = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.active_element())
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
            opener.set_value(active.map(send_wrapper::SendWrapper::new));
            draft.set(chat.model.with_untracked(|m| m.nick.clone()));
            chat.nick_error.set(None);
            let _ = el.show_modal();
            if let Some(input) = input.get_untracked() {
                let _ = input.focus();
                input.select();
            }
        } else if !asking && el.open() {
            el.close();
        }
    });
    // Closed by Escape, Cancel, or a granted nickname: focus goes back.
    let closed = move || {
        chat.asking_nick.set(false);
        let back = opener
            .try_get_value()
            .flatten()
            .filter(|el| el.is_connected() && el.tag_name() != "BODY");
        match back {
            Some(el) => {
                let _ = el.focus();
            }
            None => chat.focus_composer.update(|n| *n += 1),
        }
    };
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let nick = draft.get_untracked().trim().to_owned();
        if nick.is_empty() {
            chat.nick_error
                .set(Some("a nickname needs at least one letter or digit".into()));
        } else {
            chat.set_nick(nick);
        }
    };
    let error = move || chat.nick_error.get();
    let first_visit = move || {
        chat.model
            .with(|m| m.nick.is_empty() || m.nick.starts_with("guest-"))
    };
    view! {
            <dialog
                class="dialog"
                node_ref=dialog
                aria-labelledby="nick-title"
                data-testid="nick-dialog"
                on:close=move |_| closed()
            >
                <form on:submit=submit>
                    <h2 id="nick-title">"Choose a nickname"</h2>
                    <label for="nick-input">"Nickname"</label>
                    <input
                        id="nick-input"
                        node_ref=input
                        data-testid="nick-input"
                        maxlength="32"
                        autocomplete="nickname"
                        aria-invalid=move || error().is_some().to_string()
                        aria-describedby="nick-error"
                        prop:value=move || draft.get()
                        on:input=move |ev| {
                            draft.set(event_target_value(&ev));
                            chat.nick_error.set(None);
                        }
                    />
                    <p id="nick-error" class="error" data-testid="nick-error" role="alert">{error}</p>
                    <p>
                        <button
                            type="button"
                            class="link"
                            data-testid="nick-signin"
                            on:click=move |_| {
                                chat.asking_nick.set(false);
                                chat.asking_account.set(true);
                            }
                        >
                            "Have an account? Sign in"
                        </button>
                    </p>
                    <div class="actions">
                        <button
                            type="button"
                            class="link"
                            data-testid="nick-cancel"
                            on:click=move |_| chat.asking_nick.set(false)
                        >
                            "Cancel"
                        </button>
                        <button type="submit" data-testid="nick-save">
                            {move || if first_visit() { "Start chatting" } else { "Save" }}
                        </button>
                    </div>
                </form>
            </dialog>
    }
}

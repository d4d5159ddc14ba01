//! The account: the header's "Sign in" (a guest) or the account's name and
//! "Sign out", and the sign-in dialog, which also creates an account. A
//! real modal like the nickname dialog: Tab stays inside, Escape closes it
//! (unless the server takes no guests), focus goes back where it was.

use crate::state::{Account, Chat};
use leptos::{ev::SubmitEvent, html, prelude::*};
use wasm_bindgen::JsCast;

/// Who is signed in, and the way in or out: in the header, and (on a
/// phone, where the header has no room for it) in the rooms drawer, whose
/// copy's test ids start with `prefix`.
#[component]
pub fn AccountBar(
    /// Before each test id (`""` in the header, `"drawer-"` in the drawer).
    #[prop(optional)]
    prefix: &'static str,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let signed = move || match chat.account.get() {
        Account::Signed { name } => Some(name),
        _ => None,
    };
    view! {
        <Show
            when=move || signed().is_some()
            fallback=move || view! {
                <button
                    type="button"
                    class="link signin-button"
                    data-testid=format!("{prefix}signin-button")
                    on:click=move |_| chat.asking_account.set(true)
                >
                    "Sign in"
                </button>
            }
        >
            <span class="account-name" data-testid=format!("{prefix}account-name")>
                <span class="sr-only">"Signed in as "</span>
                {move || signed().unwrap_or_default()}
            </span>
            <button
                type="button"
                class="link signout-button"
                data-testid=format!("{prefix}signout-button")
                on:click=move |_| chat.sign_out()
            >
                "Sign out"
            </button>
        </Show>
    }
}

/// A modal that signs in, or creates an account.
#[component]
pub fn AccountDialog() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let dialog = NodeRef::<html::Dialog>::new();
    let first = NodeRef::<html::Input>::new();
    let creating = RwSignal::new(false);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let opener = StoredValue::new(None::<send_wrapper::SendWrapper<web_sys::HtmlElement>>);

    Effect::new(move |_| {
        let asking = chat.asking_account.get();
        let Some(el) = dialog.get() else { return };
        if asking && !el.open() {
            let active = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.active_element())
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
            opener.set_value(active.map(send_wrapper::SendWrapper::new));
            chat.account_error.set(None);
            let _ = el.show_modal();
            if let Some(input) = first.get_untracked() {
                let _ = input.focus();
            }
        } else if !asking && el.open() {
            el.close();
        }
    });
    let closed = move || {
        chat.asking_account.set(false);
        password.set(String::new());
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
        let name = username.get_untracked().trim().to_owned();
        let secret = password.get_untracked();
        if name.is_empty() || secret.is_empty() {
            chat.account_error
                .set(Some("enter a username and a password".into()));
            return;
        }
        chat.sign_in(name, secret, creating.get_untracked());
    };
    let error = move || chat.account_error.get();
    let title = move || {
        if creating.get() {
            "Create an account"
        } else {
            "Sign in"
        }
    };
    view! {
        <dialog
            class="dialog"
            node_ref=dialog
            aria-labelledby="account-title"
            data-testid="account-dialog"
            on:close=move |_| closed()
        >
            <form on:submit=submit>
                <h2 id="account-title">{title}</h2>
                <p class="notice" data-testid="account-notice">
                    {move || chat.account_notice.get()}
                </p>
                <label for="account-username">"Username"</label>
                <input
                    id="account-username"
                    node_ref=first
                    data-testid="account-username"
                    maxlength="32"
                    autocomplete="username"
                    prop:value=move || username.get()
                    on:input=move |ev| {
                        username.set(event_target_value(&ev));
                        chat.account_error.set(None);
                    }
                />
                <label for="account-password">"Password"</label>
                <input
                    id="account-password"
                    type="password"
                    data-testid="account-password"
                    maxlength="256"
                    autocomplete=move || if creating.get() { "new-password" } else { "current-password" }
                    aria-invalid=move || error().is_some().to_string()
                    aria-describedby="account-error"
                    prop:value=move || password.get()
                    on:input=move |ev| {
                        password.set(event_target_value(&ev));
                        chat.account_error.set(None);
                    }
                />
                <p id="account-error" class="error" data-testid="account-error" role="alert">{error}</p>
                <p>
                    <button
                        type="button"
                        class="link"
                        data-testid="account-mode"
                        on:click=move |_| {
                            creating.update(|c| *c = !*c);
                            chat.account_error.set(None);
                        }
                    >
                        {move || if creating.get() { "I have an account: sign in" } else { "New here? Create an account" }}
                    </button>
                </p>
                <div class="actions">
                    <button
                        type="button"
                        class="link"
                        data-testid="account-cancel"
                        on:click=move |_| chat.asking_account.set(false)
                    >
                        "Cancel"
                    </button>
                    <button type="submit" data-testid="account-submit" disabled=move || chat.account_busy.get()>
                        {move || if creating.get() { "Create account" } else { "Sign in" }}
                    </button>
                </div>
            </form>
        </dialog>
    }
}

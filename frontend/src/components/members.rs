//! Who is in the room on screen. While the connection is down nobody's
//! presence is known: the list greys out and says so.

use crate::{net::socket::Status, state::Chat};
use leptos::prelude::*;

/// The member list of the room on screen.
#[component]
pub fn Members() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let members = move || {
        chat.model.with(|m| {
            m.current_room()
                .map(|r| r.members.clone())
                .unwrap_or_default()
        })
    };
    let online = Memo::new(move |_| chat.model.with(|m| m.status == Status::Online));
    let me = move || chat.model.with(|m| m.nick.clone());
    view! {
        <aside
            class="members"
            id="members-panel"
            class:offline=move || !online.get()
            aria-label="Members"
            data-testid="members-panel"
            data-online=move || online.get().to_string()
        >
            <h2>
                "Members " <span class="count">{move || members().len()}</span>
                <Show when=move || !online.get()>
                    <span class="stale">" · as last seen"</span>
                </Show>
            </h2>
            <ul data-testid="members">
                <For each=members key=|n| n.clone() let:nick>
                    {
                        let name = nick.clone();
                        view! {
                            <li class:me=move || name == me()>
                                <span class="presence" aria-hidden="true"></span>
                                {nick}
                            </li>
                        }
                    }
                </For>
            </ul>
        </aside>
    }
}

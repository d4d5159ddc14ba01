//! Who is in the room on screen.

use crate::state::Chat;
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
    let me = move || chat.model.with(|m| m.nick.clone());
    view! {
        <aside class="members" aria-label="Members">
            <h2>"Members " <span class="count">{move || members().len()}</span></h2>
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

//! Rooms: the joined ones with member counts and unread badges, a form to
//! join or create one, and the list of every room on the server.

use crate::state::Chat;
use leptos::{ev::SubmitEvent, prelude::*};

/// The rooms sidebar.
#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let draft = RwSignal::new(String::new());
    let joined = move || {
        chat.model.with(|m| {
            m.rooms
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        r.members.len(),
                        r.unread,
                        r.name == m.current,
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let room = draft
            .get_untracked()
            .trim()
            .trim_start_matches('#')
            .to_owned();
        if !room.is_empty() {
            chat.join(room);
            draft.set(String::new());
        }
    };
    // Refresh the room directory now and then while the sidebar exists.
    chat.refresh_directory();
    if let Ok(handle) = set_interval_with_handle(
        move || chat.refresh_directory(),
        std::time::Duration::from_secs(15),
    ) {
        on_cleanup(move || handle.clear());
    }
    let others = move || {
        let mine: Vec<String> = chat
            .model
            .with(|m| m.rooms.iter().map(|r| r.name.clone()).collect());
        chat.directory.with(|d| {
            d.iter()
                .filter(|r| !mine.contains(&r.room))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <nav class="sidebar" aria-label="Rooms">
            <h2>"Rooms"</h2>
            <ul class="rooms" data-testid="rooms">
                <For
                    each=joined
                    key=|(name, count, unread, active)| format!("{name}|{count}|{unread}|{active}")
                    let:room
                >
                    {
                        let (name, count, unread, active) = room;
                        let show = name.clone();
                        let leave = name.clone();
                        let is_lobby = name == shared::event::LOBBY;
                        view! {
                            <li class:active=active>
                                <button
                                    class="room"
                                    data-testid=format!("room-{name}")
                                    aria-current=if active { "page" } else { "false" }
                                    on:click=move |_| chat.show(&show)
                                >
                                    <span class="name">"#" {name.clone()}</span>
                                    <span class="count" title="members">{count}</span>
                                    <Show when=move || { unread > 0 }>
                                        <span class="badge" data-testid="unread" aria-label=format!("{unread} unread")>{unread}</span>
                                    </Show>
                                </button>
                                <Show when=move || !is_lobby>
                                    {
                                        let leave = leave.clone();
                                        view! {
                                            <button
                                                class="icon leave"
                                                data-testid=format!("leave-{leave}")
                                                aria-label=format!("Leave {leave}")
                                                on:click=move |_| chat.leave(leave.clone())
                                            >"×"</button>
                                        }
                                    }
                                </Show>
                            </li>
                        }
                    }
                </For>
            </ul>
            <form class="join" on:submit=submit>
                <label for="join-input" class="sr-only">"Join or create a room"</label>
                <input
                    id="join-input"
                    data-testid="join-input"
                    placeholder="join or create…"
                    maxlength="32"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="join-button">"Join"</button>
            </form>
            <h2>"Other rooms"</h2>
            <ul class="directory">
                <For each=others key=|r| format!("{}|{}", r.room, r.members) let:info>
                    {
                        let room = info.room.clone();
                        view! {
                            <li>
                                <button class="room" on:click=move |_| chat.join(room.clone())>
                                    <span class="name">"#" {info.room.clone()}</span>
                                    <span class="count">{info.members}</span>
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </nav>
    }
}

//! Rooms: the joined ones with member counts and unread badges, a form to
//! join or create one (names checked at the input), and the list of every
//! room on the server. On a phone it is a drawer that closes on a choice.

use super::AccountBar;
use crate::state::{Account, Chat, model::label};
use leptos::{ev::SubmitEvent, prelude::*};
use shared::room_name::room_name;

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
                        label(&r.name, r.title.as_deref(), &m.nick),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let raw = draft.get_untracked();
        match room_name(raw.trim().trim_start_matches('#')) {
            Ok(room) => {
                chat.join(room, chat.join_error);
                draft.set(String::new());
            }
            Err(e) => chat.join_error.set(Some(e.to_string())),
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
    let error = move || chat.join_error.get();
    view! {
        <nav class="sidebar" id="rooms-drawer" aria-label="Rooms">
            <h2>"Rooms"</h2>
            <ul class="rooms" data-testid="rooms">
                <For
                    each=joined
                    key=|(name, count, unread, active, shown)| format!("{name}|{count}|{unread}|{active}|{shown}")
                    let:room
                >
                    {
                        let (name, count, unread, active, shown) = room;
                        let show = name.clone();
                        let leave = name.clone();
                        let is_lobby = name == shared::event::LOBBY;
                        // Read as one name, "#x, 2 members, 1 unread"; the
                        // figures beside it are for the eye.
                        let people = if count == 1 { "member" } else { "members" };
                        let mut spoken = format!("{shown}, {count} {people}");
                        if unread > 0 {
                            spoken.push_str(&format!(", {unread} unread"));
                        }
                        view! {
                            <li class:active=active>
                                <button
                                    type="button"
                                    class="room"
                                    data-testid=format!("room-{name}")
                                    aria-current=if active { "page" } else { "false" }
                                    title=shown.clone()
                                    on:click=move |_| chat.show(&show)
                                >
                                    <span class="sr-only">{spoken}</span>
                                    <span class="name" aria-hidden="true">{shown.clone()}</span>
                                    <span class="count" aria-hidden="true">{count}</span>
                                    <Show when=move || { unread > 0 }>
                                        <span class="badge" aria-hidden="true" data-testid="unread">{unread}</span>
                                    </Show>
                                </button>
                                <Show when=move || !is_lobby>
                                    {
                                        let leave = leave.clone();
                                        view! {
                                            <button
                                                type="button"
                                                class="icon leave"
                                                data-testid=format!("leave-{leave}")
                                                aria-label=format!("Leave {shown}")
                                                title=format!("Leave {shown}")
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
            <form class="join" on:submit=submit novalidate>
                <label for="join-input" class="sr-only">"Join or create a room"</label>
                <input
                    id="join-input"
                    data-testid="join-input"
                    placeholder="join or create…"
                    maxlength="33"
                    autocomplete="off"
                    aria-invalid=move || error().is_some().to_string()
                    aria-describedby="join-error"
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        let value = event_target_value(&ev);
                        // Said as it is typed, before anything is sent.
                        let name = value.trim().trim_start_matches('#');
                        let why = (!name.is_empty())
                            .then(|| room_name(name).err().map(|e| e.to_string()))
                            .flatten();
                        chat.join_error.set(why);
                        draft.set(value);
                    }
                />
                <button type="submit" data-testid="join-button">"Join"</button>
            </form>
            <p id="join-error" class="error join-error" data-testid="join-error" role="alert">{error}</p>
            <Show when=move || matches!(chat.account.get(), Account::Signed { .. })>
                <PrivateRoomForm />
            </Show>
            <div class="account-bar drawer-account">
                <AccountBar prefix="drawer-" />
            </div>
            <h2>"Other rooms"</h2>
            <ul class="directory">
                <For each=others key=|r| format!("{}|{}", r.room, r.members) let:info>
                    {
                        let room = info.room.clone();
                        let shown = chat.model.with_untracked(|m| label(&info.room, info.title.as_deref(), &m.nick));
                        let people = if info.members == 1 { "member" } else { "members" };
                        let spoken = format!("{shown}, {} {people}", info.members);
                        view! {
                            <li>
                                <button
                                    type="button"
                                    class="room"
                                    title=shown.clone()
                                    on:click=move |_| chat.join(room.clone(), chat.join_error)
                                >
                                    <span class="sr-only">{spoken}</span>
                                    <span class="name" aria-hidden="true">{shown.clone()}</span>
                                    <span class="count" aria-hidden="true">{info.members}</span>
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </nav>
    }
}

/// Makes a private room (signed-in people only): a title, and the server
/// names it.
#[component]
fn PrivateRoomForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let title = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let wanted = title.get_untracked().trim().to_owned();
        if wanted.is_empty() {
            error.set(Some("a private room needs a title".into()));
            return;
        }
        chat.create_private(wanted, error);
        title.set(String::new());
    };
    view! {
        <form class="join" on:submit=submit novalidate>
            <label for="private-input" class="sr-only">"New private room"</label>
            <input
                id="private-input"
                data-testid="private-input"
                placeholder="new private room…"
                maxlength="64"
                autocomplete="off"
                aria-describedby="private-error"
                prop:value=move || title.get()
                on:input=move |ev| {
                    title.set(event_target_value(&ev));
                    error.set(None);
                }
            />
            <button type="submit" data-testid="private-button">"Create"</button>
        </form>
        <p id="private-error" class="error join-error" data-testid="private-error" role="alert">
            {move || error.get()}
        </p>
    }
}

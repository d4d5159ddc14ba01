//! The page layout.

use super::{Banner, Composer, Members, MessageList, NickDialog, Sidebar};
use crate::state::{Chat, socket_url};
use leptos::prelude::*;

/// The whole app: connects to the server this page came from.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::start(&socket_url());
    view! { <ChatApp chat=chat /> }
}

/// The app around a given [`Chat`] (tests pass their own).
#[component]
pub fn ChatApp(
    /// The state the app shows and drives.
    chat: Chat,
) -> impl IntoView {
    provide_context(chat);
    let show_rooms = RwSignal::new(false);
    let show_members = RwSignal::new(false);
    let title = move || chat.model.with(|m| format!("#{}", m.current));
    view! {
        <div class="app" class:show-rooms=move || show_rooms.get() class:show-members=move || show_members.get()>
            <header class="topbar">
                <button class="icon only-narrow" aria-label="Rooms" on:click=move |_| show_rooms.update(|v| *v = !*v)>"☰"</button>
                <h1 class="room-title" data-testid="room-title">{title}</h1>
                <Banner />
                <button
                    class="nick-button"
                    data-testid="nick-button"
                    aria-label="Change nickname"
                    on:click=move |_| chat.asking_nick.set(true)
                >
                    {move || chat.model.with(|m| if m.nick.is_empty() { "…".to_owned() } else { m.nick.clone() })}
                </button>
                <button class="icon only-narrow" aria-label="Members" on:click=move |_| show_members.update(|v| *v = !*v)>"⋮"</button>
            </header>
            <Sidebar />
            <main class="conversation" aria-label="Conversation">
                <MessageList />
                <Composer />
            </main>
            <Members />
            <NickDialog />
        </div>
    }
}

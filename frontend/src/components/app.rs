//! The page layout, and what a second tab of the same browser shows.

use super::{
    AccountBar, AccountDialog, Banner, Composer, Members, MessageList, NickDialog, ReplyBar,
    SearchBox, Sidebar,
};
use crate::state::{Account, Chat, Tab, socket_url};
use leptos::prelude::*;

/// The whole app: connects to the server this page came from, if no other
/// tab of this browser is chatting already.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::start_in_tab(&socket_url());
    view! { <ChatApp chat=chat /> }
}

/// The app around a given [`Chat`] (tests pass their own).
#[component]
pub fn ChatApp(
    /// The state the app shows and drives.
    chat: Chat,
) -> impl IntoView {
    provide_context(chat);
    view! {
        <Show when=move || chat.tab.get() != Tab::Elsewhere fallback=OtherTab>
            <Layout />
        </Show>
    }
}

/// Another tab of this browser chats: say so, and offer to take over.
#[component]
fn OtherTab() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <main class="elsewhere" data-testid="elsewhere">
            <h1>"Chat is open in another tab"</h1>
            <p>"This browser chats in one tab at a time, as the same person. Close the other tab, or use this one instead."</p>
            <button type="button" class="primary" data-testid="use-here" on:click=move |_| chat.claim_tab(true)>
                "Use here"
            </button>
        </main>
    }
}

/// Top bar, rooms, conversation, members, and the nickname and sign-in
/// dialogs.
#[component]
fn Layout() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let show_members = RwSignal::new(false);
    let title = move || {
        chat.model.with(|m| {
            let title = m.current_room().and_then(|r| r.title.clone());
            crate::state::model::label(&m.current, title.as_deref(), &m.nick)
        })
    };
    let unread = move || chat.model.with(|m| m.unread_elsewhere());
    let close_drawers = move |_| {
        chat.rooms_open.set(false);
        show_members.set(false);
    };
    view! {
        <div
            class="app"
            class:show-rooms=move || chat.rooms_open.get()
            class:show-members=move || show_members.get()
        >
            <header class="topbar">
                <button
                    type="button"
                    class="icon only-narrow menu"
                    data-testid="menu-button"
                    aria-controls="rooms-drawer"
                    aria-expanded=move || chat.rooms_open.get().to_string()
                    on:click=move |_| {
                        show_members.set(false);
                        chat.rooms_open.update(|v| *v = !*v);
                    }
                >
                    <span aria-hidden="true">"☰"</span>
                    <span class="sr-only">"Rooms"</span>
                    <Show when=move || { unread() > 0 }>
                        <span class="badge" data-testid="menu-unread">
                            {unread}
                            <span class="sr-only">" unread"</span>
                        </span>
                    </Show>
                </button>
                <h1 class="room-title" data-testid="room-title">{title}</h1>
                <SearchBox />
                <Banner />
                <Show when=move || !matches!(chat.account.get(), Account::Signed { .. })>
                    <button
                        type="button"
                        class="nick-button"
                        data-testid="nick-button"
                        title="Change nickname"
                        on:click=move |_| chat.asking_nick.set(true)
                    >
                        <span class="sr-only">"Nickname: "</span>
                        <span class="nick">
                            {move || chat.model.with(|m| if m.nick.is_empty() { "…".to_owned() } else { m.nick.clone() })}
                        </span>
                    </button>
                </Show>
                <span class="account-bar">
                    <AccountBar />
                </span>
                <button
                    type="button"
                    class="icon only-narrow members-toggle"
                    aria-controls="members-panel"
                    aria-expanded=move || show_members.get().to_string()
                    on:click=move |_| {
                        chat.rooms_open.set(false);
                        show_members.update(|v| *v = !*v);
                    }
                >
                    <span aria-hidden="true">"⋮"</span>
                    <span class="sr-only">"Members"</span>
                </button>
            </header>
            <div class="backdrop" data-testid="drawer-backdrop" aria-hidden="true" on:click=close_drawers></div>
            <Sidebar />
            <main class="conversation" aria-label="Conversation">
                <MessageList />
                <ReplyBar />
                <Composer />
            </main>
            <Members />
            <NickDialog />
            <AccountDialog />
        </div>
    }
}

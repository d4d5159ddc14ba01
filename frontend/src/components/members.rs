//! Who is in the room on screen. While the connection is down nobody's
//! presence is known: the list greys out and says so. Signed in, each
//! other member can be sent a direct message; in a room this account
//! owns or moderates, removed (kick) or banned (and, by the owner, made a
//! moderator), and a private room's owner and moderators let accounts in
//! by name.

use crate::{
    net::socket::Status,
    state::{Account, Chat},
};
use leptos::{ev::SubmitEvent, prelude::*};
use shared::event;

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
    let signed = move || matches!(chat.account.get(), Account::Signed { .. });
    let current = move || chat.model.with(|m| m.current.clone());
    let moderates = Memo::new(move |_| {
        chat.model
            .with(|m| m.current_room().is_some_and(|r| r.moderated_by_me()))
    });
    let owns = Memo::new(move |_| {
        chat.model.with(|m| {
            m.current_room()
                .is_some_and(|r| r.role.as_deref() == Some("owner"))
                && !m.current.starts_with("dm-")
        })
    });
    let private = Memo::new(move |_| chat.model.with(|m| m.current.starts_with("p-")));
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
                        let mine = name.clone();
                        let others = move || signed() && mine != me();
                        let (dm, kick, ban, promote) = (name.clone(), name.clone(), name.clone(), name.clone());
                        view! {
                            <li class:me=move || name == me()>
                                <span class="presence" aria-hidden="true"></span>
                                <span class="member-name">{nick.clone()}</span>
                                <Show when=others.clone()>
                                    {
                                        let dm = dm.clone();
                                        view! {
                                            <button
                                                type="button"
                                                class="link"
                                                data-testid=format!("dm-{dm}")
                                                aria-label=format!("Message {dm}")
                                                on:click=move |_| chat.open_dm(dm.clone())
                                            >"Message"</button>
                                        }
                                    }
                                </Show>
                                <Show when={
                                    let others = others.clone();
                                    move || others() && moderates.get()
                                }>
                                    {
                                        let (kick, ban) = (kick.clone(), ban.clone());
                                        view! {
                                            <button
                                                type="button"
                                                class="link"
                                                data-testid=format!("kick-{kick}")
                                                aria-label=format!("Remove {kick} from this room")
                                                on:click={
                                                    let kick = kick.clone();
                                                    move |_| chat.moderate(event::KICK, current(), kick.clone())
                                                }
                                            >"Remove"</button>
                                            <button
                                                type="button"
                                                class="link danger"
                                                data-testid=format!("ban-{ban}")
                                                aria-label=format!("Ban {ban} from this room")
                                                on:click={
                                                    let ban = ban.clone();
                                                    move |_| chat.moderate(event::BAN, current(), ban.clone())
                                                }
                                            >"Ban"</button>
                                        }
                                    }
                                </Show>
                                <Show when={
                                    let others = others.clone();
                                    move || others() && owns.get()
                                }>
                                    {
                                        let promote = promote.clone();
                                        view! {
                                            <button
                                                type="button"
                                                class="link"
                                                data-testid=format!("mod-{promote}")
                                                aria-label=format!("Make {promote} a moderator of this room")
                                                on:click={
                                                    let promote = promote.clone();
                                                    move |_| chat.moderate(event::MODERATOR, current(), promote.clone())
                                                }
                                            >"Make moderator"</button>
                                        }
                                    }
                                </Show>
                            </li>
                        }
                    }
                </For>
            </ul>
            <Show when=move || moderates.get() && private.get()>
                <InviteForm />
            </Show>
            <Show when=move || moderates.get()>
                <ModerationLog />
            </Show>
        </aside>
    }
}

/// What the room's moderators did, for its moderators: fetched when asked.
#[component]
fn ModerationLog() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rows = RwSignal::new(None::<Result<Vec<String>, String>>);
    // Another room on screen: the log shown was the other room's.
    let room = Memo::new(move |_| chat.model.with(|m| m.current.clone()));
    Effect::new(move |_| {
        room.track();
        rows.set(None);
    });
    let fetch = move |_| {
        let (room, client) = (
            chat.model.with_untracked(|m| m.current.clone()),
            chat.client(),
        );
        leptos::task::spawn_local(async move {
            let answer = client.actions(&room).await.map_err(|e| e.to_string());
            rows.try_set(Some(answer.map(|actions| {
                actions
                    .into_iter()
                    .map(|a| {
                        let when = super::local_time(a.at);
                        format!("{when} {} {} {}", a.by, past(&a.what), a.whom)
                    })
                    .collect()
            })));
        });
    };
    view! {
        <h2>"Moderation"</h2>
        <button type="button" class="link" data-testid="actions-button" on:click=fetch>
            "Show what moderators did"
        </button>
        {move || match rows.get() {
            None => ().into_any(),
            Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            Some(Ok(lines)) if lines.is_empty() => {
                view! { <p data-testid="actions">"Nothing yet."</p> }.into_any()
            }
            Some(Ok(lines)) => view! {
                <ol class="actions" data-testid="actions">
                    {lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                </ol>
            }
            .into_any(),
        }}
    }
}

/// An action as said in the log ("banned").
fn past(what: &str) -> &str {
    match what {
        "invite" => "let in",
        "kick" => "removed",
        "ban" => "banned",
        "unban" => "lifted the ban on",
        "moderator" => "made a moderator:",
        other => other,
    }
}

/// Lets an account into the private room on screen, by name.
#[component]
fn InviteForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let user = RwSignal::new(String::new());
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let who = user.get_untracked().trim().to_owned();
        if who.is_empty() {
            return;
        }
        let room = chat.model.with_untracked(|m| m.current.clone());
        chat.moderate(event::INVITE, room, who);
        user.set(String::new());
    };
    view! {
        <form class="join invite" on:submit=submit novalidate>
            <label for="invite-input" class="sr-only">"Invite by username"</label>
            <input
                id="invite-input"
                data-testid="invite-input"
                placeholder="invite by username…"
                maxlength="32"
                autocomplete="off"
                prop:value=move || user.get()
                on:input=move |ev| user.set(event_target_value(&ev))
            />
            <button type="submit" data-testid="invite-button">"Invite"</button>
        </form>
    }
}

//! The message list: authors, local times, grouping, auto-scroll with a
//! "new messages" pill, "load older", delivery state with retry.

use crate::state::{
    Chat,
    model::{Delivery, Line},
};
use leptos::{html, prelude::*};

/// Consecutive messages of one author within this long form a group.
const GROUP_MS: i64 = 5 * 60 * 1000;

/// `HH:MM` in the browser's time zone.
pub fn local_time(ts: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

fn delivery_tag(d: &Delivery) -> &'static str {
    match d {
        Delivery::Sending => "sending",
        Delivery::Sent => "sent",
        Delivery::Failed(_) => "failed",
    }
}

/// The messages of the room on screen.
#[component]
pub fn MessageList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let list = NodeRef::<html::Div>::new();
    let at_bottom = RwSignal::new(true);
    let unseen = RwSignal::new(false);

    let rows = move || {
        chat.model.with(|m| {
            let Some(room) = m.current_room() else {
                return Vec::new();
            };
            let mut previous: Option<&Line> = None;
            room.lines
                .iter()
                .map(|line| {
                    let first = match previous {
                        Some(p) => {
                            p.system
                                || line.system
                                || p.from != line.from
                                || line.ts - p.ts > GROUP_MS
                        }
                        None => true,
                    };
                    previous = Some(line);
                    (line.clone(), first, room.name.clone())
                })
                .collect::<Vec<_>>()
        })
    };
    let has_older = move || {
        chat.model
            .with(|m| m.current_room().is_some_and(|r| r.has_older))
    };
    let typing = move || {
        chat.model.with(|m| {
            let names = m
                .current_room()
                .map(|r| r.typing.clone())
                .unwrap_or_default();
            match names.as_slice() {
                [] => String::new(),
                [one] => format!("{one} is typing…"),
                [a, b] => format!("{a} and {b} are typing…"),
                _ => "Several people are typing…".to_owned(),
            }
        })
    };

    // Also runs from an animation frame, possibly after the list is gone.
    let scroll_to_bottom = move || {
        if let Some(el) = list.try_get_untracked().flatten() {
            el.set_scroll_top(el.scroll_height());
        }
        unseen.try_set(false);
    };
    // After the list changes: follow the bottom, or say there is more below.
    let count = move || {
        chat.model.with(|m| {
            (
                m.current.clone(),
                m.current_room().map_or(0, |r| r.lines.len()),
            )
        })
    };
    Effect::new(move |previous: Option<(String, usize)>| {
        let now = count();
        let switched = previous.as_ref().is_none_or(|p| p.0 != now.0);
        let grew = previous.as_ref().is_some_and(|p| now.1 > p.1);
        if switched || at_bottom.get_untracked() {
            request_animation_frame(scroll_to_bottom);
        } else if grew {
            unseen.set(true);
        }
        now
    });
    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked() {
            let bottom = el.scroll_height() - el.scroll_top() - el.client_height() < 40;
            at_bottom.set(bottom);
            if bottom {
                unseen.set(false);
            }
        }
    };

    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll data-testid="messages" role="log" aria-live="polite" aria-label="Messages">
            <Show when=has_older>
                <button class="load-older" data-testid="load-older" on:click=move |_| chat.load_older()>"Load older messages"</button>
            </Show>
            <For
                each=rows
                key=|(line, first, _)| format!("{}|{}|{}", line.key, first, delivery_tag(&line.delivery))
                let:row
            >
                <MessageRow line=row.0 first=row.1 room=row.2 />
            </For>
        </div>
        <Show when=move || unseen.get()>
            <button class="pill" data-testid="new-messages" on:click=move |_| scroll_to_bottom()>"New messages ↓"</button>
        </Show>
        <div class="typing" data-testid="typing" aria-live="polite">{typing}</div>
    }
}

/// One message (or notice). Text is always shown as text, never as HTML.
#[component]
fn MessageRow(line: Line, first: bool, room: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    if line.system {
        return view! { <div class="notice" data-testid="notice">{line.text}</div> }.into_any();
    }
    let tag = delivery_tag(&line.delivery);
    let failed = match &line.delivery {
        Delivery::Failed(why) => Some(why.clone()),
        _ => None,
    };
    let retry = {
        let (room, cid, text) = (
            room,
            line.cid.clone().unwrap_or_default(),
            line.text.clone(),
        );
        move |_| chat.retry(room.clone(), cid.clone(), text.clone())
    };
    let mine = line.cid.is_some() && chat.model.with_untracked(|m| m.nick == line.from);
    view! {
        <div class="message" class:first=first class:mine=mine data-testid="message" data-delivery=tag>
            <Show when=move || first>
                <div class="meta">
                    <span class="author" data-testid="author">{line.from.clone()}</span>
                    <time class="time">{local_time(line.ts)}</time>
                </div>
            </Show>
            <div class="body">
                <span class="text" data-testid="message-text">{line.text.clone()}</span>
                <span class="state" aria-label=tag title=tag>
                    {match tag {
                        "sending" => "…",
                        "sent" if line.cid.is_some() => "✓",
                        _ => "",
                    }}
                </span>
            </div>
            {failed.map(|why| view! {
                <div class="failed" role="alert" data-testid="failed">
                    "Not sent: " {why} " "
                    <button class="link" data-testid="retry" on:click=retry.clone()>"Retry"</button>
                </div>
            })}
        </div>
    }
    .into_any()
}

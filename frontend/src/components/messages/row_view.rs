//! One row on the page: a day divider, the "new" line, or a message with
//! its author, time and delivery mark (and retry when it failed). A
//! message shows its current text (or that it was deleted, or that it was
//! edited), the quote of what it answers (a reply), its actions, and its
//! editor or the question before deleting.

use super::{
    acting::{ConfirmDelete, Editor, MessageActions},
    quote::ReplyQuote,
    rows::{Row, Slice, delivery_tag},
    time::{date, full_date, local_time},
};
use crate::state::{
    Act, Chat,
    model::{Delivery, Line},
};
use leptos::{html, prelude::*};

/// One row: a day divider, the "new" line, or a message.
#[component]
pub(super) fn RowView(
    row: Row,
    /// The window the row is in (where its line's current state is read).
    slice: Memo<Slice>,
) -> impl IntoView {
    match row {
        Row::Day { day, label } => view! {
            <div class="day" data-testid="day-divider" data-day=day role="separator">
                <span>{label}</span>
            </div>
        }
        .into_any(),
        Row::New => view! {
            <div class="new-line" data-testid="new-line" role="separator">
                <span>"New"</span>
            </div>
        }
        .into_any(),
        Row::Line { line, first } => {
            view! { <MessageRow line=line first=first slice=slice /> }.into_any()
        }
    }
}

/// One message (or notice). Text is always shown as text, never as HTML.
#[component]
fn MessageRow(line: Line, first: bool, slice: Memo<Slice>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let key = line.key.clone();
    if line.system {
        return view! {
            <div class="notice" data-testid="notice" data-key=key dir="auto">{line.text}</div>
        }
        .into_any();
    }
    let room = slice.with_untracked(|s| s.room.clone());
    let tag = delivery_tag(&line.delivery);
    let failed = match &line.delivery {
        Delivery::Failed(why) => Some(why.clone()),
        _ => None,
    };
    let retry = {
        let say = shared::chat::Say {
            room: room.clone(),
            text: line.text.clone(),
            cid: line.cid.clone().unwrap_or_default(),
            reply: line.reply,
        };
        move |_| chat.retry(say.clone())
    };
    let mark = match (line.own, tag) {
        (true, "sending") => Some(("…", "sending")),
        (true, "sent") => Some(("✓", "delivered")),
        _ => None,
    };
    let iso = String::from(date(line.ts).to_iso_string());
    let (from, ts, seq, own, reply) = (line.from.clone(), line.ts, line.seq, line.own, line.reply);
    // The line as it is now: edits and deletions change the row in place.
    let live = {
        let key = key.clone();
        Memo::new(move |previous: Option<&Line>| {
            slice
                .with(|s| s.line(&key))
                .or_else(|| previous.cloned())
                .unwrap_or_else(|| line.clone())
        })
    };
    let deleted = move || live.with(|l| l.deleted);
    let act = {
        let room = room.clone();
        Memo::new(move |_| {
            let seq = seq?;
            chat.acting
                .with(|a| a.as_ref().filter(|a| a.is(&room, seq)).map(|a| a.act))
        })
    };
    let row = NodeRef::<html::Div>::new();
    let text = move || {
        live.with(|l| {
            if l.deleted {
                view! { <span class="text deleted" data-testid="message-deleted">"message deleted"</span> }
                    .into_any()
            } else {
                view! {
                    <span class="text" data-testid="message-text" dir="auto">{l.text.clone()}</span>
                    {l.edited().then(|| view! { <span class="edited" data-testid="edited">"(edited)"</span> })}
                }
                .into_any()
            }
        })
    };
    let body = move || {
        view! {
            <div class="body">
                {text}
                {mark.map(|(glyph, name)| view! {
                    <span class="state" data-testid="delivery-mark" role="img" aria-label=name title=name>{glyph}</span>
                })}
            </div>
        }
    };
    let highlighted = {
        let room = room.clone();
        move || {
            chat.highlight
                .with(|h| h.as_ref().zip(seq).is_some_and(|(h, seq)| h.is(&room, seq)))
        }
    };
    // A reply quotes what it answers (not once it is deleted itself).
    let quote = reply.map(|to| {
        let room = room.clone();
        view! {
            <Show when=move || !deleted()>
                <ReplyQuote room=room.clone() seq=to />
            </Show>
        }
    });
    // A stored message may have an editor, a question and actions.
    let stored = seq.map(|seq| {
        let (edit_room, confirm_room) = (room.clone(), room.clone());
        view! {
            <Show when=move || act.get() == Some(Act::Edit) && !deleted() fallback=body>
                <Editor room=edit_room.clone() seq=seq row=row />
            </Show>
            <Show when=move || act.get() == Some(Act::Delete) && !deleted()>
                <ConfirmDelete room=confirm_room.clone() seq=seq row=row />
            </Show>
            <Show when=move || act.get().is_none()>
                <MessageActions room=room.clone() seq=seq line=live />
            </Show>
        }
    });
    let pending = seq.is_none().then(body);
    view! {
        <div
            class="message"
            class:first=first
            class:mine=own
            class:highlighted=highlighted
            data-testid="message"
            data-delivery=tag
            data-key=key
            tabindex="-1"
            node_ref=row
        >
            <Show when=move || first>
                <div class="meta">
                    <span class="author" data-testid="author">{from.clone()}</span>
                    <time class="time" datetime=iso.clone() title=full_date(ts)>{local_time(ts)}</time>
                </div>
            </Show>
            {quote}
            {pending}
            {stored}
            {failed.map(|why| view! {
                <div class="failed" role="alert" data-testid="failed">
                    "Not sent: " {why} " "
                    <button type="button" class="link" data-testid="retry" on:click=retry.clone()>"Retry"</button>
                </div>
            })}
        </div>
    }
    .into_any()
}

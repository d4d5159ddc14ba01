//! What a person does to one message: its actions ("Reply" on every
//! message still there, "Edit" on one's own messages, "Delete" on one's
//! own and, for a room's owner and moderators, on anyone's), its editor (in place of the text: Enter
//! saves, Shift+Enter adds a line, Escape cancels), and the question
//! before a deletion. The actions show on hover and when the row has the
//! cursor (Tab reaches them; a tap on the row gives it the cursor), so a
//! phone reaches them too. The cursor goes back to the row (or to the
//! composer, if ArrowUp there opened the editor) when done.

use crate::state::{Chat, model::Line, now};
use leptos::{ev::KeyboardEvent, html, prelude::*};

/// "Edit" and "Delete" on the messages this person may change, and
/// "Reply" on every message still there (last: Tab from a row of one's
/// own reaches "Edit" first).
#[component]
pub(super) fn MessageActions(room: String, seq: u64, line: Memo<Line>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let allowed = {
        let room = room.clone();
        Memo::new(move |_| {
            chat.model.with(|m| {
                line.with(|l| {
                    let edit = l.editable_by(&m.nick, now());
                    let delete = m.room(&room).is_some_and(|r| r.may_delete(l, &m.nick));
                    (!l.deleted, edit, delete)
                })
            })
        })
    };
    // Drawn again only when what this person may do changes.
    move || {
        let (reply, edit, delete) = allowed.get();
        let (reply_room, edit_room, delete_room) = (room.clone(), room.clone(), room.clone());
        (reply || edit || delete).then(|| {
            view! {
                <div class="msg-actions" data-testid="message-actions">
                    {edit.then(|| view! {
                        <button
                            type="button"
                            data-testid="edit-message"
                            aria-label="Edit message"
                            on:click=move |_| chat.start_edit(&edit_room, seq)
                        >"Edit"</button>
                    })}
                    {delete.then(|| view! {
                        <button
                            type="button"
                            data-testid="delete-message"
                            aria-label="Delete message"
                            on:click=move |_| chat.ask_delete(&delete_room, seq)
                        >"Delete"</button>
                    })}
                    {reply.then(|| view! {
                        <button
                            type="button"
                            data-testid="reply-message"
                            aria-label="Reply to message"
                            on:click=move |_| chat.reply_to(&reply_room, seq)
                        >"Reply"</button>
                    })}
                </div>
            }
        })
    }
}

/// The editor, in place of the message's text.
#[component]
pub(super) fn Editor(room: String, seq: u64, row: NodeRef<html::Div>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let area = NodeRef::<html::Textarea>::new();
    let draft = chat
        .acting
        .with_untracked(|a| a.as_ref().map(|a| a.draft.clone()))
        .unwrap_or_default();
    let state = state_of(chat, room.clone(), seq);
    // Opened by a person: the cursor goes in, after the text.
    Effect::new({
        let room = room.clone();
        move |_| {
            if let Some(el) = area.get()
                && chat.take_focus(&room, seq)
            {
                let _ = el.focus();
                let end = el.value().encode_utf16().count() as u32;
                let _ = el.set_selection_range(end, end);
            }
        }
    });
    let save = move || {
        let to_composer = from_composer(chat);
        chat.finish(move || give_back(chat, row, to_composer));
    };
    let on_keydown = move |ev: KeyboardEvent| match ev.key().as_str() {
        "Enter" if !ev.shift_key() && !ev.is_composing() => {
            ev.prevent_default();
            save();
        }
        "Escape" => {
            ev.prevent_default();
            cancel(chat, row);
        }
        _ => {}
    };
    let busy = move || state.with(|(busy, _)| *busy);
    view! {
        <form class="editor" data-testid="editor" on:submit=move |ev| { ev.prevent_default(); save(); }>
            <textarea
                node_ref=area
                data-testid="edit-input"
                aria-label="Edit message"
                aria-describedby="edit-error"
                rows="1"
                dir="auto"
                prop:value=draft
                readonly=busy
                on:input=move |ev| chat.keep_draft(event_target_value(&ev))
                on:keydown=on_keydown
            ></textarea>
            <div class="editor-bar">
                <span class="hint">"Enter saves · Escape cancels"</span>
                <button type="button" data-testid="edit-cancel" on:click=move |_| cancel(chat, row)>"Cancel"</button>
                <button type="submit" data-testid="edit-save" disabled=busy>
                    {move || if busy() { "Saving…" } else { "Save" }}
                </button>
            </div>
            <p id="edit-error" class="error" data-testid="edit-error" role="alert">
                {move || state.with(|(_, error)| error.clone())}
            </p>
        </form>
    }
}

/// "Delete this message?", under the message.
#[component]
pub(super) fn ConfirmDelete(room: String, seq: u64, row: NodeRef<html::Div>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let no = NodeRef::<html::Button>::new();
    let state = state_of(chat, room.clone(), seq);
    // Asked by a person: the cursor goes to the harmless answer.
    Effect::new(move |_| {
        if let Some(el) = no.get()
            && chat.take_focus(&room, seq)
        {
            let _ = el.focus();
        }
    });
    let busy = move || state.with(|(busy, _)| *busy);
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            cancel(chat, row);
        }
    };
    view! {
        <div
            class="confirm"
            role="group"
            aria-labelledby="confirm-delete-question"
            data-testid="confirm-delete"
            on:keydown=on_keydown
        >
            <span id="confirm-delete-question">"Delete this message?"</span>
            <button
                type="button"
                class="danger"
                data-testid="confirm-delete-yes"
                disabled=busy
                on:click=move |_| chat.finish(move || give_back(chat, row, false))
            >
                {move || if busy() { "Deleting…" } else { "Delete" }}
            </button>
            <button type="button" data-testid="confirm-delete-no" node_ref=no on:click=move |_| cancel(chat, row)>
                "Cancel"
            </button>
            <p class="error" data-testid="delete-error" role="alert">
                {move || state.with(|(_, error)| error.clone())}
            </p>
        </div>
    }
}

/// Whether the change of message `seq` of `room` is on its way, and why
/// the last try failed.
fn state_of(chat: Chat, room: String, seq: u64) -> Memo<(bool, Option<String>)> {
    Memo::new(move |_| {
        chat.acting.with(|a| {
            a.as_ref()
                .filter(|a| a.is(&room, seq))
                .map(|a| (a.busy, a.error.clone()))
                .unwrap_or_default()
        })
    })
}

/// Whether the composer's ArrowUp opened what is open.
fn from_composer(chat: Chat) -> bool {
    chat.acting
        .with_untracked(|a| a.as_ref().is_some_and(|a| a.from_composer))
}

/// Closes the editor or the question, and gives the cursor back.
fn cancel(chat: Chat, row: NodeRef<html::Div>) {
    give_back(chat, row, from_composer(chat));
    chat.stop_acting();
}

/// Gives the cursor back to where the person was before acting: the
/// composer (`to_composer`: ArrowUp there opened the editor), else the
/// message's row. Once the row is drawn without the editor, and only if
/// the cursor is still in the row or nowhere (the person may have gone on
/// elsewhere while the change was on its way).
fn give_back(chat: Chat, row: NodeRef<html::Div>, to_composer: bool) {
    request_animation_frame(move || {
        let row = row.try_get_untracked().flatten();
        let active = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element());
        let here = active.as_ref().is_none_or(|a| {
            a.tag_name() == "BODY" || row.as_ref().is_some_and(|r| r.contains(Some(a)))
        });
        if !here {
            return;
        }
        if to_composer {
            chat.focus_composer.try_update(|n| *n += 1);
        } else if let Some(row) = row {
            let _ = row.focus();
        }
    });
}

//! The message list.
//!
//! - **Windowed**: at most [`WINDOW`] lines are in the page, whatever the
//!   room holds; scrolling near an edge moves the window by [`STEP`] lines,
//!   and at the top of what is loaded, older messages are fetched. So a
//!   room of 100,000 messages scrolls like one of 100.
//! - **The reader's place is kept**: whatever changes above or below (a
//!   window step, older messages arriving), the line at the top of the view
//!   stays where it was. Each room remembers its place when you switch
//!   away; one's own new message brings the view to the bottom; a message
//!   arriving while you read older ones shows a "new messages" pill.
//! - Day dividers, full dates on hover, a "new" line above what came while
//!   you were away, text in its own direction, and delivery marks (with
//!   retry) on your own messages only.
//! - Edited messages say so; deleted ones leave a placeholder. Each
//!   message has its actions (Reply, and Edit and Delete for whoever may:
//!   on hover, on focus, by Tab, by a tap on the row); editing happens in
//!   place. A reply quotes what it answers; the quote (like a search
//!   result) goes to that message: the window moves to it, it is
//!   highlighted for a moment and takes the cursor.
//!
//! One job per file: `rows` (what of the room is in the window), `place`
//! (the reader's place), `time` (times and day labels), `row_view` (one
//! row on the page), `acting` (a row's actions, its editor, and the
//! question before a deletion), `quote` (a reply's quote); this file
//! holds the list, its scrolling, and going to a message.

mod acting;
mod place;
mod quote;
mod row_view;
mod rows;
mod time;

pub use time::local_time;

use crate::state::{
    Chat,
    model::{Delivery, RoomView},
};
use leptos::{html, prelude::*};
use place::{Place, anchor_of, restore};
use row_view::RowView;
use rows::{Slice, rows};
use std::collections::HashMap;
use wasm_bindgen::JsCast;

/// Lines in the page at most.
pub const WINDOW: usize = 120;
/// Lines the window moves by.
const STEP: usize = 40;
/// How near an edge (in pixels) moves the window.
const EDGE_PX: i32 = 600;
/// How near the bottom counts as at the bottom.
const BOTTOM_PX: i32 = 40;
/// How long a message gone to stays highlighted.
const HIGHLIGHT_MS: u64 = 2_500;

/// The messages of the room on screen.
#[component]
pub fn MessageList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let list = NodeRef::<html::Div>::new();
    // The window's last line (`None`: the newest, following new messages).
    let end = RwSignal::new(None::<String>);
    let at_bottom = RwSignal::new(true);
    let unseen = RwSignal::new(false);
    let loading = RwSignal::new(false);
    let places = StoredValue::new(HashMap::<String, Place>::new());
    let room = Memo::new(move |_| chat.model.with(|m| m.current.clone()));

    let slice = Memo::new(move |_| {
        let wanted = end.get();
        chat.model.with(|m| {
            let Some(room) = m.current_room() else {
                return Slice::default();
            };
            let n = room.lines.len();
            let end = wanted
                .and_then(|k| room.lines.iter().rposition(|l| l.key == k))
                .map_or(n, |i| i + 1);
            let start = end.saturating_sub(WINDOW);
            Slice {
                room: room.name.clone(),
                rows: rows(room, start, end, crate::state::now()),
                at_start: start == 0,
                at_end: end == n,
                has_older: room.has_older,
                newest: room
                    .lines
                    .last()
                    .map(|l| (l.key.clone(), l.own && l.delivery == Delivery::Sending)),
            }
        })
    });

    let element = move || {
        list.get_untracked()
            .map(|el| el.unchecked_into::<web_sys::HtmlElement>())
    };
    // Runs from an animation frame, once the page shows the change.
    let after_render = move |f: Box<dyn FnOnce(&web_sys::HtmlElement)>| {
        request_animation_frame(move || {
            if let Some(el) = list.try_get_untracked().flatten() {
                f(el.unchecked_ref());
            }
        });
    };
    let to_bottom = move || {
        end.set(None);
        unseen.set(false);
        at_bottom.set(true);
        after_render(Box::new(|el| el.set_scroll_top(el.scroll_height())));
    };
    // Moves the window so that its end is `index` lines into the room
    // (the newest when past the end), keeping `anchor` where it was.
    let move_end_keeping = move |index: usize, anchor: Option<(String, i32)>| {
        let key = chat.model.with_untracked(|m| {
            let lines = &m.current_room()?.lines;
            (index < lines.len())
                .then(|| lines.get(index.checked_sub(1)?).map(|l| l.key.clone()))?
        });
        end.set(key);
        if let Some(anchor) = anchor {
            after_render(Box::new(move |el| {
                restore(el, &anchor);
            }));
        }
    };
    // The same, keeping the line now at the top of the view.
    let move_end = move |index: usize| {
        let anchor = element().and_then(|el| anchor_of(&el));
        move_end_keeping(index, anchor);
    };
    // Where the window ends now, in lines.
    let end_index = move || {
        let wanted = end.get_untracked();
        chat.model.with_untracked(|m| {
            let lines = m
                .current_room()
                .map(|r| r.lines.as_slice())
                .unwrap_or_default();
            wanted
                .and_then(|k| lines.iter().rposition(|l| l.key == k))
                .map_or(lines.len(), |i| i + 1)
        })
    };
    let load_older = move || {
        if loading.get_untracked() {
            return;
        }
        let Some(el) = element() else { return };
        let anchor = anchor_of(&el);
        // Pin the window where it is, so what comes lands above it.
        let index = end_index();
        let pinned = chat.model.with_untracked(|m| {
            let lines = &m.current_room()?.lines;
            lines.get(index.checked_sub(1)?).map(|l| l.key.clone())
        });
        end.set(pinned);
        loading.set(true);
        let name = room.get_untracked();
        chat.load_older(&name.clone(), move || {
            // (`try_set` gives the value back when the list is gone.)
            if loading.try_set(false).is_some() || room.get_untracked() != name {
                return;
            }
            // What came is above the reader, who stays where they were
            // (a window that was not full takes some of it in at once).
            // Still near the top, the window then steps up into it.
            after_render(Box::new(move |el| {
                if let Some(anchor) = &anchor {
                    restore(el, anchor);
                }
                if el.scroll_top() < EDGE_PX && !slice.with_untracked(|s| s.at_start) {
                    move_end(end_index().saturating_sub(STEP).max(WINDOW));
                }
            }));
        });
    };
    let on_scroll = move |_| {
        let Some(el) = element() else { return };
        let top = el.scroll_top();
        let below = el.scroll_height() - top - el.client_height();
        let (at_start, at_end, has_older) =
            slice.with_untracked(|s| (s.at_start, s.at_end, s.has_older));
        let bottom = at_end && below < BOTTOM_PX;
        at_bottom.set(bottom);
        if bottom {
            unseen.set(false);
        }
        // Remember the place, for coming back to this room.
        let place = Place {
            end: end.get_untracked(),
            anchor: (!bottom).then(|| anchor_of(&el)).flatten(),
        };
        places.update_value(|p| {
            p.insert(room.get_untracked(), place);
        });
        if top < EDGE_PX {
            if !at_start {
                move_end(end_index().saturating_sub(STEP).max(WINDOW));
            } else if has_older {
                load_older();
            }
        } else if below < EDGE_PX && !at_end {
            move_end(end_index() + STEP);
        }
    };

    // Another room: back to where the reader was in it.
    Effect::new(move |previous: Option<String>| {
        let now = room.get();
        if previous.is_some_and(|p| p != now) {
            let place = places.with_value(|p| p.get(&now).cloned().unwrap_or_default());
            end.set(place.end);
            unseen.set(false);
            match place.anchor {
                Some(anchor) => {
                    at_bottom.set(false);
                    after_render(Box::new(move |el| {
                        if !restore(el, &anchor) {
                            el.set_scroll_top(el.scroll_height());
                        }
                    }));
                }
                None => to_bottom(),
            }
        }
        now
    });
    // A message to go to (a reply's quote, a search result): the window
    // moves to it, it is highlighted for a moment and takes the cursor.
    Effect::new(move |_| {
        let Some(target) = chat.target.get() else {
            return;
        };
        if target.room != room.get() {
            return;
        }
        chat.target.set(None);
        let found = chat.model.with_untracked(|m| {
            let lines = &m.current_room()?.lines;
            let index = lines.iter().position(|l| l.seq == Some(target.seq))?;
            Some((index, lines.len(), lines.get(index)?.key.clone()))
        });
        let Some((index, n, key)) = found else {
            return;
        };
        at_bottom.set(false);
        move_end_keeping((index + 1 + STEP).min(n), None);
        chat.highlight.set(Some(target.clone()));
        after_render(Box::new(move |el| {
            if let Ok(Some(row)) = el.query_selector(&format!("[data-key=\"{key}\"]")) {
                let options = web_sys::ScrollIntoViewOptions::new();
                options.set_block(web_sys::ScrollLogicalPosition::Center);
                row.scroll_into_view_with_scroll_into_view_options(&options);
                if let Ok(row) = row.dyn_into::<web_sys::HtmlElement>() {
                    let _ = row.focus();
                }
            }
        }));
        set_timeout(
            move || {
                chat.highlight.try_update(|h| {
                    if h.as_ref() == Some(&target) {
                        *h = None;
                    }
                });
            },
            std::time::Duration::from_millis(HIGHLIGHT_MS),
        );
    });
    // Something new at the end: follow it at the bottom, or say so; one's
    // own message always brings the view down.
    Effect::new(move |previous: Option<(String, Option<(String, bool)>)>| {
        let (name, newest) = slice.with(|s| (s.room.clone(), s.newest.clone()));
        let grew = previous
            .as_ref()
            .is_some_and(|(r, n)| *r == name && *n != newest);
        let own = newest.as_ref().is_some_and(|(_, own)| *own);
        if previous.is_none() || (grew && (own || at_bottom.get_untracked())) {
            to_bottom();
        } else if grew {
            // Reading above: the window stays as it is (nothing moves
            // under the reader); the pill says there is more.
            if end.get_untracked().is_none()
                && let Some((_, Some((key, _)))) = &previous
            {
                end.set(Some(key.clone()));
            }
            unseen.set(true);
        }
        (name, newest)
    });

    // Keyed by room too: rooms share `seq`s, and a row of the room left
    // must never stand for one of the room shown.
    let each = move || {
        slice.with(|s| {
            s.rows
                .iter()
                .map(|row| (format!("{}|{}", s.room, row.key()), row.clone()))
                .collect::<Vec<_>>()
        })
    };
    let show_older_button = move || slice.with(|s| s.at_start && s.has_older);
    let typing = move || {
        chat.model.with(|m| {
            let names = m.current_room().map(RoomView::typists).unwrap_or_default();
            match names.as_slice() {
                [] => String::new(),
                [one] => format!("{one} is typing…"),
                [a, b] => format!("{a} and {b} are typing…"),
                _ => "Several people are typing…".to_owned(),
            }
        })
    };
    // Screen readers hear each new message from someone else once (the
    // list itself is not live: pages of older lines would be read out).
    // The last line edited or deleted is not news: what was said goes
    // quietly (a deleted text must leave the page).
    let announce = Memo::new(move |previous: Option<&(String, String)>| {
        chat.model.with(|m| {
            let Some(last) = m.current_room().and_then(|r| r.lines.last()) else {
                return (String::new(), String::new());
            };
            let key = format!("{}|{}", m.current, last.key);
            let quiet = last.own || last.system || last.deleted;
            match previous {
                Some(said) if said.0 == key && last.changed.is_none() => said.clone(),
                Some(said) if said.0 == key => (key, String::new()),
                _ if quiet => (key, String::new()),
                _ => (key, format!("{}: {}", last.from, last.text)),
            }
        })
    });

    view! {
        <div
            class="messages"
            node_ref=list
            on:scroll=on_scroll
            data-testid="messages"
            role="log"
            aria-live="off"
            aria-label="Messages"
            tabindex="0"
        >
            <Show when=show_older_button>
                <button
                    type="button"
                    class="load-older"
                    data-testid="load-older"
                    disabled=move || loading.get()
                    on:click=move |_| load_older()
                >
                    {move || if loading.get() { "Loading…" } else { "Load older messages" }}
                </button>
            </Show>
            <For each=each key=|(key, _)| key.clone() let:row>
                <RowView row=row.1 slice=slice />
            </For>
        </div>
        <Show when=move || unseen.get()>
            <button type="button" class="pill" data-testid="new-messages" on:click=move |_| to_bottom()>
                "New messages ↓"
            </button>
        </Show>
        <div class="typing" data-testid="typing" aria-live="polite">{typing}</div>
        <div class="sr-only" aria-live="polite" data-testid="announce">{move || announce.with(|(_, said)| said.clone())}</div>
    }
}

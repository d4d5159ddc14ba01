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

use crate::state::{
    Chat,
    model::{Delivery, Line, RoomView},
};
use leptos::{html, prelude::*};
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};

/// Lines in the page at most.
pub const WINDOW: usize = 120;
/// Lines the window moves by.
const STEP: usize = 40;
/// How near an edge (in pixels) moves the window.
const EDGE_PX: i32 = 600;
/// How near the bottom counts as at the bottom.
const BOTTOM_PX: i32 = 40;
/// Consecutive messages of one author within this long form a group.
const GROUP_MS: i64 = 5 * 60 * 1000;

fn date(ts: i64) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(ts as f64))
}

/// `HH:MM` in the browser's time zone.
pub fn local_time(ts: i64) -> String {
    let d = date(ts);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The local calendar day of `ts`, as a number that orders days.
fn day_number(ts: i64) -> u32 {
    let d = date(ts);
    d.get_full_year() * 512 + d.get_month() * 32 + d.get_date()
}

fn locale_options(pairs: &[(&str, &str)]) -> JsValue {
    let options = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&options, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    options.into()
}

fn language() -> String {
    web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".into())
}

/// "Today", "Yesterday", or the date in words.
fn day_label(ts: i64, now: i64) -> String {
    let day = day_number(ts);
    if day == day_number(now) {
        return "Today".into();
    }
    if day == day_number(now - 86_400_000) {
        return "Yesterday".into();
    }
    let options = locale_options(&[
        ("weekday", "long"),
        ("year", "numeric"),
        ("month", "long"),
        ("day", "numeric"),
    ]);
    String::from(date(ts).to_locale_date_string(&language(), &options))
}

/// The full date and time, for hovering over a time.
fn full_date(ts: i64) -> String {
    let options = locale_options(&[("dateStyle", "full"), ("timeStyle", "medium")]);
    String::from(date(ts).to_locale_string(&language(), &options))
}

fn delivery_tag(d: &Delivery) -> &'static str {
    match d {
        Delivery::Sending => "sending",
        Delivery::Sent => "sent",
        Delivery::Failed(_) => "failed",
    }
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    /// A new day starts.
    Day { day: u32, label: String },
    /// What came while the reader was away starts here.
    New,
    /// A message or notice; `first` of its group.
    Line { line: Line, first: bool },
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Day { day, label } => format!("d{day}|{label}"),
            Row::New => "new".into(),
            Row::Line { line, first } => format!(
                "{}|{first}|{}|{}",
                line.key,
                delivery_tag(&line.delivery),
                line.own
            ),
        }
    }
}

/// What of the room on screen is in the page.
#[derive(Debug, Clone, Default, PartialEq)]
struct Slice {
    room: String,
    rows: Vec<Row>,
    /// The window starts at the oldest line loaded.
    at_start: bool,
    /// The window ends at the newest line.
    at_end: bool,
    has_older: bool,
    /// The newest line's key, and whether this user just sent it.
    newest: Option<(String, bool)>,
}

fn rows(room: &RoomView, start: usize, end: usize, now: i64) -> Vec<Row> {
    let mut out = Vec::with_capacity(end - start + 4);
    let mut previous = start.checked_sub(1).and_then(|i| room.lines.get(i));
    for line in room.lines.get(start..end).unwrap_or_default() {
        let day = day_number(line.ts);
        let new_day = previous.is_none_or(|p| day_number(p.ts) != day);
        if new_day {
            out.push(Row::Day {
                day,
                label: day_label(line.ts, now),
            });
        }
        let new_line = room.new_from.is_some() && line.seq == room.new_from;
        if new_line {
            out.push(Row::New);
        }
        let first = new_day
            || new_line
            || previous.is_none_or(|p| {
                p.system || line.system || p.from != line.from || line.ts - p.ts > GROUP_MS
            });
        out.push(Row::Line {
            line: line.clone(),
            first,
        });
        previous = Some(line);
    }
    out
}

/// Where a reader was in a room: the window's end (`None`: the newest),
/// and the line at the top of the view with its offset from it.
#[derive(Debug, Clone, Default)]
struct Place {
    end: Option<String>,
    anchor: Option<(String, i32)>,
}

/// The line at the top of the view, and how far above it the view starts
/// (lines only carry `data-key`: a day divider moves as the window does).
fn anchor_of(list: &web_sys::HtmlElement) -> Option<(String, i32)> {
    let top = list.scroll_top();
    let rows = list.query_selector_all("[data-key]").ok()?;
    for i in 0..rows.length() {
        let Some(el) = rows
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            continue;
        };
        if el.offset_top() + el.offset_height() > top {
            let key = el.get_attribute("data-key")?;
            return Some((key, el.offset_top() - top));
        }
    }
    None
}

/// Scrolls so that `key`'s line is where [`anchor_of`] found it; `false`
/// when it is not in the page.
fn restore(list: &web_sys::HtmlElement, (key, offset): &(String, i32)) -> bool {
    let selector = format!("[data-key=\"{key}\"]");
    match list
        .query_selector(&selector)
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        Some(el) => {
            list.set_scroll_top(el.offset_top() - offset);
            true
        }
        None => false,
    }
}

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
    let announce = Memo::new(move |_| {
        chat.model.with(|m| {
            m.current_room()
                .and_then(|r| r.lines.last())
                .filter(|l| !l.own && !l.system)
                .map(|l| format!("{}: {}", l.from, l.text))
                .unwrap_or_default()
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
                <RowView row=row.1 />
            </For>
        </div>
        <Show when=move || unseen.get()>
            <button type="button" class="pill" data-testid="new-messages" on:click=move |_| to_bottom()>
                "New messages ↓"
            </button>
        </Show>
        <div class="typing" data-testid="typing" aria-live="polite">{typing}</div>
        <div class="sr-only" aria-live="polite" data-testid="announce">{move || announce.get()}</div>
    }
}

/// One row: a day divider, the "new" line, or a message.
#[component]
fn RowView(row: Row) -> impl IntoView {
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
        Row::Line { line, first } => view! { <MessageRow line=line first=first /> }.into_any(),
    }
}

/// One message (or notice). Text is always shown as text, never as HTML.
#[component]
fn MessageRow(line: Line, first: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let key = line.key.clone();
    if line.system {
        return view! {
            <div class="notice" data-testid="notice" data-key=key dir="auto">{line.text}</div>
        }
        .into_any();
    }
    let tag = delivery_tag(&line.delivery);
    let failed = match &line.delivery {
        Delivery::Failed(why) => Some(why.clone()),
        _ => None,
    };
    let retry = {
        let room = chat.model.with_untracked(|m| m.current.clone());
        let (cid, text) = (line.cid.clone().unwrap_or_default(), line.text.clone());
        move |_| chat.retry(room.clone(), cid.clone(), text.clone())
    };
    let mark = match (line.own, tag) {
        (true, "sending") => Some(("…", "sending")),
        (true, "sent") => Some(("✓", "delivered")),
        _ => None,
    };
    let iso = String::from(date(line.ts).to_iso_string());
    view! {
        <div
            class="message"
            class:first=first
            class:mine=line.own
            data-testid="message"
            data-delivery=tag
            data-key=key
        >
            <Show when=move || first>
                <div class="meta">
                    <span class="author" data-testid="author">{line.from.clone()}</span>
                    <time class="time" datetime=iso.clone() title=full_date(line.ts)>{local_time(line.ts)}</time>
                </div>
            </Show>
            <div class="body">
                <span class="text" data-testid="message-text" dir="auto">{line.text.clone()}</span>
                {mark.map(|(glyph, name)| view! {
                    <span class="state" data-testid="delivery-mark" role="img" aria-label=name title=name>{glyph}</span>
                })}
            </div>
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

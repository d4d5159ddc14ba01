//! The reader's place: which line is at the top of the view, and
//! scrolling back to it after the page changed.

use wasm_bindgen::JsCast;

/// Where a reader was in a room: the window's end (`None`: the newest),
/// and the line at the top of the view with its offset from it.
#[derive(Debug, Clone, Default)]
pub(super) struct Place {
    pub(super) end: Option<String>,
    pub(super) anchor: Option<(String, i32)>,
}

/// The line at the top of the view, and how far above it the view starts
/// (lines only carry `data-key`: a day divider moves as the window does).
pub(super) fn anchor_of(list: &web_sys::HtmlElement) -> Option<(String, i32)> {
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
pub(super) fn restore(list: &web_sys::HtmlElement, (key, offset): &(String, i32)) -> bool {
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

//! Times and days as the reader's browser shows them: `HH:MM`, day
//! labels ("Today", "Yesterday", the date in words), full dates.

use wasm_bindgen::JsValue;

pub(super) fn date(ts: i64) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(ts as f64))
}

/// `HH:MM` in the browser's time zone.
pub fn local_time(ts: i64) -> String {
    let d = date(ts);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The local calendar day of `ts`, as a number that orders days.
pub(super) fn day_number(ts: i64) -> u32 {
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
pub(super) fn day_label(ts: i64, now: i64) -> String {
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
pub(super) fn full_date(ts: i64) -> String {
    let options = locale_options(&[("dateStyle", "full"), ("timeStyle", "medium")]);
    String::from(date(ts).to_locale_string(&language(), &options))
}

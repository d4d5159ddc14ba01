//! The rows of the list: which lines of the room are in the window, with
//! day dividers, the "new" line, and where a group of one author starts.

use super::time::{day_label, day_number};
use crate::state::model::{Delivery, Line, RoomView};

/// Consecutive messages of one author within this long form a group.
const GROUP_MS: i64 = 5 * 60 * 1000;

pub(super) fn delivery_tag(d: &Delivery) -> &'static str {
    match d {
        Delivery::Sending => "sending",
        Delivery::Sent => "sent",
        Delivery::Failed(_) => "failed",
    }
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Row {
    /// A new day starts.
    Day { day: u32, label: String },
    /// What came while the reader was away starts here.
    New,
    /// A message or notice; `first` of its group.
    Line { line: Line, first: bool },
}

impl Row {
    pub(super) fn key(&self) -> String {
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
pub(super) struct Slice {
    pub(super) room: String,
    pub(super) rows: Vec<Row>,
    /// The window starts at the oldest line loaded.
    pub(super) at_start: bool,
    /// The window ends at the newest line.
    pub(super) at_end: bool,
    pub(super) has_older: bool,
    /// The newest line's key, and whether this user just sent it.
    pub(super) newest: Option<(String, bool)>,
}

impl Slice {
    /// The line `key` as it is now, if it is in the window (an edit or a
    /// deletion changes a row in place: rows are keyed without them).
    pub(super) fn line(&self, key: &str) -> Option<Line> {
        self.rows.iter().find_map(|row| match row {
            Row::Line { line, .. } if line.key == key => Some(line.clone()),
            _ => None,
        })
    }
}

pub(super) fn rows(room: &RoomView, start: usize, end: usize, now: i64) -> Vec<Row> {
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

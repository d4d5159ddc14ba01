//! A bounded ring of a room's latest messages, in `seq` order, with the
//! `cid`s of what it holds: the memory store's rooms, and each room's
//! cache for joins and recovery.

use shared::chat::{Msg, Said};
use std::collections::{HashMap, VecDeque};

/// A message that does not follow the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq} does not follow {last}")]
pub struct Gap {
    /// The message's `seq`.
    pub seq: u64,
    /// The last one held.
    pub last: u64,
}

/// A bounded ring of messages with `cid` deduplication for what it holds.
/// A held message, with the session that scopes its `cid` and its
/// author (for edits and deletes).
type Held = (Msg, Option<Box<str>>, Option<Box<str>>);

#[derive(Debug)]
pub struct Ring {
    epoch: String,
    capacity: usize,
    last_seq: u64,
    ring: VecDeque<Held>,
    by_cid: HashMap<(Box<str>, Box<str>), u64>,
}

impl Ring {
    /// An empty history.
    pub fn new(capacity: usize, epoch: String) -> Self {
        Self {
            epoch,
            capacity,
            last_seq: 0,
            ring: VecDeque::new(),
            by_cid: HashMap::new(),
        }
    }

    /// A cache of the latest messages of a history kept elsewhere:
    /// `recent` (contiguous, oldest first) ending at `head`.
    pub fn cache(capacity: usize, epoch: String, recent: Vec<Msg>, head: u64) -> Self {
        let mut ring: VecDeque<Held> = recent
            .into_iter()
            .filter(|m| m.seq <= head)
            .map(|m| (m, None, None))
            .collect();
        while ring.len() > capacity {
            ring.pop_front();
        }
        // Only a contiguous run ending at `head` is usable.
        let mut expect = head;
        let mut keep = 0;
        for (m, _, _) in ring.iter().rev() {
            if m.seq != expect {
                break;
            }
            keep += 1;
            expect = expect.saturating_sub(1);
        }
        let drop = ring.len() - keep;
        ring.drain(..drop);
        Self {
            epoch,
            capacity,
            last_seq: head,
            ring,
            by_cid: HashMap::new(),
        }
    }

    fn first_seq(&self) -> u64 {
        self.ring
            .front()
            .map_or(self.last_seq + 1, |(m, _, _)| m.seq)
    }

    fn get(&self, seq: u64) -> Option<&Msg> {
        let index = seq.checked_sub(self.first_seq())?;
        self.ring
            .get(usize::try_from(index).ok()?)
            .map(|(m, _, _)| m)
    }
}

impl Ring {
    /// Adds the next message (its `seq` must follow the last one).
    pub fn push(&mut self, msg: Msg, session: Option<&str>) -> Result<(), Gap> {
        self.push_by(msg, session, None)
    }

    /// [`Ring::push`], remembering who wrote it (for edits and deletes).
    pub fn push_by(
        &mut self,
        msg: Msg,
        session: Option<&str>,
        author: Option<&str>,
    ) -> Result<(), Gap> {
        if msg.seq != self.last_seq + 1 {
            return Err(Gap {
                seq: msg.seq,
                last: self.last_seq,
            });
        }
        if self.capacity == 0 {
            self.last_seq = msg.seq;
            return Ok(());
        }
        if self.ring.len() == self.capacity
            && let Some((old, Some(old_session), _)) = self.ring.pop_front()
            && let Some(cid) = old.cid
        {
            self.by_cid.remove(&(old_session, cid.into_boxed_str()));
        }
        let session: Option<Box<str>> = session.map(Into::into);
        if let (Some(s), Some(cid)) = (&session, &msg.cid) {
            self.by_cid
                .insert((s.clone(), cid.as_str().into()), msg.seq);
        }
        self.last_seq = msg.seq;
        self.ring.push_back((msg, session, author.map(Into::into)));
        Ok(())
    }
}

impl Ring {
    /// Names this unbroken history.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The latest `seq` (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Where a `(session, cid)` was placed, while it is held.
    pub fn find_cid(&self, session: &str, cid: &str) -> Option<Said> {
        let seq = *self.by_cid.get(&(Box::from(session), Box::from(cid)))?;
        self.get(seq).map(|m| Said {
            seq: m.seq,
            ts: m.ts,
        })
    }

    /// Every message after `seq`, or `None` when some are no longer held,
    /// or they are more than `max` messages or `budget` bytes (recovery is
    /// all or nothing, and bounded).
    pub fn since(&self, seq: u64, max: usize, budget: usize) -> Option<Vec<Msg>> {
        if seq > self.last_seq || self.last_seq - seq > max as u64 {
            return None;
        }
        if seq.saturating_add(1) < self.first_seq() {
            return None;
        }
        let skip = usize::try_from(seq + 1 - self.first_seq()).ok()?;
        let mut used = 0;
        let mut out = Vec::new();
        for (m, _, _) in self.ring.iter().skip(skip) {
            used += crate::limits::msg_bytes(m);
            if used > budget {
                return None;
            }
            out.push(m.clone());
        }
        Some(out)
    }

    /// The oldest `seq` held.
    /// The message with `seq`, and who wrote it, while held.
    pub fn message(&self, seq: u64) -> Option<(&Msg, Option<&str>)> {
        let index = seq.checked_sub(self.first_seq())?;
        self.ring
            .get(usize::try_from(index).ok()?)
            .map(|(m, _, author)| (m, author.as_deref()))
    }

    /// Applies an edit or delete entry to the message it names, if held.
    pub fn apply(&mut self, change: &Msg) {
        let Some(of) = change.of else { return };
        let Some(index) = of.checked_sub(self.first_seq()) else {
            return;
        };
        if let Some((msg, _, _)) = usize::try_from(index)
            .ok()
            .and_then(|i| self.ring.get_mut(i))
        {
            msg.apply(change);
        }
    }

    pub fn oldest(&self) -> u64 {
        self.first_seq()
    }

    /// Forgets messages older than `cutoff` (ms since the Unix epoch).
    pub fn expire(&mut self, cutoff: i64) {
        while self.ring.front().is_some_and(|(m, _, _)| m.ts < cutoff) {
            if let Some((old, Some(session), _)) = self.ring.pop_front()
                && let Some(cid) = old.cid
            {
                self.by_cid.remove(&(session, cid.into_boxed_str()));
            }
        }
    }

    /// Up to `limit` messages with `seq < before`, oldest first.
    pub fn before(&self, before: u64, limit: usize) -> Vec<Msg> {
        let end = before.min(self.last_seq + 1);
        let start = end.saturating_sub(limit as u64).max(self.first_seq());
        (start..end)
            .filter_map(|seq| self.get(seq).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: usize = usize::MAX;
    const ANY: usize = usize::MAX;

    fn msg(seq: u64, cid: Option<&str>) -> Msg {
        let mut m = Msg::new(
            "r".into(),
            "e".into(),
            seq,
            "a".into(),
            format!("m{seq}"),
            0,
        );
        m.cid = cid.map(Into::into);
        m
    }

    fn filled(capacity: usize, n: u64) -> Ring {
        let mut h = Ring::new(capacity, "e".into());
        for seq in 1..=n {
            let cid = format!("c{seq}");
            h.push(msg(seq, Some(&cid)), Some("s")).expect("append");
        }
        h
    }

    #[test]
    fn ring_keeps_the_latest_and_forgets_their_cids() {
        let h = filled(3, 5);
        assert_eq!(
            h.before(u64::MAX, 10)
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(h.find_cid("s", "c2").is_none());
        assert_eq!(h.find_cid("s", "c4").map(|m| m.seq), Some(4));
        assert!(h.find_cid("other", "c4").is_none());
    }

    #[test]
    fn since_is_all_or_nothing() {
        let h = filled(3, 5);
        assert_eq!(h.since(5, ALL, ANY).map(|v| v.len()), Some(0));
        assert_eq!(
            h.since(3, ALL, ANY)
                .map(|v| v.iter().map(|m| m.seq).collect::<Vec<_>>()),
            Some(vec![4, 5])
        );
        assert_eq!(h.since(2, ALL, ANY).map(|v| v.len()), Some(3));
        assert!(h.since(1, ALL, ANY).is_none(), "message 2 is gone");
        assert!(h.since(6, ALL, ANY).is_none(), "cursor from the future");
        assert!(h.since(2, 2, ANY).is_none(), "three is more than two");
        let one = crate::limits::msg_bytes(&msg(5, Some("c5")));
        assert!(h.since(3, ALL, one).is_none(), "two do not fit one's bytes");
        assert_eq!(h.since(4, ALL, one).map(|v| v.len()), Some(1));
    }

    #[test]
    fn expiry_forgets_the_old_messages_and_their_cids() {
        let mut h = Ring::new(10, "e".into());
        for seq in 1..=5 {
            let cid = format!("c{seq}");
            let m = Msg {
                ts: i64::try_from(seq).expect("small") * 100,
                ..msg(seq, Some(&cid))
            };
            h.push(m, Some("s")).expect("append");
        }
        h.expire(300);
        assert_eq!(h.oldest(), 3, "ts 100 and 200 are older than 300");
        assert!(h.find_cid("s", "c2").is_none());
        assert_eq!(h.find_cid("s", "c3").map(|m| m.seq), Some(3));
        assert!(h.since(1, ALL, ANY).is_none(), "the gap is no longer whole");
        assert_eq!(h.since(2, ALL, ANY).map(|v| v.len()), Some(3));
        h.expire(i64::MAX);
        assert_eq!((h.oldest(), h.last_seq()), (6, 5), "empty, seq kept");
        assert_eq!(h.since(5, ALL, ANY).map(|v| v.len()), Some(0));
        assert!(h.push(msg(6, None), None).is_ok(), "seq continues");
    }

    #[test]
    fn before_is_exclusive_and_limited() {
        let h = filled(10, 8);
        assert_eq!(
            h.before(5, 2).iter().map(|m| m.seq).collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(h.before(1, 5).len(), 0);
        assert_eq!(
            h.before(100, 3).iter().map(|m| m.seq).collect::<Vec<_>>(),
            [6, 7, 8]
        );
    }

    #[test]
    fn a_cache_keeps_the_contiguous_run_ending_at_head() {
        let recent = vec![msg(3, None), msg(5, None), msg(6, None), msg(7, None)];
        let mut h = Ring::cache(10, "e".into(), recent, 7);
        assert_eq!(h.last_seq(), 7);
        assert_eq!(h.oldest(), 5, "4 is missing, so 3 is unusable");
        assert_eq!(h.since(4, ALL, ANY).map(|v| v.len()), Some(3));
        assert!(h.since(3, ALL, ANY).is_none());
        assert!(
            h.push(msg(8, None), None).is_ok(),
            "appends continue after head"
        );
        let empty = Ring::cache(10, "e".into(), Vec::new(), 42);
        assert_eq!((empty.last_seq(), empty.oldest()), (42, 43));
        assert_eq!(empty.since(42, ALL, ANY).map(|v| v.len()), Some(0));
    }

    #[test]
    fn append_refuses_a_gap() {
        let mut h = filled(10, 2);
        assert!(h.push(msg(4, None), None).is_err());
    }
}

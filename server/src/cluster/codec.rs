//! What goes over Redis: message bodies in the streams and on the
//! channels, presence and typing between nodes, and the append script's
//! answer.

use super::*;

/// A presence change as published between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RemotePresence {
    pub node: String,
    pub key: String,
    pub kind: PresenceKind,
    pub nick: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
}

/// A typing change as published between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RemoteTyping {
    pub node: String,
    pub nick: String,
    pub on: bool,
}

/// A person taken out of a room, as published between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RemoteRemoval {
    pub node: String,
    pub nick: String,
    pub signed_in: bool,
    /// The `removed` event's JSON.
    pub removed: String,
}

/// Something another node (or Redis) published on a room's channel.
#[derive(Debug)]
pub(super) enum Remote {
    Msg(Msg),
    Presence(RemotePresence),
    Typing(RemoteTyping),
    Remove(RemoteRemoval),
}

impl Remote {
    pub(super) fn into_event(self) -> BusEvent {
        match self {
            Remote::Msg(m) => BusEvent::Entry(m),
            Remote::Presence(p) => BusEvent::Presence(crate::log::RemotePresence {
                node: p.node,
                key: p.key,
                kind: p.kind,
                nick: p.nick,
                old: p.old,
            }),
            Remote::Typing(t) => BusEvent::Typing {
                node: t.node,
                nick: t.nick,
                on: t.on,
            },
            Remote::Remove(r) => BusEvent::Remove(crate::log::Removal {
                node: r.node,
                nick: r.nick,
                signed_in: r.signed_in,
                removed: bytes::Bytes::from(r.removed),
            }),
        }
    }
}

/// A message body as stored and published (the room and seq are known
/// from the key and the stream id).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Body {
    #[serde(default, skip_serializing)]
    pub(super) epoch: String,
    pub(super) from: String,
    pub(super) text: String,
    pub(super) ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cid: Option<String>,
    /// An edit's or a delete's kind and the message it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<shared::chat::Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) of: Option<u64>,
    /// Who wrote it (`a:{key}` or `s:{session}`), for the script's checks;
    /// never sent to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) author: Option<String>,
    /// Set by the script on a changed message's current body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) changed: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) deleted: bool,
    /// The message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reply: Option<u64>,
}

impl Body {
    pub(super) fn into_msg(self, room: &str, seq: u64) -> Msg {
        let mut msg = Msg::new(
            room.to_owned(),
            self.epoch,
            seq,
            self.from,
            self.text,
            self.ts,
        );
        msg.cid = self.cid;
        msg.kind = self.kind;
        msg.of = self.of;
        msg.changed = self.changed;
        msg.deleted = self.deleted;
        msg.reply = self.reply;
        msg
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct StoredSession {
    pub(super) nick: String,
    pub(super) rooms: Vec<String>,
}

pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Stream entries (`XRANGE`/`XREVRANGE` replies) as messages.
pub(super) fn entries(room: &str, value: Value) -> Result<Vec<Msg>, StoreError> {
    let Value::Array(items) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            other => Err(Error::StreamReply(other).into()),
        };
    };
    let mut msgs = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop();
        let id = parts.pop().as_ref().and_then(text).unwrap_or_default();
        // Our entries are `{seq}-0` with seq ≥ 1; anything else is not ours.
        let Some(seq) = id
            .split('-')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|seq| *seq > 0)
        else {
            continue;
        };
        let body = match fields {
            Some(Value::Array(f)) => f
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some("m"))
                .and_then(|kv| kv.get(1).and_then(text)),
            Some(Value::Map(f)) => f
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some("m"))
                .and_then(|(_, v)| text(v)),
            _ => None,
        };
        match body.map(|b| serde_json::from_str::<Body>(&b)) {
            Some(Ok(body)) => msgs.push(body.into_msg(room, seq)),
            _ => warn!(room, seq, "skipping an unreadable stream entry"),
        }
    }
    Ok(msgs)
}

/// A room channel's payload: `m{seq}\n{body}`, `p{presence}`, `t{typing}`
/// or `r{removal}`.
pub(super) fn parse_remote(room: &str, payload: &[u8]) -> Option<Remote> {
    let (kind, rest) = payload.split_first()?;
    match kind {
        b'm' => {
            let newline = rest.iter().position(|b| *b == b'\n')?;
            let seq: u64 = std::str::from_utf8(&rest[..newline])
                .ok()?
                .parse()
                .ok()
                .filter(|seq| *seq > 0)?;
            let body: Body = serde_json::from_slice(&rest[newline + 1..]).ok()?;
            Some(Remote::Msg(body.into_msg(room, seq)))
        }
        b'p' => serde_json::from_slice(rest).ok().map(Remote::Presence),
        b't' => serde_json::from_slice(rest).ok().map(Remote::Typing),
        b'r' => serde_json::from_slice(rest).ok().map(Remote::Remove),
        _ => None,
    }
}

/// A notice's payload on the all-processes channel, from `node`:
/// `o{node} {session}` (signed out) or `a{node} {key}\n{frame}` (a frame
/// for an account's connections).
pub(super) fn notice_payload(node: &str, notice: &Notice) -> Vec<u8> {
    match notice {
        Notice::SignedOut(session) => format!("o{node} {session}").into_bytes(),
        Notice::ToAccount(key, frame) => {
            let mut out = format!("a{node} {key}\n").into_bytes();
            out.extend_from_slice(frame);
            out
        }
        // Never published: a process tells itself.
        Notice::Recheck => Vec::new(),
    }
}

/// The node a notice came from, and the notice.
pub(super) fn parse_notice(payload: &[u8]) -> Option<(String, Notice)> {
    let (kind, rest) = payload.split_first()?;
    match kind {
        b'o' => {
            let text = std::str::from_utf8(rest).ok()?;
            let (node, session) = text.split_once(' ')?;
            Some((node.to_owned(), Notice::SignedOut(session.to_owned())))
        }
        b'a' => {
            let newline = rest.iter().position(|b| *b == b'\n')?;
            let head = std::str::from_utf8(&rest[..newline]).ok()?;
            let (node, key) = head.split_once(' ')?;
            let frame = bytes::Bytes::copy_from_slice(&rest[newline + 1..]);
            Some((node.to_owned(), Notice::ToAccount(key.to_owned(), frame)))
        }
        _ => None,
    }
}

/// The script's answer; `ts` is the one sent (a duplicate carries its own).
pub(super) fn appended(value: Value, ts: i64) -> Result<Placed, StoreError> {
    let Value::Array(parts) = value else {
        return Err(Error::AppendReply(value).into());
    };
    if matches!(parts.first(), Some(Value::Int(-1))) {
        // The script refused an edit or delete: nothing was stored.
        let why = match parts.get(1).and_then(text).as_deref() {
            Some("deleted") => Refusal::Deleted,
            Some("notyours") => Refusal::NotYours,
            Some("toolate") => Refusal::TooLate,
            _ => Refusal::NoSuchMessage,
        };
        return Err(StoreError::Refused(why));
    }
    let fresh = matches!(parts.first(), Some(Value::Int(1)));
    let at = parts.get(1).and_then(text).unwrap_or_default();
    let epoch = parts.get(2).and_then(text).unwrap_or_default();
    let (seq, ts) = match at.split_once(':') {
        Some((seq, ts)) => (seq.parse().ok(), ts.parse().ok()),
        None => (at.parse().ok(), Some(ts)),
    };
    match (seq, ts) {
        (Some(seq), Some(ts)) => Ok(Placed {
            seq,
            ts,
            epoch,
            fresh,
        }),
        _ => Err(Error::Position(at).into()),
    }
}

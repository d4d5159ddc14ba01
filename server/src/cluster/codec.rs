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

/// Something another node (or Redis) published on a room's channel.
#[derive(Debug)]
pub(super) enum Remote {
    Msg(Msg),
    Presence(RemotePresence),
    Typing(RemoteTyping),
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
}

impl Body {
    pub(super) fn into_msg(self, room: &str, seq: u64) -> Msg {
        Msg {
            room: room.to_owned(),
            epoch: self.epoch,
            seq,
            from: self.from,
            text: self.text,
            ts: self.ts,
            cid: self.cid,
        }
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

/// A room channel's payload: `m{seq}\n{body}`, `p{presence}` or `t{typing}`.
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
        _ => None,
    }
}

/// The script's answer; `ts` is the one sent (a duplicate carries its own).
pub(super) fn appended(value: Value, ts: i64) -> Result<Placed, StoreError> {
    let Value::Array(parts) = value else {
        return Err(Error::AppendReply(value).into());
    };
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

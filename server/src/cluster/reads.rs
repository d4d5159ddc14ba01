//! Reads of a room: its snapshot, ranges of its stream, the rooms of the
//! cluster; presence and typing published to the other nodes.

use super::*;

impl Cluster {
    /// Whether a room exists in the cluster (has an epoch), without
    /// creating it.
    pub(crate) async fn room_exists(&self, room: &str) -> bool {
        self.call::<bool>(redis::cmd("EXISTS").arg(keys::epoch(room)))
            .await
            .unwrap_or(false)
    }

    /// `{node}:{conn}`: a member's field in a room's member hash.
    pub(crate) fn member_key(&self, conn: u64) -> String {
        format!("{}:{conn}", self.node)
    }

    /// The room's epoch, head, latest `recent` messages and members, read
    /// atomically (creating the epoch on first use).
    pub(super) async fn read_snapshot(
        &self,
        room: &str,
        recent: usize,
    ) -> Result<Snapshot, StoreError> {
        // Listed as open, and swept for age once it has messages (its own
        // slot: `{:global}`), while the room's own keys are read at once.
        let mut listed = redis::pipe();
        listed
            .sadd(keys::ROOMS, room)
            .ignore()
            .sadd(keys::LOGS, room)
            .ignore();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(keys::epoch(room))
            .arg(crate::ids::new_epoch())
            .arg("NX")
            .ignore()
            .get(keys::epoch(room))
            .get(keys::seq(room))
            .cmd("XREVRANGE")
            .arg(keys::log(room))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(recent.max(1))
            .hgetall(keys::members(room));
        let (mut conn, mut listing) = (self.conn.clone(), self.conn.clone());
        let (read, listed) = tokio::join!(
            self.bounded(CALL_TIMEOUT, pipe.query_async(&mut conn)),
            self.bounded(CALL_TIMEOUT, listed.query_async::<()>(&mut listing)),
        );
        listed?;
        let (epoch, head, log, members): (String, Option<u64>, Value, HashMap<String, String>) =
            read?;
        let mut recent_msgs = entries(room, log)?;
        recent_msgs.reverse();
        if recent == 0 {
            recent_msgs.clear();
        }
        let head = head.unwrap_or(0);
        if let Some(first) = recent_msgs.first().map(|m| m.seq) {
            // Edited and deleted ones in their final state (a second read:
            // the window is known only now).
            let changed = self.changed_bodies(room, first, head).await?;
            recent_msgs = overlay(room, recent_msgs, changed, first);
        }
        Ok(Snapshot {
            epoch,
            head,
            recent: recent_msgs,
            members,
        })
    }

    /// Every room of the cluster with its member count (at most `limit`
    /// rooms, busiest first).
    pub async fn rooms(&self, limit: usize) -> Result<Vec<shared::chat::RoomInfo>, StoreError> {
        let names: Vec<String> = self.call(redis::cmd("SMEMBERS").arg(keys::ROOMS)).await?;
        let mut conn = self.conn.clone();
        let counts = conn
            .batch(
                &[],
                names
                    .iter()
                    .map(|name| {
                        (
                            name.clone(),
                            redis::cmd("HLEN").arg(keys::members(name)).clone(),
                        )
                    })
                    .collect(),
            )
            .await
            .into_iter()
            .map(|count| redis::from_redis_value::<u32>(count?).map_err(|e| Error::Parse(e).into()))
            .collect::<Result<Vec<u32>, StoreError>>()?;
        let mut rooms: Vec<shared::chat::RoomInfo> = names
            .into_iter()
            .zip(counts)
            .filter(|(room, _)| !crate::access::is_private_name(room))
            .map(|(room, members)| shared::chat::RoomInfo {
                room,
                members,
                title: None,
            })
            .collect();
        rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(limit);
        Ok(rooms)
    }

    /// Messages `from..=to` of a room's stream (fewer when trimmed).
    pub(super) async fn read_range(
        &self,
        room: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Msg>, StoreError> {
        self.metrics.stream_reads.inc();
        self.read_window(room, from, to).await
    }

    /// Entries `from..=to` in their final state: the stream's, with the
    /// current bodies of those edited, and placeholders of those deleted
    /// (whose stream entries are gone), in one round trip.
    pub(super) async fn read_window(
        &self,
        room: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Msg>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(keys::log(room))
            .arg(format!("{from}-0"))
            .arg(format!("{to}-0"));
        pipe.cmd("HMGET")
            .arg(keys::changed(room))
            .arg(window(from, to));
        let mut conn = self.conn.clone();
        let (log, changed): (Value, Vec<Option<String>>) = self
            .bounded(CALL_TIMEOUT, pipe.query_async(&mut conn))
            .await?;
        Ok(overlay(room, entries(room, log)?, changed, from))
    }

    /// The current bodies of the changed messages among `from..=to`.
    async fn changed_bodies(
        &self,
        room: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Option<String>>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(keys::changed(room)).arg(window(from, to));
        self.call(&cmd).await
    }

    /// Up to `limit` messages with `seq < before`, oldest first.
    pub(super) async fn read_before(
        &self,
        room: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Msg>, StoreError> {
        if before <= 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let from = before
            .saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX))
            .max(1);
        self.read_window(room, from, before - 1).await
    }

    /// Publishes a presence change and records it in the member hash.
    pub(super) fn publish_presence(
        &self,
        room: &str,
        conn: u64,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        self.presence_by_key(room, self.member_key(conn), kind, nick, old);
    }

    /// [`Cluster::presence`] for a member hash field.
    pub(crate) fn presence_by_key(
        &self,
        room: &str,
        key: String,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        let mut cmds = Vec::with_capacity(3);
        match kind {
            PresenceKind::Join | PresenceKind::Rename => {
                cmds.push((
                    room.to_owned(),
                    redis::cmd("HSET")
                        .arg(keys::members(room))
                        .arg(&key)
                        .arg(nick)
                        .clone(),
                ));
                cmds.push((
                    keys::GLOBAL.to_owned(),
                    redis::cmd("SADD")
                        .arg(keys::node_rooms(&self.node))
                        .arg(room)
                        .clone(),
                ));
            }
            PresenceKind::Leave => {
                cmds.push((
                    room.to_owned(),
                    redis::cmd("HDEL")
                        .arg(keys::members(room))
                        .arg(&key)
                        .clone(),
                ));
            }
        }
        let event = RemotePresence {
            node: self.node.clone(),
            key,
            kind,
            nick: nick.to_owned(),
            old,
        };
        let payload = format!("p{}", serde_json::to_string(&event).unwrap_or_default());
        cmds.push((
            room.to_owned(),
            redis::cmd("PUBLISH")
                .arg(keys::channel(room))
                .arg(payload)
                .clone(),
        ));
        self.fire(cmds);
    }

    /// Publishes a typing change.
    pub(super) fn publish_typing(&self, room: &str, nick: &str, on: bool) {
        let event = RemoteTyping {
            node: self.node.clone(),
            nick: nick.to_owned(),
            on,
        };
        let payload = format!("t{}", serde_json::to_string(&event).unwrap_or_default());
        self.fire(vec![(
            room.to_owned(),
            redis::cmd("PUBLISH")
                .arg(keys::channel(room))
                .arg(payload)
                .clone(),
        )]);
    }
}

/// The `seq`s `from..=to`, as hash fields.
fn window(from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|seq| seq.to_string()).collect()
}

/// `msgs` (read from the stream, from `from` on) with the current bodies
/// in `changed` (one per `seq` from `from`): an edited message's replaces
/// its stream entry; a deleted one's stands where its entry was removed.
fn overlay(room: &str, msgs: Vec<Msg>, changed: Vec<Option<String>>, from: u64) -> Vec<Msg> {
    if changed.iter().all(Option::is_none) {
        return msgs;
    }
    let mut by_seq: std::collections::BTreeMap<u64, Msg> =
        msgs.into_iter().map(|m| (m.seq, m)).collect();
    for (seq, body) in (from..).zip(changed) {
        let Some(body) = body.and_then(|b| serde_json::from_str::<Body>(&b).ok()) else {
            continue;
        };
        let msg = body.into_msg(room, seq);
        // A trimmed message's edit is not brought back; a deleted one
        // stands as its placeholder (no text).
        if by_seq.contains_key(&seq) || msg.deleted {
            by_seq.insert(seq, msg);
        }
    }
    by_seq.into_values().collect()
}

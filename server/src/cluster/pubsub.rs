//! Pub/sub: one connection subscribed to every local room's channel and
//! this node's control channel, routing what arrives to the room actors.

use super::*;

/// A change to what the pub/sub connection listens to.
pub(super) enum Subscription {
    Room(Arc<str>),
    Gone(Arc<str>),
}

/// Keeps one pub/sub connection subscribed to every local room's channel
/// and routes what arrives to the room actors. After a reconnect, rooms
/// resynchronise (what was published meanwhile is lost to pub/sub).
pub(super) async fn subscriber(
    cluster: Arc<Cluster>,
    mut requests: mpsc::UnboundedReceiver<Subscription>,
) {
    use futures_util::StreamExt;
    let mut first = true;
    // Which of the URLs is tried next (a cluster's seeds in turn).
    let mut next = 0;
    loop {
        if cluster.stop.is_cancelled() {
            return;
        }
        let client = &cluster.subscribers[next % cluster.subscribers.len()];
        next += 1;
        let pubsub = match tokio::time::timeout(CALL_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut channels: Vec<String> = cluster.locked().keys().map(|r| keys::channel(r)).collect();
        channels.push(keys::control(&cluster.node));
        channels.push(keys::NOTICES.to_owned());
        if sink.subscribe(&channels).await.is_err() {
            continue;
        }
        if !first {
            info!("redis pub/sub is back: rooms resynchronise, sign-ins are checked again");
            cluster.resync_rooms();
            let _ = cluster.notices.send(Notice::Recheck);
        }
        first = false;
        loop {
            tokio::select! {
                () = cluster.stop.cancelled() => return,
                request = requests.recv() => {
                    let done = match request {
                        None => return,
                        Some(Subscription::Room(room)) => sink.subscribe(keys::channel(&room)).await,
                        Some(Subscription::Gone(room)) => sink.unsubscribe(keys::channel(&room)).await,
                    };
                    if done.is_err() {
                        break;
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    if msg.get_channel_name() == keys::control(&cluster.node) {
                        cluster.control(msg.get_payload_bytes());
                        continue;
                    }
                    if msg.get_channel_name() == keys::NOTICES {
                        cluster.notice(msg.get_payload_bytes());
                        continue;
                    }
                    let Some(room) = keys::room_of_channel(msg.get_channel_name()) else { continue };
                    let Some(remote) = parse_remote(room, msg.get_payload_bytes()) else {
                        debug!(room, "unreadable pub/sub payload");
                        continue;
                    };
                    if let Some(tx) = cluster.room_sender(room) {
                        // A full mailbox drops the event: messages are read
                        // back from the stream, presence on the next resync.
                        let _ = tx.try_send(remote.into_event());
                    }
                }
            }
        }
        warn!("redis pub/sub connection lost; reconnecting");
    }
}

impl Cluster {
    /// A notice from the all-processes channel: this process's own come
    /// back too, and are already done.
    fn notice(&self, payload: &[u8]) {
        match parse_notice(payload) {
            Some((node, _)) if node == self.node => {}
            Some((_, notice)) => {
                let _ = self.notices.send(notice);
            }
            None => debug!("unreadable notice"),
        }
    }

    /// Tells every process (this one hears it back, and skips it).
    pub(super) fn publish_notice(&self, notice: &Notice) {
        let payload = notice_payload(&self.node, notice);
        self.fire(vec![(
            keys::NOTICES.to_owned(),
            redis::cmd("PUBLISH")
                .arg(keys::NOTICES)
                .arg(payload)
                .clone(),
        )]);
    }

    /// Tells every process with the room open to take a person out.
    pub(super) fn publish_removal(&self, room: &str, removal: &Removal) {
        let event = RemoteRemoval {
            node: removal.node.clone(),
            nick: removal.nick.clone(),
            signed_in: removal.signed_in,
            removed: String::from_utf8_lossy(&removal.removed).into_owned(),
        };
        let payload = format!("r{}", serde_json::to_string(&event).unwrap_or_default());
        self.fire(vec![(
            room.to_owned(),
            redis::cmd("PUBLISH")
                .arg(keys::channel(room))
                .arg(payload)
                .clone(),
        )]);
    }

    pub(super) fn locked(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, mpsc::WeakSender<BusEvent>>> {
        // Single inserts: a poisoned lock is still consistent.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn room_senders(&self) -> Vec<mpsc::Sender<BusEvent>> {
        self.locked().values().filter_map(|w| w.upgrade()).collect()
    }

    /// Every local room reads its state again (and puts its members back
    /// where the shared list lost them).
    pub(super) fn resync_rooms(&self) {
        for tx in self.room_senders() {
            tokio::spawn(async move {
                let _ = tx.send(BusEvent::Resync).await;
            });
        }
    }

    /// The local room with this name, while it runs.
    pub(super) fn room_sender(&self, room: &str) -> Option<mpsc::Sender<BusEvent>> {
        self.locked().get(room).and_then(mpsc::WeakSender::upgrade)
    }

    /// A room actor starts: route its channel to it.
    pub(super) fn register(&self, room: Arc<str>, tx: mpsc::WeakSender<BusEvent>) {
        self.locked().insert(room.clone(), tx);
        let _ = self.subscribe.send(Subscription::Room(room));
    }

    /// A room actor stopped (its last local member left): stop listening
    /// to its channel, and take it off the cluster's list of open rooms if
    /// no process has members in it any more.
    pub(super) fn unregister(&self, room: &str) {
        let removed = {
            let mut rooms = self.locked();
            match rooms.get(room) {
                // A new actor for the room may have started meanwhile.
                Some(tx) if tx.strong_count() == 0 => rooms.remove_entry(room).map(|(r, _)| r),
                _ => None,
            }
        };
        let Some(room) = removed else { return };
        let _ = self.subscribe.send(Subscription::Gone(room.clone()));
        if !self.healthy() {
            return;
        }
        // Off the list of open rooms if no process has members in it (a
        // process whose members came meanwhile lists it again: `heads`).
        let mut conn = self.conn.clone();
        tokio::spawn(async move {
            let members = redis::cmd("HLEN").arg(keys::members(&room)).clone();
            let empty = tokio::time::timeout(CALL_TIMEOUT, members.query_async::<u64>(&mut conn))
                .await
                .is_ok_and(|n| n.is_ok_and(|n| n == 0));
            if empty {
                let srem = redis::cmd("SREM").arg(keys::ROOMS).arg(&*room).clone();
                let _ =
                    tokio::time::timeout(CALL_TIMEOUT, srem.query_async::<i64>(&mut conn)).await;
            }
        });
    }
}

//! The cluster as ports: the rooms' [`Log`] and [`Bus`], and [`Nicks`] and
//! [`Sessions`] shared by every process.

use super::*;

/// The room's reads start as tasks of their own (they hold the cluster).
impl Cluster {
    pub(super) fn owned(&self) -> Result<Arc<Cluster>, StoreError> {
        self.me.upgrade().ok_or(StoreError::Stopped)
    }
}

impl Log for Cluster {
    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>> {
        self.append_body(room.into(), entry)
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_snapshot(&room, recent).await })
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_range(&room, from, to).await })
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_before(&room, before, limit).await })
    }

    fn expiry_cutoff(&self) -> Option<i64> {
        Cluster::expiry_cutoff(self)
    }

    fn kept_per_room(&self) -> Option<u64> {
        Some(self.config.retention)
    }

    fn exists(&self, room: &str) -> Read<bool> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { Ok(me?.room_exists(&room).await) })
    }

    fn queued_bytes(&self) -> usize {
        Cluster::queued_bytes(self)
    }
}

impl Bus for Cluster {
    fn carries(&self) -> bool {
        true
    }

    fn node(&self) -> &str {
        &self.node
    }

    fn subscribe(&self, room: Arc<str>, to: mpsc::WeakSender<BusEvent>) {
        self.register(room, to);
    }

    fn unsubscribe(&self, room: &str) {
        self.unregister(room);
    }

    fn healthy(&self) -> bool {
        Cluster::healthy(self)
    }

    fn presence(
        &self,
        room: &str,
        conn: ConnId,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        self.publish_presence(room, conn, kind, nick, old);
    }

    fn forget_member(&self, room: &str, key: String, nick: &str) {
        self.presence_by_key(room, key, PresenceKind::Leave, nick, None);
    }

    fn typing(&self, room: &str, nick: &str, on: bool) {
        self.publish_typing(room, nick, on);
    }

    fn rooms(&self, max: usize) -> Option<Read<Vec<shared::chat::RoomInfo>>> {
        let me = self.owned();
        Some(Box::pin(async move { me?.rooms(max).await }))
    }

    fn removed(&self, room: &str, removal: &Removal) {
        self.publish_removal(room, removal);
    }

    fn notify(&self, notice: &Notice) {
        self.publish_notice(notice);
    }

    fn notices(&self) -> Option<mpsc::UnboundedReceiver<Notice>> {
        self.notices_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl Nicks for Cluster {
    fn claim_free(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<String> {
        let (me, wanted, session) = (self.owned(), wanted.to_owned(), session.map(str::to_owned));
        Box::pin(async move { me?.claim_free(&wanted, conn, session.as_deref()).await })
    }

    fn claim_exact(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<bool> {
        let (me, wanted, session) = (self.owned(), wanted.to_owned(), session.map(str::to_owned));
        Box::pin(async move { me?.claim_exact(&wanted, conn, session.as_deref()).await })
    }

    fn release(&self, nick: &str, conn: ConnId) {
        Cluster::release(self, nick, conn);
    }

    fn detach(&self, nick: &str, conn: ConnId, session: &str) {
        Cluster::detach(self, nick, conn, session);
    }
}

impl Sessions for Cluster {
    fn load(&self, token: &str) -> Read<Option<SavedSession>> {
        let (me, token) = (self.owned(), token.to_owned());
        Box::pin(async move { Ok(me?.load_session(&token).await) })
    }

    fn save(&self, token: &str, saved: &SavedSession) {
        self.save_session(token, saved);
    }

    fn went_live(&self, token: &str, conn: ConnId) -> Read<()> {
        let (me, token) = (self.owned(), token.to_owned());
        Box::pin(async move {
            me?.went_live(&token, conn).await;
            Ok(())
        })
    }
}

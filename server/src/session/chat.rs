//! The chat protocol's events (JSON payloads): `hello`, `join`, `leave`, `say`,
//! `history`, `nick`, `typing`.

use super::{Conn, close, envelope};
use crate::{
    ids::token_hash,
    limits::{self, MAX_HISTORY_LIMIT},
    log::ChangeOf,
    names,
    room::Post,
};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use shared::{
    chat::{
        Change, Cursor, Delete, Edit, Empty, ErrorBody, ErrorCode, Hello, HistoryQuery, Join, Msg,
        Nick, RoomRef, RoomState, Said, Say, TypingIn, Welcome,
    },
    event,
};
use std::future::Future;

pub(super) fn parse<T: DeserializeOwned>(payload: &[u8], event: &str) -> Result<T, ErrorBody> {
    serde_json::from_slice(payload).map_err(|e| {
        ErrorBody::new(
            ErrorCode::BadRequest,
            format!("'{event}' payload is not valid: {e}"),
        )
    })
}

fn hello_first() -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, "say 'hello' first")
}

fn not_joined(room: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotJoined, format!("not a member of '{room}'"))
}

impl Conn {
    pub(super) fn require_hello(&self) -> Result<(), ErrorBody> {
        if self.session.is_some() {
            Ok(())
        } else {
            Err(hello_first())
        }
    }

    fn joined(&self, raw: &str) -> Result<(String, crate::room::RoomHandle), ErrorBody> {
        let name = names::room(raw)?;
        let room = self
            .rooms
            .get(&name)
            .cloned()
            .ok_or_else(|| not_joined(&name))?;
        Ok((name, room))
    }

    /// Joins (or refreshes) one room and returns its state for this
    /// client, its history within `budget` bytes.
    pub(super) async fn enter(
        &mut self,
        name: &str,
        since: Option<Cursor>,
        budget: usize,
    ) -> Result<RoomState, ErrorBody> {
        if !self.rooms.contains_key(name)
            && self.rooms.len() >= self.app.config.max_rooms_per_connection
        {
            return Err(ErrorBody::new(
                ErrorCode::TooManyRooms,
                format!(
                    "a connection can be in {} rooms at once; leave one first",
                    self.app.config.max_rooms_per_connection
                ),
            ));
        }
        // The one gate: private rooms, bans.
        let admitted = self.may_enter(name).await?;
        let (room, made) = self.open_room(name).await?;
        let role = match admitted.role {
            None if made && self.account.is_some() => Some(crate::access::Role::Owner),
            role => role,
        };
        let state = match room.join(self.member(), since, budget).await {
            Ok(state) => RoomState {
                title: admitted.title,
                role: role.map(|r| r.as_str().to_owned()),
                ..state
            },
            Err(e) => {
                if !self.rooms.contains_key(name) {
                    self.drop_room(name, room);
                }
                return Err(e);
            }
        };
        self.rooms.insert(name.to_owned(), room);
        Ok(state)
    }

    /// The key a chat session's token is kept under: for a signed-in
    /// connection, bound to its account, so that a session's token
    /// resumes it only for the same account (a guest who holds a
    /// signed-in session's token, or the other way round, starts anew).
    fn session_key(&self, token: &str) -> String {
        match &self.account {
            Some(signed) => token_hash(&format!("{}\n{token}", signed.key)),
            None => token_hash(token),
        }
    }

    /// `hello`: starts or resumes a session and returns every room it is in.
    pub(super) async fn hello(&mut self, payload: Bytes) -> Result<Welcome, ErrorBody> {
        let req: Hello = parse(&payload, event::HELLO)?;
        if req.v != 1 {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!(
                    "protocol version {} is not supported; this server speaks 1",
                    req.v
                ),
            ));
        }
        if self.session.is_some() {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "'hello' was already said on this connection",
            ));
        }
        let wanted = req.nick.as_deref().map(names::nick).transpose()?;
        // Only the token's hash is kept anywhere; the token itself goes
        // back to the client in the reply and nowhere else.
        let mut known = None;
        if let Some(token) = req.session.as_deref() {
            let hash = self.session_key(token);
            if self.app.book.knows(&hash) {
                known = Some((token.to_owned(), hash));
            } else if let Some(saved) = self.app.sessions.load(&hash).await.ok().flatten() {
                self.app.book.restore(&hash, saved.nick, saved.rooms);
                known = Some((token.to_owned(), hash));
            }
        }
        let (token, hash) = match known {
            Some(known) => known,
            None => {
                if !self.app.addresses().start_session(self.ip) {
                    return Err(ErrorBody::new(
                        ErrorCode::RateLimited,
                        "too many new sessions from your address; try again in a minute",
                    ));
                }
                let token = crate::ids::new_token();
                let hash = self.session_key(&token);
                (token, hash)
            }
        };
        let (record, previous) = self
            .app
            .book
            .open_session(&hash, self.id, self.kill.clone());
        if let Some(previous) = previous {
            previous.close(close::POLICY, "session resumed on another connection");
        }
        if let Err(e) = self.app.sessions.went_live(&hash, self.id).await {
            tracing::debug!(error = %e, "cannot tell other processes where the session is");
        }
        let wanted = wanted
            .or_else(|| {
                record
                    .as_ref()
                    .map(|r| r.nick.clone())
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| self.nick.clone());
        let granted = if self.account.is_some() {
            // Signed in: the account's name, whatever was asked.
            self.nick.clone()
        } else {
            self.app
                .claim_free(&wanted, self.id, Some(&hash))
                .await
                // Cluster mode with Redis away: keep the name it has.
                .unwrap_or_else(|| self.nick.clone())
        };
        if names::nick_key(&granted) != names::nick_key(&self.nick) {
            self.app.nicks.release(&self.nick, self.id);
        }
        self.nick = granted;
        self.session = Some(hash.clone());

        // Rooms: the lobby, what the session had, and what the client asks back.
        let mut wanted_rooms: Vec<(String, Option<Cursor>)> = vec![(event::LOBBY.to_owned(), None)];
        let mut add = |name: String, cursor: Option<Cursor>| match wanted_rooms
            .iter_mut()
            .find(|(n, _)| *n == name)
        {
            Some(entry) => entry.1 = cursor.or(entry.1.take()),
            None => wanted_rooms.push((name, cursor)),
        };
        let had: Vec<String> = record.map(|r| r.rooms).unwrap_or_default();
        for name in &had {
            add(name.clone(), None);
        }
        let cap = self.app.config.max_rooms_per_connection;
        for cursor in req.resume.unwrap_or_default().into_iter().take(cap) {
            // A cursor names a room the client saw: one that no longer
            // exists (or never did) is not created by it.
            if let Ok(name) = names::room(&cursor.room)
                && (had.contains(&name) || self.app.room_exists(&name).await)
            {
                add(name, Some(cursor));
            }
        }
        wanted_rooms.truncate(cap);
        // The whole reply is bounded: each room gets its share.
        let budget = self.app.config.max_reply_bytes / wanted_rooms.len().max(1);
        let mut rooms = Vec::with_capacity(wanted_rooms.len());
        for (name, cursor) in wanted_rooms {
            match self.enter(&name, cursor, budget).await {
                Ok(state) => rooms.push(state),
                Err(e) if e.code == ErrorCode::TooManyRooms => break,
                // Out of a private room, or banned, since: not brought back.
                Err(e) if matches!(e.code, ErrorCode::NoSuchRoom | ErrorCode::Forbidden) => {}
                Err(e) => {
                    // A room is unavailable (cluster mode, Redis away): the
                    // hello did not happen, and the client may say it again.
                    let entered = self.rooms.keys().cloned().collect();
                    self.app
                        .book
                        .close_session(&hash, self.id, &self.nick, entered);
                    self.session = None;
                    return Err(e);
                }
            }
        }
        self.remember();
        Ok(Welcome {
            session: token,
            nick: self.nick.clone(),
            rooms,
        })
    }

    /// `join`: enters a room (idempotent) and returns its state.
    pub(super) async fn join(&mut self, payload: Bytes) -> Result<RoomState, ErrorBody> {
        self.require_hello()?;
        let req: Join = parse(&payload, event::JOIN)?;
        let name = names::room(&req.room)?;
        let state = self
            .enter(&name, req.since, self.app.config.max_reply_bytes)
            .await?;
        self.remember();
        Ok(state)
    }

    /// `leave`: leaves a room.
    pub(super) async fn leave(&mut self, payload: Bytes) -> Result<Empty, ErrorBody> {
        self.require_hello()?;
        let req: RoomRef = parse(&payload, event::LEAVE)?;
        let (name, room) = self.joined(&req.room)?;
        if name == event::LOBBY {
            // Every connection is in the lobby (demo clients rely on it).
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "everyone stays in 'lobby'; it cannot be left",
            ));
        }
        self.rooms.remove(&name);
        let left = room.leave(self.id).await;
        self.drop_room(&name, room);
        left?;
        self.remember();
        Ok(Empty {})
    }

    /// `say`: validates and queues the post in order; the returned future
    /// resolves to the Response payload once the room has stored it.
    pub(super) async fn say(
        &mut self,
        payload: Bytes,
    ) -> Result<impl Future<Output = Bytes> + Send + 'static, ErrorBody> {
        self.require_hello()?;
        let req: Say = parse(&payload, event::SAY)?;
        let text = names::text(&req.text, self.app.config.max_text_chars)?;
        if req.reply == Some(0) {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "'reply' names a message: seq 1 or more",
            ));
        }
        let ack = self
            .post_entry(req.room, text, req.cid, None, req.reply)
            .await?;
        Ok(async move { envelope(ack.await) })
    }

    /// `edit`: new text for one of this sender's messages, placed in the
    /// room's sequence like a message (the log checks it is theirs, not
    /// deleted, and recent enough).
    pub(super) async fn edit(
        &mut self,
        payload: Bytes,
    ) -> Result<impl Future<Output = Bytes> + Send + 'static, ErrorBody> {
        self.require_hello()?;
        let req: Edit = parse(&payload, event::EDIT)?;
        let text = names::text(&req.text, self.app.config.max_text_chars)?;
        let change = ChangeOf {
            kind: Change::Edit,
            of: req.seq,
            any: false,
        };
        let ack = self
            .post_entry(req.room, text, req.cid, Some(change), None)
            .await?;
        Ok(async move { envelope(ack.await) })
    }

    /// `delete`: removes one of this sender's messages, or anyone's for the
    /// room's owner and moderators (and administrators in public rooms).
    pub(super) async fn delete(
        &mut self,
        payload: Bytes,
    ) -> Result<impl Future<Output = Bytes> + Send + 'static, ErrorBody> {
        self.require_hello()?;
        let req: Delete = parse(&payload, event::DELETE)?;
        self.joined(&req.room)?;
        let any = self.moderates(&req.room).await;
        // A moderator removing somebody else's message: recorded once done.
        let record = match any {
            true => self.moderation_of(&req.room, req.seq).await,
            false => None,
        };
        let change = ChangeOf {
            kind: Change::Delete,
            of: req.seq,
            any,
        };
        let ack = self
            .post_entry(req.room, String::new(), req.cid, Some(change), None)
            .await?;
        Ok(async move {
            let answer = ack.await;
            if let (Ok(_), Some(record)) = (&answer, record) {
                record.await;
            }
            envelope(answer)
        })
    }

    /// Queues an entry (a message, or a change of one) in order; the
    /// returned future resolves to the Response payload once stored.
    async fn post_entry(
        &mut self,
        room: String,
        text: String,
        cid: String,
        change: Option<ChangeOf>,
        reply: Option<u64>,
    ) -> Result<impl Future<Output = Result<Said, ErrorBody>> + Send + 'static, ErrorBody> {
        limits::cid(&cid)?;
        let (_, room) = self.joined(&room)?;
        let author = match (&self.account, &self.session) {
            (Some(me), _) => Some(format!("a:{}", me.key)),
            (None, Some(session)) => Some(format!("s:{session}")),
            (None, None) => None,
        };
        let ack = room
            .post(Post {
                conn: self.id,
                from: self.nick.clone(),
                text,
                cid: Some(cid),
                session: self.session.clone(),
                author,
                change,
                reply,
                received: std::time::Instant::now(),
            })
            .await?;
        Ok(async move {
            ack.await
                .unwrap_or_else(|_| Err(ErrorBody::new(ErrorCode::Internal, "the room stopped")))
        })
    }

    /// `history`: older messages of a joined room.
    pub(super) async fn history(&mut self, payload: Bytes) -> Result<Vec<Msg>, ErrorBody> {
        let req: HistoryQuery = parse(&payload, event::HISTORY)?;
        let (_, room) = self.joined(&req.room)?;
        let limit = req.limit.min(MAX_HISTORY_LIMIT);
        room.history(
            self.id,
            req.before,
            usize::from(limit),
            self.app.config.max_reply_bytes,
        )
        .await
    }

    /// `nick`: changes nickname if nobody live has it.
    pub(super) async fn rename(&mut self, payload: Bytes) -> Result<Nick, ErrorBody> {
        self.require_hello()?;
        let req: Nick = parse(&payload, event::NICK)?;
        let nick = names::nick(&req.nick)?;
        if let Some(signed) = &self.account {
            return if names::nick_key(&nick) == signed.key {
                Ok(Nick {
                    nick: self.nick.clone(),
                })
            } else {
                Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "signed in as '{}': your name is your account's",
                        signed.name
                    ),
                ))
            };
        }
        let registered = self.app.registered(&nick).await.map_err(|_| {
            ErrorBody::new(
                ErrorCode::Unavailable,
                "nicknames cannot be checked right now; try again",
            )
        })?;
        if registered {
            return Err(ErrorBody::new(
                ErrorCode::NickTaken,
                format!("'{nick}' is a registered name; sign in to use it"),
            ));
        }
        let claimed = self
            .app
            .nicks
            .claim_exact(&nick, self.id, self.session.as_deref())
            .await
            .map_err(|_| {
                ErrorBody::new(
                    ErrorCode::Unavailable,
                    "nicknames cannot be checked right now; try again",
                )
            })?;
        if !claimed {
            return Err(ErrorBody::new(
                ErrorCode::NickTaken,
                format!("'{nick}' is taken"),
            ));
        }
        if names::nick_key(&nick) != names::nick_key(&self.nick) {
            self.app.nicks.release(&self.nick, self.id);
        }
        self.nick = nick.clone();
        for room in self.rooms.values() {
            room.rename(self.id, nick.clone()).await;
        }
        self.remember();
        Ok(Nick { nick })
    }

    /// `typing` notify: tells the room's other members.
    pub(super) async fn typing(&mut self, payload: Bytes) {
        if self.session.is_none() {
            return;
        }
        let Ok(req) = serde_json::from_slice::<TypingIn>(&payload) else {
            return;
        };
        if let Ok((_, room)) = self.joined(&req.room) {
            room.typing(self.id, req.on).await;
        }
    }
}

//! Private rooms, direct messages and moderation, from a connection.
//!
//! [`Conn::may_enter`] is the one gate into a room: `join`, the rooms `hello`
//! brings back and resumed cursors all enter through [`Conn::enter`],
//! which asks it first. A private room (or direct message) that the
//! account may not enter answers exactly as one that does not exist; a
//! room the account is banned from says so. Everything a room reveals
//! (its history, messages, presence, typing) goes only to the members the
//! room actor holds, and the actor answers `history` only to them.

use super::{Conn, chat::parse};
use crate::{
    access::{Access, Action, Role, RoomAccess, dm_name, is_private_name, private_name},
    identity::Signed,
    names,
};
use bytes::Bytes;
use shared::{
    chat::{Empty, ErrorBody, ErrorCode, RoomInfo, RoomState},
    event,
    rooms::{ActionInfo, Create, Dm, Invited, Removed, RoomUser},
};
use std::sync::Arc;

/// What [`Conn::may_enter`] found: a private room's title, and the account's
/// role in the room.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    pub title: Option<String>,
    pub role: Option<Role>,
}

/// Longest private room title, in characters.
const MAX_TITLE_CHARS: usize = 64;
/// Moderation actions one `actions` answer holds at most.
const ACTIONS_LISTED: usize = 100;

fn no_such_room(name: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NoSuchRoom,
        format!("there is no room '{name}' that you may enter"),
    )
}

fn too_many_rooms() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::RateLimited,
        "too many new rooms from your address; try again in a minute",
    )
}

fn forbidden(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Forbidden, message)
}

fn store_failed(e: crate::log::StoreError) -> ErrorBody {
    tracing::warn!(error = %e, "access rules cannot be read");
    ErrorBody::new(
        ErrorCode::Unavailable,
        "room permissions cannot be checked right now; try again",
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn json(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A private room's title: one line of 1 to 64 characters.
fn title(raw: &str) -> Result<String, ErrorBody> {
    let title = names::clean_text(raw).replace(['\n', '\r'], " ");
    let title = title.trim();
    if title.is_empty() {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "a room needs a title",
        ));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("titles are at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(title.to_owned())
}

impl Conn {
    fn signed(&self) -> Result<Signed, ErrorBody> {
        self.account
            .as_deref()
            .cloned()
            .ok_or_else(|| forbidden("sign in first: only accounts have private rooms and roles"))
    }

    fn access(&self) -> Result<Arc<dyn Access>, ErrorBody> {
        self.app
            .access
            .clone()
            .ok_or_else(|| ErrorBody::new(ErrorCode::Unavailable, "this server keeps no accounts"))
    }

    /// Whether this connection may enter `name`: the one check for every
    /// way into a room.
    pub(super) async fn may_enter(&self, name: &str) -> Result<Admitted, ErrorBody> {
        let (Some(me), Some(access)) = (self.account.as_deref(), &self.app.access) else {
            // Guests (and servers without accounts) see public rooms only.
            return if is_private_name(name) {
                Err(no_such_room(name))
            } else {
                Ok(Admitted::default())
            };
        };
        let role = access.role(name, &me.key).await.map_err(store_failed)?;
        if is_private_name(name) {
            let rules = access.room(name).await.map_err(store_failed)?;
            return match (rules, role) {
                (Some(rules), Some(role)) if rules.private && role.admitted() => Ok(Admitted {
                    title: Some(rules.title),
                    role: Some(role),
                }),
                // Unknown, or not for this account: alike.
                _ => Err(no_such_room(name)),
            };
        }
        if role == Some(Role::Banned) {
            return Err(forbidden(format!("you are banned from '{name}'")));
        }
        Ok(Admitted { title: None, role })
    }

    /// Whether this connection moderates `room`: its owner or a moderator,
    /// or a server administrator in a public room.
    pub(super) async fn moderates(&self, room: &str) -> bool {
        let (Some(me), Some(access)) = (self.account.as_deref(), &self.app.access) else {
            return false;
        };
        if me.admin && !is_private_name(room) {
            return true;
        }
        match access.role(room, &me.key).await {
            Ok(role) => role.is_some_and(Role::moderates),
            Err(e) => {
                tracing::warn!(error = %e, room, "cannot read a role");
                false
            }
        }
    }

    /// A public room this connection just made: a signed-in creator owns it.
    pub(super) async fn created(&self, name: &str) {
        if let (Some(me), Some(access)) = (self.account.as_deref(), &self.app.access)
            && !is_private_name(name)
            && let Err(e) = access.set_role(name, &me.key, Some(Role::Owner)).await
        {
            tracing::warn!(error = %e, room = name, "cannot record the room's owner");
        }
    }

    /// `rooms`: the public rooms, and the private rooms this account may
    /// enter (with their titles).
    pub(super) async fn list_rooms(&self, max: usize) -> Vec<RoomInfo> {
        let mut rooms = self.app.list_rooms(max).await;
        if let (Some(me), Some(access)) = (self.account.as_deref(), &self.app.access) {
            match access.private_rooms_of(&me.key).await {
                Ok(mine) => rooms.extend(mine.into_iter().map(|(room, rules)| RoomInfo {
                    members: self.app.rooms.get(&room).map_or(0, |h| h.member_count()),
                    room,
                    title: Some(rules.title),
                })),
                Err(e) => tracing::warn!(error = %e, "cannot list private rooms"),
            }
        }
        rooms
    }

    /// `create` `{"title"}`: a new private room, owned and joined.
    pub(super) async fn create(&mut self, payload: Bytes) -> Result<RoomState, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: Create = parse(&payload, event::CREATE)?;
        let title = title(&req.title)?;
        let access = self.access()?;
        if !self.app.addresses().create_room(self.ip) {
            return Err(too_many_rooms());
        }
        let name = private_name();
        let rules = RoomAccess {
            title,
            private: true,
        };
        if !access
            .create_room(&name, rules)
            .await
            .map_err(store_failed)?
        {
            return Err(ErrorBody::new(ErrorCode::Internal, "try again"));
        }
        access
            .set_role(&name, &me.key, Some(Role::Owner))
            .await
            .map_err(store_failed)?;
        let state = self
            .enter(&name, None, self.app.config.max_reply_bytes)
            .await?;
        self.remember();
        Ok(state)
    }

    /// The account named `user`: its name and key.
    async fn account_named(&self, user: &str) -> Result<(String, String), ErrorBody> {
        let unknown = || {
            ErrorBody::new(
                ErrorCode::BadRequest,
                format!("there is no account named '{user}'"),
            )
        };
        let name = names::nick(user).map_err(|_| unknown())?;
        let accounts = self.app.accounts.clone().ok_or_else(unknown)?;
        let found = accounts
            .find(&names::nick_key(&name))
            .await
            .map_err(store_failed)?
            .filter(|a| !a.disabled)
            .ok_or_else(unknown)?;
        Ok((found.name, found.key))
    }

    /// Tells the account's connections (on every process) they may enter `room`.
    fn tell_invited(&self, key: &str, room: &str, title: &str, by: &str) {
        let frame = shared::Frame::notify(
            event::name::INVITED,
            json(&Invited {
                room: room.to_owned(),
                title: title.to_owned(),
                by: by.to_owned(),
            }),
        )
        .encode();
        self.app.push_to_account(key, &frame);
    }

    /// `dm` `{"user"}`: the direct-message room with that account, made
    /// the first time, joined.
    pub(super) async fn dm(&mut self, payload: Bytes) -> Result<RoomState, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: Dm = parse(&payload, event::DM)?;
        let (name, key) = self.account_named(&req.user).await?;
        if key == me.key {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "a direct message is with someone else",
            ));
        }
        let access = self.access()?;
        let room = dm_name(&me.key, &key);
        let mut both = [me.name.clone(), name];
        both.sort_by_key(|n| n.to_lowercase());
        let title = both.join("\n");
        let rules = RoomAccess {
            title: title.clone(),
            private: true,
        };
        // A new direct message is a new room: it spends the address's
        // budget for new rooms, as `join` and `create` do.
        let exists = access.room(&room).await.map_err(store_failed)?.is_some();
        if !exists && !self.app.addresses().create_room(self.ip) {
            return Err(too_many_rooms());
        }
        if access
            .create_room(&room, rules)
            .await
            .map_err(store_failed)?
        {
            for k in [&me.key, &key] {
                access
                    .set_role(&room, k, Some(Role::Member))
                    .await
                    .map_err(store_failed)?;
            }
            self.tell_invited(&key, &room, &title, &me.name);
        }
        let state = self
            .enter(&room, None, self.app.config.max_reply_bytes)
            .await?;
        self.remember();
        Ok(state)
    }

    /// The caller's standing in `room` for moderation: its role, and
    /// whether the room is private. A private room the caller is not in
    /// answers as one that does not exist.
    async fn standing(
        &self,
        access: &Arc<dyn Access>,
        me: &Signed,
        raw: &str,
    ) -> Result<(String, Option<Role>, bool), ErrorBody> {
        let room = names::room(raw)?;
        if room.starts_with("dm-") {
            // Either of the two may leave; nobody moderates a conversation of two.
            self.may_enter(&room).await?;
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "a direct message has no moderators",
            ));
        }
        let role = access.role(&room, &me.key).await.map_err(store_failed)?;
        let private = is_private_name(&room);
        if private && !role.is_some_and(Role::admitted) {
            return Err(no_such_room(&room));
        }
        Ok((room, role, private))
    }

    /// `invite` `{"room", "user"}`: lets an account into a private room
    /// (owners and moderators).
    pub(super) async fn invite(&mut self, payload: Bytes) -> Result<Empty, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: RoomUser = parse(&payload, event::INVITE)?;
        let access = self.access()?;
        let (room, role, private) = self.standing(&access, &me, &req.room).await?;
        if !private {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("'{room}' is public: anyone may join it"),
            ));
        }
        if !role.is_some_and(Role::moderates) {
            return Err(forbidden("only the room's owner and moderators invite"));
        }
        let (name, key) = self.account_named(&req.user).await?;
        let theirs = access.role(&room, &key).await.map_err(store_failed)?;
        if !theirs.is_some_and(|r| r.admitted()) {
            access
                .set_role(&room, &key, Some(Role::Member))
                .await
                .map_err(store_failed)?;
        }
        self.record(&access, &room, &me, "invite", &name).await;
        let title = access
            .room(&room)
            .await
            .map_err(store_failed)?
            .map(|r| r.title)
            .unwrap_or_default();
        self.tell_invited(&key, &room, &title, &me.name);
        Ok(Empty {})
    }

    /// `kick`, `ban`, `unban` `{"room", "user"}` (owners, moderators, and
    /// server administrators in public rooms). A kick or a ban takes the
    /// account's connections out of the room at once; out of a private
    /// room, a kick also ends its membership; a ban outlives sessions.
    pub(super) async fn moderate(
        &mut self,
        what: &'static str,
        payload: Bytes,
    ) -> Result<Empty, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: RoomUser = parse(&payload, what)?;
        let access = self.access()?;
        let (room, role, private) = self.standing(&access, &me, &req.room).await?;
        let allowed = role.is_some_and(Role::moderates) || (me.admin && !private);
        if !allowed {
            return Err(forbidden(
                "only the room's owner and moderators (and server administrators, in public rooms) do this",
            ));
        }
        let (name, key) = match self.account_named(&req.user).await {
            Ok(found) => found,
            // A guest: out of a public room now (a guest has nothing to ban).
            Err(unknown) if what == event::KICK && !private => {
                return self
                    .kick_guest(&access, &room, &me, &req.user, unknown)
                    .await;
            }
            Err(e) => return Err(e),
        };
        if key == me.key {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "to go, leave the room",
            ));
        }
        let theirs = access.role(&room, &key).await.map_err(store_failed)?;
        let above = match theirs {
            Some(Role::Owner) => true,
            Some(Role::Moderator) => role != Some(Role::Owner) && !me.admin,
            _ => false,
        };
        if above {
            return Err(forbidden(format!(
                "{name} moderates '{room}': you cannot remove them"
            )));
        }
        let next = match what {
            event::BAN => Some(Role::Banned),
            event::KICK if private => None,
            event::KICK => theirs,
            // Unban: out of the list; a private room needs an invite again.
            _ => (theirs != Some(Role::Banned)).then_some(theirs).flatten(),
        };
        if next != theirs {
            access
                .set_role(&room, &key, next)
                .await
                .map_err(store_failed)?;
        }
        self.record(&access, &room, &me, what, &name).await;
        if what != event::UNBAN {
            let removed = json(&Removed {
                room: room.clone(),
                by: me.name.clone(),
                banned: what == event::BAN,
            });
            match self.app.rooms.get(&room) {
                // The room takes them out here and tells the other processes.
                Some(handle) => {
                    handle.remove(name, true, removed).await;
                }
                // Nobody here is in it: the other processes are told directly.
                None => self.app.bus.removed(
                    &room,
                    &crate::log::Removal {
                        node: self.app.bus.node().to_owned(),
                        nick: name,
                        signed_in: true,
                        removed,
                    },
                ),
            }
        }
        Ok(Empty {})
    }

    /// Takes the guest `user`'s connections out of the public `room`;
    /// `unknown` when there is no such guest there.
    async fn kick_guest(
        &self,
        access: &Arc<dyn Access>,
        room: &str,
        me: &Signed,
        user: &str,
        unknown: ErrorBody,
    ) -> Result<Empty, ErrorBody> {
        let nick = names::nick(user).map_err(|_| unknown.clone())?;
        let Some(handle) = self.app.rooms.get(room) else {
            return Err(unknown);
        };
        let removed = json(&Removed {
            room: room.to_owned(),
            by: me.name.clone(),
            banned: false,
        });
        if handle.remove(nick.clone(), false, removed).await == 0 {
            return Err(unknown);
        }
        self.record(access, room, me, event::KICK, &nick).await;
        Ok(Empty {})
    }

    /// `moderator` `{"room", "user"}`: the owner (or an administrator, in
    /// a public room) makes an account a moderator.
    pub(super) async fn promote(&mut self, payload: Bytes) -> Result<Empty, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: RoomUser = parse(&payload, event::MODERATOR)?;
        let access = self.access()?;
        let (room, role, private) = self.standing(&access, &me, &req.room).await?;
        let administers = me.admin && !private;
        if role != Some(Role::Owner) && !administers {
            return Err(forbidden("only the room's owner names moderators"));
        }
        let (name, key) = self.account_named(&req.user).await?;
        access
            .set_role(&room, &key, Some(Role::Moderator))
            .await
            .map_err(store_failed)?;
        self.record(&access, &room, &me, event::MODERATOR, &name)
            .await;
        Ok(Empty {})
    }

    /// `actions` `{"room"}`: the room's moderation record, newest first
    /// (its owner and moderators, and administrators in public rooms).
    pub(super) async fn actions(&mut self, payload: Bytes) -> Result<Vec<ActionInfo>, ErrorBody> {
        self.require_hello()?;
        let me = self.signed()?;
        let req: shared::chat::RoomRef = parse(&payload, event::ACTIONS)?;
        let access = self.access()?;
        let (room, role, private) = self.standing(&access, &me, &req.room).await?;
        let administers = me.admin && !private;
        if !role.is_some_and(Role::moderates) && !administers {
            return Err(forbidden("only the room's moderators see what they did"));
        }
        let actions = access
            .actions(&room, ACTIONS_LISTED)
            .await
            .map_err(store_failed)?;
        Ok(actions
            .into_iter()
            .map(|a| ActionInfo {
                at: a.at,
                by: a.by,
                what: a.what,
                whom: a.whom,
            })
            .collect())
    }

    /// What to record when this moderator deletes message `seq` of `room`
    /// (`None` when it is their own, or cannot be read): a future that
    /// records it, to run once the delete is stored.
    pub(super) async fn moderation_of(
        &self,
        room: &str,
        seq: u64,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static + use<>> {
        let me = self.account.as_deref()?.clone();
        let access = self.app.access.clone()?;
        let handle = self.app.rooms.get(room)?;
        let target = handle
            .history(self.id, seq.saturating_add(1), 1, 1 << 16)
            .await
            .ok()?
            .pop()
            .filter(|m| m.seq == seq)?;
        if target.from == me.name {
            return None;
        }
        let action = Action {
            room: room.to_owned(),
            at: now_ms(),
            by: me.name.clone(),
            what: "delete".to_owned(),
            whom: target.from,
        };
        Some(async move {
            if let Err(e) = access.record(action).await {
                tracing::warn!(error = %e, "cannot record a moderation action");
            }
        })
    }

    async fn record(
        &self,
        access: &Arc<dyn Access>,
        room: &str,
        me: &Signed,
        what: &str,
        whom: &str,
    ) {
        let action = Action {
            room: room.to_owned(),
            at: now_ms(),
            by: me.name.clone(),
            what: what.to_owned(),
            whom: whom.to_owned(),
        };
        if let Err(e) = access.record(action).await {
            tracing::warn!(error = %e, room, "cannot record a moderation action");
        }
    }
}

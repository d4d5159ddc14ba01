//! Who may be in which room, as a port: private rooms and direct messages
//! (their titles and member accounts), each room's roles (owner,
//! moderators, banned accounts) and the record of what moderators did.
//! SQLite keeps them with the accounts; [`MemoryAccess`] in this process.
//!
//! Private rooms and direct messages have names the server makes
//! (`p-` and `dm-` and 16 hex digits): `join` never creates one, so a name
//! nobody may see and a name that does not exist answer alike.

use crate::log::Read;
use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

/// A room's role for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Made the room: names moderators; cannot be removed by them.
    Owner,
    /// Invites, kicks, bans.
    Moderator,
    /// Invited into a private room (or one of a direct message's two).
    Member,
    /// May not enter.
    Banned,
}

impl Role {
    /// How it is stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Moderator => "moderator",
            Role::Member => "member",
            Role::Banned => "banned",
        }
    }

    /// The role stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => Role::Owner,
            "moderator" => Role::Moderator,
            "member" => Role::Member,
            "banned" => Role::Banned,
            _ => return None,
        })
    }

    /// Invites, kicks and bans.
    pub fn moderates(self) -> bool {
        matches!(self, Role::Owner | Role::Moderator)
    }

    /// May enter a private room.
    pub fn admitted(self) -> bool {
        !matches!(self, Role::Banned)
    }
}

/// What is known of a room with access rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomAccess {
    /// What members see as its name (a direct message: the two account
    /// names, one per line).
    pub title: String,
    /// Only its members see it.
    pub private: bool,
}

/// One moderation action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The room.
    pub room: String,
    /// Unix milliseconds.
    pub at: i64,
    /// Who did it (an account name).
    pub by: String,
    /// What: `invite`, `kick`, `ban`, `moderator`…
    pub what: String,
    /// To whom (an account name).
    pub whom: String,
}

/// Actions kept per room at most (older ones go).
pub const ACTIONS_KEPT: usize = 1_000;

/// Rooms' access rules and roles.
pub trait Access: Send + Sync {
    /// Records a room with rules: `false` if the name has them already.
    fn create_room(&self, room: &str, access: RoomAccess) -> Read<bool>;
    /// The rules of `room`, if it has any.
    fn room(&self, room: &str) -> Read<Option<RoomAccess>>;
    /// The account's role in `room`.
    fn role(&self, room: &str, key: &str) -> Read<Option<Role>>;
    /// Sets (or with `None` removes) the account's role in `room`.
    fn set_role(&self, room: &str, key: &str, role: Option<Role>) -> Read<()>;
    /// The private rooms the account may enter, with their rules.
    fn private_rooms_of(&self, key: &str) -> Read<Vec<(String, RoomAccess)>>;
    /// The rooms the account is banned from.
    fn banned_from(&self, key: &str) -> Read<Vec<String>>;
    /// Records a moderation action.
    fn record(&self, action: Action) -> Read<()>;
    /// The room's latest actions, newest first, at most `limit`.
    fn actions(&self, room: &str, limit: usize) -> Read<Vec<Action>>;
}

/// Whether `name` is one only the server makes (a private room or a
/// direct message).
pub fn is_private_name(name: &str) -> bool {
    name.starts_with("p-") || name.starts_with("dm-")
}

/// A new private room's name: `p-` and 64 random bits.
pub fn private_name() -> String {
    format!("p-{:016x}", rand::random::<u64>())
}

/// The direct-message room of two accounts (by key), the same whoever
/// opens it.
pub fn dm_name(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let hash = crate::ids::token_hash(&format!("dm\n{first}\n{second}"));
    format!("dm-{}", &hash[..16])
}

fn ready<T: Send + 'static>(value: T) -> Read<T> {
    Box::pin(std::future::ready(Ok(value)))
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, RoomAccess>,
    /// room → account key → role.
    roles: HashMap<String, HashMap<String, Role>>,
    actions: HashMap<String, VecDeque<Action>>,
}

/// Access rules in this process's memory.
#[derive(Default)]
pub struct MemoryAccess {
    inner: Mutex<Inner>,
}

impl MemoryAccess {
    fn locked(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Access for MemoryAccess {
    fn create_room(&self, room: &str, access: RoomAccess) -> Read<bool> {
        let mut inner = self.locked();
        if inner.rooms.contains_key(room) {
            return ready(false);
        }
        inner.rooms.insert(room.to_owned(), access);
        ready(true)
    }

    fn room(&self, room: &str) -> Read<Option<RoomAccess>> {
        ready(self.locked().rooms.get(room).cloned())
    }

    fn role(&self, room: &str, key: &str) -> Read<Option<Role>> {
        ready(
            self.locked()
                .roles
                .get(room)
                .and_then(|r| r.get(key))
                .copied(),
        )
    }

    fn set_role(&self, room: &str, key: &str, role: Option<Role>) -> Read<()> {
        let mut inner = self.locked();
        let roles = inner.roles.entry(room.to_owned()).or_default();
        match role {
            Some(role) => {
                roles.insert(key.to_owned(), role);
            }
            None => {
                roles.remove(key);
            }
        }
        ready(())
    }

    fn banned_from(&self, key: &str) -> Read<Vec<String>> {
        let inner = self.locked();
        let mut rooms: Vec<String> = inner
            .roles
            .iter()
            .filter(|(_, roles)| roles.get(key) == Some(&Role::Banned))
            .map(|(room, _)| room.clone())
            .collect();
        rooms.sort_unstable();
        ready(rooms)
    }

    fn private_rooms_of(&self, key: &str) -> Read<Vec<(String, RoomAccess)>> {
        let inner = self.locked();
        let mut rooms: Vec<(String, RoomAccess)> = inner
            .roles
            .iter()
            .filter(|(_, roles)| roles.get(key).is_some_and(|r| r.admitted()))
            .filter_map(|(room, _)| {
                inner
                    .rooms
                    .get(room)
                    .filter(|a| a.private)
                    .map(|a| (room.clone(), a.clone()))
            })
            .collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        ready(rooms)
    }

    fn record(&self, action: Action) -> Read<()> {
        let mut inner = self.locked();
        let kept = inner.actions.entry(action.room.clone()).or_default();
        kept.push_front(action);
        kept.truncate(ACTIONS_KEPT);
        ready(())
    }

    fn actions(&self, room: &str, limit: usize) -> Read<Vec<Action>> {
        ready(
            self.locked()
                .actions
                .get(room)
                .map(|a| a.iter().take(limit).cloned().collect())
                .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_only_the_server_makes() {
        assert!(is_private_name(&private_name()));
        assert_eq!(private_name().len(), 18);
        let dm = dm_name("alice", "bob");
        assert_eq!(dm, dm_name("bob", "alice"), "the same either way");
        assert!(dm.starts_with("dm-") && dm.len() == 19 && is_private_name(&dm));
        assert_ne!(dm, dm_name("alice", "carol"));
        assert!(!is_private_name("plans"));
        assert!(shared::room_name::room_name(&private_name()).is_ok());
    }

    #[tokio::test]
    async fn roles_and_private_rooms_in_memory() {
        let access = MemoryAccess::default();
        let rules = RoomAccess {
            title: "Plans".into(),
            private: true,
        };
        assert!(
            access
                .create_room("p-1", rules.clone())
                .await
                .expect("memory")
        );
        assert!(
            !access
                .create_room("p-1", rules.clone())
                .await
                .expect("memory")
        );
        access
            .set_role("p-1", "alice", Some(Role::Owner))
            .await
            .expect("memory");
        access
            .set_role("p-1", "bob", Some(Role::Member))
            .await
            .expect("memory");
        access
            .set_role("p-1", "carol", Some(Role::Banned))
            .await
            .expect("memory");
        assert_eq!(
            access.private_rooms_of("bob").await.expect("memory"),
            vec![("p-1".to_owned(), rules)]
        );
        assert!(
            access
                .private_rooms_of("carol")
                .await
                .expect("memory")
                .is_empty()
        );
        access.set_role("p-1", "bob", None).await.expect("memory");
        assert_eq!(access.role("p-1", "bob").await.expect("memory"), None);
        for what in ["invite", "kick"] {
            access
                .record(Action {
                    room: "p-1".into(),
                    at: 1,
                    by: "alice".into(),
                    what: what.into(),
                    whom: "bob".into(),
                })
                .await
                .expect("memory");
        }
        let actions = access.actions("p-1", 10).await.expect("memory");
        assert_eq!(
            actions.iter().map(|a| a.what.as_str()).collect::<Vec<_>>(),
            ["kick", "invite"]
        );
    }
}

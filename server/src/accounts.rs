//! Accounts and their sign-in sessions, as a port: the SQLite store keeps
//! them with history; [`MemoryAccounts`] keeps them in this process (the
//! memory store, tests). A session is known by its token's hash only.

use crate::log::Read;
use std::{collections::HashMap, sync::Mutex};

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name as registered (NFKC, as typed otherwise).
    pub name: String,
    /// Its look-alike key (`names::nick_key`): unique.
    pub key: String,
    /// The password's argon2id PHC string.
    pub hash: String,
    /// A server administrator.
    pub admin: bool,
    /// Disabled by an administrator: cannot sign in.
    pub disabled: bool,
}

/// How long a sign-in session lives, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// Unused for this long, it ends.
    pub idle_ms: i64,
    /// Opened this long ago, it ends however used.
    pub max_ms: i64,
}

/// Sign-in sessions one account keeps at most: opening one more ends the
/// oldest.
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 20;

/// Accounts and sign-in sessions.
pub trait Accounts: Send + Sync {
    /// Registers `account`: `false` if its key is taken.
    fn create(&self, account: Account) -> Read<bool>;
    /// The account with this key.
    fn find(&self, key: &str) -> Read<Option<Account>>;
    /// A new session (its token's hash) for the account with `key`; the
    /// account's oldest sessions past [`MAX_SESSIONS_PER_ACCOUNT`] end.
    fn open_session(&self, token: &str, key: &str, now_ms: i64) -> Read<()>;
    /// The account of a live session, marked as used now; an expired
    /// session is removed and answers `None`.
    fn session(&self, token: &str, now_ms: i64, life: Lifetime) -> Read<Option<Account>>;
    /// Ends a session.
    fn close_session(&self, token: &str) -> Read<()>;
    /// Replaces the password hash of the account with `key`.
    fn set_password(&self, key: &str, hash: String) -> Read<()>;
    /// Ends every session of the account with `key` but `keep` (a token
    /// hash); returns the ended ones' token hashes.
    fn close_sessions(&self, key: &str, keep: Option<&str>) -> Read<Vec<String>>;
    /// Disables (or enables again) the account with `key`: `false` if
    /// there is none.
    fn set_disabled(&self, key: &str, disabled: bool) -> Read<bool>;
    /// Keeps an invite (its code's hash) good for `uses` sign-ups until
    /// `expires_ms`, made by the account with key `by`.
    fn create_invite(&self, code: &str, uses: u32, expires_ms: i64, by: &str) -> Read<()>;
    /// Spends one use of an invite: `false` if it is unknown, used up or
    /// expired.
    fn use_invite(&self, code: &str, now_ms: i64) -> Read<bool>;
}

/// Whether a session opened at `opened` and last used at `seen` is live.
pub fn live(opened: i64, seen: i64, now_ms: i64, life: Lifetime) -> bool {
    now_ms - seen < life.idle_ms && now_ms - opened < life.max_ms
}

#[derive(Debug, Clone)]
struct Held {
    key: String,
    opened: i64,
    seen: i64,
    /// Order of opening (several may open in one millisecond).
    order: u64,
}

/// Accounts in this process's memory.
#[derive(Default)]
pub struct MemoryAccounts {
    accounts: Mutex<HashMap<String, Account>>,
    sessions: Mutex<HashMap<String, Held>>,
    /// Invite code hash → (uses left, expiry).
    invites: Mutex<HashMap<String, (u32, i64)>>,
    opened: std::sync::atomic::AtomicU64,
}

/// Most sign-in sessions held in memory before expired ones are swept.
const SWEEP_AT: usize = 10_000;

fn ready<T: Send + 'static>(value: T) -> Read<T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl MemoryAccounts {
    fn accounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        // Single map operations: a poisoned lock is consistent.
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Accounts for MemoryAccounts {
    fn create(&self, account: Account) -> Read<bool> {
        let mut accounts = self.accounts();
        if accounts.contains_key(&account.key) {
            return ready(false);
        }
        accounts.insert(account.key.clone(), account);
        ready(true)
    }

    fn find(&self, key: &str) -> Read<Option<Account>> {
        ready(self.accounts().get(key).cloned())
    }

    fn open_session(&self, token: &str, key: &str, now_ms: i64) -> Read<()> {
        let mut sessions = self.sessions();
        if sessions.len() >= SWEEP_AT {
            // Without a lifetime here, sessions unused for a day go.
            sessions.retain(|_, h| now_ms - h.seen < 86_400_000);
        }
        let order = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sessions.insert(
            token.to_owned(),
            Held {
                key: key.to_owned(),
                opened: now_ms,
                seen: now_ms,
                order,
            },
        );
        let mut mine: Vec<(u64, String)> = sessions
            .iter()
            .filter(|(_, h)| h.key == key)
            .map(|(t, h)| (h.order, t.clone()))
            .collect();
        if mine.len() > MAX_SESSIONS_PER_ACCOUNT {
            mine.sort_unstable();
            for (_, token) in &mine[..mine.len() - MAX_SESSIONS_PER_ACCOUNT] {
                sessions.remove(token);
            }
        }
        ready(())
    }

    fn session(&self, token: &str, now_ms: i64, life: Lifetime) -> Read<Option<Account>> {
        let key = {
            let mut sessions = self.sessions();
            let Some(held) = sessions.get_mut(token) else {
                return ready(None);
            };
            if !live(held.opened, held.seen, now_ms, life) {
                sessions.remove(token);
                return ready(None);
            }
            held.seen = now_ms;
            held.key.clone()
        };
        ready(self.accounts().get(&key).cloned())
    }

    fn close_session(&self, token: &str) -> Read<()> {
        self.sessions().remove(token);
        ready(())
    }

    fn set_password(&self, key: &str, hash: String) -> Read<()> {
        if let Some(account) = self.accounts().get_mut(key) {
            account.hash = hash;
        }
        ready(())
    }

    fn set_disabled(&self, key: &str, disabled: bool) -> Read<bool> {
        let mut accounts = self.accounts();
        let found = accounts.get_mut(key).map(|a| a.disabled = disabled);
        ready(found.is_some())
    }

    fn create_invite(&self, code: &str, uses: u32, expires_ms: i64, _by: &str) -> Read<()> {
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        invites.insert(code.to_owned(), (uses, expires_ms));
        ready(())
    }

    fn use_invite(&self, code: &str, now_ms: i64) -> Read<bool> {
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        let good = match invites.get_mut(code) {
            Some((uses, expires)) if *uses > 0 && now_ms < *expires => {
                *uses -= 1;
                true
            }
            _ => false,
        };
        // Spent or expired invites are forgotten.
        invites.retain(|_, (uses, expires)| *uses > 0 && now_ms < *expires);
        ready(good)
    }

    fn close_sessions(&self, key: &str, keep: Option<&str>) -> Read<Vec<String>> {
        let mut sessions = self.sessions();
        let ended: Vec<String> = sessions
            .iter()
            .filter(|(t, h)| h.key == key && Some(t.as_str()) != keep)
            .map(|(t, _)| t.clone())
            .collect();
        for token in &ended {
            sessions.remove(token);
        }
        ready(ended)
    }
}

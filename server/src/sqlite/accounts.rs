//! Accounts and sign-in sessions in the database, on a connection of
//! their own, each call on the blocking pool.

use super::{Error, schema};
use crate::{
    accounts::{Account, Accounts, Lifetime, MAX_SESSIONS_PER_ACCOUNT, live},
    log::{Read, StoreError},
};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Arc, Mutex};

pub(super) fn on_blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Read<T> {
    let conn = conn.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| Error::Poisoned)?;
            work(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(Error::ReadTask)?
    })
}

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        key: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        admin: r.get(3)?,
        disabled: r.get(4)?,
    })
}

const ACCOUNT: &str = "SELECT key, name, hash, admin, disabled FROM accounts";

/// Accounts in `chat.db`, on a connection of their own (the history
/// store's, or one opened alone by `server admin`).
#[derive(Clone)]
pub struct SqliteAccounts {
    pub(super) conn: Arc<Mutex<Connection>>,
}

impl SqliteAccounts {
    pub(super) fn on(conn: Arc<Mutex<Connection>>) -> Self {
        Self { conn }
    }

    /// Opens the accounts of `dir/chat.db` alone (creating the database
    /// if needed), for the operator's commands; a server may be running.
    pub fn open(dir: &std::path::Path) -> Result<Self, StoreError> {
        let path = dir.join("chat.db");
        schema::private_files(dir, &path)?;
        let conn = schema::connect(&path)?;
        schema::migrate(&conn, &path)?;
        Ok(Self::on(Arc::new(Mutex::new(conn))))
    }
}

impl Accounts for SqliteAccounts {
    fn create(&self, a: Account) -> Read<bool> {
        on_blocking(&self.conn, move |c| {
            let created = super::now_ms();
            let rows = c.execute(
                "INSERT OR IGNORE INTO accounts (key, name, hash, admin, disabled, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.key, a.name, a.hash, a.admin, a.disabled, created],
            )?;
            Ok(rows == 1)
        })
    }

    fn find(&self, key: &str) -> Read<Option<Account>> {
        let key = key.to_owned();
        on_blocking(&self.conn, move |c| {
            c.query_row(&format!("{ACCOUNT} WHERE key = ?1"), [key], account)
                .optional()
        })
    }

    fn open_session(&self, token: &str, key: &str, now_ms: i64) -> Read<()> {
        let (token, key) = (token.to_owned(), key.to_owned());
        on_blocking(&self.conn, move |c| {
            c.execute(
                "INSERT OR REPLACE INTO account_sessions (token, key, opened, seen) VALUES (?1, ?2, ?3, ?3)",
                params![token, key, now_ms],
            )?;
            c.execute(
                "DELETE FROM account_sessions WHERE key = ?1 AND rowid NOT IN \
                 (SELECT rowid FROM account_sessions WHERE key = ?1 ORDER BY rowid DESC LIMIT ?2)",
                params![key, MAX_SESSIONS_PER_ACCOUNT as i64],
            )?;
            Ok(())
        })
    }

    fn session(&self, token: &str, now_ms: i64, life: Lifetime) -> Read<Option<Account>> {
        let token = token.to_owned();
        on_blocking(&self.conn, move |c| {
            let held: Option<(String, i64, i64)> = c
                .query_row(
                    "SELECT key, opened, seen FROM account_sessions WHERE token = ?1",
                    [&token],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((key, opened, seen)) = held else {
                return Ok(None);
            };
            if !live(opened, seen, now_ms, life) {
                c.execute("DELETE FROM account_sessions WHERE token = ?1", [&token])?;
                return Ok(None);
            }
            // Marked used at most once a minute (or a quarter of the idle
            // time): a page load is not a write each time.
            if now_ms - seen >= (life.idle_ms / 4).min(60_000) {
                c.execute(
                    "UPDATE account_sessions SET seen = ?2 WHERE token = ?1",
                    params![token, now_ms],
                )?;
            }
            c.query_row(&format!("{ACCOUNT} WHERE key = ?1"), [key], account)
                .optional()
        })
    }

    fn close_session(&self, token: &str) -> Read<()> {
        let token = token.to_owned();
        on_blocking(&self.conn, move |c| {
            c.execute("DELETE FROM account_sessions WHERE token = ?1", [token])?;
            Ok(())
        })
    }

    fn set_password(&self, key: &str, hash: String) -> Read<()> {
        let key = key.to_owned();
        on_blocking(&self.conn, move |c| {
            c.execute(
                "UPDATE accounts SET hash = ?2 WHERE key = ?1",
                params![key, hash],
            )?;
            Ok(())
        })
    }

    fn set_disabled(&self, key: &str, disabled: bool) -> Read<bool> {
        let key = key.to_owned();
        on_blocking(&self.conn, move |c| {
            let rows = c.execute(
                "UPDATE accounts SET disabled = ?2 WHERE key = ?1",
                params![key, disabled],
            )?;
            Ok(rows == 1)
        })
    }

    fn create_invite(&self, code: &str, uses: u32, expires_ms: i64, by: &str) -> Read<()> {
        let (code, by) = (code.to_owned(), by.to_owned());
        on_blocking(&self.conn, move |c| {
            c.execute(
                "INSERT OR REPLACE INTO invites (code, uses, expires, by) VALUES (?1, ?2, ?3, ?4)",
                params![code, uses, expires_ms, by],
            )?;
            Ok(())
        })
    }

    fn use_invite(&self, code: &str, now_ms: i64) -> Read<bool> {
        let code = code.to_owned();
        on_blocking(&self.conn, move |c| {
            let rows = c.execute(
                "UPDATE invites SET uses = uses - 1 WHERE code = ?1 AND uses > 0 AND expires > ?2",
                params![code, now_ms],
            )?;
            // Spent or expired invites are forgotten.
            c.execute(
                "DELETE FROM invites WHERE uses <= 0 OR expires <= ?1",
                [now_ms],
            )?;
            Ok(rows == 1)
        })
    }

    fn close_sessions(&self, key: &str, keep: Option<&str>) -> Read<Vec<String>> {
        let (key, keep) = (key.to_owned(), keep.unwrap_or_default().to_owned());
        on_blocking(&self.conn, move |c| {
            let tx = c.unchecked_transaction()?;
            let ended: Vec<String> = tx
                .prepare("SELECT token FROM account_sessions WHERE key = ?1 AND token != ?2")?
                .query_map(params![key, keep], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.execute(
                "DELETE FROM account_sessions WHERE key = ?1 AND token != ?2",
                params![key, keep],
            )?;
            tx.commit()?;
            Ok(ended)
        })
    }
}

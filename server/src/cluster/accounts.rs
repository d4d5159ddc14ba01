//! Accounts, sign-in sessions, invites and rooms' access rules in Redis,
//! for every process of the cluster (the same ports SQLite implements in
//! one process).
//!
//! Every call is single-key, or touches one hash tag only (an account's
//! keys, or a room's), so it runs unchanged on a Redis Cluster. Where an
//! operation spans two tags (a sign-in session and its account's list),
//! the steps are ordered so that a failure halfway leaves nothing live
//! that should not be: a session is removed from its own key first, and
//! a session key whose account list lost it still expires by itself.

use super::*;
use crate::{
    access::{ACTIONS_KEPT, Access, Action, Role, RoomAccess, is_private_name},
    accounts::{Account, Accounts, Lifetime, MAX_SESSIONS_PER_ACCOUNT, live},
};

/// A sign-in session's key lives this long without use at most (its
/// lifetime is checked on every use; this only bounds what is kept).
const SIGNIN_KEPT_MS: i64 = 400 * 86_400_000;

/// Sets the hash at `KEYS[1]` from `ARGV` (field, value, …) unless it
/// exists: 1 if it was set.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
";

/// Sets field `ARGV[1]` to `ARGV[2]` in the hash at `KEYS[1]` if it
/// exists: 1 if it did.
const UPDATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// Spends one use of the invite at `KEYS[1]` if it is good at `ARGV[1]`
/// (ms): 1 if it was.
const USE_INVITE: &str = r"
local uses = tonumber(redis.call('HGET', KEYS[1], 'uses') or '0')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
if uses <= 0 or expires <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if uses == 1 then redis.call('DEL', KEYS[1]) else redis.call('HINCRBY', KEYS[1], 'uses', -1) end
return 1
";

/// One moderation action as kept in a room's list.
#[derive(Serialize, Deserialize)]
struct StoredAction {
    at: i64,
    by: String,
    what: String,
    whom: String,
}

/// Accounts and access rules in Redis.
#[derive(Clone)]
pub struct RedisAccounts {
    conn: Conn,
}

fn flag(value: bool) -> &'static str {
    if value { "1" } else { "0" }
}

fn account_of(fields: &HashMap<String, String>) -> Option<Account> {
    Some(Account {
        key: fields.get("key")?.clone(),
        name: fields.get("name")?.clone(),
        hash: fields.get("hash")?.clone(),
        admin: fields.get("admin").is_some_and(|v| v == "1"),
        disabled: fields.get("disabled").is_some_and(|v| v == "1"),
    })
}

/// Runs one command on `conn`, giving up after [`CALL_TIMEOUT`].
async fn run<T: redis::FromRedisValue>(conn: &mut Conn, cmd: &Cmd) -> Result<T, StoreError> {
    match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<T>(conn)).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(Error::TimedOut.into()),
    }
}

/// Runs a script on one key.
async fn script<T: redis::FromRedisValue>(
    conn: &mut Conn,
    code: &str,
    key: &str,
    args: &[String],
) -> Result<T, StoreError> {
    let script = Script::new(code);
    let mut call = script.key(key);
    for arg in args {
        call.arg(arg);
    }
    match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<T>(conn)).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(Error::TimedOut.into()),
    }
}

impl RedisAccounts {
    pub(super) fn on(conn: Conn) -> Self {
        Self { conn }
    }

    /// The accounts of the Redis `config` names, alone (for the operator's
    /// commands; servers may be running).
    pub fn open(config: &ClusterConfig) -> Result<Self, StoreError> {
        Ok(Self::on(Conn::open(config)?))
    }

    /// Runs `work` with a connection of its own, as a boxed future.
    fn with<T: Send + 'static, F>(&self, work: impl FnOnce(Conn) -> F) -> Read<T>
    where
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        Box::pin(work(self.conn.clone()))
    }
}

async fn find(conn: &mut Conn, key: &str) -> Result<Option<Account>, StoreError> {
    let fields: HashMap<String, String> =
        run(conn, redis::cmd("HGETALL").arg(keys::account(key))).await?;
    Ok(account_of(&fields))
}

/// Ends the sessions `tokens` of the account with `key`.
async fn end_sessions(conn: &mut Conn, key: &str, tokens: &[String]) -> Result<(), StoreError> {
    for token in tokens {
        run::<()>(conn, redis::cmd("DEL").arg(keys::signin(token))).await?;
    }
    if !tokens.is_empty() {
        run::<()>(
            conn,
            redis::cmd("ZREM")
                .arg(keys::account_sessions(key))
                .arg(tokens),
        )
        .await?;
    }
    Ok(())
}

impl Accounts for RedisAccounts {
    fn create(&self, a: Account) -> Read<bool> {
        self.with(move |mut conn| async move {
            let fields = [
                ("key", a.key.clone()),
                ("name", a.name),
                ("hash", a.hash),
                ("admin", flag(a.admin).to_owned()),
                ("disabled", flag(a.disabled).to_owned()),
                ("created", super::now_ms().to_string()),
            ];
            let args: Vec<String> = fields
                .into_iter()
                .flat_map(|(k, v)| [k.to_owned(), v])
                .collect();
            let created: i64 = script(&mut conn, CREATE, &keys::account(&a.key), &args).await?;
            Ok(created == 1)
        })
    }

    fn find(&self, key: &str) -> Read<Option<Account>> {
        let key = key.to_owned();
        self.with(move |mut conn| async move { find(&mut conn, &key).await })
    }

    fn open_session(&self, token: &str, key: &str, now_ms: i64) -> Read<()> {
        let (token, key) = (token.to_owned(), key.to_owned());
        self.with(move |mut conn| async move {
            let mut set = redis::cmd("HSET");
            set.arg(keys::signin(&token))
                .arg("key")
                .arg(&key)
                .arg("opened")
                .arg(now_ms)
                .arg("seen")
                .arg(now_ms);
            run::<()>(&mut conn, &set).await?;
            run::<()>(
                &mut conn,
                redis::cmd("PEXPIRE")
                    .arg(keys::signin(&token))
                    .arg(SIGNIN_KEPT_MS),
            )
            .await?;
            let list = keys::account_sessions(&key);
            run::<()>(
                &mut conn,
                redis::cmd("ZADD").arg(&list).arg(now_ms).arg(&token),
            )
            .await?;
            // The oldest past the limit end.
            let count: usize = run(&mut conn, redis::cmd("ZCARD").arg(&list)).await?;
            if count > MAX_SESSIONS_PER_ACCOUNT {
                let extra = count - MAX_SESSIONS_PER_ACCOUNT;
                let oldest: Vec<String> = run(
                    &mut conn,
                    redis::cmd("ZRANGE").arg(&list).arg(0).arg(extra - 1),
                )
                .await?;
                end_sessions(&mut conn, &key, &oldest).await?;
            }
            Ok(())
        })
    }

    fn session(&self, token: &str, now_ms: i64, life: Lifetime) -> Read<Option<Account>> {
        let token = token.to_owned();
        self.with(move |mut conn| async move {
            let at = keys::signin(&token);
            let fields: HashMap<String, String> =
                run(&mut conn, redis::cmd("HGETALL").arg(&at)).await?;
            let number = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok());
            let (Some(key), Some(opened), Some(seen)) =
                (fields.get("key").cloned(), number("opened"), number("seen"))
            else {
                return Ok(None);
            };
            if !live(opened, seen, now_ms, life) {
                end_sessions(&mut conn, &key, std::slice::from_ref(&token)).await?;
                return Ok(None);
            }
            // Marked used at most once a minute (or a quarter of the idle
            // time), and kept exactly as long as it can live.
            if now_ms - seen >= (life.idle_ms / 4).min(60_000) {
                let ends = (opened.saturating_add(life.max_ms)).min(now_ms + life.idle_ms);
                run::<()>(
                    &mut conn,
                    redis::cmd("HSET").arg(&at).arg("seen").arg(now_ms),
                )
                .await?;
                run::<()>(
                    &mut conn,
                    redis::cmd("PEXPIRE").arg(&at).arg((ends - now_ms).max(1)),
                )
                .await?;
            }
            find(&mut conn, &key).await
        })
    }

    fn close_session(&self, token: &str) -> Read<()> {
        let token = token.to_owned();
        self.with(move |mut conn| async move {
            let key: Option<String> = run(
                &mut conn,
                redis::cmd("HGET").arg(keys::signin(&token)).arg("key"),
            )
            .await?;
            match key {
                Some(key) => end_sessions(&mut conn, &key, &[token]).await,
                None => Ok(()),
            }
        })
    }

    fn set_password(&self, key: &str, hash: String) -> Read<()> {
        let key = key.to_owned();
        self.with(move |mut conn| async move {
            let args = ["hash".to_owned(), hash];
            script::<i64>(&mut conn, UPDATE, &keys::account(&key), &args).await?;
            Ok(())
        })
    }

    fn close_sessions(&self, key: &str, keep: Option<&str>) -> Read<Vec<String>> {
        let (key, keep) = (key.to_owned(), keep.map(str::to_owned));
        self.with(move |mut conn| async move {
            let all: Vec<String> = run(
                &mut conn,
                redis::cmd("ZRANGE")
                    .arg(keys::account_sessions(&key))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
            let ended: Vec<String> = all
                .into_iter()
                .filter(|t| Some(t) != keep.as_ref())
                .collect();
            end_sessions(&mut conn, &key, &ended).await?;
            Ok(ended)
        })
    }

    fn set_disabled(&self, key: &str, disabled: bool) -> Read<bool> {
        let key = key.to_owned();
        self.with(move |mut conn| async move {
            let args = ["disabled".to_owned(), flag(disabled).to_owned()];
            let found: i64 = script(&mut conn, UPDATE, &keys::account(&key), &args).await?;
            Ok(found == 1)
        })
    }

    fn create_invite(&self, code: &str, uses: u32, expires_ms: i64, by: &str) -> Read<()> {
        let (code, by) = (code.to_owned(), by.to_owned());
        self.with(move |mut conn| async move {
            let at = keys::invite(&code);
            let mut set = redis::cmd("HSET");
            set.arg(&at)
                .arg("uses")
                .arg(uses)
                .arg("expires")
                .arg(expires_ms)
                .arg("by")
                .arg(&by);
            run::<()>(&mut conn, &set).await?;
            run::<()>(
                &mut conn,
                redis::cmd("PEXPIREAT").arg(&at).arg(expires_ms.max(1)),
            )
            .await
        })
    }

    fn use_invite(&self, code: &str, now_ms: i64) -> Read<bool> {
        let code = code.to_owned();
        self.with(move |mut conn| async move {
            let used: i64 = script(
                &mut conn,
                USE_INVITE,
                &keys::invite(&code),
                &[now_ms.to_string()],
            )
            .await?;
            Ok(used == 1)
        })
    }
}

impl Access for RedisAccounts {
    fn create_room(&self, room: &str, access: RoomAccess) -> Read<bool> {
        let room = room.to_owned();
        self.with(move |mut conn| async move {
            let args = [
                "title".to_owned(),
                access.title,
                "private".to_owned(),
                flag(access.private).to_owned(),
            ];
            let created: i64 = script(&mut conn, CREATE, &keys::access(&room), &args).await?;
            Ok(created == 1)
        })
    }

    fn room(&self, room: &str) -> Read<Option<RoomAccess>> {
        let room = room.to_owned();
        self.with(move |mut conn| async move {
            let fields: HashMap<String, String> =
                run(&mut conn, redis::cmd("HGETALL").arg(keys::access(&room))).await?;
            Ok(fields.get("title").map(|title| RoomAccess {
                title: title.clone(),
                private: fields.get("private").is_some_and(|v| v == "1"),
            }))
        })
    }

    fn role(&self, room: &str, key: &str) -> Read<Option<Role>> {
        let (room, key) = (room.to_owned(), key.to_owned());
        self.with(move |mut conn| async move {
            let role: Option<String> = run(
                &mut conn,
                redis::cmd("HGET").arg(keys::roles(&room)).arg(&key),
            )
            .await?;
            Ok(role.as_deref().and_then(Role::parse))
        })
    }

    fn set_role(&self, room: &str, key: &str, role: Option<Role>) -> Read<()> {
        let (room, key) = (room.to_owned(), key.to_owned());
        self.with(move |mut conn| async move {
            let roles = keys::roles(&room);
            match role {
                Some(role) => {
                    run::<()>(
                        &mut conn,
                        redis::cmd("HSET").arg(&roles).arg(&key).arg(role.as_str()),
                    )
                    .await?;
                }
                None => run::<()>(&mut conn, redis::cmd("HDEL").arg(&roles).arg(&key)).await?,
            }
            // So does the list of rooms it is banned from.
            let verb = if role == Some(Role::Banned) {
                "SADD"
            } else {
                "SREM"
            };
            run::<()>(
                &mut conn,
                redis::cmd(verb).arg(keys::account_banned(&key)).arg(&room),
            )
            .await?;
            // The account's list of private rooms follows (public rooms
            // are listed for everyone).
            if is_private_name(&room) {
                let verb = if role.is_some_and(Role::admitted) {
                    "SADD"
                } else {
                    "SREM"
                };
                run::<()>(
                    &mut conn,
                    redis::cmd(verb).arg(keys::account_rooms(&key)).arg(&room),
                )
                .await?;
            }
            Ok(())
        })
    }

    fn private_rooms_of(&self, key: &str) -> Read<Vec<(String, RoomAccess)>> {
        let key = key.to_owned();
        let me = self.clone();
        self.with(move |mut conn| async move {
            let mut rooms: Vec<String> = run(
                &mut conn,
                redis::cmd("SMEMBERS").arg(keys::account_rooms(&key)),
            )
            .await?;
            rooms.sort_unstable();
            let mut out = Vec::with_capacity(rooms.len());
            for room in rooms {
                // The room's own keys are the truth; the list only finds them.
                let admitted = me.role(&room, &key).await?.is_some_and(Role::admitted);
                match me.room(&room).await? {
                    Some(rules) if admitted && rules.private => out.push((room, rules)),
                    _ => {}
                }
            }
            Ok(out)
        })
    }

    fn banned_from(&self, key: &str) -> Read<Vec<String>> {
        let key = key.to_owned();
        self.with(move |mut conn| async move {
            let mut rooms: Vec<String> = run(
                &mut conn,
                redis::cmd("SMEMBERS").arg(keys::account_banned(&key)),
            )
            .await?;
            rooms.sort_unstable();
            Ok(rooms)
        })
    }

    fn record(&self, action: Action) -> Read<()> {
        self.with(move |mut conn| async move {
            let list = keys::moderation(&action.room);
            let json = serde_json::to_string(&StoredAction {
                at: action.at,
                by: action.by,
                what: action.what,
                whom: action.whom,
            })
            .unwrap_or_default();
            run::<()>(&mut conn, redis::cmd("LPUSH").arg(&list).arg(json)).await?;
            run::<()>(
                &mut conn,
                redis::cmd("LTRIM").arg(&list).arg(0).arg(ACTIONS_KEPT - 1),
            )
            .await
        })
    }

    fn actions(&self, room: &str, limit: usize) -> Read<Vec<Action>> {
        let room = room.to_owned();
        self.with(move |mut conn| async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let items: Vec<String> = run(
                &mut conn,
                redis::cmd("LRANGE")
                    .arg(keys::moderation(&room))
                    .arg(0)
                    .arg(limit - 1),
            )
            .await?;
            Ok(items
                .iter()
                .filter_map(|json| serde_json::from_str::<StoredAction>(json).ok())
                .map(|a| Action {
                    room: room.clone(),
                    at: a.at,
                    by: a.by,
                    what: a.what,
                    whom: a.whom,
                })
                .collect())
        })
    }
}

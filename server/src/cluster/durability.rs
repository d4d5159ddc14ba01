//! Whether Redis keeps what it acknowledges.
//!
//! In cluster mode a `say` is acknowledged once Redis has run the append
//! script. That is only as durable as Redis: with `appendonly no` a crash
//! loses everything since the last snapshot, with `appendfsync everysec`
//! up to a second of acknowledged messages. So the server reads Redis's
//! own settings (`CONFIG GET`) when it starts and on every health check,
//! and refuses a Redis that does not fsync every write unless the operator
//! said that is intended (`--redis-allow-lossy`).

use redis::aio::ConnectionManager;
use std::collections::HashMap;

/// What Redis's persistence settings promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `appendonly yes` and `appendfsync always`: a write is on disk
    /// before Redis answers it.
    Fsynced,
    /// Anything else, with the reason (for logs and start-up errors).
    Lossy(String),
}

/// Judges Redis's `appendonly` and `appendfsync` settings.
pub(crate) fn judge(appendonly: Option<&str>, appendfsync: Option<&str>) -> Durability {
    match (appendonly, appendfsync) {
        (Some(a), Some(f)) if a.eq_ignore_ascii_case("yes") && f.eq_ignore_ascii_case("always") => {
            Durability::Fsynced
        }
        (Some(a), _) if !a.eq_ignore_ascii_case("yes") => Durability::Lossy(format!(
            "appendonly is {a:?}: a Redis crash loses every write since its last snapshot"
        )),
        (Some(_), Some(f)) => Durability::Lossy(format!(
            "appendfsync is {f:?}, not \"always\": a Redis crash can lose writes it acknowledged"
        )),
        _ => Durability::Lossy(
            "CONFIG GET did not report appendonly and appendfsync, so durability cannot be checked"
                .into(),
        ),
    }
}

/// Reads the settings from Redis. `Err` when Redis cannot be reached;
/// `Ok(Lossy)` also when it answers but refuses `CONFIG` (managed Redis
/// often renames it): then durability cannot be known.
pub(crate) async fn read(conn: &mut ConnectionManager) -> redis::RedisResult<Durability> {
    let mut pipe = redis::pipe();
    pipe.cmd("CONFIG").arg("GET").arg("appendonly");
    pipe.cmd("CONFIG").arg("GET").arg("appendfsync");
    match pipe
        .query_async::<(HashMap<String, String>, HashMap<String, String>)>(conn)
        .await
    {
        Ok((only, fsync)) => Ok(judge(
            only.get("appendonly").map(String::as_str),
            fsync.get("appendfsync").map(String::as_str),
        )),
        Err(e)
            if matches!(
                e.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::ResponseError | redis::ServerErrorKind::NoPerm
                )
            ) =>
        {
            Ok(Durability::Lossy(format!(
                "CONFIG GET was refused ({e}), so durability cannot be checked"
            )))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_append_only_with_fsync_always_is_durable() {
        assert_eq!(judge(Some("yes"), Some("always")), Durability::Fsynced);
        assert_eq!(judge(Some("YES"), Some("Always")), Durability::Fsynced);
        for (only, fsync) in [
            (Some("yes"), Some("everysec")),
            (Some("yes"), Some("no")),
            (Some("no"), Some("always")),
            (Some("no"), Some("everysec")),
            (None, Some("always")),
            (Some("yes"), None),
            (None, None),
        ] {
            assert!(
                matches!(judge(only, fsync), Durability::Lossy(_)),
                "{only:?} {fsync:?}"
            );
        }
    }
}

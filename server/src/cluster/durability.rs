//! Whether Redis keeps what it acknowledges.
//!
//! In cluster mode a `say` is acknowledged once Redis has run the append
//! script. That is only as durable as Redis: with `appendonly no` a crash
//! loses everything since the last snapshot, with `appendfsync everysec`
//! up to a second of acknowledged messages. So the server reads Redis's
//! own settings (`CONFIG GET`) when it starts and on every health check,
//! and refuses a Redis that does not fsync every write unless the operator
//! said that is intended (`--redis-allow-lossy`).

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

/// Reads the settings from Redis: from every primary of a Redis Cluster,
/// any of which could lose what it acknowledged. `Err` when Redis cannot
/// be reached; `Ok(Lossy)` also when it answers but refuses `CONFIG`
/// (managed Redis often renames it): then durability cannot be known.
pub(super) async fn read(conn: &mut super::Conn) -> redis::RedisResult<Durability> {
    let refused = |e: &redis::RedisError| {
        matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::ResponseError | redis::ServerErrorKind::NoPerm
            )
        )
    };
    let (only, fsync) = match (
        conn.config_get("appendonly").await,
        conn.config_get("appendfsync").await,
    ) {
        (Ok(only), Ok(fsync)) => (only, fsync),
        (Err(e), _) | (_, Err(e)) if refused(&e) => {
            return Ok(Durability::Lossy(format!(
                "CONFIG GET was refused ({e}), so durability cannot be checked"
            )));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let nodes = only.len();
    for (node, only) in &only {
        let fsync = fsync
            .iter()
            .find(|(n, _)| n == node)
            .and_then(|(_, f)| f.as_deref());
        if let Durability::Lossy(why) = judge(only.as_deref(), fsync) {
            return Ok(Durability::Lossy(if nodes > 1 {
                format!("{node}: {why}")
            } else {
                why
            }));
        }
    }
    Ok(Durability::Fsynced)
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

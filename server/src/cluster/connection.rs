//! The connection to Redis: plain or TLS (`rediss://`, rustls), and a
//! URL fit for logs.

use super::*;

/// The URL without its password, for logs.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The Redis client for `config`: plain, or TLS for a `rediss://` URL.
pub(super) fn client(config: &ClusterConfig) -> Result<Client, StoreError> {
    let tls = config.url.starts_with("rediss://");
    if !tls {
        if config.ca.is_some() || config.identity.is_some() {
            return Err(StoreError(
                "--redis-ca, --redis-cert and --redis-key need a rediss:// URL".into(),
            ));
        }
        return Client::open(config.url.as_str()).map_err(unavailable);
    }
    // One crypto provider for the process (a second install is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| StoreError(format!("cannot read {flag} {}: {e}", path.display())))
    };
    let root_cert = match &config.ca {
        Some(path) => Some(read("--redis-ca", path)?),
        None => None,
    };
    let client_tls = match &config.identity {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read("--redis-cert", cert)?,
            client_key: read("--redis-key", key)?,
        }),
        None => None,
    };
    Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| StoreError(format!("TLS set-up: {e}")))
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("redis: {e}"))
}

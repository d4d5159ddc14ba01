//! Which web origins may open the socket.
//!
//! A browser sends `Origin` with every WebSocket handshake. It is compared
//! with the origins the server is published under (`--public-origin`, by
//! default derived from the listening address) and those allowed besides
//! (`--allowed-origin`). The `Host` header is never consulted: a page on
//! `http://evil.example` whose name was rebound to this server's address
//! sends `Host: evil.example`, and trusting it is what DNS rebinding
//! exploits. Requests without `Origin` are not from a browser and pass.

use std::net::SocketAddr;

/// An origin, normalised: lower-case scheme and host, explicit port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    /// `None` in a pattern: any port.
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Parses `scheme://host[:port]` (a trailing `/` is tolerated); with
/// `pattern`, the port may be `*`.
fn parse(raw: &str, pattern: bool) -> Option<Origin> {
    let raw = raw.trim().trim_end_matches('/');
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (
            format!("[{}]", host.to_ascii_lowercase()),
            after.strip_prefix(':'),
        )
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        Some("*") if pattern => None,
        Some(p) => Some(p.parse().ok()?),
        None => Some(default_port(&scheme)?),
    };
    Some(Origin { scheme, host, port })
}

/// The origins a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<Origin>,
}

impl Origins {
    /// `public` (or, when empty, what `local` implies) and `allowed`.
    /// Entries that are not origins are reported in the error.
    pub fn new(public: &[String], allowed: &[String], local: SocketAddr) -> Result<Self, String> {
        let mut list = Vec::new();
        if public.is_empty() {
            list.extend(derived(local));
        }
        for raw in public.iter().chain(allowed) {
            let origin = parse(raw, true).ok_or_else(|| {
                format!("'{raw}' is not an origin (scheme://host[:port], port may be *)")
            })?;
            list.push(origin);
        }
        Ok(Self { allowed: list })
    }

    /// Whether a handshake's `Origin` header value may open the socket.
    pub fn allows(&self, origin: &str) -> bool {
        let Some(origin) = parse(origin, false) else {
            return false;
        };
        self.allowed.iter().any(|a| {
            a.scheme == origin.scheme
                && a.host == origin.host
                && a.port.is_none_or(|p| Some(p) == origin.port)
        })
    }

    /// Whether any origin is accepted (a server listening on every
    /// address without `--public-origin` accepts none by default).
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }
}

/// `http://ADDR` for a specific listening address, and
/// `http://localhost:PORT` too when it is a loopback one.
fn derived(local: SocketAddr) -> Vec<Origin> {
    let ip = local.ip();
    if ip.is_unspecified() {
        return Vec::new();
    }
    let host = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut list = vec![Origin {
        scheme: "http".into(),
        host,
        port: Some(local.port()),
    }];
    if ip.is_loopback() {
        list.push(Origin {
            scheme: "http".into(),
            host: "localhost".into(),
            port: Some(local.port()),
        });
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn the_listening_address_is_the_default_origin() {
        let o = Origins::new(&[], &[], local("127.0.0.1:3000")).expect("origins");
        assert!(o.allows("http://127.0.0.1:3000"));
        assert!(o.allows("http://localhost:3000/"));
        assert!(o.allows("HTTP://LOCALHOST:3000"));
        assert!(!o.allows("http://127.0.0.1:3001"));
        assert!(!o.allows("https://127.0.0.1:3000"));
        assert!(!o.allows("http://evil.example:3000"), "never Host-derived");
        assert!(!o.allows("null"));
        let all = Origins::new(&[], &[], local("0.0.0.0:3000")).expect("origins");
        assert!(all.is_empty(), "no origin is implied by 0.0.0.0");
    }

    #[test]
    fn public_origins_replace_the_default_and_patterns_match_ports() {
        let o = Origins::new(
            &["https://chat.example.com".into()],
            &["http://127.0.0.1:*".into()],
            local("127.0.0.1:3000"),
        )
        .expect("origins");
        assert!(o.allows("https://chat.example.com"));
        assert!(o.allows("https://chat.example.com:443"), "default port");
        assert!(!o.allows("http://chat.example.com"));
        assert!(!o.allows("https://chat.example.com.evil"));
        assert!(o.allows("http://127.0.0.1:43121"));
        assert!(!o.allows("http://127.0.0.2:43121"));
        assert!(!o.allows("http://127.0.0.1:80.evil"));
        assert!(
            !o.allows("http://localhost:3000"),
            "the default is replaced"
        );
        assert!(Origins::new(&["chat.example.com".into()], &[], local("127.0.0.1:1")).is_err());
    }
}

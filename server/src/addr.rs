//! Client addresses: who a connection comes from (behind a trusted proxy),
//! how many connections each address holds, and what each address may
//! create (rooms, sessions) per minute.
//!
//! Counting by address, not by connection, is what makes opening more
//! sockets or reconnecting useless for getting around a limit. IPv6
//! addresses count by their /64: one host usually holds a whole /64.

use axum::http::HeaderMap;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

/// An address block, e.g. `10.0.0.0/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// Parses `ADDR` or `ADDR/PREFIX` (command line).
pub fn parse_net(raw: &str) -> Result<Net, String> {
    let (ip, prefix) = match raw.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (raw, None),
    };
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not an IP address or CIDR block"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("'{raw}': the prefix must be 0 to {max}"))?,
        None => max,
    };
    Ok(Net { addr, prefix })
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match canonical(ip) {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Net {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = bits(self.addr);
        let (ip, ip_width) = bits(ip);
        if width != ip_width {
            return false;
        }
        let host = u32::from(width - self.prefix.min(width));
        let mask = u128::MAX.checked_shl(host).unwrap_or(0);
        (net & mask) == (ip & mask)
    }
}

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(masked.into())
        }
        v4 => v4,
    }
}

/// Whether `ip` is one of the trusted proxies.
pub fn is_trusted(ip: IpAddr, trusted: &[Net]) -> bool {
    trusted.iter().any(|n| n.contains(ip))
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the last address of `X-Forwarded-For` that is not a trusted proxy
/// (what the nearest untrusted hop said; anything left of it could be made
/// up by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Net]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match parse_hop(hop.trim()) {
            Some(ip) if is_trusted(ip, trusted) => client = ip,
            Some(ip) => return ip,
            // Garbage: count the client as the last proxy that spoke.
            None => return client,
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// A token bucket refilled at `per_minute` tokens a minute, holding as many.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(per_minute),
            at: now,
        }
    }

    fn refill(&mut self, per_minute: u32, now: Instant) {
        let rate = f64::from(per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(per_minute));
        self.at = now;
    }

    fn take(&mut self, per_minute: u32, now: Instant) -> bool {
        self.refill(per_minute, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&mut self, per_minute: u32, now: Instant) -> bool {
        self.refill(per_minute, now);
        self.tokens >= f64::from(per_minute)
    }
}

/// What one address is doing.
#[derive(Debug)]
struct Entry {
    connections: usize,
    rooms: Bucket,
    sessions: Bucket,
}

/// Addresses tracked at most; past it idle ones are forgotten, and if
/// none is idle new addresses share one entry (an attacker with a whole
/// IPv6 /48 then competes with itself).
const MAX_TRACKED: usize = 65_536;

/// The budgets an [`Addresses`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Connections per address (0: no limit).
    pub connections: usize,
    /// New rooms per address per minute (0: no limit).
    pub rooms_per_minute: u32,
    /// New sessions per address per minute (0: no limit).
    pub sessions_per_minute: u32,
}

struct Inner {
    budgets: Budgets,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

/// Per-address connection counts and budgets of the whole server.
#[derive(Clone)]
pub struct Addresses {
    inner: Arc<Inner>,
}

/// One connection counted against its address; given back on drop.
pub struct AddrToken {
    owner: Arc<Inner>,
    key: IpAddr,
}

impl Drop for AddrToken {
    fn drop(&mut self) {
        let mut entries = self.owner.locked();
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.connections = entry.connections.saturating_sub(1);
        }
    }
}

/// What stands for every address once [`MAX_TRACKED`] are tracked.
const SHARED: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl Inner {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // Every update is a few field writes: a poisoned map is consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on `ip`'s entry; returns the key it is counted under too.
    fn with<T>(
        &self,
        ip: IpAddr,
        f: impl FnOnce(&mut Entry, &Budgets, Instant) -> T,
    ) -> (IpAddr, T) {
        let now = Instant::now();
        let b = self.budgets;
        let mut entries = self.locked();
        let mut key = key(ip);
        if !entries.contains_key(&key) && entries.len() >= MAX_TRACKED {
            entries.retain(|_, e| {
                e.connections > 0
                    || !e.rooms.is_full(b.rooms_per_minute, now)
                    || !e.sessions.is_full(b.sessions_per_minute, now)
            });
            if entries.len() >= MAX_TRACKED {
                key = SHARED;
            }
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            connections: 0,
            rooms: Bucket::full(b.rooms_per_minute, now),
            sessions: Bucket::full(b.sessions_per_minute, now),
        });
        (key, f(entry, &b, now))
    }
}

impl Addresses {
    /// Nothing counted yet.
    pub fn new(budgets: Budgets) -> Self {
        Self {
            inner: Arc::new(Inner {
                budgets,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts one more connection from `ip`; `None` when it has as many as
    /// it may.
    pub fn connect(&self, ip: IpAddr) -> Option<AddrToken> {
        let limit = self.inner.budgets.connections;
        let (key, counted) = self.inner.with(ip, |entry, _, _| {
            if limit > 0 && entry.connections >= limit {
                return false;
            }
            entry.connections += 1;
            true
        });
        counted.then(|| AddrToken {
            owner: self.inner.clone(),
            key,
        })
    }

    /// Spends one room creation of `ip`'s budget; `false` when it is spent.
    pub fn create_room(&self, ip: IpAddr) -> bool {
        self.inner
            .with(ip, |entry, b, now| {
                b.rooms_per_minute == 0 || entry.rooms.take(b.rooms_per_minute, now)
            })
            .1
    }

    /// Spends one new session of `ip`'s budget; `false` when it is spent.
    pub fn start_session(&self, ip: IpAddr) -> bool {
        self.inner
            .with(ip, |entry, b, now| {
                b.sessions_per_minute == 0 || entry.sessions.take(b.sessions_per_minute, now)
            })
            .1
    }

    /// Connections counted for `ip` now.
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.inner
            .locked()
            .get(&key(ip))
            .map_or(0, |e| e.connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let net = parse_net("10.1.0.0/16").expect("net");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "v4-mapped is v4");
        let one = parse_net("127.0.0.1").expect("one");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all = parse_net("::/0").expect("all v6");
        assert!(all.contains(ip("2001:db8::1")) && !all.contains(ip("1.2.3.4")));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("nonsense").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = [parse_net("10.0.0.0/8").expect("net")];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        // From the proxy: the nearest untrusted hop, not what the client wrote.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.7")
        );
        // From anyone else the header means nothing.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("[2001:db8::5]:443"),
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn connections_are_counted_per_address_and_per_64() {
        let a = Addresses::new(Budgets {
            connections: 2,
            rooms_per_minute: 0,
            sessions_per_minute: 0,
        });
        let one = a.connect(ip("192.0.2.1")).expect("first");
        let _two = a.connect(ip("192.0.2.1")).expect("second");
        assert!(a.connect(ip("192.0.2.1")).is_none(), "third refused");
        assert!(a.connect(ip("192.0.2.2")).is_some(), "another address");
        drop(one);
        assert!(a.connect(ip("192.0.2.1")).is_some(), "a slot came back");
        let _x = a.connect(ip("2001:db8::1")).expect("v6");
        let _y = a.connect(ip("2001:db8::ffff")).expect("same /64");
        assert!(a.connect(ip("2001:db8::2")).is_none(), "the /64 is full");
        assert!(a.connect(ip("2001:db8:0:1::1")).is_some(), "another /64");
    }

    #[test]
    fn budgets_do_not_reset_per_connection() {
        let a = Addresses::new(Budgets {
            connections: 0,
            rooms_per_minute: 3,
            sessions_per_minute: 1,
        });
        let who = ip("192.0.2.9");
        assert!((0..3).all(|_| a.create_room(who)));
        assert!(!a.create_room(who), "the fourth room in a minute");
        assert!(a.create_room(ip("192.0.2.10")), "others have their own");
        assert!(a.start_session(who));
        assert!(!a.start_session(who));
    }
}

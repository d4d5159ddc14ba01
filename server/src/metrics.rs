//! Prometheus metrics, served at `GET /metrics` (OpenMetrics text).
//!
//! Hot paths count with plain atomic counters (`Counter` clones share one
//! value); gauges that are cheap to read elsewhere (connections, rooms) are
//! filled in when scraped.

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The gauges, as read when `/metrics` is asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Open WebSocket sessions.
    pub connections: usize,
    /// Rooms open.
    pub rooms: usize,
    /// TCP connections held.
    pub tcp_connections: usize,
    /// Bytes waiting for the store.
    pub store_queue_bytes: usize,
}

/// Everything the server counts.
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    rooms: Gauge,
    tcp_connections: Gauge,
    store_queue_bytes: Gauge,
    /// TCP connections refused (over the connection limit, in all or for
    /// their address).
    pub refused_connections: Counter,
    /// Posts refused at once because the store's queue was full.
    pub store_full: Counter,
    /// Posts that waited for a slow member before their room took them.
    pub intake_waits: Counter,
    /// WebSocket messages read from clients.
    pub messages_in: Counter,
    /// Frames written to clients.
    pub messages_out: Counter,
    /// Bytes of frames written to clients (payload of the WebSocket
    /// messages, without WebSocket framing).
    pub bytes_out: Counter,
    /// Connections closed with 4008 because their outbox overflowed.
    pub slow_consumer_disconnects: Counter,
    /// Messages refused by the rate limiter.
    pub rate_limited: Counter,
    /// From reading a message off a socket to its room having queued it to
    /// every member (after its commit when history is durable).
    pub fanout_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let connections = Gauge::default();
        let rooms = Gauge::default();
        let tcp_connections = Gauge::default();
        let store_queue_bytes = Gauge::default();
        let refused_connections = Counter::default();
        let store_full = Counter::default();
        let intake_waits = Counter::default();
        let messages_in = Counter::default();
        let messages_out = Counter::default();
        let bytes_out = Counter::default();
        let slow_consumer_disconnects = Counter::default();
        let rate_limited = Counter::default();
        // 50 µs .. ~1.6 s.
        let fanout_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register("rooms", "Rooms open now", rooms.clone());
        registry.register(
            "tcp_connections",
            "TCP connections held now (HTTP, half-sent requests and WebSockets)",
            tcp_connections.clone(),
        );
        registry.register(
            "store_queue_bytes",
            "Bytes of messages waiting for the store",
            store_queue_bytes.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused over a connection limit",
            refused_connections.clone(),
        );
        registry.register(
            "store_full",
            "Posts refused at once because the store's queue was full",
            store_full.clone(),
        );
        registry.register(
            "intake_waits",
            "Posts that waited for a slow member before their room took them",
            intake_waits.clone(),
        );
        registry.register(
            "messages_in",
            "WebSocket messages read from clients",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Frames written to clients",
            messages_out.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes of frames written to clients",
            bytes_out.clone(),
        );
        registry.register(
            "slow_consumer_disconnects",
            "Connections closed (4008) because they did not keep up",
            slow_consumer_disconnects.clone(),
        );
        registry.register(
            "rate_limited",
            "Messages refused by the rate limiter",
            rate_limited.clone(),
        );
        registry.register(
            "fanout_seconds",
            "From reading a message to its room having queued it to every member",
            fanout_seconds.clone(),
        );
        Self {
            registry,
            connections,
            rooms,
            tcp_connections,
            store_queue_bytes,
            refused_connections,
            store_full,
            intake_waits,
            messages_in,
            messages_out,
            bytes_out,
            slow_consumer_disconnects,
            rate_limited,
            fanout_seconds,
        }
    }
}

impl Metrics {
    /// Adds cluster mode's metrics.
    pub fn with_cluster(mut self, cluster: &ClusterMetrics) -> Self {
        self.registry.register(
            "redis_up",
            "Whether Redis answered the last health check (cluster mode)",
            cluster.redis_up.clone(),
        );
        self.registry.register(
            "redis_errors",
            "Redis calls or write batches that failed (cluster mode)",
            cluster.redis_errors.clone(),
        );
        self.registry.register(
            "stream_reads",
            "Gaps read back from a room's stream (cluster mode)",
            cluster.stream_reads.clone(),
        );
        self
    }

    /// The OpenMetrics text, with the gauges read now.
    pub fn render(&self, now: &Gauges) -> String {
        let set = |g: &Gauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.connections, now.connections);
        set(&self.rooms, now.rooms);
        set(&self.tcp_connections, now.tcp_connections);
        set(&self.store_queue_bytes, now.store_queue_bytes);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// What cluster mode counts (registered in `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct ClusterMetrics {
    /// 1 while Redis answers the health check.
    pub redis_up: prometheus_client::metrics::gauge::Gauge,
    /// Failed Redis calls and write batches.
    pub redis_errors: prometheus_client::metrics::counter::Counter,
    /// Gaps read back from rooms' streams.
    pub stream_reads: prometheus_client::metrics::counter::Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_current_values() {
        let m = Metrics::default();
        m.messages_in.inc_by(3);
        m.fanout_seconds.observe(0.001);
        let text = m.render(&Gauges {
            connections: 7,
            rooms: 2,
            tcp_connections: 9,
            store_queue_bytes: 5,
        });
        for line in [
            "chat_connections 7",
            "chat_rooms 2",
            "chat_tcp_connections 9",
            "chat_store_queue_bytes 5",
            "chat_refused_connections_total 0",
            "chat_messages_in_total 3",
            "chat_messages_out_total 0",
            "chat_bytes_out_total 0",
            "chat_slow_consumer_disconnects_total 0",
            "chat_rate_limited_total 0",
            "chat_fanout_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}

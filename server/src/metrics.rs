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

/// Everything the server counts.
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    rooms: Gauge,
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
        registry.register("rooms", "Rooms that exist", rooms.clone());
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
    pub fn with_cluster(mut self, cluster: &crate::cluster::ClusterMetrics) -> Self {
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
    pub fn render(&self, connections: u64, rooms: usize) -> String {
        self.connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
        self.rooms.set(i64::try_from(rooms).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_current_values() {
        let m = Metrics::default();
        m.messages_in.inc_by(3);
        m.fanout_seconds.observe(0.001);
        let text = m.render(7, 2);
        for line in [
            "chat_connections 7",
            "chat_rooms 2",
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

#!/usr/bin/env bash
# Runs the chat as a small cluster on this machine: one redis-server and
# PROCESSES server processes (default 2) sharing it, on ports 3000, 3001…
#   scripts/cluster.sh [PROCESSES]
# Redis keeps its data in data/redis (append-only file, fsync always) and
# listens on 127.0.0.1:${REDIS_PORT:-6379}. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

processes=${1:-2}
redis_port=${REDIS_PORT:-6379}

scripts/setup.sh
scripts/bundle.sh
cargo build --release --locked -p server

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p data/redis
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$PWD/data/redis" \
  --appendonly yes --appendfsync always --save "" >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

for i in $(seq 0 $((processes - 1))); do
  target/release/server --redis "redis://127.0.0.1:${redis_port}/0" --addr "127.0.0.1:$((3000 + i))" &
  pids+=($!)
done
echo "cluster: ${processes} processes at http://127.0.0.1:3000 … :$((3000 + processes - 1)), redis on ${redis_port}; Ctrl-C stops it" >&2
wait -n

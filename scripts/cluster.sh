#!/usr/bin/env bash
# Runs the chat as a small cluster on this machine: PROCESSES server
# processes (default 2) sharing rooms through Redis, on ports 3000, 3001…
#   scripts/cluster.sh [PROCESSES]            one redis-server
#   scripts/cluster.sh --sharded [PROCESSES]  a Redis Cluster of three masters
# One Redis keeps its data in data/redis and listens on
# 127.0.0.1:${REDIS_PORT:-6379}; the sharded shape uses data/redis-cluster/N
# and ports REDIS_PORT…REDIS_PORT+2 (cluster bus: +10000). Every Redis is
# append-only with fsync always. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

sharded=false
if [ "${1:-}" = "--sharded" ]; then sharded=true; shift; fi
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

# Starts a redis-server on port $1 with its data in $2 (more settings after).
start_redis() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$PWD/$dir" \
    --appendonly yes --appendfsync always --save "" "$@" >/dev/null &
  pids+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "redis-server on port $port did not start" >&2
  exit 1
}

if $sharded; then
  seeds=()
  for i in 0 1 2; do
    port=$((redis_port + i))
    start_redis "$port" "data/redis-cluster/$i" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000
    seeds+=("127.0.0.1:$port")
  done
  # A cluster made before keeps its slots (nodes.conf); a new one is created.
  if ! redis-cli -p "$redis_port" cluster info | grep -q '^cluster_state:ok'; then
    redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -p "$redis_port" cluster info | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
  fi
  shared=(--redis-cluster "$(printf 'redis://%s,' "${seeds[@]}" | sed 's/,$//')")
  where="a Redis Cluster on ${redis_port}…$((redis_port + 2))"
else
  start_redis "$redis_port" data/redis
  shared=(--redis "redis://127.0.0.1:${redis_port}/0")
  where="redis on ${redis_port}"
fi

for i in $(seq 0 $((processes - 1))); do
  target/release/server "${shared[@]}" --addr "127.0.0.1:$((3000 + i))" &
  pids+=($!)
done
echo "cluster: ${processes} processes at http://127.0.0.1:3000 … :$((3000 + processes - 1)), ${where}; Ctrl-C stops it" >&2
wait -n

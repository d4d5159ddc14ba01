#!/usr/bin/env bash
# Runs the whole benchmark matrix: every scenario (fan-out, latency, idle
# memory, slow consumers, connect storm) against this server (seed and rich
# profiles) and the three baselines, in one invocation. Writes
# bench/results/results.md (table), results.json and SVG charts.
# Arguments go to the bench (e.g. --only fanout, --quick).
# Takes about 10 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/setup.sh
cargo build --release --locked -p server -p bench
exec target/release/bench --out bench/results "$@"

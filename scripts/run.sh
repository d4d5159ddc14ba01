#!/usr/bin/env bash
# Sets everything up and runs the chat server at http://127.0.0.1:3000.
# Extra arguments go to the server (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked -p server
exec target/release/server "$@"

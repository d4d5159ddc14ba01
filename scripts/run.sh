#!/usr/bin/env bash
# Sets everything up, builds the app and the server (release, app embedded)
# and runs the chat at http://127.0.0.1:3000. Arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/setup.sh
scripts/bundle.sh
cargo build --release --locked -p server
exec target/release/server "$@"

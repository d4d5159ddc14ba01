#!/usr/bin/env bash
# Sets everything up, then runs every check and test of the project.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

step() { printf '\n== %s\n' "$*" >&2; }

step "format"
cargo fmt --all --check

step "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32: shared)"
cargo clippy -p shared --target wasm32-unknown-unknown --locked -- -D warnings

step "tests"
cargo test --workspace --locked

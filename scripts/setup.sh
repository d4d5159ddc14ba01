#!/usr/bin/env bash
# Idempotent set-up of everything the project builds and tests with.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
      log "adding rustup component ${component}"
      rustup component add "${component}"
    fi
  done
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
fi

log "fetching crates"
cargo fetch --locked >/dev/null 2>&1 || cargo fetch
log "ready"

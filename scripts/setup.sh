#!/usr/bin/env bash
# Idempotent set-up of everything the project builds, runs and tests with:
# the wasm32 target, trunk 0.21.14, wasm-bindgen-cli at the version
# Cargo.lock resolves, wasm-opt 132 and playwright-core (npm), Chromium and
# its driver, brotli and redis-server (Debian), the websockets package (PyPI),
# cargo-fuzz.
# Each step checks before it installs;
# nothing is downloaded from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
TRUNK_VERSION=0.21.14

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup first" >&2
  exit 1
fi

# Rust: components and the browser target.
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup component list --installed 2>/dev/null || true)
  for component in rustfmt clippy; do
    if ! grep -q "^${component}" <<<"$installed"; then
      log "rustup component add ${component}"
      rustup component add "${component}"
    fi
  done
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
fi

# Debian packages: Chromium and its driver (browser tests), brotli (bundle),
# redis-server (cluster-mode tests, benchmark and local clusters), openssl
# (certificates for the Redis-over-TLS test), strace (the test that no
# message is acknowledged before its fsync).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v brotli >/dev/null 2>&1 || missing+=(brotli)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages: wasm-opt (binaryen 132; Debian's is too old and breaks the
# module), playwright-core (drives Debian's Chromium; never downloads one)
# and axe-core (accessibility checks the end-to-end tests inject).
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] \
   || [ ! -f node_modules/axe-core/axe.min.js ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# PyPI: the plain Python WebSocket client the abuse suite reads a flood with.
if ! python3 -c 'import websockets' >/dev/null 2>&1; then
  log "pip install websockets"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'websockets>=13,<18'
fi

# Crates, then the versions they pin.
cargo fetch --locked >/dev/null 2>&1 || cargo fetch >/dev/null

if [ "$(trunk --version 2>/dev/null || true)" != "trunk ${TRUNK_VERSION}" ]; then
  log "cargo install trunk ${TRUNK_VERSION} (several minutes, once)"
  cargo install --locked "trunk@${TRUNK_VERSION}"
fi

# cargo-fuzz: the test command fuzzes the frame decoder and the JSON
# payloads for a short, bounded time (it builds with RUSTC_BOOTSTRAP=1).
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo install cargo-fuzz (a minute, once)"
  cargo install --locked cargo-fuzz
fi

bindgen=$(cargo pkgid -p wasm-bindgen 2>/dev/null | sed -E 's/.*[#@]//')
if [ -z "$bindgen" ]; then
  echo "cannot read the wasm-bindgen version from Cargo.lock" >&2
  exit 1
fi
if ! grep -q "wasm_bindgen = \"${bindgen}\"" Trunk.toml; then
  echo "Trunk.toml pins a wasm_bindgen other than Cargo.lock's ${bindgen}: update [tools] in Trunk.toml" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen ${bindgen}" ]; then
  # Not --locked: its own lockfile pins a crate version the registry lacks.
  log "cargo install wasm-bindgen-cli ${bindgen} (a few minutes, once)"
  cargo install --force wasm-bindgen-cli --version "${bindgen}"
fi
log "ready"

#!/usr/bin/env bash
# Sets everything up, then runs every check and test: format, clippy
# (native and wasm32), Rust tests, the abuse suite (each attack against the
# release binary), browser tests (wasm-bindgen-test in headless Chromium
# against a real server) and the end-to-end tests (the release binary in
# headless Chromium sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/setup.sh

step() { printf '\n== %s\n' "$*" >&2; }

step "format"
cargo fmt --all --check
# The fuzz targets are their own workspace: checked the same way.
(cd fuzz && cargo fmt --check)

step "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32: shared, frontend)"
cargo clippy -p shared --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

step "clippy (fuzz targets)"
(cd fuzz && cargo clippy --all-targets --locked -- -D warnings)

step "bundle"
scripts/bundle.sh

step "rust tests"
cargo test --workspace --locked

step "fuzz (frame decoder and JSON payloads, 30 s each)"
for target in decode payload; do
  fuzz_log=$(mktemp)
  if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time=30) >"$fuzz_log" 2>&1; then
    cat "$fuzz_log" >&2
    echo "fuzzing $target failed (a crash input is in fuzz/artifacts/$target)" >&2
    exit 1
  fi
  printf '%s: ' "$target" >&2
  grep -E '^Done ' "$fuzz_log" >&2 || true
  rm -f "$fuzz_log"
done

step "release server, load generator and baselines"
cargo build --release --locked -p server -p bench

step "abuse suite (each attack against the release binary, one at a time)"
CHAT_SERVER_BIN="$PWD/target/release/server" \
  cargo test --locked -p server --test abuse -- --ignored --test-threads 1 --nocapture

step "benchmark harnesses (tiny runs; real figures: see README)"
cargo run --release --locked -p server --example say_bench -- --senders 4 --secs 0.3
target/release/bench --quick --out target/bench-quick

step "browser tests"
harness_out=$(mktemp)
node scripts/harness.mjs target/release/server >"$harness_out" &
harness=$!
trap 'kill "$harness" 2>/dev/null || true; rm -f "$harness_out"' EXIT
for _ in $(seq 1 100); do [ -s "$harness_out" ] && break; sleep 0.1; done
CHAT_TEST_SOCKET=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).socket)' "$harness_out")
CHAT_TEST_CONTROL=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).control)' "$harness_out")
export CHAT_TEST_SOCKET CHAT_TEST_CONTROL
# The runner gives each test binary this long in all, page load included
# (20 s by default): room for the waits' own deadlines on a busy machine.
WASM_BINDGEN_TEST_TIMEOUT=120 cargo test -p frontend --target wasm32-unknown-unknown --tests --locked
kill "$harness"
wait "$harness" 2>/dev/null || true
trap - EXIT
rm -f "$harness_out"

step "end-to-end"
node --test e2e/

#!/usr/bin/env bash
# Builds the browser bundle into dist/ (release: wasm-opt -Oz, .br/.gz) and
# prints its sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

trunk build --release --offline
wasm=$(ls dist/*_bg.wasm)
js=$(ls dist/*.js | grep -v '\.gz$\|\.br$' | head -n1)
size() { stat -c %s "$1"; }
printf 'bundle: %s  raw %s B, gzip %s B, brotli %s B\n' "$(basename "$wasm")" \
  "$(size "$wasm")" "$(size "$wasm.gz")" "$(size "$wasm.br")"
printf 'bundle: %s  raw %s B, gzip %s B, brotli %s B\n' "$(basename "$js")" \
  "$(size "$js")" "$(size "$js.gz")" "$(size "$js.br")"

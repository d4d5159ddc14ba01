#!/bin/sh
# trunk post_build hook: writes .br and .gz beside each text/wasm asset of
# the release bundle, so the server can send them precompressed.
set -eu
dir="${TRUNK_STAGING_DIR:?run by trunk}"
[ "${TRUNK_PROFILE:-debug}" = "release" ] || exit 0
for f in "$dir"/*.wasm "$dir"/*.js "$dir"/*.css "$dir"/*.html; do
  [ -f "$f" ] || continue
  gzip -9 -n -k -f "$f"
  if command -v brotli >/dev/null 2>&1; then
    brotli -q 11 -k -f "$f"
  fi
done

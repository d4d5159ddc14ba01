# Sourced by the scripts: tools on PATH and trunk kept offline.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="${ROOT}/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:${PATH}"
export TRUNK_SKIP_VERSION_CHECK=true
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
# CI builds once from a clean clone: incremental state would only use disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

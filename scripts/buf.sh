#!/usr/bin/env bash
# Runs the buf CLI (from the npm registry, pinned) on the contracts: `scripts/buf.sh lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.75.0
dir="target/buf-$version"
if [ ! -x "$dir/node_modules/.bin/buf" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "@bufbuild/buf@$version" >/dev/null
fi
exec "$dir/node_modules/.bin/buf" "$@"

#!/usr/bin/env bash
# Runs the clients in examples/ (Python with grpcio, Node with @grpc/grpc-js) against a fresh
# `creditmesh dev`, as a newcomer would: each files as an agency of its own (its certificate
# issued with `creditmesh pki issue`), pushes a record as the demo agency and verifies the
# register's notices. Their packages come from PyPI (a virtual environment under target/) and
# the npm registry (examples/node/node_modules), pinned. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked --quiet --bin creditmesh
bin="$target/debug/creditmesh"

venv="$target/examples-venv"
if ! "$venv/bin/python" -c "import grpc, grpc_tools, cryptography" 2>/dev/null; then
  echo "examples: installing examples/python/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r examples/python/requirements.txt
fi
if [ ! -d examples/node/node_modules/@grpc/grpc-js ]; then
  echo "examples: installing examples/node's packages"
  npm ci --silent --no-audit --no-fund --prefix examples/node >/dev/null
fi

work="$(mktemp -d)"
dev=""
cleanup() {
  [ -n "$dev" ] && kill "$dev" 2>/dev/null && wait "$dev" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" dev --data-dir "$work/data" --node-listen 127.0.0.1:0 --public-listen 127.0.0.1:0 \
  --department-listen 127.0.0.1:0 --web-listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
  >"$work/banner" 2>"$work/log" &
dev=$!
for _ in $(seq 1 600); do
  grep -q '^stop with' "$work/banner" 2>/dev/null && break
  kill -0 "$dev" 2>/dev/null || { cat "$work/log" >&2; echo "examples: dev stopped" >&2; exit 1; }
  sleep 0.2
done
if ! grep -q 'demo register   seeded now' "$work/banner"; then
  cat "$work/banner" "$work/log" >&2
  echo "examples: dev did not seed its demonstration register" >&2
  exit 1
fi
listener() { awk -v l="$1" '$1 == l && $2 == "listener" { print $3 }' "$work/banner"; }
export CREDITMESH_EXAMPLE_PKI="$work/data/pki"
export CREDITMESH_EXAMPLE_NODE="$(listener node)"
export CREDITMESH_EXAMPLE_PUBLIC="$(listener public)"

run() {
  local name="$1" uscc="$2"
  shift 2
  "$bin" pki issue --dir "$CREDITMESH_EXAMPLE_PKI" --kind agency --tenant 650100 --subject "$uscc" \
    --name "$name" >/dev/null
  local out
  out="$(CREDITMESH_EXAMPLE_AGENCY_CERT="$name" CREDITMESH_EXAMPLE_AGENCY_USCC="$uscc" "$@")"
  echo "$out" | sed 's/^/  /'
  for want in "filed: .* FILING_STATUS_SUBMITTED" "pushed: .* PUSH_RESULT_STORED" \
    "valid: notice 0 is in the tree of" "valid: notice 1 is in the tree of"; do
    if ! echo "$out" | grep -q "$want"; then
      echo "examples: $* did not print \"$want\"" >&2
      exit 1
    fi
  done
}
echo "examples: python (grpcio)"
run agency-example 91650102MA7XJ0011B "$venv/bin/python" examples/python/example.py
echo "examples: node (@grpc/grpc-js)"
run agency-example-node 91650102MA7XJ002X3 node examples/node/example.js
echo "examples: ok"

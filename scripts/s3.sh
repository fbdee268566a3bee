#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure an S3-compatible server is reachable for the test
# suite and exports CREDITMESH_TEST_S3_URL with the standard AWS_* variables. Unless
# CREDITMESH_TEST_S3_URL is given, it runs moto's S3 server (from PyPI, in a virtual
# environment under target/) on 127.0.0.1:55433.

s3_answers() {
  python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
PY
}

ensure_s3() {
  if [ -n "${CREDITMESH_TEST_S3_URL:-}" ]; then
    echo "s3: using CREDITMESH_TEST_S3_URL"
    return 0
  fi
  local port=55433
  local endpoint="http://127.0.0.1:${port}"
  local venv="${CREDITMESH_S3_VENV:-$PWD/target/moto-venv}"
  # A server left by a checkout that is gone may hold the port without answering: stop it.
  local record="${TMPDIR:-/tmp}/creditmesh-s3-$port.venv"
  local pidfile="${TMPDIR:-/tmp}/creditmesh-s3-$port.pid"
  if [ -s "$pidfile" ] && { [ ! -s "$record" ] || [ ! -x "$(cat "$record")/bin/moto_server" ]; }; then
    echo "s3: stopping the server of a removed checkout"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile" "$record"
    for _ in $(seq 1 50); do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 2)" >/dev/null 2>&1 || break
      sleep 0.2
    done
  fi
  if ! s3_answers "$endpoint"; then
    if [ ! -x "$venv/bin/moto_server" ]; then
      local sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        echo "s3: installing python3-venv from Debian's packages"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
      fi
      echo "s3: installing moto's S3 server into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q "moto[server]"
    fi
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$venv/server.log" 2>&1 &
    echo $! >"$pidfile"
    echo "$venv" >"$record"
    for _ in $(seq 1 50); do
      s3_answers "$endpoint" && break
      sleep 0.2
    done
  fi
  if ! s3_answers "$endpoint"; then
    echo "s3: could not start moto's S3 server; see $venv/server.log" >&2
    return 1
  fi
  python3 - "$endpoint/creditmesh-test" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="PUT"), timeout=5)
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
PY
  export CREDITMESH_TEST_S3_URL="s3://creditmesh-test"
  export AWS_ENDPOINT="$endpoint" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  echo "s3: using moto's S3 server on $endpoint"
}

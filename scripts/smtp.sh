#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure an SMTP server that keeps what it receives is running
# for the test suite, and exports CREDITMESH_TEST_SMTP_URL and CREDITMESH_TEST_SMTP_MAILDIR.
# It runs aiosmtpd (from PyPI, in a virtual environment under target/) on 127.0.0.1:55434,
# delivering into a Maildir under target/.

ensure_smtp() {
  if [ -n "${CREDITMESH_TEST_SMTP_URL:-}" ]; then
    echo "smtp: using CREDITMESH_TEST_SMTP_URL"
    return 0
  fi
  local port=55434
  local venv="${CREDITMESH_SMTP_VENV:-$PWD/target/smtp-venv}"
  local maildir="$venv/maildir"
  # A server started before, by another checkout, says where it delivers.
  local record="${TMPDIR:-/tmp}/creditmesh-smtp-$port.maildir"
  local pidfile="${TMPDIR:-/tmp}/creditmesh-smtp-$port.pid"
  # A server left by a checkout that is gone delivers into a directory nobody reads: stop it.
  if [ -s "$pidfile" ] && { [ ! -s "$record" ] || [ ! -d "$(cat "$record")/new" ]; }; then
    echo "smtp: stopping the server of a removed checkout"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile" "$record"
    for _ in $(seq 1 50); do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 2)" >/dev/null 2>&1 || break
      sleep 0.2
    done
  fi
  if ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 2)" >/dev/null 2>&1; then
    if [ ! -x "$venv/bin/aiosmtpd" ]; then
      echo "smtp: installing aiosmtpd into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q aiosmtpd
    fi
    mkdir -p "$maildir/tmp" "$maildir/new" "$maildir/cur"
    nohup "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" \
      -c aiosmtpd.handlers.Mailbox "$maildir" >"$venv/server.log" 2>&1 &
    echo $! >"$pidfile"
    echo "$maildir" >"$record"
    for _ in $(seq 1 50); do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 2)" >/dev/null 2>&1 && break
      sleep 0.2
    done
  fi
  if ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 2)" >/dev/null 2>&1; then
    echo "smtp: could not start aiosmtpd; see $venv/server.log" >&2
    return 1
  fi
  [ -s "$record" ] && maildir="$(cat "$record")"
  export CREDITMESH_TEST_SMTP_URL="smtp://127.0.0.1:$port"
  export CREDITMESH_TEST_SMTP_MAILDIR="$maildir"
  echo "smtp: using aiosmtpd on 127.0.0.1:$port, mail in $maildir"
}

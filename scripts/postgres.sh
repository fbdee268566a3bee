#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure a PostgreSQL server is reachable for the test suite and
# exports CREDITMESH_TEST_DATABASE_URL. Order of preference:
#   1. CREDITMESH_TEST_DATABASE_URL as given, when it answers;
#   2. a server on 127.0.0.1:5432 that lets user postgres in without a password;
#   3. a private cluster under ${CREDITMESH_PG_DIR:-/tmp/creditmesh-pg} on port 55432, with
#      trust authentication, created (and PostgreSQL installed from Debian's packages) when missing.

pg_answers() {
  psql "$1" -qtAc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
  if [ -n "${CREDITMESH_TEST_DATABASE_URL:-}" ] && command -v psql >/dev/null && pg_answers "$CREDITMESH_TEST_DATABASE_URL"; then
    echo "postgres: using CREDITMESH_TEST_DATABASE_URL"
    return 0
  fi
  local system_url="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null && pg_answers "$system_url"; then
    export CREDITMESH_TEST_DATABASE_URL="$system_url"
    echo "postgres: using the server on 127.0.0.1:5432"
    return 0
  fi

  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres: installing PostgreSQL from Debian's packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-client >/dev/null
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  local dir="${CREDITMESH_PG_DIR:-/tmp/creditmesh-pg}"
  local port=55432
  local url="postgres://postgres@127.0.0.1:${port}/postgres"
  # initdb and postgres refuse to run as root: run them as the postgres system user then.
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    as=(runuser -u postgres --)
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
  fi
  if ! pg_answers "$url"; then
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  fi
  if ! pg_answers "$url"; then
    echo "postgres: could not start a server; see $dir/server.log" >&2
    return 1
  fi
  export CREDITMESH_TEST_DATABASE_URL="$url"
  echo "postgres: using the private cluster in $dir on port $port"
}

drop_test_databases() {
  psql "$CREDITMESH_TEST_DATABASE_URL" -qtAc \
    "SELECT 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ';' FROM pg_database WHERE datname LIKE 'cmtest\_%'" \
    | psql "$CREDITMESH_TEST_DATABASE_URL" -q >/dev/null 2>&1 || true
}

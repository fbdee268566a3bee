#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end suite, on SQLite and on PostgreSQL.
# PostgreSQL is found, or installed and started, by scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_postgres
drop_test_databases
cargo test --workspace --locked "$@"
drop_test_databases

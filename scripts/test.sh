#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end suite, on SQLite and on PostgreSQL, with
# documents on a local directory and on an S3-compatible store. PostgreSQL is found, or
# installed and started, by scripts/postgres.sh; the S3 server by scripts/s3.sh; an SMTP
# server that keeps what it receives by scripts/smtp.sh; Chromium and ChromeDriver for the
# browser tests by scripts/browser.sh; grpcurl for the README's examples by scripts/grpcurl.sh.
# Then, when the whole suite was asked for (no arguments), the clients in examples/ run
# against a fresh `creditmesh dev` (scripts/examples.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
. scripts/s3.sh
. scripts/smtp.sh
. scripts/browser.sh
. scripts/grpcurl.sh
ensure_postgres
ensure_s3
ensure_smtp
ensure_browser
ensure_grpcurl
drop_test_databases
cargo test --workspace --locked "$@"
if [ $# -eq 0 ]; then
  bash scripts/examples.sh
fi
drop_test_databases

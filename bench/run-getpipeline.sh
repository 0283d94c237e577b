#!/usr/bin/env bash
# GetPipeline read benchmark: signed GetPipeline over loopback at concurrency 1 and 32, on SQLite
# and on PostgreSQL, next to a bare axum handler, all in one run. Prints a markdown table.
# Usage: bench/run-getpipeline.sh [seconds-per-point]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
cargo build --release -p sluice-cli -p sluice-bench >/dev/null 2>&1
bin=target/release/sluice
bench=target/release/sluice-bench
export AWS_ACCESS_KEY_ID=AKIABENCHROOT0000001
export AWS_SECRET_ACCESS_KEY=benchrootsecret0000000000000000000000000
export SLUICE_ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID SLUICE_ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
pg_admin=${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_health() { for _ in $(seq 1 100); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.1; done; echo "no health at $1" >&2; exit 1; }
point() { # label endpoint
  for c in 1 32; do
    r=$("$bench" get-pipeline --endpoint "$2" --concurrency "$c" --seconds "$seconds")
    echo "$r" | python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"| $1 | {r['concurrency']} | {r['req_per_s']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |\")"
  done
}

echo "| target | concurrency | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
"$bench" bare --listen 127.0.0.1:18760 2>/dev/null & pids+=($!)
sleep 0.5
point "bare axum handler" http://127.0.0.1:18760

SLUICE_LOG=warn "$bin" serve --listen 127.0.0.1:18751 --data-dir "$work/sqlite" 2>/dev/null & pids+=($!)
wait_health http://127.0.0.1:18751
"$bench" setup --endpoint http://127.0.0.1:18751
point "sluice GetPipeline, SQLite" http://127.0.0.1:18751

db=sluice_bench_$$
psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
pg_url="${pg_admin%/*}/$db"
SLUICE_LOG=warn "$bin" serve --listen 127.0.0.1:18752 --data-dir "$work/pg" --database "$pg_url" 2>/dev/null & pids+=($!)
wait_health http://127.0.0.1:18752
"$bench" setup --endpoint http://127.0.0.1:18752
point "sluice GetPipeline, PostgreSQL" http://127.0.0.1:18752
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null

#!/usr/bin/env bash
# Alternating pairs of two (or more) server binaries on one job shape, each run on a fresh
# database with a freshly started server, to judge a change on a machine whose speed drifts
# between series. Prints one line per run: binary, shape, the shape's figure.
# Usage: bench/ab-jobs.sh "BIN_A BIN_B" b1|b1b|b2|b3 PAIRS   (BACKEND=postgres|sqlite, default
# postgres; B1_JOBS, default 20000). Copy each build to its own path first (e.g. /tmp/sluice-a).
set -euo pipefail
cd "$(dirname "$0")/.."
bins=$1 shape=$2 pairs=$3
cargo build --release -p sluice-bench >/dev/null 2>&1
bench=${CARGO_TARGET_DIR:-target}/release/sluice-bench
export AWS_ACCESS_KEY_ID=AKIABENCHROOT0000001
export AWS_SECRET_ACCESS_KEY=benchrootsecret0000000000000000000000000
export SLUICE_ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID SLUICE_ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
pg_admin=${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
endpoint=http://127.0.0.1:18771
for _ in $(seq 1 "$pairs"); do
  for bin in $bins; do
    work=$(mktemp -d) db=
    args=(serve --listen 127.0.0.1:18771 --data-dir "$work/data")
    if [[ ${BACKEND:-postgres} == postgres ]]; then
      db=sluice_ab_$$_$RANDOM
      psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
      args+=(--database "postgres://postgres@127.0.0.1:5432/$db")
    fi
    SLUICE_LOG=warn "$bin" "${args[@]}" 2>"$work/server.log" &
    server=$!
    for _ in $(seq 1 100); do curl -sf "$endpoint/health" >/dev/null && break; sleep 0.1; done
    case $shape in
      b1) out=$("$bench" throughput --endpoint "$endpoint" --jobs "${B1_JOBS:-20000}" --batch 1) ;;
      b1b) out=$("$bench" throughput --endpoint "$endpoint" --jobs "${B1_JOBS:-20000}" --batch 100) ;;
      b2) out=$("$bench" handoff --endpoint "$endpoint" --steps 40 --rounds 5) ;;
      b3) out=$("$bench" pickup --endpoint "$endpoint" --jobs 300 --interval-ms 20) ;;
      *) echo "unknown shape $shape" >&2; exit 2 ;;
    esac
    echo "$bin $shape $(grep -o '"\(jobs_per_s\|ms_per_step\|p50_ms\)":[0-9.]*' <<<"$out")"
    kill "$server"; wait "$server" 2>/dev/null || true
    [[ -n $db ]] && psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    rm -rf "$work"
  done
done

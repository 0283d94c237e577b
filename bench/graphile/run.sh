#!/usr/bin/env bash
# Peer comparison: graphile-worker on the job shapes of the Sluice benchmarks.
# Usage: bench/graphile/run.sh [b1|b1b|b1d|b2|b3|all]   (default: all = b1 b1b b2 b3)
# Prints one JSON line per shape on stdout (median and every run); progress goes to stderr.
# Every run gets its own fresh database graphile_bench_<random>, dropped afterwards.
# Environment: RUNS (3), RUN_TIMEOUT_S (300, per run), PG_BASE_URL (postgres://postgres@127.0.0.1:5432),
# counts B1_JOBS B1_PRODUCERS B1_CONCURRENCY B1B_JOBS B1D_JOBS B2_STEPS B3_JOBS B3_INTERVAL_MS
# (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-all}
case "$what" in
  all) shapes=(b1 b1b b2 b3) ;;
  b1 | b1b | b1d | b2 | b3) shapes=("$what") ;;
  *) echo "usage: $0 [b1|b1b|b1d|b2|b3|all]" >&2; exit 64 ;;
esac

runs=${RUNS:-3}
export RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-300}
pg_base=${PG_BASE_URL:-postgres://postgres@127.0.0.1:5432}
pg_admin=$pg_base/postgres

if [ ! -d node_modules/graphile-worker ]; then
  echo "installing graphile-worker (npm ci)..." >&2
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
  else
    npm install --no-audit --no-fund --loglevel=error >&2
  fi
fi

psql "$pg_admin" -qAtc 'select 1' >/dev/null || { echo "run.sh: cannot reach PostgreSQL at $pg_admin" >&2; exit 1; }

current_db=""
drop_db() {
  if [ -n "$current_db" ]; then
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $current_db WITH (FORCE)" >/dev/null 2>&1 || true
    current_db=""
  fi
}
trap drop_db EXIT
trap 'drop_db; exit 130' INT TERM

for shape in "${shapes[@]}"; do
  lines=""
  for i in $(seq 1 "$runs"); do
    current_db=graphile_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
    psql "$pg_admin" -qc "CREATE DATABASE $current_db" >/dev/null
    echo "[$(date +%T)] $shape run $i/$runs on database $current_db" >&2
    set +e
    # bench.mjs has its own RUN_TIMEOUT_S deadline; timeout(1) is the backstop if Node hangs.
    line=$(timeout --kill-after=10 $((RUN_TIMEOUT_S + 30)) node bench.mjs "$shape" "$pg_base/$current_db")
    rc=$?
    set -e
    drop_db
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
      if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "run.sh: $shape run $i TIMED OUT (killed after $((RUN_TIMEOUT_S + 30)) s)" >&2
      fi
      echo "run.sh: $shape run $i FAILED (exit $rc)" >&2
      exit 1
    fi
    echo "  $line" >&2
    lines+="$line"$'\n'
  done
  printf '%s' "$lines" | node summarize.mjs
done

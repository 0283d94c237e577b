#!/usr/bin/env bash
# Job benchmarks B1, B1b, B2, B3 (issue 3) on SQLite and on PostgreSQL: each shape runs 3 times,
# each run on a fresh database with a freshly started server; prints every run as a JSON line
# and then the medians as a markdown table.
# Usage: bench/run-jobs.sh [shape ...]   (shapes: b1 b1b b2 b3; default all)
# Sizes can be lowered for a quick check: B1_JOBS (20000), B3_JOBS (300), B2_ROUNDS (5);
# BACKENDS ("sqlite postgres") picks the backends.
set -euo pipefail
cd "$(dirname "$0")/.."
shapes=("$@")
[[ ${#shapes[@]} -eq 0 ]] && shapes=(b1 b1b b2 b3)
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release -p sluice-cli -p sluice-bench >/dev/null 2>&1
bin=$target_dir/release/sluice
bench=$target_dir/release/sluice-bench
export AWS_ACCESS_KEY_ID=AKIABENCHROOT0000001
export AWS_SECRET_ACCESS_KEY=benchrootsecret0000000000000000000000000
export SLUICE_ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID SLUICE_ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
pg_admin=${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
port=18771
endpoint=http://127.0.0.1:$port
work=$(mktemp -d)
server=
db=
stop_server() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=; fi
  if [[ -n $db ]]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; db=; fi
}
trap 'stop_server; [[ -n ${KEEP_LOG:-} ]] && cp "$work/server.log" /tmp/bench-server.log; rm -rf "$work"' EXIT

start_server() { # backend
  local args=(serve --listen 127.0.0.1:$port --data-dir "$work/data-$RANDOM$RANDOM")
  if [[ $1 == postgres ]]; then
    db=sluice_jobs_bench_$$_$RANDOM
    psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
    args+=(--database "postgres://postgres@127.0.0.1:5432/$db")
  fi
  SLUICE_LOG=warn "$bin" "${args[@]}" 2>>"$work/server.log" &
  server=$!
  for _ in $(seq 1 100); do curl -sf "$endpoint/health" >/dev/null && return 0; sleep 0.1; done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}

run_shape() { # shape
  case $1 in
    b1) "$bench" throughput --endpoint "$endpoint" --jobs "${B1_JOBS:-20000}" --batch 1 ;;
    b1b) "$bench" throughput --endpoint "$endpoint" --jobs "${B1_JOBS:-20000}" --batch 100 ;;
    b2) "$bench" handoff --endpoint "$endpoint" --steps 40 --rounds "${B2_ROUNDS:-5}" ;;
    b3) "$bench" pickup --endpoint "$endpoint" --jobs "${B3_JOBS:-300}" --interval-ms 20 ;;
  esac
}

metric() { # shape → the JSON field the median is taken of
  case $1 in b1|b1b) echo jobs_per_s ;; b2) echo ms_per_step ;; b3) echo p50_ms ;; esac
}

results=$work/results.jsonl
for backend in ${BACKENDS:-sqlite postgres}; do
  for shape in "${shapes[@]}"; do
    for run in 1 2 3; do
      start_server "$backend"
      line=$(run_shape "$shape")
      stop_server
      echo "{\"backend\":\"$backend\",\"run\":$run,\"result\":$line}" | tee -a "$results"
    done
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| backend | shape | median | runs |\n|---|---|---|---|")
keys = {"B1": "jobs_per_s", "B1b": "jobs_per_s", "B2": "ms_per_step", "B3": "p50_ms"}
groups = {}
for r in rows:
    groups.setdefault((r["backend"], r["result"]["shape"]), []).append(r["result"])
for (backend, shape), results in groups.items():
    key = keys[shape]
    values = [round(x[key], 2) for x in results]
    extra = ""
    if shape == "B3":
        extra = " (p95 %s, p99 %s)" % (statistics.median(x["p95_ms"] for x in results),
                                       statistics.median(x["p99_ms"] for x in results))
    print(f"| {backend} | {shape} | {statistics.median(values)} {key}{extra} | {values} |")
PY

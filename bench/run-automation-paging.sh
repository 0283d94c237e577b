#!/usr/bin/env bash
# DescribeAutomationExecutions paging benchmark: N stored automation executions (1% Waiting) on
# SQLite and on PostgreSQL, a walk of 200 pages of 50 from the newest (gaps and duplicates fail
# the run), then 200 first pages filtered by ExecutionStatus=Waiting. Prints a markdown table.
# Usage: bench/run-automation-paging.sh [COUNT...]   (default 10000 1000000)
# Rows are inserted straight into the database (a real start takes ~ms each); the server then
# reads them like any other execution.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-10000 1000000}")
read -r -a counts <<<"${counts[*]}"
cargo build --release -p sluice-cli -p sluice-bench >/dev/null 2>&1
bin=target/release/sluice
bench=target/release/sluice-bench
export AWS_ACCESS_KEY_ID=AKIABENCHROOT0000001
export AWS_SECRET_ACCESS_KEY=benchrootsecret0000000000000000000000000
export SLUICE_ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID SLUICE_ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
pg_admin=${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=18771
endpoint=http://127.0.0.1:$port
data='{"mode":"Auto","executedBy":"arn:aws:iam::123456789012:root"}'

serve() { # data-dir [database-url]
  local args=(serve --listen 127.0.0.1:$port --data-dir "$1")
  [[ -n ${2:-} ]] && args+=(--database "$2")
  SLUICE_LOG=warn "$bin" "${args[@]}" 2>/dev/null & pid=$!
  for _ in $(seq 1 100); do curl -sf "$endpoint/health" >/dev/null && return 0; sleep 0.1; done
  echo "no health at $endpoint" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

fill_sqlite() { # db-path count
  python3 - "$1" "$2" "$data" <<'PY'
import random, sqlite3, sys, uuid
path, count, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = 1_700_000_000_000
rows = ((str(uuid.UUID(int=random.getrandbits(128))), "Waiting" if i % 100 == 0 else "Success", data,
         base + i, base + i, base + i) for i in range(count))
db = sqlite3.connect(path)
db.executemany(
    "INSERT INTO executions (id, kind, tenant, definition_name, definition_version, status, data,"
    " stage_index, stage_state, created_at, updated_at, finished_at, current_step, current_action)"
    " VALUES (?, 'automation', '123456789012', 'bench-runbook', 1, ?, ?, 0, '', ?, ?, ?, 'hold', 'aws:pause')",
    rows)
db.commit()
PY
}

fill_postgres() { # url count
  psql "$1" -qc "INSERT INTO executions (id, kind, tenant, definition_name, definition_version, status, data,
      stage_index, stage_state, created_at, updated_at, finished_at, current_step, current_action)
    SELECT md5(i::text || random()::text)::uuid::text, 'automation', '123456789012', 'bench-runbook', 1,
      CASE WHEN i % 100 = 0 THEN 'Waiting' ELSE 'Success' END, '$data', 0, '',
      1700000000000 + i, 1700000000000 + i, 1700000000000 + i, 'hold', 'aws:pause'
    FROM generate_series(0, $2 - 1) AS i; ANALYZE executions;" >/dev/null
}

row() { # backend count json
  echo "$3" | python3 -c "import json,sys; r=json.load(sys.stdin); w=r['walk']; f=r['waiting_filter']; print(f\"| $1 | $2 | {r['executions_seen']} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} |\")"
}

echo "| backend | stored | walked | walk p50 ms | walk p99 ms | Waiting filter p50 ms | Waiting filter p99 ms |"
echo "|---|---|---|---|---|---|---|"
for count in "${counts[@]}"; do
  dir=$work/sqlite-$count
  serve "$dir"; stop
  fill_sqlite "$dir/sluice.db" "$count"
  serve "$dir"
  row SQLite "$count" "$("$bench" automation-paging --endpoint "$endpoint")"
  stop

  db=sluice_paging_$$_$count
  psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
  url="${pg_admin%/*}/$db"
  serve "$work/pg-$count" "$url"; stop
  fill_postgres "$url" "$count"
  serve "$work/pg-$count" "$url"
  row PostgreSQL "$count" "$("$bench" automation-paging --endpoint "$endpoint")"
  stop
  psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
done

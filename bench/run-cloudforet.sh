#!/usr/bin/env bash
# Cloudforet Job list and stat benchmark: N stored jobs in one domain on SQLite and on
# PostgreSQL, then `sluice-bench cloudforet-jobs` over REST with a DOMAIN_ADMIN token: page 1 and
# page 1001 of one plugin's SUCCESS jobs newest first, stat by status, stat by plugin and status
# (10 warm-up then up to 200 timed requests each, one at a time; every answer is checked against
# the seeded counts). Prints a markdown table.
# Usage: bench/run-cloudforet.sh [COUNT...]   (default 100000 1000000)
# Env: BUDGET_SECONDS (per shape, default 60) caps a slow shape's measuring time.
# Rows are inserted straight into cf_jobs (a real job needs a plugin sync); the server then
# reads them like any other job. 1,000 more jobs in a second domain must never show up.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-100000 1000000}")
read -r -a counts <<<"${counts[*]}"
budget=${BUDGET_SECONDS:-60}
cargo build --release -p sluice-cli -p sluice-bench >/dev/null 2>&1
bin=target/release/sluice
bench=target/release/sluice-bench
export AWS_ACCESS_KEY_ID=AKIABENCHROOT0000001
export AWS_SECRET_ACCESS_KEY=benchrootsecret0000000000000000000000000
export SLUICE_ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID SLUICE_ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
pg_admin=${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
pid=
db=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  [[ -n $db ]] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
port=18772
endpoint=http://127.0.0.1:$port
export SLUICE_ENDPOINT=$endpoint
domain=domain-0000be4c0001
plugin=plugin-aws-cloud-service-inven-collector

serve() { # data-dir [database-url]
  local args=(serve --listen 127.0.0.1:$port --data-dir "$1")
  [[ -n ${2:-} ]] && args+=(--database "$2")
  SLUICE_LOG=warn "$bin" "${args[@]}" 2>/dev/null & pid=$!
  for _ in $(seq 1 300); do curl -sf "$endpoint/health" >/dev/null && return 0; sleep 0.1; done
  echo "no health at $endpoint" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# Writes the jobs (as CSV on stdout, or into a SQLite file) and the per plugin/status counts of
# the benchmark domain as JSON. Deterministic for a count.
generate() { # sqlite-path|- count seeded-json
  timeout 600 python3 - "$1" "$2" "$3" "$domain" "$plugin" <<'PY'
import csv, json, random, sqlite3, sys, time
target, count, seeded_path, domain, first_plugin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rng = random.Random(5)
plugins = [first_plugin, "plugin-azure-inven-collector", "plugin-google-cloud-inven-collector",
           "plugin-oci-inven-collector", "plugin-kubernetes-inven-collector"]
workspaces = ["workspace-%012x" % (0xa11ce0 + w) for w in range(5)]
# 50 trusted accounts: 10 domain-level (workspace '*'), 40 spread over the 5 workspaces.
accounts = [("ta-%012x" % (0x7a0000 + a), plugins[a % 5],
             ("DOMAIN", "*") if a < 10 else ("WORKSPACE", workspaces[(a // 5) % 5])) for a in range(50)]
statuses = ["SUCCESS", "FAILURE", "CANCELED", "IN_PROGRESS", "PENDING"]
weights = [85, 8, 4, 2, 1]
end = int(time.time() * 1000)
span = 90 * 86_400_000
counts = {}
def rows(domain_id, n, offset):
    step = max(span // n, 1)
    for i in range(n):
        account, plugin_id, (group, workspace) = rng.choice(accounts)
        status = rng.choices(statuses, weights)[0]
        created = end - span + i * step + rng.randrange(step)
        finished = None if status in ("IN_PROGRESS", "PENDING") else created + rng.randrange(5_000, 300_000)
        failed = status == "FAILURE"
        if domain_id == domain:
            by_status = counts.setdefault(plugin_id, {})
            by_status[status] = by_status.get(status, 0) + 1
        yield ("job-%012x" % (((offset + i) * 0x9E3779B97F4B + 0x5EED) % 2**48), domain_id, workspace, group,
               account, plugin_id, status, "{}", "ERROR_SYNC_PLUGIN" if failed else None,
               "plugin answered UNAVAILABLE: connection refused" if failed else None,
               created, finished or created + 1_000, finished)
def all_rows():
    yield from rows(domain, count, 0)
    yield from rows("domain-0000babe0002", 1000, count)
if target == "-":
    csv.writer(sys.stdout, lineterminator="\n").writerows(all_rows())
else:
    db = sqlite3.connect(target)
    db.executemany("INSERT INTO cf_jobs (job_id, domain_id, workspace_id, resource_group, trusted_account_id,"
                   " plugin_id, status, options, error_code, error_message, created_at, updated_at, finished_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", all_rows())
    db.commit()
    db.execute("ANALYZE")
    db.close()
json.dump({"counts": counts}, open(seeded_path, "w"))
PY
}

fill_postgres() { # url count seeded-json
  generate - "$2" "$3" | timeout 600 psql "$1" -v ON_ERROR_STOP=1 -qc "\copy cf_jobs (job_id, domain_id,
    workspace_id, resource_group, trusted_account_id, plugin_id, status, options, error_code, error_message,
    created_at, updated_at, finished_at) FROM pstdin WITH (FORMAT csv)" >/dev/null
  psql "$1" -v ON_ERROR_STOP=1 -qc "VACUUM ANALYZE cf_jobs" >/dev/null
}

measure() { # backend count seeded-json
  local token
  token=$("$bin" cloudforet token --role DOMAIN_ADMIN --domain-id "$domain" --expires-in 3600 |
    python3 -c "import json,sys; print(json.load(sys.stdin)['token'])")
  timeout 1200 "$bench" cloudforet-jobs --endpoint "$endpoint" --token "$token" --plugin "$plugin" \
    --seeded "$3" --budget-seconds "$budget" | python3 -c "
import json, sys
r = json.load(sys.stdin)
cells = []
for shape in ('list_first_page', 'list_page_1001', 'stat_by_status', 'stat_by_plugin_status'):
    s = r[shape]
    n = '' if s['requests'] == 200 else f\" ({s['requests']} req)\"
    cells.append(f\"{s['p50_ms']:.2f} / {s['p99_ms']:.2f}{n}\")
print(f\"| $1 | {r['stored']:,} | {r['expected_list_total']:,} | \" + ' | '.join(cells) + ' |')"
}

echo "| backend | stored | list total_count | list page 1 p50 / p99 ms | list page 1001 p50 / p99 ms | stat by status p50 / p99 ms | stat by plugin, status p50 / p99 ms |"
echo "|---|---|---|---|---|---|---|"
for count in "${counts[@]}"; do
  dir=$work/sqlite-$count
  serve "$dir"; stop
  generate "$dir/sluice.db" "$count" "$work/seeded.json"
  serve "$dir"
  measure SQLite "$count" "$work/seeded.json"
  stop
  rm -rf "$dir"

  db=sluice_cf_$$_$count
  psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
  url="${pg_admin%/*}/$db"
  serve "$work/pg-$count" "$url"; stop
  fill_postgres "$url" "$count" "$work/seeded.json"
  serve "$work/pg-$count" "$url"
  measure PostgreSQL "$count" "$work/seeded.json"
  stop
  psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
  db=
done

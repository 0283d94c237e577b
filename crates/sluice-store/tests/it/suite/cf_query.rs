//! The Cloudforet query language over `cf_jobs`: every filter operator with the exact jobs it
//! matches, sorting, paging, `only`, `minimal`, `count_only`, keyword, and `stat`.

use serde_json::{json, Value};
use sluice_core::query::{Condition, Query, StatQuery};
use sluice_store::cloudforet::{insert_job, CfJobRow};
use sluice_store::query::{FieldKind, QueryField, QueryTable, CF_JOBS};
use sluice_store::{Error, Store};

use crate::support::TestDb;

/// 2024-01-02T00:00:00Z.
const T0: i64 = 1_704_153_600_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// The clock for timediff filters: 2024-02-12T00:00:00Z.
const NOW: i64 = T0 + 41 * DAY;

struct Job {
    id: &'static str,
    domain: &'static str,
    workspace: &'static str,
    account: &'static str,
    plugin: &'static str,
    status: &'static str,
    options: &'static str,
    error: Option<(&'static str, &'static str)>,
    created: i64,
    finished: Option<i64>,
}

const JOBS: [Job; 7] = [
    Job {
        id: "job-1",
        domain: "d1",
        workspace: "w1",
        account: "ta-1",
        plugin: "plugin-aws",
        status: "SUCCESS",
        options: r#"{"a":1}"#,
        error: None,
        created: T0,
        finished: Some(T0 + HOUR),
    },
    Job {
        id: "job-2",
        domain: "d1",
        workspace: "w1",
        account: "ta-1",
        plugin: "plugin-aws",
        status: "FAILURE",
        options: "{}",
        error: Some(("E_AUTH", "Access Denied: bad key")),
        created: T0 + DAY,
        finished: Some(T0 + DAY + HOUR),
    },
    Job {
        id: "job-3",
        domain: "d1",
        workspace: "w2",
        account: "ta-2",
        plugin: "plugin-gcp",
        status: "IN_PROGRESS",
        options: "{}",
        error: None,
        created: T0 + 2 * DAY,
        finished: None,
    },
    Job {
        id: "job-4",
        domain: "d1",
        workspace: "*",
        account: "ta-3",
        plugin: "plugin-azure",
        status: "PENDING",
        options: "{}",
        error: None,
        created: T0 + 3 * DAY,
        finished: None,
    },
    Job {
        id: "job-5",
        domain: "d1",
        workspace: "w2",
        account: "ta-2",
        plugin: "plugin-gcp",
        status: "SUCCESS",
        options: r#"{"b":[1,2]}"#,
        error: None,
        created: T0 + 31 * DAY,
        finished: Some(T0 + 31 * DAY + HOUR),
    },
    Job {
        id: "job-6",
        domain: "d1",
        workspace: "w1",
        account: "ta-1",
        plugin: "plugin-aws",
        status: "CANCELED",
        options: "{}",
        error: Some(("E_CANCEL", "canceled by user (50%_off) ÄRGER")),
        created: T0 + 40 * DAY,
        finished: Some(T0 + 40 * DAY + HOUR),
    },
    Job {
        id: "job-7",
        domain: "d2",
        workspace: "w9",
        account: "ta-9",
        plugin: "plugin-aws",
        status: "SUCCESS",
        options: "{}",
        error: None,
        created: T0 + 5 * DAY,
        finished: Some(T0 + 5 * DAY + HOUR),
    },
];

async fn insert_jobs(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    for job in &JOBS {
        let resource_group = if job.workspace == "*" { "DOMAIN" } else { "WORKSPACE" };
        let row = CfJobRow {
            job_id: job.id.into(),
            domain_id: job.domain.into(),
            workspace_id: job.workspace.into(),
            resource_group: resource_group.into(),
            trusted_account_id: job.account.into(),
            plugin_id: job.plugin.into(),
            status: job.status.into(),
            options: job.options.into(),
            error_code: job.error.map(|e| e.0.to_string()),
            error_message: job.error.map(|e| e.1.to_string()),
            created_at: job.created,
            updated_at: job.created + 5 * 60_000,
            finished_at: job.finished,
        };
        insert_job(&mut tx, &row).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn scope() -> Vec<Condition> {
    vec![Condition::eq("domain_id", "d1")]
}

async fn query(db: &TestDb, json: Value) -> Result<sluice_store::query::QueryPage, Error> {
    db.store.query_rows(&CF_JOBS, &scope(), &Query::from_json(&json).unwrap(), NOW).await
}

fn ids(rows: &[serde_json::Map<String, Value>]) -> Vec<String> {
    rows.iter().map(|r| r["job_id"].as_str().unwrap().to_string()).collect()
}

fn expect(numbers: &[u8]) -> Vec<String> {
    numbers.iter().map(|n| format!("job-{n}")).collect()
}

/// The jobs (by number, ascending) one filter condition matches.
async fn matching(db: &TestDb, condition: Value) -> Vec<String> {
    let page = query(db, json!({"filter": [condition], "sort": [{"key": "job_id"}]})).await.unwrap();
    ids(&page.rows)
}

fn query_code(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match result {
        Err(Error::Query(e)) => e.code(),
        other => panic!("expected a query error, got {other:?}"),
    }
}

pub async fn cf_query_every_operator_matches_exactly(db: &TestDb) {
    insert_jobs(&db.store).await;
    let cases: Vec<(Value, &[u8])> = vec![
        (json!({"k": "status", "v": "SUCCESS", "o": "eq"}), &[1, 5]),
        (json!({"key": "status", "value": "SUCCESS"}), &[1, 5]),
        (json!({"k": "status", "v": "x' OR '1'='1"}), &[]),
        (json!({"k": "status", "v": "success"}), &[]),
        (json!({"k": "error_code", "v": null, "o": "eq"}), &[1, 3, 4, 5]),
        (json!({"k": "status", "v": "SUCCESS", "o": "not"}), &[2, 3, 4, 6]),
        (json!({"k": "error_code", "v": "E_AUTH", "o": "not"}), &[1, 3, 4, 5, 6]),
        (json!({"k": "error_code", "v": null, "o": "not"}), &[2, 6]),
        (json!({"k": "job_id", "v": "job-3", "o": "lt"}), &[1, 2]),
        (json!({"k": "job_id", "v": "job-3", "o": "lte"}), &[1, 2, 3]),
        (json!({"k": "job_id", "v": "job-4", "o": "gt"}), &[5, 6]),
        (json!({"k": "job_id", "v": "job-4", "o": "gte"}), &[4, 5, 6]),
        (json!({"k": "created_at", "v": "2024-01-03T00:00:00.000Z", "o": "lt"}), &[1]),
        (json!({"k": "created_at", "v": "2024-01-03T00:00:00.000Z", "o": "lte"}), &[1, 2]),
        (json!({"k": "finished_at", "v": true, "o": "exists"}), &[1, 2, 5, 6]),
        (json!({"k": "finished_at", "v": false, "o": "exists"}), &[3, 4]),
        (json!({"k": "error_message", "v": "denied", "o": "contain"}), &[2]),
        (json!({"k": "error_message", "v": "d_n", "o": "contain"}), &[]),
        (json!({"k": "error_message", "v": "50%_", "o": "contain"}), &[6]),
        (json!({"k": "error_message", "v": "(50", "o": "contain"}), &[6]),
        (json!({"k": "error_message", "v": "DENIED", "o": "not_contain"}), &[1, 3, 4, 5, 6]),
        // A non-ASCII needle goes through the regex path, case-insensitive on both backends.
        (json!({"k": "error_message", "v": "ärger", "o": "contain"}), &[6]),
        (json!({"k": "error_message", "v": "ärger", "o": "not_contain"}), &[1, 2, 3, 4, 5]),
        (json!({"k": "status", "v": ["SUCCESS", "PENDING"], "o": "in"}), &[1, 4, 5]),
        (json!({"k": "error_code", "v": [null, "E_AUTH"], "o": "in"}), &[1, 2, 3, 4, 5]),
        (json!({"k": "status", "v": [], "o": "in"}), &[]),
        (json!({"k": "status", "v": ["SUCCESS", "PENDING"], "o": "not_in"}), &[2, 3, 6]),
        (json!({"k": "error_code", "v": ["E_AUTH"], "o": "not_in"}), &[1, 3, 4, 5, 6]),
        (json!({"k": "error_code", "v": ["E_AUTH", null], "o": "not_in"}), &[6]),
        (json!({"k": "plugin_id", "v": ["AWS", "azure"], "o": "contain_in"}), &[1, 2, 4, 6]),
        (json!({"k": "plugin_id", "v": ["aws"], "o": "not_contain_in"}), &[3, 4, 5]),
        // Cloudforet ORs the negations: a job not containing either value matches.
        (json!({"k": "plugin_id", "v": ["aws", "gcp"], "o": "not_contain_in"}), &[1, 2, 3, 4, 5, 6]),
        (json!({"k": "options", "v": {"a": 1}, "o": "match"}), &[]),
        (json!({"k": "status", "v": "^s", "o": "regex"}), &[1, 5]),
        (json!({"k": "job_id", "v": "job-[12]$", "o": "regex"}), &[1, 2]),
        (json!({"k": "status", "v": ["^fail", "^can"], "o": "regex_in"}), &[2, 6]),
        (json!({"k": "created_at", "v": "2024-01-04", "o": "datetime_gt"}), &[4, 5, 6]),
        (json!({"k": "created_at", "v": "2024-01-04", "o": "datetime_gte"}), &[3, 4, 5, 6]),
        (json!({"k": "created_at", "v": "2024-01-03T00:00:00Z", "o": "datetime_lt"}), &[1]),
        (json!({"k": "created_at", "v": "2024-01-03T09:00:00+09:00", "o": "datetime_lte"}), &[1, 2]),
        (json!({"k": "created_at", "v": "now-2d", "o": "timediff_gt"}), &[6]),
        (json!({"k": "created_at", "v": "now-1d", "o": "timediff_gte"}), &[6]),
        (json!({"k": "created_at", "v": "now-38d", "o": "timediff_lt"}), &[1, 2, 3]),
        (json!({"k": "created_at", "v": "now-38d", "o": "timediff_lte"}), &[1, 2, 3, 4]),
        (json!({"k": "created_at", "v": "now/m", "o": "timediff_gte"}), &[5, 6]),
    ];
    for (condition, expected) in cases {
        assert_eq!(matching(db, condition.clone()).await, expect(expected), "{condition}");
    }
}

pub async fn cf_query_filter_or_scope_and_keyword(db: &TestDb) {
    insert_jobs(&db.store).await;
    let either = json!([{"k": "status", "v": "PENDING"}, {"k": "plugin_id", "v": "plugin-gcp"}]);
    let page = query(db, json!({"filter_or": either, "sort": [{"key": "job_id"}]})).await.unwrap();
    assert_eq!(ids(&page.rows), expect(&[3, 4, 5]));
    let page = query(db, json!({"filter": [{"k": "status", "v": "IN_PROGRESS", "o": "not"}], "filter_or": either, "sort": [{"key": "job_id"}]})).await.unwrap();
    assert_eq!(ids(&page.rows), expect(&[4, 5]));
    let other = db
        .store
        .query_rows(&CF_JOBS, &[Condition::eq("domain_id", "d2")], &Query::default(), NOW)
        .await
        .unwrap();
    assert_eq!((ids(&other.rows), other.total_count), (vec!["job-7".to_string()], 1));
    let page = query(db, json!({"keyword": "success", "sort": [{"key": "job_id"}]})).await.unwrap();
    assert_eq!(ids(&page.rows), expect(&[1, 5]));
    let page = query(db, json!({"keyword": " job-1  pending ", "sort": [{"key": "job_id"}]})).await.unwrap();
    assert_eq!(ids(&page.rows), expect(&[1, 4]));
    let page = query(db, json!({"keyword": "   "})).await.unwrap();
    assert_eq!(page.total_count, 6);
}

pub async fn cf_query_sorts_pages_and_shapes_rows(db: &TestDb) {
    insert_jobs(&db.store).await;
    let sorted = |key: &str, desc: bool| json!({"sort": [{"key": key, "desc": desc}]});
    let cases: Vec<(Value, &[u8])> = vec![
        (json!({}), &[6, 5, 4, 3, 2, 1]),
        (sorted("status", false), &[6, 2, 3, 4, 1, 5]),
        (sorted("status", true), &[1, 5, 4, 3, 2, 6]),
        (sorted("finished_at", false), &[3, 4, 1, 2, 5, 6]),
        (sorted("finished_at", true), &[6, 5, 2, 1, 3, 4]),
        (sorted("error_code", true), &[6, 2, 1, 3, 4, 5]),
        (json!({"sort": [{"key": "plugin_id"}, {"key": "created_at", "desc": true}]}), &[6, 2, 1, 4, 5, 3]),
    ];
    for (json, expected) in cases {
        let page = query(db, json.clone()).await.unwrap();
        assert_eq!((ids(&page.rows), page.total_count), (expect(expected), 6), "{json}");
    }
    let page = query(db, json!({"page": {"start": 2, "limit": 2}})).await.unwrap();
    assert_eq!((ids(&page.rows), page.total_count), (expect(&[5, 4]), 6));
    let page = query(db, json!({"page": {"start": 6, "limit": 10}})).await.unwrap();
    assert_eq!((ids(&page.rows), page.total_count), (expect(&[1]), 6));
    let page = query(db, json!({"page": {"start": 7, "limit": 10}})).await.unwrap();
    assert_eq!((page.rows.len(), page.total_count), (0, 6));
    let page =
        query(db, json!({"count_only": true, "filter": [{"k": "status", "v": "SUCCESS"}]})).await.unwrap();
    assert_eq!((page.rows.len(), page.total_count), (0, 2));

    let page =
        query(db, json!({"only": ["job_id", "status", "job_id"], "page": {"limit": 1}})).await.unwrap();
    assert_eq!(Value::Object(page.rows[0].clone()), json!({"job_id": "job-6", "status": "CANCELED"}));
    let page = query(db, json!({"minimal": true, "filter": [{"k": "job_id", "v": "job-3"}]})).await.unwrap();
    assert_eq!(
        Value::Object(page.rows[0].clone()),
        json!({"job_id": "job-3", "trusted_account_id": "ta-2", "status": "IN_PROGRESS", "resource_group": "WORKSPACE",
               "created_at": "2024-01-04T00:00:00.000Z", "finished_at": null})
    );
    let page = query(db, json!({"filter": [{"k": "job_id", "v": "job-1"}]})).await.unwrap();
    assert_eq!(
        Value::Object(page.rows[0].clone()),
        json!({"job_id": "job-1", "status": "SUCCESS", "options": {"a": 1}, "resource_group": "WORKSPACE",
               "error_code": null, "error_message": null, "domain_id": "d1", "workspace_id": "w1",
               "trusted_account_id": "ta-1", "plugin_id": "plugin-aws", "created_at": "2024-01-02T00:00:00.000Z",
               "updated_at": "2024-01-02T00:05:00.000Z", "finished_at": "2024-01-02T01:00:00.000Z"})
    );
}

pub async fn cf_query_bad_input_is_a_typed_error(db: &TestDb) {
    insert_jobs(&db.store).await;
    let bad = [
        json!({"filter": [{"k": "nope", "v": "x"}]}),
        json!({"filter": [{"k": "status", "v": 5}]}),
        json!({"filter": [{"k": "status", "v": [1], "o": "in"}]}),
        json!({"filter": [{"k": "created_at", "v": "x", "o": "contain"}]}),
        json!({"filter": [{"k": "status", "v": "2024-01-01", "o": "datetime_gt"}]}),
        json!({"filter": [{"k": "created_at", "v": "not a date", "o": "gt"}]}),
        json!({"filter": [{"k": "options", "v": "x"}]}),
        json!({"filter": [{"k": "status", "v": [], "o": "contain_in"}]}),
        json!({"sort": [{"key": "nope"}]}),
        json!({"only": ["nope"]}),
    ];
    for json in bad {
        assert_eq!(query_code(query(db, json.clone()).await), "ERROR_DB_QUERY", "{json}");
    }
    let scope = [Condition::eq("tenant", "x")];
    assert_eq!(
        query_code(db.store.query_rows(&CF_JOBS, &scope, &Query::default(), NOW).await),
        "ERROR_DB_QUERY"
    );
}

async fn stat_on(db: &TestDb, table: &QueryTable, json: Value) -> Result<Value, Error> {
    db.store.stat(table, &scope(), &StatQuery::from_json(&json).unwrap(), NOW).await
}

async fn stat(db: &TestDb, json: Value) -> Value {
    stat_on(db, &CF_JOBS, json).await.unwrap()
}

/// cf_jobs with `created_at` as plain milliseconds, so `sum` and `average` have a number.
static CF_JOBS_MS: QueryTable = QueryTable {
    table: "cf_jobs",
    fields: &[
        QueryField::new("job_id", "job_id", FieldKind::Text),
        QueryField::new("domain_id", "domain_id", FieldKind::Text),
        QueryField::new("plugin_id", "plugin_id", FieldKind::Text),
        QueryField::new("status", "status", FieldKind::Text),
        QueryField::new("created_ms", "created_at", FieldKind::Int),
        QueryField::new("finished_at", "finished_at", FieldKind::Timestamp).nullable(),
    ],
    default_sort: &[("created_ms", true)],
    natural_order: &[("created_ms", false)],
    keyword_fields: &["job_id"],
    minimal_fields: &["job_id"],
    id_field: "job_id",
};

pub async fn cf_stat_groups_counts_and_sorts(db: &TestDb) {
    insert_jobs(&db.store).await;
    let by_status = json!({"group": {"keys": [{"key": "status", "name": "status"}], "fields": [{"operator": "count", "name": "count"}]}});
    let got = stat(db, json!({"aggregate": [by_status, {"sort": [{"key": "count", "desc": true}]}]})).await;
    assert_eq!(
        got,
        json!({"results": [
            {"status": "SUCCESS", "count": 2}, {"status": "CANCELED", "count": 1}, {"status": "FAILURE", "count": 1},
            {"status": "IN_PROGRESS", "count": 1}, {"status": "PENDING", "count": 1}
        ]})
    );
    let got = stat(db, json!({"aggregate": [by_status, {"sort": [{"key": "status", "desc": true}]}, {"skip": 1}, {"limit": 2}]})).await;
    assert_eq!(
        got,
        json!({"results": [{"status": "PENDING", "count": 1}, {"status": "IN_PROGRESS", "count": 1}]})
    );
    let got = stat(
        db,
        json!({"aggregate": [by_status, {"sort": [{"key": "status"}]}], "page": {"start": 2, "limit": 2}}),
    )
    .await;
    assert_eq!(
        got,
        json!({"results": [{"status": "FAILURE", "count": 1}, {"status": "IN_PROGRESS", "count": 1}], "total_count": 5})
    );
    let got = stat(db, json!({"aggregate": [by_status, {"count": {"name": "groups"}}]})).await;
    assert_eq!(got, json!({"results": [{"groups": 5}]}));
    let got = stat(db, json!({"aggregate": [{"count": {"name": "jobs"}}]})).await;
    assert_eq!(got, json!({"results": [{"jobs": 6}]}));
    let none = json!([{"k": "status", "v": "NOPE"}]);
    assert_eq!(
        stat(db, json!({"filter": none, "aggregate": [{"count": {"name": "jobs"}}]})).await,
        json!({"results": []})
    );
    let total = json!({"group": {"fields": [{"o": "count", "n": "n"}]}});
    assert_eq!(stat(db, json!({"aggregate": [total]})).await, json!({"results": [{"n": 6}]}));
    assert_eq!(stat(db, json!({"filter": none, "aggregate": [total]})).await, json!({"results": []}));
    let project = json!({"project": {"fields": [{"k": "count", "n": "jobs"}], "exclude_keys": true}});
    let got =
        stat(db, json!({"aggregate": [by_status, {"sort": [{"key": "status"}]}, {"limit": 2}, project]}))
            .await;
    assert_eq!(got, json!({"results": [{"jobs": 1}, {"jobs": 1}]}));
    let keep = json!({"project": {"fields": [{"k": "count", "n": "jobs"}]}});
    let got = stat(db, json!({"aggregate": [by_status, {"limit": 1}, keep]})).await;
    assert_eq!(got, json!({"results": [{"status": "CANCELED", "jobs": 1}]}));
}

pub async fn cf_stat_accumulators(db: &TestDb) {
    insert_jobs(&db.store).await;
    let fields = json!([
        {"o": "count", "n": "count"},
        {"o": "count", "n": "succeeded", "conditions": [{"k": "status", "v": "SUCCESS", "o": "eq"}]},
        {"k": "created_ms", "o": "sum", "n": "sum"},
        {"k": "created_ms", "o": "sum", "n": "sum_ok", "conditions": [{"k": "status", "v": "SUCCESS", "o": "eq"}]},
        {"k": "created_ms", "o": "average", "n": "avg"},
        {"k": "job_id", "o": "min", "n": "min"},
        {"k": "job_id", "o": "max", "n": "max"},
        {"k": "job_id", "o": "first", "n": "first"},
        {"k": "job_id", "o": "last", "n": "last"},
        {"k": "job_id", "o": "push", "n": "ids"},
        {"k": "status", "o": "add_to_set", "n": "statuses"},
        {"o": "push", "n": "rows", "fields": [{"k": "job_id", "n": "id"}, {"k": "finished_at", "n": "done"}]}
    ]);
    let group = json!({"group": {"keys": [{"k": "plugin_id", "n": "plugin"}], "fields": fields}});
    let got = stat_on(db, &CF_JOBS_MS, json!({"aggregate": [group]})).await.unwrap();
    let aws_avg = (3 * T0 + 41 * DAY) as f64 / 3.0;
    assert_eq!(
        got["results"][0],
        json!({"plugin": "plugin-aws", "count": 3, "succeeded": 1, "sum": 3 * T0 + 41 * DAY, "sum_ok": T0, "avg": aws_avg,
               "min": "job-1", "max": "job-6", "first": "job-1", "last": "job-6", "ids": ["job-1", "job-2", "job-6"],
               "statuses": ["CANCELED", "FAILURE", "SUCCESS"],
               "rows": [{"id": "job-1", "done": "2024-01-02T01:00:00Z"}, {"id": "job-2", "done": "2024-01-03T01:00:00Z"},
                        {"id": "job-6", "done": "2024-02-11T01:00:00Z"}]})
    );
    assert_eq!(got["results"][1]["plugin"], "plugin-azure");
    assert_eq!(got["results"][1]["succeeded"], 0);
    assert_eq!(got["results"][1]["sum_ok"], 0);
    assert_eq!(
        got["results"][2]["rows"],
        json!([{"id": "job-3", "done": null}, {"id": "job-5", "done": "2024-02-02T01:00:00Z"}])
    );
    assert_eq!(got["results"].as_array().unwrap().len(), 3);
    // A preceding sort decides first, last and push order.
    let group = json!({"group": {"keys": [{"k": "plugin_id", "n": "plugin"}], "fields": [
        {"k": "job_id", "o": "first", "n": "first"}, {"k": "job_id", "o": "last", "n": "last"},
        {"k": "job_id", "o": "push", "n": "ids"}, {"k": "finished_at", "o": "max", "n": "latest"}]}});
    let got = stat(db, json!({"aggregate": [{"sort": [{"key": "job_id", "desc": true}]}, group]})).await;
    assert_eq!(
        got["results"][0],
        json!({"plugin": "plugin-aws", "first": "job-6", "last": "job-1", "ids": ["job-6", "job-2", "job-1"],
               "latest": "2024-02-11T01:00:00.000Z"})
    );
}

pub async fn cf_stat_date_formats_distinct_and_raw_rows(db: &TestDb) {
    insert_jobs(&db.store).await;
    let by = |format: &str| json!({"aggregate": [{"group": {"keys": [{"k": "created_at", "n": "when", "date_format": format}], "fields": [{"o": "count", "n": "n"}]}}]});
    assert_eq!(
        stat(db, by("%Y-%m")).await,
        json!({"results": [{"when": "2024-01", "n": 4}, {"when": "2024-02", "n": 2}]})
    );
    assert_eq!(stat(db, by("month")).await, json!({"results": [{"when": 1, "n": 4}, {"when": 2, "n": 2}]}));
    assert_eq!(stat(db, by("year")).await, json!({"results": [{"when": 2024, "n": 6}]}));
    let got = stat(db, by("day")).await;
    assert_eq!(got["results"][0], json!({"when": 2, "n": 2}));
    let got = stat(db, by("%Y-%m-%dT%H:%M:%S.%L|%j%%")).await;
    assert_eq!(got["results"][0], json!({"when": "2024-01-02T00:00:00.000|002%", "n": 1}));
    assert_eq!(got["results"].as_array().unwrap().len(), 6);

    let got = stat(db, json!({"distinct": "status"})).await;
    assert_eq!(got, json!({"results": ["CANCELED", "FAILURE", "IN_PROGRESS", "PENDING", "SUCCESS"]}));
    let got = stat(db, json!({"distinct": "status", "page": {"start": 2, "limit": 2}})).await;
    assert_eq!(got, json!({"results": ["FAILURE", "IN_PROGRESS"], "total_count": 5}));
    assert_eq!(stat(db, json!({"distinct": "error_code"})).await, json!({"results": ["E_AUTH", "E_CANCEL"]}));
    let got =
        stat(db, json!({"distinct": "finished_at", "filter": [{"k": "plugin_id", "v": "plugin-gcp"}]})).await;
    assert_eq!(got, json!({"results": ["2024-02-02T01:00:00.000Z"]}));

    let got = stat(
        db,
        json!({"aggregate": [{"sort": [{"key": "job_id", "desc": true}]}, {"skip": 1}, {"limit": 2},
        {"project": {"fields": [{"k": "job_id", "n": "id"}, {"k": "options", "n": "options"}]}}]}),
    )
    .await;
    assert_eq!(
        got,
        json!({"results": [{"id": "job-5", "options": {"b": [1, 2]}}, {"id": "job-4", "options": {}}]})
    );
}

pub async fn cf_stat_bad_input_is_a_typed_error(db: &TestDb) {
    insert_jobs(&db.store).await;
    let count = json!([{"o": "count", "n": "n"}]);
    let bad = [
        json!({"aggregate": [{"group": {"keys": [{"k": "nope", "n": "x"}], "fields": count}}]}),
        json!({"aggregate": [{"group": {"fields": [{"k": "status", "o": "sum", "n": "s"}]}}]}),
        json!({"aggregate": [{"group": {"keys": [{"k": "status", "n": "s", "date_format": "%Y"}]}}]}),
        json!({"aggregate": [{"group": {"keys": [{"k": "created_at", "n": "s", "date_format": "%Q"}]}}]}),
        json!({"aggregate": [{"group": {"fields": count}}, {"group": {"fields": count}}]}),
        json!({"distinct": "nope"}),
        json!({"aggregate": [{"sort": [{"key": "nope"}]}, {"group": {"fields": count}}]}),
    ];
    for json in bad {
        assert_eq!(query_code(stat_on(db, &CF_JOBS, json.clone()).await), "ERROR_DB_QUERY", "{json}");
    }
}

//! Parsing tests for the Cloudforet query language.

use serde_json::json;

use super::*;

fn code(json: Value) -> &'static str {
    Query::from_json(&json).expect_err("should fail").code()
}

fn stat_code(json: Value) -> &'static str {
    StatQuery::from_json(&json).expect_err("should fail").code()
}

#[test]
fn aliases_and_defaults() {
    let q = Query::from_json(&json!({
        "filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}, {"key": "plugin_id", "value": "p"}],
        "filter_or": [{"key": "job_id", "value": ["a", "b"], "operator": "in"}],
        "sort": [{"key": "created_at", "desc": true}, {"key": "job_id"}],
        "page": {"start": 2, "limit": 5},
        "only": ["job_id"],
        "minimal": true,
        "count_only": false,
        "keyword": "x y"
    }))
    .unwrap();
    assert_eq!(q.filter[0], Condition::eq("status", "SUCCESS"));
    assert_eq!(q.filter[1], Condition::eq("plugin_id", "p"));
    assert_eq!(q.filter_or[0].operator, Operator::In);
    assert_eq!(q.filter_or[0].value, Operand::Many(vec![json!("a"), json!("b")]));
    assert_eq!(
        q.sort,
        vec![SortKey { key: "created_at".into(), desc: true }, SortKey { key: "job_id".into(), desc: false }]
    );
    assert_eq!(q.page, Some(Page { start: 2, limit: 5 }));
    assert_eq!(q.page.unwrap().window(), Some((1, 5)));
    assert_eq!(q.only, vec!["job_id".to_string()]);
    assert!(q.minimal && !q.count_only);
    assert_eq!(q.keyword.as_deref(), Some("x y"));
    assert_eq!(Query::from_json(&json!({})).unwrap(), Query::default());
}

#[test]
fn page_start_zero_is_one_and_limit_zero_does_not_page() {
    let q = Query::from_json(&json!({"page": {"start": 0, "limit": 0}})).unwrap();
    assert_eq!(q.page, Some(Page { start: 1, limit: 0 }));
    assert_eq!(q.page.unwrap().window(), None);
    let q = Query::from_json(&json!({"page": {"limit": "3"}})).unwrap();
    assert_eq!(q.page.unwrap().window(), Some((0, 3)));
}

#[test]
fn every_operator_parses() {
    for (name, op) in OPERATORS {
        let value = match op {
            _ if op.wants_list() => json!(["a"]),
            Operator::Exists => json!(true),
            Operator::Match => json!({"a": 1}),
            Operator::DatetimeGt | Operator::DatetimeLt | Operator::DatetimeGte | Operator::DatetimeLte => {
                json!("2024-01-02")
            }
            Operator::TimediffGt | Operator::TimediffLt | Operator::TimediffGte | Operator::TimediffLte => {
                json!("now-1d")
            }
            _ => json!("a"),
        };
        let c = Condition::from_json(&json!({"k": "x", "o": name, "v": value})).unwrap();
        assert_eq!(c.operator, op);
        assert_eq!(op.name(), name);
    }
}

#[test]
fn list_rules_follow_python_core() {
    for op in ["in", "not_in", "contain_in", "not_contain_in", "regex_in"] {
        assert_eq!(
            code(json!({"filter": [{"k": "x", "o": op, "v": "a"}]})),
            "ERROR_OPERATOR_LIST_VALUE_TYPE"
        );
    }
    for op in ["eq", "not", "lt", "contain", "regex", "datetime_gt", "timediff_lt", "exists", "match"] {
        assert_eq!(code(json!({"filter": [{"k": "x", "o": op, "v": ["a"]}]})), "ERROR_OPERATOR_VALUE_TYPE");
    }
    let err = Query::from_json(&json!({"filter": [{"k": "x", "o": "in", "v": "a"}]})).unwrap_err();
    assert!(err.to_string().starts_with("The value of 'in operator' must be a list type."), "{err}");
}

#[test]
fn value_type_errors() {
    assert_eq!(
        code(json!({"filter": [{"k": "x", "o": "exists", "v": "yes"}]})),
        "ERROR_OPERATOR_BOOLEAN_TYPE"
    );
    assert_eq!(
        code(json!({"filter": [{"k": "x", "o": "match", "v": "a"}]})),
        "ERROR_OPERATOR_DICT_VALUE_TYPE"
    );
    assert_eq!(code(json!({"filter": [{"k": "x", "o": "regex", "v": "("}]})), "ERROR_DB_QUERY");
    assert_eq!(code(json!({"filter": [{"k": "x", "o": "datetime_gt", "v": "yesterday"}]})), "ERROR_DB_QUERY");
    assert_eq!(code(json!({"filter": [{"k": "x", "o": "timediff_gt", "v": "now-1y"}]})), "ERROR_DB_QUERY");
    assert_eq!(code(json!({"filter": [{"k": "x", "o": "like", "v": "a"}]})), "ERROR_DB_QUERY");
    assert_eq!(code(json!({"filter": [{"v": "a"}]})), "ERROR_DB_QUERY");
    assert_eq!(code(json!({"filter": "status"})), "ERROR_INVALID_PARAMETER_TYPE");
    assert_eq!(code(json!({"minimal": "yes"})), "ERROR_INVALID_PARAMETER_TYPE");
    assert_eq!(code(json!({"page": {"limit": -1}})), "ERROR_INVALID_PARAMETER_TYPE");
    assert_eq!(code(json!({"sort": [{"desc": true}]})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(code(json!({"only": [1]})), "ERROR_INVALID_PARAMETER_TYPE");
    assert_eq!(code(json!({"unwind": {"path": "a"}})), "ERROR_DB_QUERY");
    assert_eq!(code(json!([])), "ERROR_INVALID_PARAMETER_TYPE");
}

#[test]
fn datetimes_parse_like_isoparse() {
    let at = |s: &str| parse_datetime(s);
    let base = 1_704_153_600_000; // 2024-01-02T00:00:00Z
    assert_eq!(at("2024-01-02"), Some(base));
    assert_eq!(at("20240102"), Some(base));
    assert_eq!(at("2024-01"), Some(base - 86_400_000));
    assert_eq!(at("2024"), Some(base - 86_400_000));
    assert_eq!(at("2024-01-02T03:04:05.678Z"), Some(base + 11_045_678));
    assert_eq!(at("2024-01-02 03:04:05"), Some(base + 11_045_000));
    assert_eq!(at("2024-01-02T03:04"), Some(base + 11_040_000));
    assert_eq!(at("2024-01-02T030405"), Some(base + 11_045_000));
    assert_eq!(at("2024-01-02T03:04:05+01:00"), Some(base + 11_045_000 - 3_600_000));
    assert_eq!(at("2024-01-02T03:04:05-0130"), Some(base + 11_045_000 + 5_400_000));
    assert_eq!(at("2024-01-02T03:04:05.1234567"), Some(base + 11_045_123));
    for bad in ["", "yesterday", "2024-13-01", "2024-01-02T25:00", "2024-1-2", "2024-01-02T03:04:05+1"] {
        assert_eq!(at(bad), None, "{bad}");
    }
    assert_eq!(format_datetime(base + 11_045_678), "2024-01-02T03:04:05.678Z");
    assert_eq!(format_datetime_seconds(base + 11_045_678), "2024-01-02T03:04:05Z");
}

#[test]
fn timediffs_parse_and_resolve() {
    let now = 1_704_171_845_678; // Tuesday 2024-01-02T05:04:05.678Z
    let day = 86_400_000;
    let r = |s: &str| TimeDiff::parse(s).map(|d| d.resolve(now));
    assert_eq!(r("now"), Some(now));
    assert_eq!(r(" now "), Some(now));
    assert_eq!(r("now-1d"), Some(now - day));
    assert_eq!(r("now + 2h"), Some(now + 7_200_000));
    assert_eq!(r("now-30m"), Some(now - 1_800_000));
    assert_eq!(r("now-10s"), Some(now - 10_000));
    assert_eq!(r("now-1w"), Some(now - 7 * day));
    assert_eq!(r("now/d"), Some(1_704_153_600_000));
    assert_eq!(r("now/w"), Some(1_704_153_600_000 - day));
    assert_eq!(r("now/m"), Some(1_704_067_200_000));
    assert_eq!(r("now/d-1d"), Some(1_704_153_600_000 - day));
    for bad in ["", "today", "now-1y", "now-d", "now*1d", "now-1.5d", "now/y"] {
        assert_eq!(TimeDiff::parse(bad), None, "{bad}");
    }
}

#[test]
fn stat_query_parses() {
    let q = StatQuery::from_json(&json!({
        "filter": [{"k": "status", "v": "SUCCESS"}],
        "aggregate": [
            {"group": {
                "keys": [{"k": "plugin_id", "n": "plugin"}, {"key": "created_at", "name": "day", "date_format": "%Y-%m-%d"}],
                "fields": [
                    {"o": "count", "n": "total", "conditions": [{"k": "status", "v": "FAILURE", "o": "eq"}]},
                    {"key": "job_id", "name": "ids", "operator": "push"},
                    {"name": "rows", "operator": "push", "fields": [{"k": "job_id", "n": "id"}]}
                ]
            }},
            {"sort": [{"key": "total", "desc": true}]},
            {"project": {"fields": [{"k": "total", "n": "t"}], "exclude_keys": true}},
            {"count": {"name": "n"}},
            {"skip": 1},
            {"limit": 2}
        ],
        "page": {"start": 1, "limit": 10}
    }))
    .unwrap();
    assert_eq!(q.aggregate.len(), 6);
    let Stage::Group(group) = &q.aggregate[0] else { panic!("group") };
    assert_eq!(group.keys[1].date_format.as_deref(), Some("%Y-%m-%d"));
    assert_eq!(group.fields[0].operator, GroupOperator::Count);
    assert_eq!(group.fields[0].conditions[0].operator, Operator::Eq);
    assert_eq!(group.fields[2].fields, vec![SubField { key: "job_id".into(), name: "id".into() }]);
    assert_eq!(q.aggregate[4], Stage::Skip(1));
    assert_eq!(q.aggregate[5], Stage::Limit(2));
    let q = StatQuery::from_json(&json!({"distinct": "status"})).unwrap();
    assert_eq!(q.distinct.as_deref(), Some("status"));
}

#[test]
fn stat_errors() {
    assert_eq!(stat_code(json!({})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(stat_code(json!({"aggregate": {}})), "ERROR_INVALID_PARAMETER_TYPE");
    assert_eq!(stat_code(json!({"aggregate": [{"group": {}}]})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(stat_code(json!({"aggregate": [{"bogus": {}}]})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(stat_code(json!({"aggregate": [{"count": {}}]})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(stat_code(json!({"aggregate": [{"unwind": {"path": "a"}}]})), "ERROR_DB_QUERY");
    assert_eq!(stat_code(json!({"aggregate": [{"group": {"keys": [{"k": "a"}]}}]})), "ERROR_DB_QUERY");
    assert_eq!(
        stat_code(json!({"aggregate": [{"group": {"fields": [{"n": "a", "o": "median", "k": "x"}]}}]})),
        "ERROR_DB_QUERY"
    );
    assert_eq!(
        stat_code(json!({"aggregate": [{"group": {"fields": [{"n": "a", "o": "sum"}]}}]})),
        "ERROR_DB_QUERY"
    );
    assert_eq!(stat_code(json!({"aggregate": [{"group": {"fields": [{"o": "count"}]}}]})), "ERROR_DB_QUERY");
    assert_eq!(
        stat_code(json!({"aggregate": [{"group": {"fields": [{"n": "a", "o": "push"}]}}]})),
        "ERROR_DB_QUERY"
    );
    let cond = json!([{"k": "status", "v": "x", "o": "contain"}]);
    assert_eq!(
        stat_code(
            json!({"aggregate": [{"group": {"fields": [{"n": "a", "o": "count", "conditions": cond}]}}]})
        ),
        "ERROR_DB_QUERY"
    );
    let cond = json!([{"k": "status", "o": "eq"}]);
    assert_eq!(
        stat_code(
            json!({"aggregate": [{"group": {"fields": [{"n": "a", "o": "count", "conditions": cond}]}}]})
        ),
        "ERROR_DB_QUERY"
    );
    let cond = json!([{"k": "status", "v": "x", "o": "eq"}]);
    assert_eq!(
        stat_code(
            json!({"aggregate": [{"group": {"fields": [{"n": "a", "k": "x", "o": "max", "conditions": cond}]}}]})
        ),
        "ERROR_DB_QUERY"
    );
    assert_eq!(stat_code(json!({"aggregate": [{"project": {"fields": []}}]})), "ERROR_REQUIRED_PARAMETER");
    assert_eq!(
        stat_code(json!({"aggregate": [{"project": {"fields": [{"k": "a", "n": "b", "o": "size"}]}}]})),
        "ERROR_DB_QUERY"
    );
    assert_eq!(stat_code(json!({"aggregate": [{"limit": "x"}]})), "ERROR_INVALID_PARAMETER_TYPE");
}

#[test]
fn condition_new_checks_values() {
    assert_eq!(
        Condition::new("domain_id", Operator::Eq, json!("d")).unwrap(),
        Condition::eq("domain_id", "d")
    );
    assert_eq!(
        Condition::new("w", Operator::In, json!("d")).unwrap_err().code(),
        "ERROR_OPERATOR_LIST_VALUE_TYPE"
    );
}

#[test]
fn proto3_json_camel_case_names_are_accepted() {
    let q = Query::from_json(&json!({"filterOr": [{"k": "a", "v": "b"}], "countOnly": true})).unwrap();
    assert_eq!((q.filter_or.len(), q.count_only), (1, true));
    let q = StatQuery::from_json(&json!({"aggregate": [
        {"group": {"keys": [{"k": "created_at", "n": "d", "dateFormat": "%Y"}]}},
        {"project": {"fields": [{"k": "d", "n": "d"}], "excludeKeys": true}}
    ]}))
    .unwrap();
    let Stage::Group(group) = &q.aggregate[0] else { panic!("group") };
    assert_eq!(group.keys[0].date_format.as_deref(), Some("%Y"));
    assert_eq!(
        q.aggregate[1],
        Stage::Project(Project {
            fields: vec![SubField { key: "d".into(), name: "d".into() }],
            exclude_keys: true
        })
    );
}

//! Property test of the AWS JSON entry point: signed requests with random targets and random,
//! garbled or mutated-valid bodies never get a 5xx, always get the AWS error shape, and leave
//! the server healthy. `SLUICE_FUZZ_CASES` sets the number of cases (default 300).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};
use sluice_core::clock::{Clock, SystemClock};

use crate::support::{Db, TestServer, ROOT_ID, ROOT_SECRET};

/// Every served operation (but the polls, which wait for work) and two modelled ones that are
/// not served yet.
fn operations() -> Vec<&'static str> {
    let mut all = sluice_aws::codepipeline::OPERATIONS.to_vec();
    let waits_for_work = ["PollForJobs", "PollForThirdPartyJobs"];
    all.extend(sluice_aws::codepipeline_runs::OPERATIONS.iter().filter(|op| !waits_for_work.contains(op)));
    all.extend(["RollbackStage", "OverrideStageCondition"]);
    all
}

fn valid_bodies() -> Vec<Value> {
    let action = |name: &str, category: &str, owner: &str, provider: &str| json!({"name": name, "actionTypeId": {"category": category, "owner": owner, "provider": provider, "version": "1"}});
    let mut source = action("Src", "Source", "AWS", "S3");
    source["configuration"] = json!({"S3Bucket": "b", "S3ObjectKey": "k"});
    source["outputArtifacts"] = json!([{"name": "code"}]);
    let mut build = action("Make", "Build", "Custom", "Fuzz");
    build["inputArtifacts"] = json!([{"name": "code"}]);
    build["configuration"] = json!({"Target": "all"});
    vec![
        json!({"pipeline": {
            "name": "fuzzed", "roleArn": "arn:aws:iam::123456789012:role/r",
            "artifactStore": {"type": "S3", "location": "bucket"},
            "stages": [{"name": "S", "actions": [source]}, {"name": "B", "actions": [build]}]
        }, "tags": [{"key": "k", "value": "v"}]}),
        json!({"category": "Build", "provider": "Fuzz", "version": "1",
               "configurationProperties": [{"name": "Target", "required": true, "key": true, "secret": false, "queryable": true}],
               "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
               "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}}),
        json!({"name": "fuzzed", "version": 1}),
        json!({"resourceArn": "arn:aws:codepipeline:us-east-1:123456789012:fuzzed", "tags": [{"key": "a", "value": "b"}]}),
        json!({"maxResults": 2, "nextToken": "abc"}),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        "[A-Za-z0-9*:/_-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out))
        }
        _ => {}
    }
}

fn mutated(base: &Value, choice: usize, replacement: Value) -> Value {
    let mut all = Vec::new();
    pointers(base, String::new(), &mut all);
    let mut body = base.clone();
    let target = &all[choice % all.len()];
    if target.is_empty() {
        return replacement;
    }
    if let Some(slot) = body.pointer_mut(target) {
        *slot = replacement;
    }
    body
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let bases = valid_bodies();
    let count = bases.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (0..count, any::<usize>(), arb_json())
            .prop_map(move |(b, at, v)| serde_json::to_vec(&mutated(&bases[b], at, v)).unwrap()),
    ]
}

fn arb_target() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(operations()).prop_map(|op| format!("CodePipeline_20150709.{op}")),
        1 => "[A-Za-z_.0-9]{0,40}",
    ]
}

async fn send(endpoint: &str, target: &str, body: Vec<u8>) -> (u16, Value) {
    let url: reqwest::Url = endpoint.parse().unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    let params = SigningParams {
        access_key_id: ROOT_ID,
        secret_access_key: ROOT_SECRET,
        security_token: None,
        region: "us-east-1",
        service: "codepipeline",
        now_millis: SystemClock.now_millis(),
    };
    let signed = sign_headers(&params, "POST", "/", None, &headers, &sha256_hex(&body), false);
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers.into_iter().skip(1).chain(signed) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[test]
fn aws_json_entry_point_never_answers_5xx() {
    let cases = std::env::var("SLUICE_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(Db::Sqlite));
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&(arb_target(), arb_body()), |(target, body)| {
            let (status, answer) = runtime.block_on(send(&server.endpoint, &target, body));
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{target}: {status} {answer}");
            if status >= 400 {
                prop_assert!(answer["__type"].is_string() && answer["message"].is_string(), "{answer}");
            }
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!("fuzz statuses: {statuses:?}");
    assert!(statuses.keys().any(|&s| s == 200), "some requests succeed: {statuses:?}");
    assert!(statuses.keys().any(|&s| s == 400), "some requests are refused: {statuses:?}");
    let health = runtime
        .block_on(async { reqwest::get(format!("{}/health", server.endpoint)).await.unwrap().status() });
    assert_eq!(health, 200);
    runtime.block_on(server.stop());
}

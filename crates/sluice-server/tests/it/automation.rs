//! SSM Automation through `aws-sdk-ssm`: an approval and a pause answered by signals, Stop,
//! refused signals and parameters, step-execution paging, and sleeps and step timeouts fired by
//! the sweeper against an injected clock, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ssm::types::{
    AutomationExecutionFilter, AutomationExecutionFilterKey, AutomationExecutionStatus, DocumentType,
    SignalType, StepExecutionFilter, StepExecutionFilterKey,
};
use serde_json::json;
use sluice_core::clock::{Clock, ManualClock, SystemClock};

use crate::support::{error_code, Db, TestServer};

const ROOT_ARN: &str = "arn:aws:iam::123456789012:root";

async fn create(client: &aws_sdk_ssm::Client, name: &str, steps: serde_json::Value) {
    let content = json!({"schemaVersion": "0.3", "mainSteps": steps}).to_string();
    client
        .create_document()
        .name(name)
        .document_type(DocumentType::Automation)
        .content(content)
        .send()
        .await
        .unwrap();
}

async fn status(client: &aws_sdk_ssm::Client, id: &str) -> AutomationExecutionStatus {
    let got = client.get_automation_execution().automation_execution_id(id).send().await.unwrap();
    got.automation_execution().unwrap().automation_execution_status().unwrap().clone()
}

async fn start(client: &aws_sdk_ssm::Client, name: &str) -> String {
    let started = client.start_automation_execution().document_name(name).send().await.unwrap();
    started.automation_execution_id().unwrap().to_string()
}

/// Waits (real time) until the execution has `wanted` status; the sweeper runs every 250 ms.
async fn settle(client: &aws_sdk_ssm::Client, id: &str, wanted: AutomationExecutionStatus) {
    for _ in 0..80 {
        if status(client, id).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never became {wanted:?}; it is {:?}", status(client, id).await);
}

async fn signals_drive_an_execution(db: Db) {
    let server = TestServer::start(db).await;
    let client = server.ssm();
    let steps = json!([
        {"name": "gate", "action": "aws:approve", "inputs": {"Approvers": [ROOT_ARN]}},
        {"name": "hold", "action": "aws:pause", "inputs": {}},
        {"name": "done", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}
    ]);
    create(&client, "gated", steps).await;
    let id = start(&client, "gated").await;
    assert_eq!(id.len(), 36);
    assert_eq!(status(&client, &id).await, AutomationExecutionStatus::Waiting);
    let waiting = AutomationExecutionFilter::builder()
        .key(AutomationExecutionFilterKey::ExecutionStatus)
        .values("Waiting")
        .build()
        .unwrap();
    let listed = client.describe_automation_executions().filters(waiting).send().await.unwrap();
    let ids: Vec<_> = listed
        .automation_execution_metadata_list()
        .iter()
        .filter_map(|m| m.automation_execution_id())
        .collect();
    assert_eq!(ids, [id.as_str()]);

    let wrong = client
        .send_automation_signal()
        .automation_execution_id(&id)
        .signal_type(SignalType::Resume)
        .send()
        .await;
    assert_eq!(error_code(&wrong.unwrap_err()), "InvalidAutomationSignalException");
    client
        .send_automation_signal()
        .automation_execution_id(&id)
        .signal_type(SignalType::Approve)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&client, &id).await, AutomationExecutionStatus::Waiting, "now the pause waits");
    client
        .send_automation_signal()
        .automation_execution_id(&id)
        .signal_type(SignalType::Resume)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&client, &id).await, AutomationExecutionStatus::Success);

    let steps = client
        .describe_automation_step_executions()
        .automation_execution_id(&id)
        .filters(
            StepExecutionFilter::builder()
                .key(StepExecutionFilterKey::Action)
                .values("aws:approve")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let approvals: Vec<_> = steps.step_executions().iter().map(|s| s.step_name().unwrap()).collect();
    assert_eq!(approvals, ["gate"]);

    let stopped = start(&client, "gated").await;
    client.stop_automation_execution().automation_execution_id(&stopped).send().await.unwrap();
    assert_eq!(status(&client, &stopped).await, AutomationExecutionStatus::Cancelled);
    let again = client.stop_automation_execution().automation_execution_id(&stopped).send().await;
    assert_eq!(error_code(&again.unwrap_err()), "InvalidAutomationStatusUpdateException");

    let unknown = client.get_automation_execution().automation_execution_id("0".repeat(36)).send().await;
    assert_eq!(error_code(&unknown.unwrap_err()), "AutomationExecutionNotFoundException");
    let bad = client
        .start_automation_execution()
        .document_name("gated")
        .parameters("Nope", vec!["x".into()])
        .send()
        .await;
    assert_eq!(error_code(&bad.unwrap_err()), "InvalidAutomationExecutionParametersException");
    server.stop().await;
}

#[tokio::test]
async fn signals_drive_an_execution_on_sqlite() {
    signals_drive_an_execution(Db::Sqlite).await;
}

#[tokio::test]
async fn signals_drive_an_execution_on_postgres() {
    signals_drive_an_execution(Db::Postgres).await;
}

/// A ten-minute sleep ends when the injected clock passes it, not before; a step timeout fires
/// the same way. (The clock starts at real time and moves less than SigV4's 15-minute skew, so
/// the SDK's signatures stay valid.)
#[tokio::test]
async fn timers_follow_the_clock() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_millis()));
    let server = TestServer::start_with_clock(Db::Postgres, clock.clone()).await;
    let client = server.ssm();
    create(&client, "nap", json!([{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT10M"}}]))
        .await;
    let steps = json!([{"name": "hold", "action": "aws:pause", "inputs": {}, "timeoutSeconds": 300}]);
    create(&client, "held", steps).await;
    let nap = start(&client, "nap").await;
    let held = start(&client, "held").await;

    clock.advance(299_000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(status(&client, &held).await, AutomationExecutionStatus::Waiting, "timed out early");
    clock.advance(300_000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(status(&client, &nap).await, AutomationExecutionStatus::Inprogress, "woke a second early");
    assert_eq!(status(&client, &held).await, AutomationExecutionStatus::Failed, "the 300 s timeout passed");
    let got = client.get_automation_execution().automation_execution_id(&held).send().await.unwrap();
    let step = &got.automation_execution().unwrap().step_executions()[0];
    assert_eq!(step.step_status(), Some(&AutomationExecutionStatus::Timedout));

    clock.advance(1_000);
    settle(&client, &nap, AutomationExecutionStatus::Success).await;
    server.stop().await;
}

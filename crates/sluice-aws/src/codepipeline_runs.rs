//! CodePipeline executions and the job-worker protocol on the wire: StartPipelineExecution,
//! StopPipelineExecution, RetryStageExecution, GetPipelineExecution, ListPipelineExecutions,
//! GetPipelineState, ListActionExecutions, Disable/EnableStageTransition, PollForJobs,
//! AcknowledgeJob, GetJobDetails, PutJobSuccessResult, PutJobFailureResult, PutApprovalResult,
//! and the third-party variants (PollForThirdPartyJobs, AcknowledgeThirdPartyJob,
//! GetThirdPartyJobDetails, PutThirdPartyJobSuccessResult, PutThirdPartyJobFailureResult) which
//! require the client token.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use sluice_engine::pipeline_jobs::{Approval, ArtifactLocation, JobSuccess, JobView};
use sluice_engine::stage_retry::RetryMode;
use sluice_engine::{Engine, Principal};
use sluice_store::executions::{ExecutionRow, StepRow};

use crate::codepipeline::{parse, timestamp, WireActionTypeId};
use crate::error::AwsError;

/// How long PollForJobs waits for a job before answering an empty list.
pub const POLL_WAIT: Duration = Duration::from_secs(1);

pub const OPERATIONS: &[&str] = &[
    "StartPipelineExecution",
    "StopPipelineExecution",
    "RetryStageExecution",
    "GetPipelineExecution",
    "ListPipelineExecutions",
    "GetPipelineState",
    "ListActionExecutions",
    "DisableStageTransition",
    "EnableStageTransition",
    "PollForJobs",
    "AcknowledgeJob",
    "GetJobDetails",
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "PutApprovalResult",
    "PollForThirdPartyJobs",
    "AcknowledgeThirdPartyJob",
    "GetThirdPartyJobDetails",
    "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult",
];

macro_rules! with_input {
    ($input:expr, |$typed:ident| $body:expr) => {
        match parse($input) {
            Ok($typed) => $body.await,
            Err(err) => Err(err),
        }
    };
}

/// Runs one operation of this module; None if the operation is not one of [`OPERATIONS`].
pub async fn call(
    engine: &Engine,
    principal: &Principal,
    operation: &str,
    input: Value,
) -> Option<Result<String, AwsError>> {
    let result = match operation {
        "StartPipelineExecution" => with_input!(input, |i| start(engine, principal, i)),
        "StopPipelineExecution" => with_input!(input, |i| stop(engine, principal, i)),
        "RetryStageExecution" => with_input!(input, |i| retry(engine, principal, i)),
        "GetPipelineExecution" => with_input!(input, |i| get_execution(engine, i)),
        "ListPipelineExecutions" => with_input!(input, |i| list_executions(engine, i)),
        "GetPipelineState" => with_input!(input, |i| state(engine, i)),
        "ListActionExecutions" => with_input!(input, |i| list_action_executions(engine, i)),
        "DisableStageTransition" => with_input!(input, |i| set_transition(engine, principal, i, false)),
        "EnableStageTransition" => with_input!(input, |i| set_transition(engine, principal, i, true)),
        "PollForJobs" => with_input!(input, |i| poll(engine, i)),
        "AcknowledgeJob" => with_input!(input, |i| acknowledge(engine, i)),
        "GetJobDetails" => with_input!(input, |i| job_details(engine, i)),
        "PutJobSuccessResult" => with_input!(input, |i| success(engine, i)),
        "PutJobFailureResult" => with_input!(input, |i| failure(engine, i)),
        "PutApprovalResult" => with_input!(input, |i| approval(engine, principal, i)),
        "PollForThirdPartyJobs" => with_input!(input, |i| poll_third_party(engine, i)),
        "AcknowledgeThirdPartyJob" => with_input!(input, |i| acknowledge_third_party(engine, i)),
        "GetThirdPartyJobDetails" => with_input!(input, |i| third_party_details(engine, i)),
        "PutThirdPartyJobSuccessResult" => with_input!(input, |i| third_party_success(engine, i)),
        "PutThirdPartyJobFailureResult" => with_input!(input, |i| third_party_failure(engine, i)),
        _ => return None,
    };
    Some(result)
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartInput {
    name: String,
    variables: Option<Vec<NameValue>>,
    client_request_token: Option<String>,
    source_revisions: Option<Vec<Value>>,
}

async fn start(engine: &Engine, principal: &Principal, input: StartInput) -> Result<String, AwsError> {
    if input.source_revisions.is_some_and(|r| !r.is_empty()) {
        return Err(AwsError::validation("sourceRevisions overrides are not supported by Sluice yet"));
    }
    let variables = input.variables.unwrap_or_default().into_iter().map(|v| (v.name, v.value)).collect();
    let id = engine
        .start_pipeline_execution(principal, &input.name, variables, input.client_request_token)
        .await?;
    Ok(json!({"pipelineExecutionId": id}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopInput {
    pipeline_name: String,
    pipeline_execution_id: String,
    abandon: Option<bool>,
}

async fn stop(engine: &Engine, principal: &Principal, input: StopInput) -> Result<String, AwsError> {
    let abandon = input.abandon.unwrap_or(false);
    engine
        .stop_pipeline_execution(principal, &input.pipeline_name, &input.pipeline_execution_id, abandon)
        .await?;
    Ok(json!({"pipelineExecutionId": input.pipeline_execution_id}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

async fn retry(engine: &Engine, principal: &Principal, input: RetryInput) -> Result<String, AwsError> {
    let mode = match input.retry_mode.as_str() {
        "FAILED_ACTIONS" => RetryMode::FailedActions,
        "ALL_ACTIONS" => RetryMode::AllActions,
        other => {
            return Err(AwsError::validation(format!(
                "retryMode {other} is not FAILED_ACTIONS or ALL_ACTIONS"
            )))
        }
    };
    let (pipeline, stage, id) = (&input.pipeline_name, &input.stage_name, &input.pipeline_execution_id);
    engine.retry_stage_execution(principal, pipeline, stage, id, mode).await?;
    Ok(json!({"pipelineExecutionId": input.pipeline_execution_id}).to_string())
}

fn data_of(row: &ExecutionRow) -> Value {
    serde_json::from_str(&row.data).unwrap_or_else(|_| json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetExecutionInput {
    pipeline_name: String,
    pipeline_execution_id: String,
}

async fn get_execution(engine: &Engine, input: GetExecutionInput) -> Result<String, AwsError> {
    let row = engine.pipeline_execution(&input.pipeline_name, &input.pipeline_execution_id).await?;
    let def = engine.pipeline(&input.pipeline_name, Some(row.definition_version)).await.ok();
    let mode = def.map(|d| d.meta.execution_mode).unwrap_or_else(|| "SUPERSEDED".into());
    let data = data_of(&row);
    let revisions: Vec<Value> = data["artifactRevisions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| json!({"name": r["name"], "revisionId": r["revisionId"], "created": timestamp(r["created"].as_i64().unwrap_or(0))}))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({"pipelineExecution": {
        "pipelineName": row.definition_name,
        "pipelineVersion": row.definition_version,
        "pipelineExecutionId": row.id,
        "status": row.status,
        "artifactRevisions": revisions,
        "variables": data["variables"].as_array().cloned().unwrap_or_default(),
        "trigger": data["trigger"],
        "executionMode": mode,
        "executionType": "STANDARD",
    }})
    .to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecutionsInput {
    pipeline_name: String,
    max_results: Option<usize>,
    next_token: Option<String>,
}

async fn list_executions(engine: &Engine, input: ListExecutionsInput) -> Result<String, AwsError> {
    let max = input.max_results.unwrap_or(100);
    let (page, next) =
        engine.list_pipeline_executions(&input.pipeline_name, input.next_token.as_deref(), max).await?;
    let summaries: Vec<Value> = page
        .iter()
        .map(|row| {
            json!({
                "pipelineExecutionId": row.id,
                "status": row.status,
                "startTime": timestamp(row.created_at),
                "lastUpdateTime": timestamp(row.updated_at),
                "trigger": data_of(row)["trigger"],
                "executionType": "STANDARD",
            })
        })
        .collect();
    let mut output = json!({"pipelineExecutionSummaries": summaries});
    if let Some(next) = next {
        output["nextToken"] = json!(next);
    }
    Ok(output.to_string())
}

#[derive(Deserialize)]
struct StateInput {
    name: String,
}

fn action_execution(step: &StepRow) -> Value {
    let data: Value = serde_json::from_str(&step.data).unwrap_or_else(|_| json!({}));
    let mut out = json!({
        "actionExecutionId": step.id,
        "status": step.status,
        "lastStatusChange": timestamp(step.finished_at.or(step.started_at).unwrap_or(0)),
    });
    for field in ["summary", "externalExecutionId", "percentComplete", "errorDetails", "token"] {
        let keep = field != "token" || step.status == "InProgress";
        if let (Some(value), true) = (data.get(field), keep) {
            out[field] = value.clone();
        }
    }
    if let Some(approver) = data.get("approver") {
        out["lastUpdatedBy"] = approver.clone();
    }
    out
}

async fn state(engine: &Engine, input: StateInput) -> Result<String, AwsError> {
    let view = engine.pipeline(&input.name, None).await?;
    let (def, stages) = engine.pipeline_state(&input.name).await?;
    let transitions = engine.stage_transitions(&input.name).await?;
    let stage_states: Vec<Value> = stages
        .iter()
        .map(|stage| {
            let actions: Vec<Value> = stage
                .actions
                .iter()
                .map(|(name, step)| {
                    let mut state = json!({"actionName": name});
                    if let Some(step) = step {
                        state["latestExecution"] = action_execution(step);
                        let data: Value = serde_json::from_str(&step.data).unwrap_or_default();
                        if let Some(revision) = data.get("revision").and_then(Value::as_str) {
                            state["currentRevision"] = json!({"revisionId": revision, "revisionChangeId": revision, "created": timestamp(step.finished_at.unwrap_or(0))});
                        }
                    }
                    state
                })
                .collect();
            let inbound = match transitions.iter().find(|t| t.stage == stage.stage_name) {
                Some(t) => {
                    let mut state = json!({"enabled": t.enabled, "lastChangedBy": t.changed_by, "lastChangedAt": timestamp(t.changed_at)});
                    if let Some(reason) = &t.reason {
                        state["disabledReason"] = json!(reason);
                    }
                    state
                }
                None => json!({"enabled": true}),
            };
            let mut out = json!({"stageName": stage.stage_name, "inboundTransitionState": inbound, "actionStates": actions});
            if let Some((id, status)) = &stage.latest {
                out["latestExecution"] = json!({"pipelineExecutionId": id, "status": status});
            }
            if stage.retries > 0 {
                out["retryStageMetadata"] =
                    json!({"manualStageRetryAttempt": stage.retries, "latestRetryTrigger": "ManualStageRetry"});
            }
            out
        })
        .collect();
    Ok(json!({
        "pipelineName": def.name,
        "pipelineVersion": def.version,
        "stageStates": stage_states,
        "created": timestamp(view.meta.created_at),
        "updated": timestamp(view.meta.updated_at),
    })
    .to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollInput {
    action_type_id: WireActionTypeId,
    max_batch_size: Option<i64>,
    query_param: Option<BTreeMap<String, String>>,
}

fn wire_artifact(a: &ArtifactLocation) -> Value {
    let mut out = json!({"name": a.name, "location": {"type": "S3", "s3Location": {"bucketName": a.bucket, "objectKey": a.key}}});
    if let Some(revision) = &a.revision {
        out["revision"] = json!(revision);
    }
    out
}

fn job_data(job: &JobView) -> Value {
    let id = &job.action_type_id;
    let mut data = json!({
        "actionTypeId": {"category": id.category.as_str(), "owner": id.owner.as_str(), "provider": id.provider, "version": id.version},
        "actionConfiguration": {"configuration": job.configuration},
        "pipelineContext": {
            "pipelineName": job.pipeline_name,
            "stage": {"name": job.stage_name},
            "action": {"name": job.action_name, "actionExecutionId": job.action_execution_id},
            "pipelineArn": job.pipeline_arn,
            "pipelineExecutionId": job.pipeline_execution_id,
        },
        "inputArtifacts": job.input_artifacts.iter().map(wire_artifact).collect::<Vec<_>>(),
        "outputArtifacts": job.output_artifacts.iter().map(wire_artifact).collect::<Vec<_>>(),
    });
    if let Some(credentials) = &job.credentials {
        data["artifactCredentials"] = json!({
            "accessKeyId": credentials.access_key_id,
            "secretAccessKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        });
    }
    if let Some(token) = &job.continuation_token {
        data["continuationToken"] = json!(token);
    }
    data
}

async fn poll(engine: &Engine, input: PollInput) -> Result<String, AwsError> {
    let type_id = input.action_type_id.to_core()?;
    let queryable = engine.polled_queryable_property(&type_id).await?;
    let params = input.query_param.unwrap_or_default();
    let query = match (&queryable, params.len()) {
        (None, 0) => None,
        (Some(name), 1) => Some((
            name.clone(),
            params.get(name).cloned().ok_or_else(|| {
                AwsError::validation(format!(
                    "queryParam must name the action type's queryable property {name}"
                ))
            })?,
        )),
        (Some(name), _) => {
            return Err(AwsError::validation(format!(
                "queryParam must give exactly the queryable property {name}"
            )))
        }
        (None, _) => {
            return Err(AwsError::validation(
                "This action type has no queryable property; leave queryParam empty",
            ))
        }
    };
    let max = input.max_batch_size.unwrap_or(1);
    let jobs = engine.poll_jobs(&type_id, query, max, POLL_WAIT).await?;
    let account = engine.account().account_id.clone();
    let wire: Vec<Value> = jobs
        .iter()
        .map(|job| json!({"id": job.id, "data": job_data(job), "nonce": job.nonce, "accountId": account}))
        .collect();
    Ok(json!({"jobs": wire}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckInput {
    job_id: String,
    nonce: String,
}

async fn acknowledge(engine: &Engine, input: AckInput) -> Result<String, AwsError> {
    let status = engine.acknowledge_job(&input.job_id, &input.nonce).await?;
    Ok(json!({"status": status.as_str()}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobIdInput {
    job_id: String,
}

async fn job_details(engine: &Engine, input: JobIdInput) -> Result<String, AwsError> {
    let job = engine.job_details(&input.job_id).await?;
    let account = engine.account().account_id.clone();
    Ok(json!({"jobDetails": {"id": job.id, "data": job_data(&job), "accountId": account}}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireExecutionDetails {
    summary: Option<String>,
    external_execution_id: Option<String>,
    percent_complete: Option<i64>,
}

#[derive(Deserialize)]
struct WireRevision {
    revision: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuccessInput {
    job_id: String,
    current_revision: Option<WireRevision>,
    continuation_token: Option<String>,
    execution_details: Option<WireExecutionDetails>,
    output_variables: Option<BTreeMap<String, String>>,
}

fn job_success(
    details: Option<WireExecutionDetails>,
    revision: Option<WireRevision>,
    continuation_token: Option<String>,
    output_variables: Option<BTreeMap<String, String>>,
) -> JobSuccess {
    let details = details.unwrap_or(WireExecutionDetails {
        summary: None,
        external_execution_id: None,
        percent_complete: None,
    });
    JobSuccess {
        continuation_token,
        summary: details.summary,
        external_execution_id: details.external_execution_id,
        percent_complete: details.percent_complete,
        revision: revision.map(|r| r.revision),
        output_variables: output_variables.unwrap_or_default(),
    }
}

async fn success(engine: &Engine, input: SuccessInput) -> Result<String, AwsError> {
    let outcome = job_success(
        input.execution_details,
        input.current_revision,
        input.continuation_token,
        input.output_variables,
    );
    engine.put_job_success(&input.job_id, outcome).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFailure {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureInput {
    job_id: String,
    failure_details: WireFailure,
}

async fn failure(engine: &Engine, input: FailureInput) -> Result<String, AwsError> {
    engine
        .put_job_failure(&input.job_id, &input.failure_details.kind, &input.failure_details.message)
        .await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
struct WireApproval {
    summary: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: WireApproval,
    token: String,
}

async fn approval(engine: &Engine, principal: &Principal, input: ApprovalInput) -> Result<String, AwsError> {
    let approval = Approval {
        pipeline: &input.pipeline_name,
        stage: &input.stage_name,
        action: &input.action_name,
        token: &input.token,
        approved: input.result.status == "Approved",
        summary: &input.result.summary,
    };
    let at = engine.put_approval_result(principal, &approval).await?;
    Ok(json!({"approvedAt": timestamp(at)}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollThirdPartyInput {
    action_type_id: WireActionTypeId,
    max_batch_size: Option<i64>,
}

async fn poll_third_party(engine: &Engine, input: PollThirdPartyInput) -> Result<String, AwsError> {
    let type_id = input.action_type_id.to_core()?;
    let jobs = engine.poll_third_party_jobs(&type_id, input.max_batch_size.unwrap_or(1), POLL_WAIT).await?;
    let wire: Vec<Value> =
        jobs.into_iter().map(|(client_id, job_id)| json!({"clientId": client_id, "jobId": job_id})).collect();
    Ok(json!({"jobs": wire}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyAckInput {
    job_id: String,
    nonce: String,
    client_token: String,
}

async fn acknowledge_third_party(engine: &Engine, input: ThirdPartyAckInput) -> Result<String, AwsError> {
    let status = engine.acknowledge_third_party_job(&input.job_id, &input.nonce, &input.client_token).await?;
    Ok(json!({"status": status.as_str()}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyJobInput {
    job_id: String,
    client_token: String,
}

async fn third_party_details(engine: &Engine, input: ThirdPartyJobInput) -> Result<String, AwsError> {
    let job = engine.third_party_job_details(&input.job_id, &input.client_token).await?;
    Ok(json!({"jobDetails": {"id": job.id, "data": job_data(&job), "nonce": job.nonce}}).to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartySuccessInput {
    job_id: String,
    client_token: String,
    current_revision: Option<WireRevision>,
    continuation_token: Option<String>,
    execution_details: Option<WireExecutionDetails>,
}

async fn third_party_success(engine: &Engine, input: ThirdPartySuccessInput) -> Result<String, AwsError> {
    let outcome =
        job_success(input.execution_details, input.current_revision, input.continuation_token, None);
    engine.put_third_party_success(&input.job_id, &input.client_token, outcome).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyFailureInput {
    job_id: String,
    client_token: String,
    failure_details: WireFailure,
}

async fn third_party_failure(engine: &Engine, input: ThirdPartyFailureInput) -> Result<String, AwsError> {
    let failure = &input.failure_details;
    engine
        .put_third_party_failure(&input.job_id, &input.client_token, &failure.kind, &failure.message)
        .await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionExecutionFilter {
    pipeline_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListActionExecutionsInput {
    pipeline_name: String,
    filter: Option<ActionExecutionFilter>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

fn artifact_details(list: &Value) -> Vec<Value> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|a| json!({"name": a["name"], "s3location": {"bucket": a["bucket"], "key": a["key"]}}))
                .collect()
        })
        .unwrap_or_default()
}

async fn list_action_executions(
    engine: &Engine,
    input: ListActionExecutionsInput,
) -> Result<String, AwsError> {
    let execution = input.filter.and_then(|f| f.pipeline_execution_id);
    let max = input.max_results.unwrap_or(100);
    let (page, next) = engine
        .list_action_executions(&input.pipeline_name, execution.as_deref(), input.next_token.as_deref(), max)
        .await?;
    let details: Vec<Value> = page
        .iter()
        .map(|entry| {
            let step = &entry.step;
            let data: Value = serde_json::from_str(&step.data).unwrap_or_else(|_| json!({}));
            let mut result = json!({});
            for (from, to) in [
                ("externalExecutionId", "externalExecutionId"),
                ("summary", "externalExecutionSummary"),
                ("errorDetails", "errorDetails"),
            ] {
                if let Some(value) = data.get(from) {
                    result[to] = value.clone();
                }
            }
            json!({
                "pipelineExecutionId": step.execution_id,
                "actionExecutionId": step.id,
                "pipelineVersion": entry.definition_version,
                "stageName": data["stage"],
                "actionName": step.name,
                "startTime": timestamp(step.started_at.unwrap_or(0)),
                "lastUpdateTime": timestamp(step.finished_at.or(step.started_at).unwrap_or(0)),
                "status": step.status,
                "input": {
                    "actionTypeId": data["actionTypeId"],
                    "configuration": data["configuration"],
                    "resolvedConfiguration": data["configuration"],
                    "inputArtifacts": artifact_details(&data["inputArtifacts"]),
                },
                "output": {
                    "outputArtifacts": artifact_details(&data["outputArtifacts"]),
                    "executionResult": result,
                    "outputVariables": data.get("outputVariables").cloned().unwrap_or_else(|| json!({})),
                },
            })
        })
        .collect();
    let mut output = json!({"actionExecutionDetails": details});
    if let Some(next) = next {
        output["nextToken"] = json!(next);
    }
    Ok(output.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    reason: Option<String>,
}

async fn set_transition(
    engine: &Engine,
    principal: &Principal,
    input: TransitionInput,
    enabled: bool,
) -> Result<String, AwsError> {
    let outbound = input.transition_type == "Outbound";
    engine
        .set_stage_transition(
            principal,
            &input.pipeline_name,
            &input.stage_name,
            outbound,
            enabled,
            input.reason,
        )
        .await?;
    Ok("{}".into())
}

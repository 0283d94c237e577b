//! The native admin API (`/admin/v1/*`): JSON bodies, SigV4 with signing name `sluice`, errors
//! in the AWS JSON shape. Used by the `sluice` operator commands.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sluice_aws::sigv4::{sha256_hex, RequestParts};
use sluice_aws::AwsError;
use sluice_engine::Principal;

use crate::bootstrap::App;
use crate::http::{error_response, labelled, read};

/// Reads, authenticates and answers one admin call; `work` gets the principal and JSON body.
async fn admin_call<F, Fut>(app: &App, request: Request, work: F) -> Response
where
    F: FnOnce(Principal, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, AwsError>>,
{
    let (parts, body) = match read(app, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let result = async {
        let principal = authenticate(app, &parts, &body).await?;
        let input: Value = serde_json::from_slice(&body)
            .map_err(|_| AwsError::serialization("The request body must be a JSON object"))?;
        work(principal, input).await
    };
    match result.await {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(err) => error_response(&err),
    }
}

async fn authenticate(
    app: &App,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Principal, AwsError> {
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_sha256: &sha256_hex(body),
    };
    sluice_aws::auth::authenticate(app.engine(), &request, "sluice").await
}

/// `POST /admin/v1/keys` `{"name"}` → `{"accessKeyId","secretAccessKey"}` (root only).
pub async fn create_key(State(app): State<App>, request: Request) -> Response {
    let engine = app.engine().clone();
    let response = admin_call(&app, request, move |principal, input| async move {
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::validation("Member name is required"))?;
        let credentials = engine.create_user_key(&principal, name).await?;
        Ok(json!({"accessKeyId": credentials.access_key_id, "secretAccessKey": credentials.secret_access_key}))
    })
    .await;
    labelled(response, "admin.CreateKey")
}

/// `POST /admin/v1/action-types/third-party` with CreateCustomActionType's input shape →
/// `{"clientId","clientToken"}` (root only).
pub async fn register_third_party(State(app): State<App>, request: Request) -> Response {
    let handler_app = app.clone();
    let response = admin_call(&app, request, move |principal, input| async move {
        let model = handler_app.aws().codepipeline_model();
        let action_type = sluice_aws::codepipeline::third_party_declaration(model, input)?;
        let (_, credentials) =
            handler_app.engine().register_third_party_action_type(&principal, action_type).await?;
        Ok(json!({"clientId": credentials.client_id, "clientToken": credentials.client_token}))
    })
    .await;
    labelled(response, "admin.RegisterThirdPartyActionType")
}

/// `POST /admin/v1/automation-jobs/{verb}`: the protocol of `sluice worker --automation`.
/// `poll` `{"maxJobs","waitSeconds"}` → `{"jobs":[…]}`; `acknowledge` `{"jobId","nonce"}`;
/// `status` `{"jobId"}` → `{"status"}`; `complete` `{"jobId","nonce","result"}` or
/// `{"jobId","nonce","failure"}`.
pub async fn automation_jobs(
    State(app): State<App>,
    axum::extract::Path(verb): axum::extract::Path<String>,
    request: Request,
) -> Response {
    let engine = app.engine().clone();
    let label = format!("admin.AutomationJobs.{verb}");
    let response = admin_call(&app, request, move |principal, input| async move {
        match verb.as_str() {
            "poll" => poll_automation_jobs(&engine, &principal, &input).await,
            "acknowledge" => {
                let (id, nonce) = (text(&input, "jobId")?, text(&input, "nonce")?);
                engine.acknowledge_automation_job(&principal, id, nonce).await?;
                Ok(json!({}))
            }
            "status" => {
                let status = engine.automation_job_status(&principal, text(&input, "jobId")?).await?;
                Ok(json!({"status": status.as_str()}))
            }
            "complete" => complete_automation_job(&engine, &principal, &input).await,
            other => Err(AwsError::new(
                404,
                "UnknownOperationException",
                format!("No automation job verb {other}"),
            )),
        }
    })
    .await;
    labelled(response, &label)
}

/// `POST /admin/v1/pipeline-jobs/progress` `{"jobId","nonce","summary"?,"percentComplete"?}`:
/// a running CodePipeline job's progress, as `sluice worker` reports it
/// ([`sluice_engine::Engine::put_job_progress`]).
pub async fn pipeline_job_progress(State(app): State<App>, request: Request) -> Response {
    let engine = app.engine().clone();
    let response = admin_call(&app, request, move |_principal, input| async move {
        let (id, nonce) = (text(&input, "jobId")?, text(&input, "nonce")?);
        let progress = job_progress(&input)?;
        engine.put_job_progress(id, nonce, &progress).await?;
        Ok(json!({}))
    })
    .await;
    labelled(response, "admin.PutJobProgress")
}

/// A progress report's fields, within CodePipeline's bounds for execution details (a summary
/// of at most 2048 characters, a percentage from 0 to 100).
fn job_progress(input: &Value) -> Result<sluice_engine::pipeline_jobs::JobProgress, AwsError> {
    let summary = match input.get("summary") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if (1..=2048).contains(&s.chars().count()) => Some(s.clone()),
        Some(_) => return Err(AwsError::validation("summary must be a string of 1 to 2048 characters")),
    };
    let percent_complete =
        match input.get("percentComplete") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().filter(|p| (0..=100).contains(p)).ok_or_else(|| {
                AwsError::validation("percentComplete must be a whole number from 0 to 100")
            })?),
        };
    if summary.is_none() && percent_complete.is_none() {
        return Err(AwsError::validation("Give summary, percentComplete or both"));
    }
    Ok(sluice_engine::pipeline_jobs::JobProgress { summary, percent_complete })
}

fn text<'a>(input: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| AwsError::validation(format!("Member {key} is required")))
}

async fn poll_automation_jobs(
    engine: &sluice_engine::Engine,
    principal: &Principal,
    input: &Value,
) -> Result<Value, AwsError> {
    let max = input.get("maxJobs").map(|v| v.as_i64().filter(|n| (1..=10).contains(n)));
    let max = max.unwrap_or(Some(1)).ok_or_else(|| AwsError::validation("maxJobs must be 1 to 10"))?;
    let wait = input.get("waitSeconds").map(|v| v.as_u64().filter(|s| *s <= 20));
    let wait = wait.unwrap_or(Some(0)).ok_or_else(|| AwsError::validation("waitSeconds must be 0 to 20"))?;
    let jobs = engine.poll_automation_jobs(principal, max, std::time::Duration::from_secs(wait)).await?;
    let jobs: Vec<Value> = jobs
        .into_iter()
        .map(|job| {
            json!({
                "jobId": job.id,
                "nonce": job.nonce,
                "executionId": job.execution_id,
                "stepName": job.step_name,
                "action": job.action,
                "inputs": job.inputs,
                "timeoutSeconds": job.timeout_seconds,
            })
        })
        .collect();
    Ok(json!({"jobs": jobs}))
}

async fn complete_automation_job(
    engine: &sluice_engine::Engine,
    principal: &Principal,
    input: &Value,
) -> Result<Value, AwsError> {
    use sluice_engine::automation::jobs::JobResult;
    let (id, nonce) = (text(input, "jobId")?, text(input, "nonce")?);
    let result = match (input.get("result"), input.get("failure").and_then(Value::as_str)) {
        (Some(result), None) if result.is_object() => JobResult::Success(result.clone()),
        (None, Some(failure)) => JobResult::Failure(failure.chars().take(4000).collect()),
        _ => return Err(AwsError::validation("Give either a result object or a failure message")),
    };
    engine.complete_automation_job(principal, id, nonce, result).await?;
    Ok(json!({}))
}

/// Only the root principal may mint Cloudforet tokens and register plugins.
fn require_root(principal: &Principal) -> Result<(), AwsError> {
    if principal.is_root {
        Ok(())
    } else {
        Err(AwsError::from(sluice_engine::Error::AccessDenied("Only the root principal may do this".into())))
    }
}

/// `POST /admin/v1/cloudforet/tokens` `{"role","domain_id","workspace_id"?,"expires_in"?}` →
/// `{"token"}` (root only).
pub async fn cloudforet_token(State(app): State<App>, request: Request) -> Response {
    let handler_app = app.clone();
    let response = admin_call(&app, request, move |principal, input| async move {
        require_root(&principal)?;
        let text = |key: &str| input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let role = text("role").and_then(sluice_cloudforet::auth::Role::parse).ok_or_else(|| {
            AwsError::validation(
                "role must be DOMAIN_ADMIN, WORKSPACE_OWNER, WORKSPACE_MEMBER or SYSTEM_TOKEN",
            )
        })?;
        let domain_id = text("domain_id").ok_or_else(|| AwsError::validation("domain_id is required"))?;
        let workspace_id = text("workspace_id").map(str::to_string);
        if role.is_workspace() && workspace_id.is_none() {
            return Err(AwsError::validation("a workspace role needs workspace_id"));
        }
        let ttl = input.get("expires_in").and_then(Value::as_i64).unwrap_or(24 * 3600);
        if !(1..=366 * 24 * 3600).contains(&ttl) {
            return Err(AwsError::validation("expires_in must be between 1 second and 366 days"));
        }
        let caller = sluice_cloudforet::auth::Caller { domain_id: domain_id.to_string(), workspace_id, role };
        Ok(json!({"token": handler_app.cloudforet().mint_token(&caller, ttl)}))
    })
    .await;
    labelled(response, "admin.CloudforetToken")
}

/// `POST /admin/v1/cloudforet/plugins` `{"plugin_id","endpoint"}` registers (or re-points) an
/// account-collector plugin (root only).
pub async fn cloudforet_plugin(State(app): State<App>, request: Request) -> Response {
    let engine = app.engine().clone();
    let response = admin_call(&app, request, move |principal, input| async move {
        require_root(&principal)?;
        let text = |key: &str| input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let plugin_id = text("plugin_id").ok_or_else(|| AwsError::validation("plugin_id is required"))?;
        let endpoint = text("endpoint").ok_or_else(|| AwsError::validation("endpoint is required"))?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(AwsError::validation("endpoint must be an http:// or https:// URL"));
        }
        engine.cf_register_plugin(plugin_id, endpoint).await?;
        Ok(json!({"plugin_id": plugin_id, "endpoint": endpoint}))
    })
    .await;
    labelled(response, "admin.RegisterCloudforetPlugin")
}

//! The Job service: get, list (JobsQuery), delete and stat over `cf_jobs`, scoped by the
//! caller's token. Workspace roles see their workspace's jobs and the domain's (`*`) on get and
//! list, only their own on stat and delete.

use serde_json::{json, Value};
use sluice_core::query::{Condition, Operand, Operator, Query, StatQuery};
use sluice_store::cloudforet::CfJobRow;
use sluice_store::query::CF_JOBS;

use crate::auth::{Caller, Role};
use crate::error::{CfError, Result};
use crate::{optional, required, timestamp, Cloudforet};

const READERS: &[Role] = &[Role::DomainAdmin, Role::WorkspaceOwner, Role::WorkspaceMember];
const WRITERS: &[Role] = &[Role::DomainAdmin, Role::WorkspaceOwner];

pub(crate) async fn call(cf: &Cloudforet, caller: &Caller, verb: &str, input: Value) -> Result<Value> {
    match verb {
        "get" => {
            caller.require(READERS)?;
            let job = visible_job(cf, caller, required(&input, "job_id")?, true).await?;
            Ok(job_info(&job))
        }
        "list" => {
            caller.require(READERS)?;
            list(cf, caller, &input).await
        }
        "delete" => {
            caller.require(WRITERS)?;
            let job = visible_job(cf, caller, required(&input, "job_id")?, false).await?;
            cf.engine().cf_delete_job(&job.domain_id, &job.job_id, &caller.actor()).await?;
            Ok(json!({}))
        }
        "stat" => {
            caller.require(READERS)?;
            let query =
                StatQuery::from_json(input.get("query").unwrap_or(&json!({}))).map_err(query_error)?;
            let scope = scope(caller, false);
            Ok(cf
                .engine()
                .store()
                .stat(&CF_JOBS, &scope, &query, cf.engine().now_millis())
                .await
                .map_err(store_query_error)?)
        }
        other => Err(CfError::unknown_operation(&format!("Job.{other}"))),
    }
}

/// A job the caller may see: same domain, and for workspace roles their workspace (plus
/// domain-level jobs when `with_domain_jobs`).
async fn visible_job(
    cf: &Cloudforet,
    caller: &Caller,
    job_id: &str,
    with_domain_jobs: bool,
) -> Result<CfJobRow> {
    let job = cf.engine().store().cf_job(&caller.domain_id, job_id).await?;
    let visible = |job: &CfJobRow| match caller.own_workspace() {
        None => true,
        Some(own) => job.workspace_id == own || (with_domain_jobs && job.workspace_id == "*"),
    };
    job.filter(visible).ok_or_else(|| CfError::not_found("job_id", job_id))
}

async fn list(cf: &Cloudforet, caller: &Caller, input: &Value) -> Result<Value> {
    let query = Query::from_json(input.get("query").unwrap_or(&json!({}))).map_err(query_error)?;
    let mut scope = scope(caller, true);
    for key in ["job_id", "status", "workspace_id", "trusted_account_id", "plugin_id"] {
        if let Some(value) = optional(input, key) {
            scope.push(Condition::eq(key, value));
        }
    }
    let page = cf
        .engine()
        .store()
        .query_rows(&CF_JOBS, &scope, &query, cf.engine().now_millis())
        .await
        .map_err(store_query_error)?;
    let results: Vec<Value> = page.rows.into_iter().map(|row| fit_job(Value::Object(row))).collect();
    Ok(json!({"results": results, "total_count": page.total_count}))
}

/// The tenancy conditions of the caller.
fn scope(caller: &Caller, with_domain_jobs: bool) -> Vec<Condition> {
    let mut scope = vec![Condition::eq("domain_id", &caller.domain_id)];
    if let Some(own) = caller.own_workspace() {
        if with_domain_jobs {
            scope.push(any_of("workspace_id", &[own, "*"]));
        } else {
            scope.push(Condition::eq("workspace_id", own));
        }
    }
    scope
}

/// `key` is one of `values` (a tenancy scope built in code).
pub(crate) fn any_of(key: &str, values: &[&str]) -> Condition {
    let values = values.iter().map(|v| Value::String((*v).to_string())).collect();
    Condition { key: key.into(), operator: Operator::In, value: Operand::Many(values) }
}

/// JobInfo as Cloudforet shows it.
pub(crate) fn job_info(job: &CfJobRow) -> Value {
    let mut info = json!({
        "job_id": job.job_id,
        "status": job.status,
        "options": serde_json::from_str::<Value>(&job.options).unwrap_or_else(|_| json!({})),
        "resource_group": job.resource_group,
        "domain_id": job.domain_id,
        "workspace_id": job.workspace_id,
        "trusted_account_id": job.trusted_account_id,
        "plugin_id": job.plugin_id,
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
    });
    if let Some(message) = &job.error_message {
        info["error_message"] = json!(message);
    }
    if let Some(finished) = job.finished_at {
        info["finished_at"] = json!(timestamp(finished));
    }
    info
}

/// A listed row as JobInfo: nulls dropped (the rest is fitted to the message by the caller).
fn fit_job(mut row: Value) -> Value {
    if let Some(map) = row.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    row
}

pub(crate) fn query_error(err: sluice_core::query::QueryError) -> CfError {
    CfError::new(err.code(), tonic::Code::InvalidArgument, err.to_string())
}

pub(crate) fn store_query_error(err: sluice_store::Error) -> CfError {
    match err {
        sluice_store::Error::Query(err) => query_error(err),
        other => other.into(),
    }
}

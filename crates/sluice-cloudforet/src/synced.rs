//! Reading identity resources kept in `cf_resources`: providers, trusted accounts and what syncs
//! create (workspaces, project groups, projects, service accounts). One description per kind
//! ([`Kind`]) says its id key, parent key, query table and who may see a row.

use serde_json::{json, Map, Value};
use sluice_core::query::{Condition, Operator, Query};
use sluice_engine::cloudforet::{kind, parse_object};
use sluice_store::cloudforet::ResourceRow;
use sluice_store::query::QueryTable;

use crate::auth::{Caller, Role};
use crate::error::{CfError, Result};
use crate::jobs::{any_of, query_error, store_query_error};
use crate::{required, timestamp, Cloudforet};

/// How a resource kind appears on the wire.
#[derive(Debug)]
pub struct Kind {
    pub kind: &'static str,
    pub id_key: &'static str,
    /// The wire key of `parent_id`.
    pub parent_key: Option<&'static str>,
    pub table: &'static QueryTable,
    /// Workspace roles see rows of their workspace (and of `*` when true).
    pub domain_rows_visible: bool,
}

impl Kind {
    pub const PROVIDER: Kind = Kind {
        kind: kind::PROVIDER,
        id_key: "provider",
        parent_key: None,
        table: &sluice_store::cloudforet::PROVIDERS,
        domain_rows_visible: true,
    };
    pub const TRUSTED_ACCOUNT: Kind = Kind {
        kind: kind::TRUSTED_ACCOUNT,
        id_key: "trusted_account_id",
        parent_key: None,
        table: &sluice_store::cloudforet::TRUSTED_ACCOUNTS,
        domain_rows_visible: true,
    };
    pub const WORKSPACE: Kind = Kind {
        kind: kind::WORKSPACE,
        id_key: "workspace_id",
        parent_key: None,
        table: &sluice_store::cloudforet::WORKSPACES,
        domain_rows_visible: false,
    };
    pub const PROJECT_GROUP: Kind = Kind {
        kind: kind::PROJECT_GROUP,
        id_key: "project_group_id",
        parent_key: Some("parent_group_id"),
        table: &sluice_store::cloudforet::PROJECT_GROUPS,
        domain_rows_visible: false,
    };
    pub const PROJECT: Kind = Kind {
        kind: kind::PROJECT,
        id_key: "project_id",
        parent_key: Some("project_group_id"),
        table: &sluice_store::cloudforet::PROJECTS,
        domain_rows_visible: false,
    };
    pub const SERVICE_ACCOUNT: Kind = Kind {
        kind: kind::SERVICE_ACCOUNT,
        id_key: "service_account_id",
        parent_key: Some("project_id"),
        table: &sluice_store::cloudforet::SERVICE_ACCOUNTS,
        domain_rows_visible: false,
    };
}

/// Workspace, ProjectGroup, Project and ServiceAccount: get and list.
pub(crate) async fn call(
    cf: &Cloudforet,
    caller: &Caller,
    resource: &str,
    verb: &str,
    input: Value,
) -> Result<Value> {
    let kind = match resource {
        "Workspace" => &Kind::WORKSPACE,
        "ProjectGroup" => &Kind::PROJECT_GROUP,
        "Project" => &Kind::PROJECT,
        "ServiceAccount" => &Kind::SERVICE_ACCOUNT,
        other => return Err(CfError::unknown_operation(&format!("{other}.{verb}"))),
    };
    caller.require(&[Role::DomainAdmin, Role::WorkspaceOwner, Role::WorkspaceMember])?;
    read(cf, caller, kind, verb, &input).await
}

/// `get` by the kind's id key, or `list` with a query and the search message's fields.
pub(crate) async fn read(
    cf: &Cloudforet,
    caller: &Caller,
    kind: &Kind,
    verb: &str,
    input: &Value,
) -> Result<Value> {
    match verb {
        "get" => Ok(info(kind, &load(cf, caller, kind, required(input, kind.id_key)?).await?)),
        "list" => list(cf, caller, kind, input).await,
        other => Err(CfError::unknown_operation(other)),
    }
}

/// A resource the caller may see, or NOT_FOUND.
pub(crate) async fn load(cf: &Cloudforet, caller: &Caller, kind: &Kind, id: &str) -> Result<ResourceRow> {
    let row = cf.engine().store().cf_resource(kind.kind, &caller.domain_id, id).await?;
    let visible = |row: &ResourceRow| match caller.own_workspace() {
        None => true,
        Some(own) => row.workspace_id == own || (kind.domain_rows_visible && row.workspace_id == "*"),
    };
    row.filter(visible).ok_or_else(|| CfError::not_found(kind.id_key, id))
}

async fn list(cf: &Cloudforet, caller: &Caller, kind: &Kind, input: &Value) -> Result<Value> {
    let query = Query::from_json(input.get("query").unwrap_or(&json!({}))).map_err(query_error)?;
    let mut scope =
        vec![Condition::eq("resource_type", kind.kind), Condition::eq("domain_id", &caller.domain_id)];
    if let Some(own) = caller.own_workspace() {
        let allowed: &[&str] = if kind.domain_rows_visible { &[own, "*"] } else { &[own] };
        scope.push(any_of("workspace_id", allowed));
    }
    for (key, value) in input.as_object().into_iter().flatten() {
        if key == "query" {
            continue;
        }
        if kind.table.field(key).is_err() || key == "info" || key == "resource_type" {
            return Err(CfError::invalid(key, "filtering on this field is not supported"));
        }
        scope.push(Condition::new(key, Operator::Eq, value.clone()).map_err(query_error)?);
    }
    let page = cf
        .engine()
        .store()
        .query_rows(kind.table, &scope, &query, cf.engine().now_millis())
        .await
        .map_err(store_query_error)?;
    let results: Vec<Value> = page.rows.into_iter().map(flatten).collect();
    Ok(json!({"results": results, "total_count": page.total_count}))
}

/// A listed row: its `info` object merged in, times as Cloudforet strings.
fn flatten(mut row: Map<String, Value>) -> Value {
    row.remove("resource_type");
    if let Some(Value::Object(info)) = row.remove("info") {
        for (key, value) in info {
            row.entry(key).or_insert(value);
        }
    }
    if let Some(millis) = row.get("last_synced_at").and_then(Value::as_i64) {
        row.insert("last_synced_at".into(), json!(timestamp(millis)));
    }
    row.retain(|_, v| !v.is_null());
    Value::Object(row)
}

/// A stored resource as its `*Info` message.
pub(crate) fn info(kind: &Kind, row: &ResourceRow) -> Value {
    let mut out = parse_object(&row.info);
    out.insert(kind.id_key.into(), json!(row.id));
    out.insert("name".into(), json!(row.name));
    out.insert("domain_id".into(), json!(row.domain_id));
    out.insert("workspace_id".into(), json!(row.workspace_id));
    out.insert("created_at".into(), json!(timestamp(row.created_at)));
    out.insert("updated_at".into(), json!(timestamp(row.updated_at)));
    if let Some(reference) = &row.reference_id {
        out.insert("reference_id".into(), json!(reference));
    }
    if let (Some(key), Some(parent)) = (kind.parent_key, &row.parent_id) {
        out.insert(key.into(), json!(parent));
    }
    if let Some(account) = &row.trusted_account_id {
        out.insert("trusted_account_id".into(), json!(account));
    }
    if let Some(provider) = &row.provider {
        out.insert("provider".into(), json!(provider));
    }
    flatten(out)
}

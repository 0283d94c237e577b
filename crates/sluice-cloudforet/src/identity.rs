//! Providers and trusted accounts: create, update, delete, get, list, and a trusted account's
//! `sync`, which starts a collector job on the engine. Secret data is sealed at rest and never
//! returned.

use serde_json::{json, Map, Value};
use sluice_engine::cloudforet::{kind, new_id, plugin_id_of};
use sluice_store::cloudforet::ResourceRow;

use crate::auth::{Caller, Role};
use crate::error::{CfError, Result};
use crate::synced::{self, Kind};
use crate::{jobs, optional, required, Cloudforet};

const ALL: &[Role] = &[Role::DomainAdmin, Role::WorkspaceOwner, Role::WorkspaceMember];
const OWNERS: &[Role] = &[Role::DomainAdmin, Role::WorkspaceOwner];

/// Fields of a provider kept in its info.
const PROVIDER_FIELDS: &[&str] = &["alias", "plugin_info", "color", "icon", "order", "options", "tags"];
/// Fields of a trusted account kept in its info.
const ACCOUNT_FIELDS: &[&str] =
    &["data", "schedule", "sync_options", "plugin_options", "tags", "secret_schema_id"];

pub(crate) async fn provider(cf: &Cloudforet, caller: &Caller, verb: &str, input: Value) -> Result<Value> {
    match verb {
        "create" => {
            caller.require(&[Role::DomainAdmin])?;
            create_provider(cf, caller, &input).await
        }
        "update" => {
            caller.require(&[Role::DomainAdmin])?;
            let mut row = synced::load(cf, caller, &Kind::PROVIDER, required(&input, "provider")?).await?;
            let mut info = sluice_engine::cloudforet::parse_object(&row.info);
            copy_fields(&input, &mut info, PROVIDER_FIELDS);
            if let Some(name) = optional(&input, "name") {
                row.name = name.to_string();
            }
            row.info = Value::Object(info).to_string();
            row.updated_at = cf.engine().now_millis();
            cf.engine().cf_update_resource(&row, &caller.actor()).await?;
            Ok(synced::info(&Kind::PROVIDER, &row))
        }
        "delete" => {
            caller.require(&[Role::DomainAdmin])?;
            let row = synced::load(cf, caller, &Kind::PROVIDER, required(&input, "provider")?).await?;
            cf.engine().cf_delete_resource(kind::PROVIDER, &row.domain_id, &row.id, &caller.actor()).await?;
            Ok(json!({}))
        }
        "get" | "list" => {
            caller.require(ALL)?;
            synced::read(cf, caller, &Kind::PROVIDER, verb, &input).await
        }
        other => Err(CfError::unknown_operation(&format!("Provider.{other}"))),
    }
}

async fn create_provider(cf: &Cloudforet, caller: &Caller, input: &Value) -> Result<Value> {
    let provider = required(input, "provider")?;
    let plugin_id = input.get("plugin_info").and_then(|p| p.get("plugin_id")).and_then(Value::as_str);
    if plugin_id.is_none_or(str::is_empty) {
        return Err(CfError::required("plugin_info.plugin_id"));
    }
    let mut info = Map::new();
    copy_fields(input, &mut info, PROVIDER_FIELDS);
    info.insert("is_managed".into(), json!(false));
    let now = cf.engine().now_millis();
    let row = ResourceRow {
        kind: kind::PROVIDER.into(),
        domain_id: caller.domain_id.clone(),
        id: provider.to_string(),
        workspace_id: "*".into(),
        name: optional(input, "name").unwrap_or(provider).to_string(),
        reference_id: None,
        parent_id: None,
        trusted_account_id: None,
        provider: Some(provider.to_string()),
        info: Value::Object(info).to_string(),
        secret_enc: None,
        schedule_hours: None,
        created_at: now,
        updated_at: now,
    };
    cf.engine().cf_insert_resource(&row, &caller.actor()).await.map_err(|err| match err {
        sluice_engine::Error::Conflict(_) => CfError::new(
            "ERROR_NOT_UNIQUE",
            tonic::Code::AlreadyExists,
            format!("Tried to save duplicate unique key. (provider = {provider})"),
        ),
        other => other.into(),
    })?;
    Ok(synced::info(&Kind::PROVIDER, &row))
}

pub(crate) async fn trusted_account(
    cf: &Cloudforet,
    caller: &Caller,
    verb: &str,
    input: Value,
) -> Result<Value> {
    match verb {
        "create" => {
            caller.require(OWNERS)?;
            create_account(cf, caller, &input).await
        }
        "update" => {
            caller.require(OWNERS)?;
            let mut row = owned_account(cf, caller, &input).await?;
            let mut info = sluice_engine::cloudforet::parse_object(&row.info);
            copy_fields(&input, &mut info, ACCOUNT_FIELDS);
            if let Some(name) = optional(&input, "name") {
                row.name = name.to_string();
            }
            row.schedule_hours = schedule_hours(info.get("schedule"));
            row.info = Value::Object(info).to_string();
            row.updated_at = cf.engine().now_millis();
            cf.engine().cf_update_resource(&row, &caller.actor()).await?;
            Ok(synced::info(&Kind::TRUSTED_ACCOUNT, &row))
        }
        "update_secret_data" => {
            caller.require(OWNERS)?;
            let mut row = owned_account(cf, caller, &input).await?;
            let secret = input.get("secret_data").and_then(Value::as_object).cloned().unwrap_or_default();
            row.secret_enc = Some(cf.engine().cf_seal_secret(&secret));
            let mut info = sluice_engine::cloudforet::parse_object(&row.info);
            copy_fields(&input, &mut info, &["secret_schema_id"]);
            row.info = Value::Object(info).to_string();
            row.updated_at = cf.engine().now_millis();
            cf.engine().cf_update_resource(&row, &caller.actor()).await?;
            Ok(synced::info(&Kind::TRUSTED_ACCOUNT, &row))
        }
        "delete" => {
            caller.require(OWNERS)?;
            let row = owned_account(cf, caller, &input).await?;
            cf.engine()
                .cf_delete_resource(kind::TRUSTED_ACCOUNT, &row.domain_id, &row.id, &caller.actor())
                .await?;
            Ok(json!({}))
        }
        "sync" => {
            caller.require(OWNERS)?;
            let row = owned_account(cf, caller, &input).await?;
            let provider_name = row.provider.clone().unwrap_or_default();
            let provider = cf
                .engine()
                .store()
                .cf_resource(kind::PROVIDER, &row.domain_id, &provider_name)
                .await?
                .ok_or_else(|| CfError::not_found("provider", &provider_name))?;
            let job = cf
                .engine()
                .cf_start_sync(&row, &plugin_id_of(&provider), Map::new(), &caller.actor())
                .await?;
            Ok(jobs::job_info(&job))
        }
        "get" | "list" => {
            caller.require(ALL)?;
            synced::read(cf, caller, &Kind::TRUSTED_ACCOUNT, verb, &input).await
        }
        other => Err(CfError::unknown_operation(&format!("TrustedAccount.{other}"))),
    }
}

async fn create_account(cf: &Cloudforet, caller: &Caller, input: &Value) -> Result<Value> {
    let name = required(input, "name")?;
    let provider = required(input, "provider")?;
    let group = optional(input, "resource_group").unwrap_or("WORKSPACE");
    let workspace_id = match (group, caller.role) {
        ("DOMAIN", Role::DomainAdmin | Role::SystemToken) => "*".to_string(),
        ("DOMAIN", _) => return Err(CfError::permission_denied()),
        ("WORKSPACE", _) => caller.workspace_id.clone().ok_or_else(|| CfError::required("workspace_id"))?,
        _ => return Err(CfError::invalid("resource_group", "must be DOMAIN or WORKSPACE")),
    };
    cf.engine()
        .store()
        .cf_resource(kind::PROVIDER, &caller.domain_id, provider)
        .await?
        .ok_or_else(|| CfError::not_found("provider", provider))?;
    let mut info = Map::new();
    copy_fields(input, &mut info, ACCOUNT_FIELDS);
    info.insert("resource_group".into(), json!(group));
    let secret = input.get("secret_data").and_then(Value::as_object).cloned().unwrap_or_default();
    let now = cf.engine().now_millis();
    let id = new_id("ta");
    let row = ResourceRow {
        kind: kind::TRUSTED_ACCOUNT.into(),
        domain_id: caller.domain_id.clone(),
        id: id.clone(),
        workspace_id,
        name: name.to_string(),
        reference_id: None,
        parent_id: None,
        trusted_account_id: Some(id),
        provider: Some(provider.to_string()),
        schedule_hours: schedule_hours(info.get("schedule")),
        info: Value::Object(info).to_string(),
        secret_enc: Some(cf.engine().cf_seal_secret(&secret)),
        created_at: now,
        updated_at: now,
    };
    cf.engine().cf_insert_resource(&row, &caller.actor()).await?;
    Ok(synced::info(&Kind::TRUSTED_ACCOUNT, &row))
}

/// A trusted account the caller may change: in its domain, and for a workspace owner in its
/// own workspace.
async fn owned_account(cf: &Cloudforet, caller: &Caller, input: &Value) -> Result<ResourceRow> {
    let id = required(input, "trusted_account_id")?;
    let row = synced::load(cf, caller, &Kind::TRUSTED_ACCOUNT, id).await?;
    match caller.own_workspace() {
        Some(own) if row.workspace_id != own => Err(CfError::not_found("trusted_account_id", id)),
        _ => Ok(row),
    }
}

/// `,h1,h2,` for an enabled schedule, the form the scheduler matches on.
fn schedule_hours(schedule: Option<&Value>) -> Option<String> {
    let schedule = schedule?;
    if schedule.get("state").and_then(Value::as_str) != Some("ENABLED") {
        return None;
    }
    let hours: Vec<String> = schedule
        .get("hours")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_i64)
        .filter(|h| (0..24).contains(h))
        .map(|h| h.to_string())
        .collect();
    (!hours.is_empty()).then(|| format!(",{},", hours.join(",")))
}

fn copy_fields(input: &Value, info: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        if let Some(value) = input.get(*field) {
            info.insert((*field).to_string(), value.clone());
        }
    }
}

//! Cloudforet identity state: resources (providers, trusted accounts and what syncs create),
//! collector jobs and their lifecycle. A trusted account's sync creates a job (`PENDING`) and,
//! in the same transaction, an engine job on the [`SYNC_QUEUE`]; the sync runner (in the
//! Cloudforet facade) claims it, calls the plugin and hands the result back to
//! [`Engine::cf_finish_sync`], which records the workspaces, project groups, projects and
//! service accounts and ends the job in one transaction. A runner that dies leaves an engine job
//! whose lease runs out; the sweeper then fails the collector job ([`Engine::cf_time_out_sync`]).
//! [`Engine::cf_run_schedules`] starts the syncs of the current UTC hour's schedules.

use serde_json::{json, Map, Value};
use sluice_store::cloudforet::{self as rows, CfJobRow, ResourceKey, ResourceRow};
use sluice_store::events::{append, NewEvent};
use sluice_store::jobs::{self, JobRow, NewJob};

use crate::{Engine, Error, Result};

/// The engine queue that sync runs wait on.
pub const SYNC_QUEUE: &str = "cloudforet-sync";
/// The tenant of sync runs on the engine queue (collector jobs carry their own domain).
pub const SYNC_TENANT: &str = "cloudforet";
/// Cloudforet's duplicate rule: an in-progress job younger than this blocks a new sync.
pub const DUPLICATE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Resource kinds in `cf_resources`.
pub mod kind {
    pub const PROVIDER: &str = "provider";
    pub const TRUSTED_ACCOUNT: &str = "trusted_account";
    pub const WORKSPACE: &str = "workspace";
    pub const PROJECT_GROUP: &str = "project_group";
    pub const PROJECT: &str = "project";
    pub const SERVICE_ACCOUNT: &str = "service_account";
}

/// A new Cloudforet id: `prefix-` and 12 hex digits.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &hex[..12])
}

/// One account a plugin returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectedAccount {
    pub name: String,
    pub resource_id: String,
    pub data: Map<String, Value>,
    pub tags: Map<String, Value>,
    pub secret_schema_id: Option<String>,
    /// `[{name, resource_id}]`, outermost first.
    pub location: Vec<(String, String)>,
}

/// What a sync runner needs to call the plugin.
#[derive(Debug, Clone)]
pub struct SyncWork {
    pub engine_job_id: String,
    pub job: CfJobRow,
    pub endpoint: String,
    /// Provider plugin options, then the account's plugin options, then its sync options.
    pub options: Map<String, Value>,
    pub schema_id: Option<String>,
    pub secret_data: Map<String, Value>,
}

impl Engine {
    /// Inserts a resource with its event; `Error::Conflict` when the id exists.
    pub async fn cf_insert_resource(&self, row: &ResourceRow, actor: &str) -> Result<()> {
        let mut tx = self.store().begin().await?;
        rows::insert_resource(&mut tx, row).await.map_err(|err| match err {
            sluice_store::Error::Conflict => Error::Conflict(format!("{} = {}", row.kind, row.id)),
            other => other.into(),
        })?;
        append(&mut tx, &cf_event(actor, "cloudforet.created", &row.id, row.created_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves a changed resource with its event.
    pub async fn cf_update_resource(&self, row: &ResourceRow, actor: &str) -> Result<()> {
        let mut tx = self.store().begin().await?;
        rows::update_resource(&mut tx, row).await?;
        append(&mut tx, &cf_event(actor, "cloudforet.updated", &row.id, row.updated_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a resource; false if it did not exist.
    pub async fn cf_delete_resource(
        &self,
        kind: &str,
        domain_id: &str,
        id: &str,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.store().begin().await?;
        let deleted = rows::delete_resource(&mut tx, kind, domain_id, id).await?;
        if deleted {
            append(&mut tx, &cf_event(actor, "cloudforet.deleted", id, self.now_millis())).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes a collector job; false if it did not exist.
    pub async fn cf_delete_job(&self, domain_id: &str, job_id: &str, actor: &str) -> Result<bool> {
        let mut tx = self.store().begin().await?;
        let deleted = rows::delete_job(&mut tx, domain_id, job_id).await?;
        if deleted {
            append(&mut tx, &cf_event(actor, "cloudforet.job.deleted", job_id, self.now_millis())).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Registers (or re-points) an account-collector plugin.
    pub async fn cf_register_plugin(&self, plugin_id: &str, endpoint: &str) -> Result<()> {
        Ok(self.store().put_cf_plugin(plugin_id, endpoint, self.now_millis()).await?)
    }

    /// Seals a trusted account's secret data.
    pub fn cf_seal_secret(&self, secret: &Map<String, Value>) -> Vec<u8> {
        self.secrets.seal(Value::Object(secret.clone()).to_string().as_bytes())
    }

    /// HMAC-SHA256 under the server's token key (derived from the master key).
    pub fn token_mac(&self, data: &[u8]) -> [u8; 32] {
        self.secrets.token_mac(data)
    }

    /// Starts a sync of `account` through `plugin_id`: a `PENDING` job and its engine run, or a
    /// `FAILURE` job when another in-progress job of the account is younger than 10 minutes
    /// (older ones are `CANCELED`), all in one transaction.
    pub async fn cf_start_sync(
        &self,
        account: &ResourceRow,
        plugin_id: &str,
        options: Map<String, Value>,
        actor: &str,
    ) -> Result<CfJobRow> {
        let now = self.now_millis();
        let resource_group = resource_group_of(account);
        let workspace_id = if resource_group == "DOMAIN" { "*" } else { account.workspace_id.as_str() };
        let mut job = CfJobRow {
            job_id: new_id("job"),
            domain_id: account.domain_id.clone(),
            workspace_id: workspace_id.to_string(),
            resource_group,
            trusted_account_id: account.id.clone(),
            plugin_id: plugin_id.to_string(),
            status: "PENDING".into(),
            options: Value::Object(options).to_string(),
            error_code: None,
            error_message: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        let mut tx = self.store().begin().await?;
        rows::insert_job(&mut tx, &job).await?;
        let running =
            rows::in_progress_jobs_in(&mut tx, &job.domain_id, &job.workspace_id, &account.id, &job.job_id)
                .await?;
        let duplicate = running.iter().any(|other| other.created_at > now - DUPLICATE_WINDOW_MS);
        if duplicate {
            job.status = "FAILURE".into();
            job.error_code = Some("ERROR_DUPLICATE_JOB".into());
            job.error_message =
                Some(format!("The same job is already running. (trusted_account_id = {})", account.id));
            job.finished_at = Some(now);
            rows::update_job(&mut tx, &job).await?;
        } else {
            for mut old in running {
                old.status = "CANCELED".into();
                old.updated_at = now;
                rows::update_job(&mut tx, &old).await?;
            }
            let data = json!({"domain_id": job.domain_id, "job_id": job.job_id}).to_string();
            let run = NewJob {
                id: &crate::new_id(),
                queue_key: SYNC_QUEUE,
                tenant: SYNC_TENANT,
                data: &data,
                execution_id: None,
                step_id: None,
                continuation_token: None,
                timeout_millis: None,
                at: now,
            };
            jobs::insert(&mut tx, &run).await?;
            jobs::announce_in(&mut tx, self.store().backend(), SYNC_QUEUE).await?;
        }
        append(&mut tx, &cf_event(actor, "cloudforet.job.created", &job.job_id, now)).await?;
        tx.commit().await?;
        if !duplicate {
            self.notify_queue(SYNC_QUEUE);
        }
        Ok(job)
    }

    /// Waits up to `wait` for a queued sync run, claims and acknowledges it with a lease of
    /// `lease_ms`. None when nothing came.
    pub async fn cf_claim_sync(&self, wait: std::time::Duration, lease_ms: i64) -> Result<Option<JobRow>> {
        let notified = self.jobs_ready(SYNC_QUEUE);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let waiter = notified.notified();
            let now = self.now_millis();
            let claimed = self.store().claim_jobs(SYNC_QUEUE, SYNC_TENANT, 1, now + lease_ms, now).await?;
            if let Some(run) = claimed.into_iter().next() {
                let nonce = run.nonce.clone().unwrap_or_default();
                self.store().acknowledge_job(&run.id, &nonce, now + lease_ms, now).await?;
                return Ok(Some(run));
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Moves a claimed run's job to `IN_PROGRESS` and gathers what the plugin call needs. None
    /// when the job was canceled, failed or deleted meanwhile (the run is then finished).
    pub async fn cf_begin_sync(&self, run: &JobRow) -> Result<Option<SyncWork>> {
        let (domain_id, job_id) = run_target(run)?;
        let now = self.now_millis();
        let mut tx = self.store().begin().await?;
        let Some(mut job) = rows::job_in(&mut tx, &domain_id, &job_id).await? else {
            jobs::finish(&mut tx, &run.id, sluice_core::job::JobStatus::Failed, Some("job deleted"), now)
                .await?;
            tx.commit().await?;
            return Ok(None);
        };
        if job.status != "PENDING" {
            jobs::finish(&mut tx, &run.id, sluice_core::job::JobStatus::Failed, Some("job ended"), now)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let work = self.sync_work(&mut tx, run, &job).await;
        match work {
            Ok(work) => {
                job.status = "IN_PROGRESS".into();
                job.updated_at = now;
                rows::update_job(&mut tx, &job).await?;
                tx.commit().await?;
                Ok(Some(SyncWork { job, ..work }))
            }
            Err(message) => {
                fail_job(&mut job, "ERROR_SYNC", &message, now);
                rows::update_job(&mut tx, &job).await?;
                jobs::finish(&mut tx, &run.id, sluice_core::job::JobStatus::Failed, Some(&message), now)
                    .await?;
                tx.commit().await?;
                Ok(None)
            }
        }
    }

    /// Reads the account, provider, plugin endpoint and secret for a run; Err is the message
    /// the job fails with.
    async fn sync_work(
        &self,
        tx: &mut sluice_store::Tx<'_>,
        run: &JobRow,
        job: &CfJobRow,
    ) -> Result<SyncWork, String> {
        let internal = |err: sluice_store::Error| {
            tracing::warn!(error = %err, "reading a sync's inputs failed");
            "internal error".to_string()
        };
        let account = rows::resource_in(tx, kind::TRUSTED_ACCOUNT, &job.domain_id, &job.trusted_account_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                format!("Trusted account not found. (trusted_account_id = {})", job.trusted_account_id)
            })?;
        let info = parse_object(&account.info);
        let provider_name = account.provider.clone().unwrap_or_default();
        let provider = rows::resource_in(tx, kind::PROVIDER, &job.domain_id, &provider_name)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("Provider not found. (provider = {provider_name})"))?;
        let plugin_info = parse_object(&provider.info).get("plugin_info").cloned().unwrap_or_default();
        let endpoint = self
            .store()
            .cf_plugin_endpoint(&job.plugin_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("Plugin is not registered. (plugin_id = {})", job.plugin_id))?;
        let mut options = object_at(&plugin_info, "options");
        options.extend(object_at(&Value::Object(info.clone()), "plugin_options"));
        options.extend(object_at(&Value::Object(info.clone()), "sync_options"));
        let secret_data = match &account.secret_enc {
            Some(sealed) => {
                let plain = self.secrets.open(sealed).ok_or("the secret data cannot be opened")?;
                serde_json::from_slice::<Map<String, Value>>(&plain).map_err(|_| "corrupt secret data")?
            }
            None => Map::new(),
        };
        Ok(SyncWork {
            engine_job_id: run.id.clone(),
            job: job.clone(),
            endpoint,
            options,
            schema_id: plugin_info.get("schema_id").and_then(Value::as_str).map(str::to_string),
            secret_data,
        })
    }

    /// Ends a sync: on success records the collected accounts and marks the job `SUCCESS`; on
    /// failure marks it `FAILURE` with the message. A job canceled meanwhile stays canceled.
    pub async fn cf_finish_sync(
        &self,
        work: &SyncWork,
        outcome: std::result::Result<Vec<CollectedAccount>, String>,
    ) -> Result<CfJobRow> {
        let now = self.now_millis();
        let mut tx = self.store().begin().await?;
        let mut job = rows::job_in(&mut tx, &work.job.domain_id, &work.job.job_id)
            .await?
            .ok_or_else(|| Error::JobNotFound(work.job.job_id.clone()))?;
        let run_status = match (&job.status[..], outcome) {
            ("IN_PROGRESS", Ok(accounts)) => {
                let account = rows::resource_in(
                    &mut tx,
                    kind::TRUSTED_ACCOUNT,
                    &job.domain_id,
                    &job.trusted_account_id,
                )
                .await?;
                if let Some(account) = account {
                    let mut sync = Sync { tx: &mut tx, account: &account, now };
                    for collected in &accounts {
                        sync.record(collected).await?;
                    }
                }
                job.status = "SUCCESS".into();
                job.updated_at = now;
                job.finished_at = Some(now);
                sluice_core::job::JobStatus::Succeeded
            }
            ("IN_PROGRESS", Err(message)) => {
                fail_job(&mut job, "ERROR_SYNC", &message, now);
                sluice_core::job::JobStatus::Failed
            }
            _ => sluice_core::job::JobStatus::Failed,
        };
        rows::update_job(&mut tx, &job).await?;
        jobs::finish(&mut tx, &work.engine_job_id, run_status, job.error_message.as_deref(), now).await?;
        append(&mut tx, &cf_event("sluice", "cloudforet.job.finished", &job.job_id, now)).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// The sweeper found a sync run past its lease (its runner died or hung): its job fails.
    pub async fn cf_time_out_sync(&self, run: &JobRow) -> Result<()> {
        let (domain_id, job_id) = run_target(run)?;
        let now = self.now_millis();
        let mut tx = self.store().begin().await?;
        if let Some(mut job) = rows::job_in(&mut tx, &domain_id, &job_id).await? {
            if job.status == "IN_PROGRESS" || job.status == "PENDING" {
                fail_job(
                    &mut job,
                    "ERROR_SYNC_INTERRUPTED",
                    "The sync was interrupted before it finished.",
                    now,
                );
                rows::update_job(&mut tx, &job).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts the scheduled syncs of this UTC hour that no server has started yet.
    pub async fn cf_run_schedules(&self) -> Result<u64> {
        let now = self.now_millis();
        let epoch_hour = now.div_euclid(3_600_000);
        let hour = u32::try_from(epoch_hour.rem_euclid(24)).unwrap_or(0);
        let mut started = 0;
        for account in self.store().claim_scheduled_accounts(hour, epoch_hour).await? {
            let Some(provider) = self
                .store()
                .cf_resource(kind::PROVIDER, &account.domain_id, account.provider.as_deref().unwrap_or(""))
                .await?
            else {
                continue;
            };
            let plugin_id = plugin_id_of(&provider);
            self.cf_start_sync(&account, &plugin_id, Map::new(), "schedule").await?;
            started += 1;
        }
        Ok(started)
    }
}

/// `DOMAIN` or `WORKSPACE`, from a trusted account's info.
pub fn resource_group_of(account: &ResourceRow) -> String {
    parse_object(&account.info)
        .get("resource_group")
        .and_then(Value::as_str)
        .unwrap_or("WORKSPACE")
        .to_string()
}

/// A provider's `plugin_info.plugin_id`.
pub fn plugin_id_of(provider: &ResourceRow) -> String {
    parse_object(&provider.info)
        .get("plugin_info")
        .and_then(|p| p.get("plugin_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A JSON object from stored text (empty when it is not one).
pub fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn object_at(value: &Value, key: &str) -> Map<String, Value> {
    value.get(key).and_then(Value::as_object).cloned().unwrap_or_default()
}

fn fail_job(job: &mut CfJobRow, code: &str, message: &str, now: i64) {
    job.status = "FAILURE".into();
    job.error_code = Some(code.into());
    job.error_message = Some(message.into());
    job.updated_at = now;
    job.finished_at = Some(now);
}

fn run_target(run: &JobRow) -> Result<(String, String)> {
    let data: Value = serde_json::from_str(&run.data).map_err(|err| Error::Internal(err.to_string()))?;
    let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_string);
    match (field("domain_id"), field("job_id")) {
        (Some(domain), Some(job)) => Ok((domain, job)),
        _ => Err(Error::Internal(format!("sync run {} has no job", run.id))),
    }
}

fn cf_event<'a>(actor: &'a str, kind: &'a str, subject: &'a str, at: i64) -> NewEvent<'a> {
    NewEvent { execution_id: None, job_id: None, actor, kind, subject, detail: "", at }
}

/// Recording one sync's results inside its transaction, as Cloudforet does: for a domain
/// account the first location is a workspace (or `sync_options.single_workspace_id`), the
/// remaining locations nested project groups, the account a project and a service account.
struct Sync<'t, 'a> {
    tx: &'t mut sluice_store::Tx<'a>,
    account: &'t ResourceRow,
    now: i64,
}

impl Sync<'_, '_> {
    async fn record(&mut self, collected: &CollectedAccount) -> Result<()> {
        let info = parse_object(&self.account.info);
        let sync_options = object_at(&Value::Object(info), "sync_options");
        let domain_group = resource_group_of(self.account) == "DOMAIN";
        let mut location = collected.location.clone();
        if sync_options.get("skip_project_group").and_then(Value::as_bool) == Some(true) {
            location.truncate(usize::from(domain_group));
        }
        let workspace_id = if !domain_group {
            self.account.workspace_id.clone()
        } else if let Some(single) = sync_options.get("single_workspace_id").and_then(Value::as_str) {
            single.to_string()
        } else if location.is_empty() {
            return Ok(());
        } else {
            let (name, reference) = location.remove(0);
            self.workspace(&name, &reference).await?
        };
        let mut parent = None;
        for (name, reference) in &location {
            parent = Some(self.project_group(&workspace_id, name, reference, parent.as_deref()).await?);
        }
        let project_id = self.project(&workspace_id, collected, parent.as_deref()).await?;
        self.service_account(&workspace_id, &project_id, collected).await
    }

    fn row(&self, kind: &str, id: String, workspace_id: &str, name: &str, info: Value) -> ResourceRow {
        ResourceRow {
            kind: kind.into(),
            domain_id: self.account.domain_id.clone(),
            id,
            workspace_id: workspace_id.into(),
            name: name.into(),
            reference_id: None,
            parent_id: None,
            trusted_account_id: Some(self.account.id.clone()),
            provider: None,
            info: info.to_string(),
            secret_enc: None,
            schedule_hours: None,
            created_at: self.now,
            updated_at: self.now,
        }
    }

    async fn workspace(&mut self, name: &str, reference: &str) -> Result<String> {
        let domain = &self.account.domain_id;
        let found =
            rows::resource_by_in(self.tx, kind::WORKSPACE, domain, None, ResourceKey::Name, name).await?;
        if let Some(mut row) = found {
            let mut info = parse_object(&row.info);
            let refs = info.entry("references").or_insert_with(|| json!([]));
            if let Some(list) = refs.as_array_mut() {
                if !list.iter().any(|r| r == reference) {
                    list.push(json!(reference));
                }
            }
            info.insert("last_synced_at".into(), json!(self.now));
            row.info = Value::Object(info).to_string();
            row.trusted_account_id = Some(self.account.id.clone());
            row.updated_at = self.now;
            rows::update_resource(self.tx, &row).await?;
            return Ok(row.id);
        }
        let id = new_id("workspace");
        let info = json!({"state": "ENABLED", "references": [reference], "is_managed": true,
                          "tags": {}, "last_synced_at": self.now});
        let mut row = self.row(kind::WORKSPACE, id.clone(), &id, name, info);
        row.reference_id = Some(reference.into());
        rows::insert_resource(self.tx, &row).await?;
        Ok(id)
    }

    async fn project_group(
        &mut self,
        workspace: &str,
        name: &str,
        reference: &str,
        parent: Option<&str>,
    ) -> Result<String> {
        let domain = &self.account.domain_id;
        let found = rows::resource_by_in(
            self.tx,
            kind::PROJECT_GROUP,
            domain,
            Some(workspace),
            ResourceKey::ReferenceId,
            reference,
        )
        .await?;
        if let Some(mut row) = found {
            row.name = name.into();
            row.parent_id = parent.map(str::to_string).or(row.parent_id);
            row.trusted_account_id = Some(self.account.id.clone());
            row.info = with_synced(&row.info, self.now);
            row.updated_at = self.now;
            rows::update_resource(self.tx, &row).await?;
            return Ok(row.id);
        }
        let id = new_id("pg");
        let info = json!({"is_managed": true, "tags": {}, "users": [], "last_synced_at": self.now});
        let mut row = self.row(kind::PROJECT_GROUP, id.clone(), workspace, name, info);
        row.reference_id = Some(reference.into());
        row.parent_id = parent.map(str::to_string);
        rows::insert_resource(self.tx, &row).await?;
        Ok(id)
    }

    async fn project(
        &mut self,
        workspace: &str,
        collected: &CollectedAccount,
        group: Option<&str>,
    ) -> Result<String> {
        let domain = &self.account.domain_id;
        let found = rows::resource_by_in(
            self.tx,
            kind::PROJECT,
            domain,
            Some(workspace),
            ResourceKey::ReferenceId,
            &collected.resource_id,
        )
        .await?;
        if let Some(mut row) = found {
            row.name = collected.name.clone();
            row.parent_id = group.map(str::to_string).or(row.parent_id);
            row.trusted_account_id = Some(self.account.id.clone());
            row.info = with_synced(&row.info, self.now);
            row.updated_at = self.now;
            rows::update_resource(self.tx, &row).await?;
            return Ok(row.id);
        }
        let id = new_id("project");
        let info = json!({"project_type": "PRIVATE", "is_managed": true, "tags": {}, "users": [],
                          "last_synced_at": self.now});
        let mut row = self.row(kind::PROJECT, id.clone(), workspace, &collected.name, info);
        row.reference_id = Some(collected.resource_id.clone());
        row.parent_id = group.map(str::to_string);
        rows::insert_resource(self.tx, &row).await?;
        Ok(id)
    }

    async fn service_account(
        &mut self,
        workspace: &str,
        project: &str,
        collected: &CollectedAccount,
    ) -> Result<()> {
        let domain = &self.account.domain_id;
        let found = rows::resource_by_in(
            self.tx,
            kind::SERVICE_ACCOUNT,
            domain,
            Some(workspace),
            ResourceKey::ReferenceId,
            &collected.resource_id,
        )
        .await?;
        if let Some(mut row) = found.filter(|row| row.parent_id.as_deref() == Some(project)) {
            row.name = collected.name.clone();
            row.trusted_account_id = Some(self.account.id.clone());
            row.info = with_synced(&row.info, self.now);
            row.updated_at = self.now;
            return Ok(rows::update_resource(self.tx, &row).await?);
        }
        let mut info = json!({"state": "ACTIVE", "is_managed": true, "data": collected.data,
                              "tags": collected.tags, "last_synced_at": self.now});
        if let Some(schema) = &collected.secret_schema_id {
            info["secret_schema_id"] = json!(schema);
        }
        let mut row = self.row(kind::SERVICE_ACCOUNT, new_id("sa"), workspace, &collected.name, info);
        row.reference_id = Some(collected.resource_id.clone());
        row.parent_id = Some(project.into());
        row.provider = self.account.provider.clone();
        Ok(rows::insert_resource(self.tx, &row).await?)
    }
}

fn with_synced(info: &str, now: i64) -> String {
    let mut info = parse_object(info);
    info.insert("last_synced_at".into(), json!(now));
    Value::Object(info).to_string()
}

//! The job-worker protocol of pipeline executions: poll (claim, mint artifact credentials, build
//! the job data), acknowledge (nonce), report success (with continuation) or failure, manual
//! approvals, and the sweeper for leases and approval timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_core::action_type::ActionTypeId;
use sluice_core::job::JobStatus;
use sluice_store::action_types::DELETED_CHANNEL;
use sluice_store::executions::{self as rows, StepRow};
use sluice_store::jobs::{self, AckOutcome, JobContext, JobRow};

use crate::executions::{queue_key, step_status, Transition};
use crate::handoff::Registration;
use crate::keys::{JobScope, ObjectRef, TemporaryCredentials};
use crate::{Engine, Error, Principal, Result};

/// How long a polled job waits for its acknowledgement before it returns to the queue.
pub const DISPATCH_LEASE_MILLIS: i64 = 60_000;
/// How long an acknowledged job may run unless the action sets `timeoutInMinutes`.
pub const DEFAULT_JOB_TIMEOUT_MILLIS: i64 = 3_600_000;

/// An artifact location handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLocation {
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub revision: Option<String>,
}

/// A job as a worker sees it.
#[derive(Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub nonce: Option<String>,
    pub status: JobStatus,
    pub action_type_id: ActionTypeId,
    /// The action's configuration, secret values included.
    pub configuration: BTreeMap<String, String>,
    pub pipeline_name: String,
    pub pipeline_arn: String,
    pub pipeline_execution_id: String,
    pub stage_name: String,
    pub action_name: String,
    pub action_execution_id: String,
    pub input_artifacts: Vec<ArtifactLocation>,
    pub output_artifacts: Vec<ArtifactLocation>,
    pub credentials: Option<TemporaryCredentials>,
    pub continuation_token: Option<String>,
}

/// What a worker reports while its job runs ([`Engine::put_job_progress`]).
#[derive(Debug, Clone, Default)]
pub struct JobProgress {
    pub summary: Option<String>,
    pub percent_complete: Option<i64>,
}

/// An answer to a manual approval.
#[derive(Debug, Clone, Copy)]
pub struct Approval<'a> {
    pub pipeline: &'a str,
    pub stage: &'a str,
    pub action: &'a str,
    pub token: &'a str,
    pub approved: bool,
    pub summary: &'a str,
}

/// What a worker reports with PutJobSuccessResult.
#[derive(Debug, Clone, Default)]
pub struct JobSuccess {
    pub continuation_token: Option<String>,
    pub summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub percent_complete: Option<i64>,
    pub revision: Option<String>,
    pub output_variables: BTreeMap<String, String>,
}

fn locations(value: Option<&Value>) -> Vec<ArtifactLocation> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| ArtifactLocation {
                    name: a.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    bucket: a.get("bucket").and_then(Value::as_str).unwrap_or_default().to_string(),
                    key: a.get("key").and_then(Value::as_str).unwrap_or_default().to_string(),
                    revision: a.get("revision").and_then(Value::as_str).map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn job_not_found(id: &str) -> Error {
    Error::JobNotFound(format!("Job {id} was not found"))
}

/// The rows a job's view is built from.
struct JobParts {
    execution: rows::ExecutionRow,
    step: rows::StepRow,
    def: crate::executions::Definition,
    secrets: crate::pipelines::Secrets,
}

/// Everything of a job's view but the job row itself.
struct ViewInput {
    type_id: ActionTypeId,
    pipeline: String,
    stage: String,
    action: String,
    configuration: BTreeMap<String, String>,
    input_artifacts: Vec<ArtifactLocation>,
    output_artifacts: Vec<ArtifactLocation>,
    /// The action's job timeout (ms), which the job's credentials outlive by the dispatch lease.
    timeout: i64,
}

impl ViewInput {
    /// The view recorded on the job when it was queued ([`recorded_view`]); None for a job of an
    /// action with secret configuration (its values are read from the sealed pipeline version
    /// instead) or a job queued before views were recorded.
    fn recorded(job: &JobRow) -> Option<ViewInput> {
        let data: Value = serde_json::from_str(&job.data).ok()?;
        let view = data.get("view")?;
        if view.get("secrets").and_then(Value::as_bool) != Some(false) {
            return None;
        }
        let text = |field: &str| view.get(field).and_then(Value::as_str).map(str::to_string);
        let type_id = &view["actionTypeId"];
        let part = |field: &str| type_id.get(field).and_then(Value::as_str);
        Some(ViewInput {
            type_id: ActionTypeId {
                category: part("category")?.parse().ok()?,
                owner: part("owner")?.parse().ok()?,
                provider: part("provider")?.to_string(),
                version: part("version")?.to_string(),
            },
            pipeline: text("pipeline")?,
            stage: text("stage")?,
            action: text("action")?,
            configuration: serde_json::from_value(view.get("configuration")?.clone()).ok()?,
            input_artifacts: locations(view.get("inputArtifacts")),
            output_artifacts: locations(view.get("outputArtifacts")),
            timeout: data.get("timeoutMillis").and_then(Value::as_i64)?,
        })
    }
}

/// The view of a job to record on it when it is queued: what a poll hands to workers, without
/// secret values (`secrets` says whether the action has any, so a poll knows to read them).
pub(crate) fn recorded_view(
    step_data: &serde_json::Map<String, Value>,
    pipeline: &str,
    secrets: bool,
) -> Value {
    json!({
        "pipeline": pipeline,
        "stage": step_data.get("stage"),
        "action": step_data.get("action"),
        "actionTypeId": step_data.get("actionTypeId"),
        "configuration": step_data.get("configuration"),
        "inputArtifacts": step_data.get("inputArtifacts"),
        "outputArtifacts": step_data.get("outputArtifacts"),
        "secrets": secrets,
    })
}

/// A pipeline job's execution and step ids.
fn job_links(job: &JobRow) -> Result<(&str, &str)> {
    match (job.execution_id.as_deref(), job.step_id.as_deref()) {
        (Some(execution), Some(step)) => Ok((execution, step)),
        _ => Err(job_not_found(&job.id)),
    }
}

fn step_data(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

impl Engine {
    /// Claims up to `max` queued jobs of an action type (and queryable value), waiting up to
    /// `wait` for one to arrive. The jobs' views and credentials are built once the claim has
    /// committed (they write nothing). While it waits, a transition of this process that queues
    /// a job on the queue claims it for this poll in its own transaction ([`crate::handoff`]).
    pub async fn poll_jobs(
        &self,
        type_id: &ActionTypeId,
        query: Option<(String, String)>,
        max: i64,
        wait: Duration,
    ) -> Result<Vec<JobView>> {
        let key = queue_key(type_id, query.as_ref().map(|(k, v)| (k.as_str(), v.as_str())));
        let deadline = tokio::time::Instant::now() + wait;
        let ready = self.jobs_ready(&key);
        loop {
            let notified = ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = self.claim_views(&key, max).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
            // Registered only while it waits: a poll registered while it claims for itself would
            // be handed jobs it then has to put back.
            let mut registration = Registration::new(self, &key, max);
            tokio::select! {
                handed = registration.handed() => if let Some(views) = handed {
                    return Ok(views);
                },
                _ = &mut notified => if let Some(views) = registration.close() {
                    return Ok(views);
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(registration.close().unwrap_or_default());
                }
            }
        }
    }

    /// Runs `claim` until it claims something or `wait` has passed, retrying whenever jobs are
    /// queued on `key` (a long poll without sleep loops).
    async fn until_claimed<T, F, Fut>(&self, key: &str, wait: Duration, mut claim: F) -> Result<Vec<T>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        let deadline = tokio::time::Instant::now() + wait;
        let ready = self.jobs_ready(key);
        loop {
            let notified = ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = claim().await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// One claim of up to `max` jobs of a queue, with their views and credentials. The claim
    /// commits first (on PostgreSQL it is one statement that commits on its own; on SQLite it
    /// joins the writer's group commit), and the views are built after it, outside SQLite's
    /// writer: they write nothing, and jobs whose views then cannot be built go back to the queue.
    async fn claim_views(&self, key: &str, max: i64) -> Result<Vec<JobView>> {
        let now = self.now_millis();
        let tenant = &self.account().account_id;
        let claimed = self.store().claim_jobs(key, tenant, max, now + DISPATCH_LEASE_MILLIS, now).await?;
        self.views_or_release(key, claimed).await
    }

    /// The views of jobs claimed by a statement that has committed; if they cannot be built,
    /// the jobs go back to the queue as they were before the claim.
    pub(crate) async fn views_or_release(&self, key: &str, claimed: Vec<JobRow>) -> Result<Vec<JobView>> {
        let claims: Vec<(String, String)> =
            claimed.iter().map(|job| (job.id.clone(), job.nonce.clone().unwrap_or_default())).collect();
        let mut views = Vec::with_capacity(claimed.len());
        for job in claimed {
            match self.view_of(job).await {
                Ok(view) => views.push(view),
                Err(err) => {
                    let claims: Vec<(&str, &str)> =
                        claims.iter().map(|(i, n)| (i.as_str(), n.as_str())).collect();
                    self.store().release_jobs(&claims, self.now_millis()).await?;
                    self.notify_queue(key);
                    return Err(err);
                }
            }
        }
        Ok(views)
    }

    /// The view of a claimed job, from what its row recorded or else from the rows it belongs to.
    async fn view_of(&self, job: JobRow) -> Result<JobView> {
        let input = match ViewInput::recorded(&job) {
            Some(input) => input,
            None => {
                let parts = self.job_parts(&job).await?;
                self.view_input(&job, parts)?
            }
        };
        self.job_view(job, input)
    }

    /// Sends jobs a committed transition claimed for a waiting long poll, as views built now,
    /// outside the transition's transaction. Jobs whose views cannot be built go back to the
    /// queue and the poll claims again; so do the jobs of a poll that has left.
    pub(crate) async fn deliver(&self, queue: &str, waiter: crate::handoff::Waiter, claimed: Vec<JobRow>) {
        let views = match self.views_or_release(queue, claimed).await {
            Ok(views) => views,
            Err(err) => {
                tracing::warn!(error = %err, queue, "jobs claimed for a waiting poll were put back");
                return;
            }
        };
        if let Err(views) = waiter.deliver(views) {
            // The claim is committed; a job not put back now returns when its lease ends.
            if let Err(err) = self.release_jobs(queue, &views).await {
                tracing::warn!(error = %err, queue, "putting back jobs of a poll that left failed");
            }
        }
    }

    /// Jobs claimed for a long poll that stopped waiting before they reached it go back to the
    /// queue as they were (no nonce, the attempt not counted), and the queue's polls wake.
    pub(crate) async fn release_jobs(&self, key: &str, views: &[JobView]) -> Result<()> {
        let claims: Vec<(&str, &str)> =
            views.iter().map(|v| (v.id.as_str(), v.nonce.as_deref().unwrap_or_default())).collect();
        self.store().release_jobs(&claims, self.now_millis()).await?;
        self.notify_queue(key);
        Ok(())
    }

    /// Relays what other processes on the same PostgreSQL database announce, until the
    /// connection cannot be had back: jobs they queued wake this process's long polls, action
    /// types they deleted are forgotten. Returns at once on SQLite.
    pub async fn relay_announcements(&self) -> Result<()> {
        let Some(mut listener) = self.store().announcements().await? else { return Ok(()) };
        // Deletions announced before the listener started went unheard.
        self.forget_action_types();
        loop {
            // An error means the connection could not be had back.
            match listener.try_recv().await.map_err(sluice_store::Error::from)? {
                Some(note) if note.channel() == DELETED_CHANNEL => self.forget_action_type(note.payload()),
                Some(note) => self.notify_queue(note.payload()),
                // The connection dropped; the next call makes it again. Deletions announced in
                // between are lost, so every kept type is read again when next used.
                None => self.forget_action_types(),
            }
        }
    }

    async fn job_row(&self, id: &str) -> Result<JobRow> {
        let job = self.store().job(id).await?.ok_or_else(|| job_not_found(id))?;
        if job.tenant != self.account().account_id {
            return Err(job_not_found(id));
        }
        Ok(job)
    }

    /// GetJobDetails: the job, with fresh artifact credentials while it is handed out.
    pub async fn job_details(&self, id: &str) -> Result<JobView> {
        let job = self.job_row(id).await?;
        let parts = self.job_parts(&job).await?;
        let input = self.view_input(&job, parts)?;
        self.job_view(job, input)
    }

    /// What a job's view is built from, read outside any transaction.
    async fn job_parts(&self, job: &JobRow) -> Result<JobParts> {
        let (execution_id, step_id) = job_links(job)?;
        let execution = self.store().execution(execution_id).await?.ok_or_else(|| job_not_found(&job.id))?;
        let step = self.store().step(step_id).await?.ok_or_else(|| job_not_found(&job.id))?;
        let (def, secrets) =
            self.definition_with_secrets(&execution.definition_name, execution.definition_version).await?;
        Ok(JobParts { execution, step, def, secrets })
    }

    /// What a job's view is built from, out of the rows it belongs to (secret configuration
    /// values included).
    fn view_input(&self, job: &JobRow, parts: JobParts) -> Result<ViewInput> {
        let JobParts { execution, step, def, secrets } = parts;
        let data = step_data(&step.data);
        let stage = step.position as usize;
        let action = def.spec.stages[stage]
            .actions
            .iter()
            .find(|a| a.name == step.name)
            .cloned()
            .ok_or_else(|| job_not_found(&job.id))?;
        let resolved = data.get("configuration").and_then(Value::as_object);
        let mut configuration: BTreeMap<String, String> = match resolved {
            Some(map) => map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
            None => action.configuration.clone(),
        };
        for (name, value) in secrets {
            let prefix = format!("{}/{}/", def.spec.stages[stage].name, action.name);
            if let Some(property) = name.strip_prefix(&prefix) {
                configuration.insert(property.to_string(), value);
            }
        }
        // Secret values were not part of the step's resolved configuration; resolve them now.
        let configuration = crate::executions::resolve_configuration(
            &configuration,
            &crate::executions::data_of(&execution.data),
        )
        .unwrap_or(configuration);
        Ok(ViewInput {
            timeout: job_timeout(&def, stage, &action.name),
            type_id: action.type_id.clone(),
            pipeline: def.name.clone(),
            stage: def.spec.stages[stage].name.clone(),
            action: action.name.clone(),
            configuration,
            input_artifacts: locations(data.get("inputArtifacts")),
            output_artifacts: locations(data.get("outputArtifacts")),
        })
    }

    /// A job as workers see it, with artifact credentials while it is handed out (claimed and
    /// not finished): they hold while it stays so under its present nonce.
    fn job_view(&self, job: JobRow, input: ViewInput) -> Result<JobView> {
        let (execution_id, step_id) = job_links(&job)?;
        let (execution_id, step_id) = (execution_id.to_string(), step_id.to_string());
        let credentials = job.nonce.as_deref().filter(|_| job.status.is_handed_out()).map(|nonce| {
            let objects = |list: &[ArtifactLocation]| {
                list.iter().map(|a| ObjectRef { bucket: a.bucket.clone(), key: a.key.clone() }).collect()
            };
            let scope =
                JobScope { read: objects(&input.input_artifacts), write: objects(&input.output_artifacts) };
            let expires = self.now_millis() + input.timeout + DISPATCH_LEASE_MILLIS;
            self.job_credentials(&job.id, nonce, &scope, expires)
        });
        Ok(JobView {
            id: job.id,
            nonce: job.nonce,
            status: job.status,
            action_type_id: input.type_id,
            configuration: input.configuration,
            pipeline_arn: self.account().pipeline_arn(&input.pipeline),
            pipeline_name: input.pipeline,
            pipeline_execution_id: execution_id,
            stage_name: input.stage,
            action_name: input.action,
            action_execution_id: step_id,
            input_artifacts: input.input_artifacts,
            output_artifacts: input.output_artifacts,
            credentials,
            continuation_token: job.continuation_token,
        })
    }

    /// AcknowledgeJob: the job's status after the acknowledgement.
    pub async fn acknowledge_job(&self, id: &str, nonce: &str) -> Result<JobStatus> {
        let now = self.now_millis();
        let tenant = &self.account().account_id;
        // The lease runs for the action's timeout, recorded on the job when it was queued.
        let outcome = self
            .store()
            .acknowledge_job_with_timeout(id, tenant, nonce, DEFAULT_JOB_TIMEOUT_MILLIS, now)
            .await?;
        match outcome {
            AckOutcome::Acknowledged | AckOutcome::AlreadyInProgress => Ok(JobStatus::InProgress),
            AckOutcome::NotFound => Err(job_not_found(id)),
            AckOutcome::NotDispatched(status) if status.is_final() => Ok(status),
            AckOutcome::InvalidNonce | AckOutcome::NotDispatched(_) => {
                Err(Error::InvalidNonce(format!("The nonce {nonce} is not valid for job {id}")))
            }
        }
    }

    /// Opens a transition for a job's pipeline and checks the job is in progress. The job, its
    /// execution and the pipeline version's declaration come from one read.
    async fn finishing(&self, id: &str) -> Result<Transition<'_>> {
        let context = self.store().job_in_context(id).await?;
        let JobContext { job, execution, declaration } =
            context.filter(|c| c.job.tenant == self.account().account_id).ok_or_else(|| job_not_found(id))?;
        if job.status != JobStatus::InProgress {
            return Err(Error::InvalidJobState(format!(
                "Job {id} is {}; only an acknowledged (InProgress) job can report a result",
                job.status
            )));
        }
        let execution = execution.ok_or_else(|| job_not_found(id))?;
        let def = self.stored_definition(
            &execution.definition_name,
            execution.definition_version,
            declaration.as_deref(),
        )?;
        // Locks the execution on a shared transition. The job may have changed since it was read
        // above: finishing it is a conditional update that refuses a job no longer in progress.
        self.transition_for_execution(def, &execution.id).await
    }

    /// PutJobSuccessResult.
    pub async fn put_job_success(&self, id: &str, success: JobSuccess) -> Result<()> {
        let mut t = self.finishing(id).await?;
        let now = t.now;
        let mut step = finish_job(&mut t, id, JobStatus::Succeeded, None).await?;
        let mut data = step_data(&step.data);
        for (field, value) in [
            ("summary", success.summary.clone().map(Value::from)),
            ("externalExecutionId", success.external_execution_id.clone().map(Value::from)),
            ("percentComplete", success.percent_complete.map(Value::from)),
        ] {
            if let Some(value) = value {
                data[field] = value;
            }
        }
        let execution = t.execution(&step.execution_id).await?;
        if let Some(token) = success.continuation_token.as_deref() {
            step.data = data.to_string();
            t.save_step(&step).await?;
            let def = t.def_of(execution.definition_version).await?;
            let stage = step.position as usize;
            let action = def.spec.stages[stage]
                .actions
                .iter()
                .find(|a| a.name == step.name)
                .cloned()
                .ok_or_else(|| job_not_found(id))?;
            t.enqueue_job(&def, &execution, &step, &action, Some(token)).await?;
        } else {
            if let Some(revision) = &success.revision {
                data["revision"] = json!(revision);
            }
            if !success.output_variables.is_empty() {
                data["outputVariables"] = json!(success.output_variables);
            }
            step.status = step_status::SUCCEEDED.into();
            step.finished_at = Some(now);
            step.data = data.to_string();
            t.save_step(&step).await?;
            t.record_outputs(&execution, &data).await?;
            t.step_done(&step);
            t.run().await?;
        }
        t.commit().await
    }

    /// Records a running job's progress on its action: the `summary` and `percentComplete` that
    /// GetPipelineState and ListActionExecutions show while the action runs. CodePipeline has
    /// no such call (a worker reports progress only with a result); this is Sluice's own worker
    /// protocol. The caller proves it holds the job with the nonce its poll got; the job stays
    /// in progress and its timeout is not extended.
    pub async fn put_job_progress(&self, id: &str, nonce: &str, progress: &JobProgress) -> Result<()> {
        let mut t = self.finishing(id).await?;
        // Read again under the execution's lock: a result or the sweeper may have ended it.
        let job = jobs::job_in(&mut t.tx, id).await?.ok_or_else(|| job_not_found(id))?;
        if job.nonce.as_deref() != Some(nonce) {
            return Err(Error::InvalidNonce(format!("The nonce {nonce} is not valid for job {id}")));
        }
        let (_, step_id) = job_links(&job)?;
        let mut step = rows::step_in(&mut t.tx, step_id).await?.ok_or_else(|| job_not_found(id))?;
        if job.status != JobStatus::InProgress || step.status != step_status::IN_PROGRESS {
            return Err(Error::InvalidJobState(format!("Job {id} is no longer in progress")));
        }
        let mut data = step_data(&step.data);
        if let Some(summary) = &progress.summary {
            data["summary"] = json!(summary);
        }
        if let Some(percent) = progress.percent_complete {
            data["percentComplete"] = json!(percent);
        }
        step.data = data.to_string();
        t.save_step(&step).await?;
        t.commit().await
    }

    /// PutJobFailureResult.
    pub async fn put_job_failure(&self, id: &str, failure_type: &str, message: &str) -> Result<()> {
        let mut t = self.finishing(id).await?;
        let step = finish_job(&mut t, id, JobStatus::Failed, Some(message)).await?;
        fail_step(&mut t, step, failure_type, message).await?;
        t.run().await?;
        t.commit().await
    }

    /// PutApprovalResult: Approved continues, Rejected fails the action. Returns when it was recorded.
    pub async fn put_approval_result(&self, actor: &Principal, approval: &Approval<'_>) -> Result<i64> {
        let Approval { pipeline, stage, action, token, approved, summary } = *approval;
        let def = self.definition(pipeline, None).await?;
        let mut t = self.transition(def).await?;
        let invalid = || {
            Error::InvalidApprovalToken(format!(
                "The approval token {token} is not valid for {pipeline}/{stage}/{action}"
            ))
        };
        let (_, step_id, resolved) = rows::wait_by_token(&mut t.tx, token).await?.ok_or_else(invalid)?;
        let mut step = rows::step_in(&mut t.tx, &step_id).await?.ok_or_else(invalid)?;
        let mut data = step_data(&step.data);
        let execution = t.execution(&step.execution_id).await?;
        let matches = execution.definition_name == pipeline
            && data.get("stage").and_then(Value::as_str) == Some(stage)
            && step.name == action;
        if !matches {
            return Err(invalid());
        }
        if resolved || step.status != step_status::IN_PROGRESS {
            return Err(Error::ApprovalAlreadyCompleted(format!(
                "The approval for {stage}/{action} is already complete"
            )));
        }
        let now = t.now;
        data["summary"] = json!(summary);
        data["approver"] = json!(actor.arn);
        data["approvalStatus"] = json!(if approved { "Approved" } else { "Rejected" });
        if !approved {
            data["errorDetails"] =
                json!({"code": "JobFailed", "message": format!("Rejected by {}: {summary}", actor.arn)});
        }
        step.status = if approved { step_status::SUCCEEDED } else { step_status::FAILED }.into();
        step.finished_at = Some(now);
        step.data = data.to_string();
        rows::update_step(&mut t.tx, &step).await?;
        rows::resolve_waits(&mut t.tx, &step.id, now).await?;
        t.step_done(&step);
        t.run().await?;
        t.commit().await?;
        Ok(now)
    }

    /// One pass of the sweeper: unacknowledged jobs back to the queue, overdue jobs and
    /// approvals fail their actions. Returns how many rows it changed.
    pub async fn sweep(&self) -> Result<u64> {
        let now = self.now_millis();
        let mut changed = self.store().requeue_unacknowledged(now).await?;
        if changed > 0 {
            self.notify_all_queues();
        }
        for job in self.store().time_out_expired(now).await? {
            changed += 1;
            if job.queue_key == crate::automation::JOB_QUEUE {
                self.time_out_automation_job(&job).await?;
                continue;
            }
            if job.queue_key == crate::cloudforet::SYNC_QUEUE {
                self.cf_time_out_sync(&job).await?;
                continue;
            }
            let (Some(execution), Some(step_id)) = (job.execution_id.as_deref(), job.step_id.as_deref())
            else {
                continue;
            };
            self.fail_from_sweeper(
                execution,
                step_id,
                "JobTimedOut",
                "The job was not finished before its timeout",
            )
            .await?;
        }
        for (execution, step_id) in self.store().due_waits("approval", now, 100).await? {
            changed += 1;
            self.fail_from_sweeper(&execution, &step_id, "JobFailed", "The approval timed out").await?;
        }
        changed += self.sweep_automations().await?;
        Ok(changed)
    }

    async fn fail_from_sweeper(
        &self,
        execution: &str,
        step_id: &str,
        code: &str,
        message: &str,
    ) -> Result<()> {
        let Some(row) = self.store().execution(execution).await? else { return Ok(()) };
        let def = self.definition(&row.definition_name, Some(row.definition_version)).await?;
        let mut t = self.transition(def).await?;
        if let Some(step) = rows::step_in(&mut t.tx, step_id).await? {
            fail_step(&mut t, step, code, message).await?;
        }
        rows::resolve_waits(&mut t.tx, step_id, t.now).await?;
        t.run().await?;
        t.commit().await
    }
}

/// Ends an in-progress job and returns its step (read in the same statement on PostgreSQL);
/// refused if the job is no longer in progress (the sweeper timed it out since it was read),
/// and then nothing of the result is kept.
async fn finish_job(
    t: &mut Transition<'_>,
    id: &str,
    status: JobStatus,
    error: Option<&str>,
) -> Result<StepRow> {
    let backend = t.backend();
    let pipeline = t.pipeline().to_string();
    let waiting = crate::executions::WAITING;
    match jobs::finish_in_stage(&mut t.tx, id, status, error, t.now, &pipeline, waiting, backend).await? {
        None => Err(Error::InvalidJobState(format!("Job {id} is no longer in progress"))),
        Some(None) => Err(job_not_found(id)),
        Some(Some(finished)) => {
            t.prime(&finished);
            Ok(finished.step)
        }
    }
}

async fn fail_step(t: &mut Transition<'_>, mut step: StepRow, code: &str, message: &str) -> Result<()> {
    if step.status != step_status::IN_PROGRESS {
        return Ok(());
    }
    let mut data = step_data(&step.data);
    data["errorDetails"] = json!({"code": code, "message": message});
    step.status = step_status::FAILED.into();
    step.finished_at = Some(t.now);
    step.data = data.to_string();
    t.save_step(&step).await?;
    t.step_done(&step);
    Ok(())
}

pub(crate) fn job_timeout(def: &crate::executions::Definition, stage: usize, action: &str) -> i64 {
    def.declaration["stages"][stage]["actions"]
        .as_array()
        .and_then(|actions| actions.iter().find(|a| a["name"] == action))
        .and_then(|a| a.get("timeoutInMinutes"))
        .and_then(Value::as_i64)
        .map(|minutes| minutes * 60_000)
        .unwrap_or(DEFAULT_JOB_TIMEOUT_MILLIS)
}

/// Third-party jobs: the same jobs, reached with the action type's client token.
impl Engine {
    /// PollForThirdPartyJobs: claims jobs of a third-party type; returns (client id, job id).
    pub async fn poll_third_party_jobs(
        &self,
        type_id: &ActionTypeId,
        max: i64,
        wait: Duration,
    ) -> Result<Vec<(String, String)>> {
        let Some(client) = self.store().third_party_client(type_id).await? else {
            return Err(Error::ActionTypeNotFound(format!(
                "No third-party action type {type_id} is registered"
            )));
        };
        let key = queue_key(type_id, None);
        let tenant = &self.account().account_id;
        let claimed = self
            .until_claimed(&key, wait, || async {
                let now = self.now_millis();
                Ok(self.store().claim_jobs(&key, tenant, max, now + DISPATCH_LEASE_MILLIS, now).await?)
            })
            .await?;
        Ok(claimed.into_iter().map(|job| (client.client_id.clone(), job.id)).collect())
    }

    /// Checks `client_token` against the client of the job's action type.
    async fn check_client_token(&self, job_id: &str, client_token: &str) -> Result<JobRow> {
        use subtle::ConstantTimeEq;
        let job = self.job_row(job_id).await?;
        let type_id = job.queue_key.split('|').next().unwrap_or_default().to_string();
        let invalid = || Error::InvalidClientToken(format!("The client token is not valid for job {job_id}"));
        let id = parse_type_id(&type_id).ok_or_else(invalid)?;
        let client = self.store().third_party_client(&id).await?.ok_or_else(invalid)?;
        let expected = self
            .secrets
            .open(&client.client_token_enc)
            .ok_or_else(|| Error::Internal(format!("client token of {type_id} cannot be decrypted")))?;
        if bool::from(expected.as_slice().ct_eq(client_token.as_bytes())) {
            Ok(job)
        } else {
            Err(invalid())
        }
    }

    pub async fn third_party_job_details(&self, job_id: &str, client_token: &str) -> Result<JobView> {
        self.check_client_token(job_id, client_token).await?;
        self.job_details(job_id).await
    }

    pub async fn acknowledge_third_party_job(
        &self,
        job_id: &str,
        nonce: &str,
        client_token: &str,
    ) -> Result<JobStatus> {
        self.check_client_token(job_id, client_token).await?;
        self.acknowledge_job(job_id, nonce).await
    }

    pub async fn put_third_party_success(
        &self,
        job_id: &str,
        client_token: &str,
        success: JobSuccess,
    ) -> Result<()> {
        self.check_client_token(job_id, client_token).await?;
        self.put_job_success(job_id, success).await
    }

    pub async fn put_third_party_failure(
        &self,
        job_id: &str,
        client_token: &str,
        kind: &str,
        message: &str,
    ) -> Result<()> {
        self.check_client_token(job_id, client_token).await?;
        self.put_job_failure(job_id, kind, message).await
    }
}

/// `Category/Owner/Provider/Version` back into an id.
fn parse_type_id(text: &str) -> Option<ActionTypeId> {
    let mut parts = text.split('/');
    let id = ActionTypeId {
        category: parts.next()?.parse().ok()?,
        owner: parts.next()?.parse().ok()?,
        provider: parts.next()?.to_string(),
        version: parts.next()?.to_string(),
    };
    parts.next().is_none().then_some(id)
}

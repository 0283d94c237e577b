//! The worker side of `aws:executeScript` and `aws:runCommand`: a `sluice worker --automation`
//! process long-polls the automation queue, acknowledges a job with its nonce (the lease then
//! runs for the step's timeout), may ask whether the job is still wanted (a cancelled execution
//! abandons it), and reports the result. No runbook code runs inside the server.

use std::time::Duration;

use serde_json::Value;
use sluice_core::job::JobStatus;
use sluice_store::jobs::{AckOutcome, JobRow};

use super::run::{Outcome, Run};
use super::JOB_QUEUE;
use crate::{Engine, Error, Principal, Result};

/// How long a polled job waits for its acknowledgement before it is offered again.
const ACK_WINDOW_MILLIS: i64 = 30_000;
/// Slack past a job's timeout before the sweeper ends it (the step timeout fires first).
const LEASE_GRACE_MILLIS: i64 = 30_000;

/// A job as a worker receives it.
#[derive(Debug, Clone)]
pub struct AutomationJob {
    pub id: String,
    pub nonce: String,
    pub execution_id: String,
    pub step_name: String,
    pub action: String,
    pub inputs: Value,
    pub timeout_seconds: u64,
}

/// What a worker reports.
#[derive(Debug, Clone)]
pub enum JobResult {
    /// The action's result: `{"Payload": …}` for a script; `{"CommandId", "Status",
    /// "ResponseCode", "Output"}` for a command.
    Success(Value),
    Failure(String),
}

fn job_data(job: &JobRow) -> Result<Value> {
    serde_json::from_str(&job.data).map_err(|_| Error::Internal("stored job data is not JSON".into()))
}

fn for_worker(job: JobRow) -> Result<AutomationJob> {
    let data = job_data(&job)?;
    let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(AutomationJob {
        nonce: job.nonce.clone().unwrap_or_default(),
        execution_id: text("executionId"),
        step_name: text("stepName"),
        action: text("action"),
        inputs: data.get("inputs").cloned().unwrap_or(Value::Null),
        timeout_seconds: data.get("timeoutSeconds").and_then(Value::as_u64).unwrap_or(600),
        id: job.id,
    })
}

fn not_found(id: &str) -> Error {
    Error::JobNotFound(format!("Automation job {id} does not exist"))
}

impl Engine {
    fn worker_allowed(&self, actor: &Principal) -> Result<()> {
        if actor.scope.is_some() {
            return Err(Error::AccessDenied("Job artifact credentials cannot run automation jobs".into()));
        }
        Ok(())
    }

    /// Up to `max` queued automation jobs, waiting up to `wait` for one to arrive.
    pub async fn poll_automation_jobs(
        &self,
        actor: &Principal,
        max: i64,
        wait: Duration,
    ) -> Result<Vec<AutomationJob>> {
        self.worker_allowed(actor)?;
        let deadline = tokio::time::Instant::now() + wait;
        let ready = self.jobs_ready(JOB_QUEUE);
        loop {
            let woken = ready.notified();
            let now = self.now_millis();
            let tenant = &self.account().account_id;
            let claimed =
                self.store().claim_jobs(JOB_QUEUE, tenant, max, now + ACK_WINDOW_MILLIS, now).await?;
            if !claimed.is_empty() || tokio::time::Instant::now() >= deadline {
                return claimed.into_iter().map(for_worker).collect();
            }
            let _ = tokio::time::timeout_at(deadline, woken).await;
        }
    }

    /// Acknowledges a polled job: it is the caller's until its timeout.
    pub async fn acknowledge_automation_job(&self, actor: &Principal, id: &str, nonce: &str) -> Result<()> {
        self.worker_allowed(actor)?;
        let job = self.automation_job(id).await?;
        let timeout = job_data(&job)?.get("timeoutSeconds").and_then(Value::as_i64).unwrap_or(600);
        let now = self.now_millis();
        let lease = now + timeout.saturating_mul(1000) + LEASE_GRACE_MILLIS;
        match self.store().acknowledge_job(id, nonce, lease, now).await? {
            AckOutcome::Acknowledged | AckOutcome::AlreadyInProgress => Ok(()),
            AckOutcome::NotFound => Err(not_found(id)),
            AckOutcome::InvalidNonce => {
                Err(Error::InvalidNonce(format!("The nonce does not match job {id}")))
            }
            AckOutcome::NotDispatched(status) => {
                Err(Error::InvalidJobState(format!("Job {id} is {}", status.as_str())))
            }
        }
    }

    /// The job's status, so a worker can stop work nobody wants any more.
    pub async fn automation_job_status(&self, actor: &Principal, id: &str) -> Result<JobStatus> {
        self.worker_allowed(actor)?;
        Ok(self.automation_job(id).await?.status)
    }

    /// A worker's result: the job ends and its step finishes in the same transaction.
    pub async fn complete_automation_job(
        &self,
        actor: &Principal,
        id: &str,
        nonce: &str,
        result: JobResult,
    ) -> Result<()> {
        self.worker_allowed(actor)?;
        let mut run = Run::open(self).await?;
        let job = sluice_store::jobs::job_in(&mut run.tx, id).await?;
        let job = job.filter(|job| job.queue_key == JOB_QUEUE && job.tenant == self.account().account_id);
        let job = job.ok_or_else(|| not_found(id))?;
        if job.nonce.as_deref() != Some(nonce) {
            return Err(Error::InvalidNonce(format!("The nonce does not match job {id}")));
        }
        if job.status != JobStatus::InProgress {
            return Err(Error::InvalidJobState(format!("Job {id} is {}", job.status.as_str())));
        }
        let outcome = match result {
            JobResult::Success(value) => Outcome::Success(value),
            JobResult::Failure(message) => Outcome::failed(message),
        };
        run.job_finished(&job, outcome).await?;
        run.commit().await
    }

    async fn automation_job(&self, id: &str) -> Result<JobRow> {
        let job = self.store().job(id).await?;
        job.filter(|job| job.queue_key == JOB_QUEUE && job.tenant == self.account().account_id)
            .ok_or_else(|| not_found(id))
    }

    /// Ends an automation job the sweeper found past its lease.
    pub(crate) async fn time_out_automation_job(&self, job: &JobRow) -> Result<()> {
        let mut run = Run::open(self).await?;
        if let (Some(execution), Some(step)) = (&job.execution_id, &job.step_id) {
            match run.live(execution).await {
                Ok(_) => run.finish(execution, step, Outcome::timed_out("The job did not finish in time")),
                Err(Error::AutomationExecutionNotFound(_)) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
        run.commit().await
    }
}

//! The job queue: jobs wait `Queued` under a queue key, a poll claims a batch (`Dispatched`,
//! fresh nonce, lease), the worker acknowledges with the nonce (`InProgress`, new lease) and
//! finishes (`Succeeded` / `Failed`). Expired leases go back to the queue (dispatched, never
//! acknowledged) or time out (in progress). A claim is one statement; on PostgreSQL it skips rows
//! other claimers hold (`FOR UPDATE SKIP LOCKED`), so any number of servers can poll one database
//! and no job is handed to two workers.

use sluice_core::job::JobStatus;

use crate::executions::{ExecutionRow, StepRow};
use crate::sql::{self, Columns};

use crate::{Backend, Error, Result, Store, Tx};

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub queue_key: &'a str,
    pub tenant: &'a str,
    pub data: &'a str,
    pub execution_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub continuation_token: Option<&'a str>,
    /// How long the job may run once acknowledged ([`Store::acknowledge_job_with_timeout`]);
    /// None: the caller's default.
    pub timeout_millis: Option<i64>,
    pub at: i64,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub queue_key: String,
    pub tenant: String,
    pub status: JobStatus,
    pub nonce: Option<String>,
    pub lease_until: Option<i64>,
    pub attempt: i64,
    pub continuation_token: Option<String>,
    pub data: String,
    pub execution_id: Option<String>,
    pub step_id: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A job, its execution and the stored declaration that execution runs
/// ([`Store::job_in_context`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    pub job: JobRow,
    pub execution: Option<ExecutionRow>,
    pub declaration: Option<String>,
}

/// What an acknowledgement found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Dispatched with this nonce; now in progress.
    Acknowledged,
    /// Already acknowledged with this nonce (acknowledging again changes nothing).
    AlreadyInProgress,
    InvalidNonce,
    NotFound,
    /// In a status that cannot be acknowledged.
    NotDispatched(JobStatus),
}

const COLUMNS: &str = "id, queue_key, tenant, status, nonce, lease_until, attempt, continuation_token, \
                       data, execution_id, step_id, error, created_at, updated_at";

pub(crate) fn decode(row: &impl Columns) -> Result<JobRow> {
    let status: String = row.try_get(3)?;
    Ok(JobRow {
        id: row.try_get(0)?,
        queue_key: row.try_get(1)?,
        tenant: row.try_get(2)?,
        status: status.parse().map_err(Error::Corrupt)?,
        nonce: row.try_get(4)?,
        lease_until: row.try_get(5)?,
        attempt: row.try_get(6)?,
        continuation_token: row.try_get(7)?,
        data: row.try_get(8)?,
        execution_id: row.try_get(9)?,
        step_id: row.try_get(10)?,
        error: row.try_get(11)?,
        created_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
    })
}

/// Claimed jobs in queue order (RETURNING gives no order).
pub(crate) fn sorted(jobs: Result<Vec<JobRow>>) -> Result<Vec<JobRow>> {
    let mut jobs = jobs?;
    jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(jobs)
}

/// Enqueues a job inside `tx` (status `Queued`).
pub async fn insert(tx: &mut Tx<'_>, job: &NewJob<'_>) -> Result<()> {
    insert_as(tx, job, None).await
}

/// Enqueues a job inside `tx` already claimed, as a claim would leave it: `Dispatched` with
/// `nonce`, attempt 1 and a lease until `lease_until` (a job handed straight to a waiting poll).
/// Returns the row as stored.
pub async fn insert_dispatched(
    tx: &mut Tx<'_>,
    job: &NewJob<'_>,
    nonce: &str,
    lease_until: i64,
) -> Result<JobRow> {
    insert_as(tx, job, Some((nonce, lease_until))).await?;
    Ok(JobRow {
        id: job.id.to_string(),
        queue_key: job.queue_key.to_string(),
        tenant: job.tenant.to_string(),
        status: JobStatus::Dispatched,
        nonce: Some(nonce.to_string()),
        lease_until: Some(lease_until),
        attempt: 1,
        continuation_token: job.continuation_token.map(str::to_string),
        data: job.data.to_string(),
        execution_id: job.execution_id.map(str::to_string),
        step_id: job.step_id.map(str::to_string),
        error: None,
        created_at: job.at,
        updated_at: job.at,
    })
}

async fn insert_as(tx: &mut Tx<'_>, job: &NewJob<'_>, claim: Option<(&str, i64)>) -> Result<()> {
    let status = if claim.is_some() { JobStatus::Dispatched } else { JobStatus::Queued };
    sql::query(
        "INSERT INTO jobs (id, queue_key, tenant, status, attempt, continuation_token, data,
                           execution_id, step_id, created_at, updated_at, timeout_millis, nonce, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)",
    )
    .bind(job.id)
    .bind(job.queue_key)
    .bind(job.tenant)
    .bind(status.as_str())
    .bind(i64::from(claim.is_some()))
    .bind(job.continuation_token)
    .bind(job.data)
    .bind(job.execution_id)
    .bind(job.step_id)
    .bind(job.at)
    .bind(job.timeout_millis)
    .bind(claim.map(|(nonce, _)| nonce))
    .bind(claim.map(|(_, lease)| lease))
    .defer(tx)
    .await
}

/// The conditional update that finishes a job: `$1` id, `$2` final status, `$3` error, `$4` time;
/// it changes nothing if the job was not in progress.
macro_rules! finish_update {
    () => {
        "UPDATE jobs SET status = $2, error = $3, lease_until = NULL, updated_at = $4
         WHERE id = $1 AND status = 'InProgress'"
    };
}

/// [`finish_update`] returning the job's step id (no row if the job was not in progress).
const FINISH: &str = concat!(finish_update!(), " RETURNING step_id");

/// Moves an in-progress job to a final status inside `tx`; false if it was not in progress.
pub async fn finish(
    tx: &mut Tx<'_>,
    id: &str,
    status: JobStatus,
    error: Option<&str>,
    at: i64,
) -> Result<bool> {
    debug_assert!(status.is_final());
    let query = sql::query(finish_update!()).bind(id).bind(status.as_str()).bind(error).bind(at);
    Ok(query.execute(&mut *tx).await? == 1)
}

/// [`FINISH`] on SQLite, as a read of the step id and an update without `RETURNING`: SQLite
/// collects returned rows in a temporary b-tree it opens and closes for each statement, which
/// costs more than the read (the one writer keeps the job in progress in between). None if the
/// job was not in progress; else its step id.
async fn finish_on_sqlite(
    tx: &mut Tx<'_>,
    id: &str,
    status: JobStatus,
    error: Option<&str>,
    at: i64,
) -> Result<Option<Option<String>>> {
    let read = sql::query("SELECT step_id FROM jobs WHERE id = $1 AND status = 'InProgress'").bind(id);
    let Some(row) = read.fetch_optional(&mut *tx).await? else { return Ok(None) };
    sql::query(finish_update!())
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(Some(row.try_get(0)?))
}

/// What a job result reads with the finish of its job ([`finish_in_stage`]): what deciding
/// the stage's next move needs, read after the transition's locks are held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    /// The job's step.
    pub step: StepRow,
    /// Every step of the execution at the step's position (its stage), in start order.
    pub stage_steps: Vec<StepRow>,
    /// The stages of the job's pipeline whose inbound transition is disabled.
    pub disabled: Vec<String>,
    /// Whether an in-progress execution of the pipeline waits in `waiting_state` to enter the
    /// step's stage.
    pub waiters: bool,
}

/// [`finish`] and then, for the transition that follows, the job's step, the other steps of
/// its stage, the pipeline's disabled transitions and whether executions wait to enter the
/// stage (in `waiting_state`): one statement on PostgreSQL (on SQLite, five). None if the job
/// was not in progress (nothing changed); else None inside if the job has no step.
#[allow(clippy::too_many_arguments)]
pub async fn finish_in_stage(
    tx: &mut Tx<'_>,
    id: &str,
    status: JobStatus,
    error: Option<&str>,
    at: i64,
    pipeline: &str,
    waiting_state: &str,
    backend: Backend,
) -> Result<Option<Option<FinishedJob>>> {
    debug_assert!(status.is_final());
    let finish = |sql| sql::query(sql).bind(id).bind(status.as_str()).bind(error).bind(at);
    if backend == Backend::Sqlite {
        let Some(step_id) = finish_on_sqlite(tx, id, status, error, at).await? else { return Ok(None) };
        let Some(step_id) = step_id else { return Ok(Some(None)) };
        let Some(step) = crate::executions::step_in(tx, &step_id).await? else { return Ok(Some(None)) };
        let stage_steps = crate::executions::steps_at(tx, &step.execution_id, step.position).await?;
        let disabled = sql::query_owned(disabled_sql("$1")).bind(pipeline).fetch_all(&mut *tx).await?;
        let disabled = disabled.iter().map(|r| r.try_get(0)).collect::<Result<Vec<String>>>()?;
        let waiters = sql::query_owned(format!("{} LIMIT 1", waiters_sql("$1", "$2", "$3")));
        let waiters = waiters.bind(pipeline).bind(step.position).bind(waiting_state);
        let waiters = waiters.fetch_optional(&mut *tx).await?.is_some();
        return Ok(Some(Some(FinishedJob { step, stage_steps, disabled, waiters })));
    }
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let step_columns = crate::executions::STEP_COLUMNS.split(',').map(|c| format!("s.{}", c.trim()));
        format!(
            "WITH finished AS ({FINISH}),
                  me AS (SELECT s.execution_id, s.position FROM finished JOIN steps s ON s.id = finished.step_id)
             SELECT finished.step_id, {},
                    (SELECT string_agg(stage, E'\\n') FROM ({}) d),
                    CASE WHEN EXISTS (SELECT 1 FROM me WHERE EXISTS ({})) THEN 1 ELSE 0 END
             FROM finished LEFT JOIN me ON TRUE
                  LEFT JOIN steps s ON s.execution_id = me.execution_id AND s.position = me.position
             ORDER BY s.started_at, s.id",
            step_columns.collect::<Vec<_>>().join(", "),
            disabled_sql("$5"),
            waiters_sql("$5", "me.position", "$6"),
        )
    });
    let rows = finish(&SQL).bind(pipeline).bind(waiting_state).fetch_all(&mut *tx).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let Some(step_id) = first.try_get::<Option<String>>(0)? else { return Ok(Some(None)) };
    let columns = crate::executions::STEP_COLUMNS.split(',').count();
    if first.try_get::<Option<String>>(1)?.is_none() {
        return Ok(Some(None));
    }
    let stage_steps =
        rows.iter().map(|row| crate::executions::decode_step_at(row, 1)).collect::<Result<Vec<_>>>()?;
    let disabled: Option<String> = first.try_get(1 + columns)?;
    let disabled = disabled.map(|d| d.split('\n').map(str::to_string).collect()).unwrap_or_default();
    let waiters = first.try_get::<i64>(2 + columns)? == 1;
    let Some(step) = stage_steps.iter().find(|s| s.id == step_id).cloned() else { return Ok(Some(None)) };
    Ok(Some(Some(FinishedJob { step, stage_steps, disabled, waiters })))
}

/// The stages of pipeline `pipeline` (a placeholder) whose inbound transition is disabled.
fn disabled_sql(pipeline: &str) -> String {
    format!("SELECT stage FROM stage_transitions WHERE pipeline = {pipeline} AND enabled = 0")
}

/// Rows if an in-progress execution of `pipeline` waits (stage state `state`) to enter stage
/// `stage` (each a placeholder or a column).
fn waiters_sql(pipeline: &str, stage: &str, state: &str) -> String {
    format!(
        "SELECT 1 FROM executions WHERE kind = 'pipeline' AND definition_name = {pipeline}
           AND stage_index = {stage} AND stage_state = {state} AND status = 'InProgress'"
    )
}

/// Puts a dispatched job back in the queue as if its claim had not happened (no nonce, the
/// attempt not counted): `$1` id, `$2` the claim's nonce, `$3` time. A job since acknowledged
/// or claimed again is left alone.
pub(crate) const RELEASE: &str = "UPDATE jobs SET status = 'Queued', nonce = NULL, lease_until = NULL,
                                      attempt = attempt - 1, updated_at = $3
                                  WHERE id = $1 AND nonce = $2 AND status = 'Dispatched'";

/// Fails the unfinished jobs of step `$1` at `$2`. The status condition is the predicate of
/// the `jobs_open_by_step` index, written the same way so that SQLite uses the index.
const ABANDON: &str =
    "UPDATE jobs SET status = 'Failed', error = 'The action was abandoned', lease_until = NULL, updated_at = $2
     WHERE step_id = $1 AND (status = 'Queued' OR status = 'Dispatched' OR status = 'InProgress')
     RETURNING id";

/// Fails every unfinished job of a step (its action was abandoned); returns their ids.
pub async fn abandon_for_step(tx: &mut Tx<'_>, step_id: &str, at: i64) -> Result<Vec<String>> {
    let rows = sql::query(ABANDON).bind(step_id).bind(at).fetch_all(&mut *tx).await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// A job read inside a transaction.
pub async fn job_in(tx: &mut Tx<'_>, id: &str) -> Result<Option<JobRow>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row = sql::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode).transpose()
}

/// The largest claim on SQLite made by [`claim_by_row`]; larger ones are one statement.
const LARGEST_CLAIM_BY_ROW: i64 = 4;

/// A small claim on SQLite, inside the writer's transaction `tx`: up to `max` queued jobs of the
/// queue read in queue order, then each updated by rowid with a fresh nonce (the one writer
/// keeps them queued in between) and returned as the update left it. The single
/// `UPDATE … IN (SELECT …) RETURNING` of [`Store::claim_sql`] makes SQLite open, fill and close
/// two temporary b-trees per claim (the subquery's ids and the returned rows): B1 (claims of
/// one) spent 3% less of the writer's time with this, while B1b (claims of 100) spent 10% more,
/// two statements per job costing more than the temporary b-trees.
async fn claim_by_row(tx: &mut Tx<'_>, claim: &crate::claims::Claim) -> Result<Vec<JobRow>> {
    static PICK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT rowid, {COLUMNS} FROM jobs WHERE queue_key = $1 AND tenant = $2 AND status = 'Queued'
             ORDER BY created_at, id LIMIT $3"
        )
    });
    let picked = sql::query(&PICK)
        .bind(claim.queue_key.as_str())
        .bind(claim.tenant.as_str())
        .bind(claim.max)
        .fetch_all(&mut *tx)
        .await?;
    let mut jobs = Vec::with_capacity(picked.len());
    for row in picked {
        let rowid: i64 = row.try_get(0)?;
        let mut job = decode(&sql::Part { row: &row, from: 1 })?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        sql::query(
            "UPDATE jobs SET status = 'Dispatched', nonce = $2, lease_until = $3,
                 attempt = attempt + 1, updated_at = $4
             WHERE rowid = $1",
        )
        .bind(rowid)
        .bind(nonce.as_str())
        .bind(claim.lease_until)
        .bind(claim.now)
        .execute(&mut *tx)
        .await?;
        job.status = JobStatus::Dispatched;
        job.nonce = Some(nonce);
        job.lease_until = Some(claim.lease_until);
        job.attempt += 1;
        job.updated_at = claim.now;
        jobs.push(job);
    }
    Ok(jobs)
}

impl Store {
    fn random_nonce_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "lower(hex(randomblob(16)))",
            Backend::Postgres => "md5(random()::text || clock_timestamp()::text || id)",
        }
    }

    /// The claim statement: up to `$3` queued jobs of queue `$1` and tenant `$2`, oldest first,
    /// become `Dispatched` with a fresh nonce, `attempt + 1` and a lease until `$4`.
    pub(crate) fn claim_sql(&self) -> String {
        // SQLite has one writer, so the subquery's rows are still queued when the update runs;
        // re-checking the status there would make SQLite scan every queued job by its status
        // index instead of looking the claimed ids up by key (measured: 180-300 us a claim).
        // On PostgreSQL the picked ids are an array computed once: as `IN (subquery)` the
        // planner may rescan the subquery per row, and each rescan with SKIP LOCKED picks
        // further jobs (seen with the partial claim index: a claim of 2 took 3). The subquery
        // locks the rows it picks, re-checking them on their latest version, so they are
        // still queued when the update runs. The update must not re-check the status: that
        // condition implies the claim index's predicate, and a generic plan made while the
        // table was small then found the ids by scanning every queued job through that index
        // (seen in a B1 run: 1,600-2,500 rows filtered out per claim) instead of by key.
        let (open, close) = match self.backend() {
            Backend::Sqlite => ("IN (", ")"),
            Backend::Postgres => ("= ANY(ARRAY(", " FOR UPDATE SKIP LOCKED))"),
        };
        format!(
            "UPDATE jobs SET status = 'Dispatched', nonce = {nonce}, lease_until = $4,
                 attempt = attempt + 1, updated_at = $5
             WHERE id {open}SELECT id FROM jobs
                          WHERE queue_key = $1 AND tenant = $2 AND status = 'Queued'
                          ORDER BY created_at, id LIMIT $3{close}
             RETURNING {COLUMNS}",
            nonce = self.random_nonce_sql()
        )
    }

    /// The claim statement with its values bound.
    fn claim_query(
        &self,
        queue_key: &str,
        tenant: &str,
        max: i64,
        lease_until: i64,
        now: i64,
    ) -> sql::Query<'static> {
        sql::query_owned(self.claim_sql()).bind(queue_key).bind(tenant).bind(max).bind(lease_until).bind(now)
    }

    /// Claims up to `max` queued jobs of a queue, oldest first: each becomes `Dispatched` with a
    /// fresh nonce, `attempt + 1` and a lease until `lease_until`. On PostgreSQL concurrent small
    /// claims of a queue share one statement and its commit ([`crate::claims`]).
    pub async fn claim_jobs(
        &self,
        queue_key: &str,
        tenant: &str,
        max: i64,
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<JobRow>> {
        let (queue_key, tenant) = (queue_key.to_string(), tenant.to_string());
        let claim = crate::claims::Claim { queue_key, tenant, max, lease_until, now };
        if let Some(claims) = self.claims.as_ref().filter(|_| max <= crate::claims::LARGEST_SHARED) {
            return claims.claim(claim).await;
        }
        let query = || self.claim_query(&claim.queue_key, &claim.tenant, max, lease_until, now);
        if self.backend() == Backend::Postgres {
            return sorted(query().fetch_all(self.pool()).await?.iter().map(decode).collect());
        }
        // On SQLite a claim that found nothing rolls back at once instead of waiting for the
        // group's commit: it changed nothing, and an empty answer promises nothing either.
        let mut tx = self.begin().await?;
        let jobs = if max <= LARGEST_CLAIM_BY_ROW {
            claim_by_row(&mut tx, &claim).await?
        } else {
            sorted(query().fetch_all(&mut tx).await?.iter().map(decode).collect())?
        };
        if !jobs.is_empty() {
            tx.commit().await?;
        }
        Ok(jobs)
    }

    /// Claims the given jobs inside `tx` where they are still queued, as [`Store::claim_jobs`]
    /// does: a transition hands the jobs it queued to polls that wait for them.
    pub async fn claim_jobs_by_id_in(
        &self,
        tx: &mut Tx<'_>,
        ids: &[String],
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<JobRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The status is a parameter: a literal `'Queued'` would imply the claim index's
        // predicate and let a generic plan find the ids by scanning every queued job (see
        // `claim_sql`) rather than by key.
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
        let statement = format!(
            "UPDATE jobs SET status = 'Dispatched', nonce = {nonce}, lease_until = $1,
                 attempt = attempt + 1, updated_at = $2
             WHERE id IN ({list}) AND status = $3
             RETURNING {COLUMNS}",
            nonce = self.random_nonce_sql(),
            list = list.join(", ")
        );
        let mut query =
            sql::query_owned(statement).bind(lease_until).bind(now).bind(JobStatus::Queued.as_str());
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(tx).await?;
        sorted(rows.iter().map(decode).collect())
    }

    /// Acknowledges a dispatched job with its nonce; it stays leased until `lease_until`.
    pub async fn acknowledge_job(
        &self,
        id: &str,
        nonce: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<AckOutcome> {
        let done = self
            .write(
                sql::query(
                    "UPDATE jobs SET status = 'InProgress', lease_until = $3, updated_at = $4
             WHERE id = $1 AND nonce = $2 AND status = 'Dispatched'",
                )
                .bind(id)
                .bind(nonce)
                .bind(lease_until)
                .bind(now),
            )
            .await?;
        if done == 1 {
            return Ok(AckOutcome::Acknowledged);
        }
        self.why_not_acknowledged(id, None, nonce).await
    }

    /// Acknowledges a dispatched job of `tenant` with its nonce, in one statement: it stays
    /// leased for the run timeout it was queued with (`default_timeout` if none). A job of
    /// another tenant is not found.
    pub async fn acknowledge_job_with_timeout(
        &self,
        id: &str,
        tenant: &str,
        nonce: &str,
        default_timeout: i64,
        now: i64,
    ) -> Result<AckOutcome> {
        if let Some(acks) = &self.acks {
            let ack = crate::acks::Ack {
                id: id.to_string(),
                nonce: nonce.to_string(),
                tenant: tenant.to_string(),
                now,
                default_timeout,
            };
            if acks.acknowledge(ack).await? {
                return Ok(AckOutcome::Acknowledged);
            }
            return self.why_not_acknowledged(id, Some(tenant), nonce).await;
        }
        let done = self
            .write(
                sql::query(
                    "UPDATE jobs SET status = 'InProgress', lease_until = $4 + COALESCE(timeout_millis, $5),
                         updated_at = $4
                     WHERE id = $1 AND nonce = $2 AND status = 'Dispatched' AND tenant = $3",
                )
                .bind(id)
                .bind(nonce)
                .bind(tenant)
                .bind(now)
                .bind(default_timeout),
            )
            .await?;
        if done == 1 {
            return Ok(AckOutcome::Acknowledged);
        }
        self.why_not_acknowledged(id, Some(tenant), nonce).await
    }

    /// What an acknowledgement that changed nothing found (a job of another tenant than
    /// `tenant`, if given, is not found).
    async fn why_not_acknowledged(&self, id: &str, tenant: Option<&str>, nonce: &str) -> Result<AckOutcome> {
        let job = self.job(id).await?.filter(|job| tenant.is_none_or(|t| job.tenant == t));
        let Some(job) = job else {
            return Ok(AckOutcome::NotFound);
        };
        Ok(match (job.status, job.nonce.as_deref() == Some(nonce)) {
            (JobStatus::InProgress, true) => AckOutcome::AlreadyInProgress,
            (JobStatus::Dispatched | JobStatus::InProgress, false) => AckOutcome::InvalidNonce,
            (status, _) => AckOutcome::NotDispatched(status),
        })
    }

    /// A job with the execution it belongs to and the declaration of the pipeline version that
    /// execution runs, in one read (a result needs all three before its transaction).
    pub async fn job_in_context(&self, id: &str) -> Result<Option<JobContext>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let columns = |list: &str, table: &str| {
                list.split(',').map(|c| format!("{table}.{}", c.trim())).collect::<Vec<_>>().join(", ")
            };
            format!(
                "SELECT {}, {}, v.declaration FROM jobs j
                 LEFT JOIN executions e ON e.id = j.execution_id
                 LEFT JOIN pipeline_versions v ON v.name = e.definition_name AND v.version = e.definition_version
                 WHERE j.id = $1",
                columns(COLUMNS, "j"),
                columns(crate::executions::EXECUTION_COLUMNS, "e"),
            )
        });
        let Some(row) = sql::query(&SQL).bind(id).fetch_optional(self.reads()).await? else {
            return Ok(None);
        };
        let job = decode(&row)?;
        let from = COLUMNS.split(',').count();
        let execution_part = sql::Part { row: &row, from };
        let execution = match execution_part.try_get::<Option<String>>(0)? {
            Some(_) => Some(crate::executions::decode_execution(&execution_part)?),
            None => None,
        };
        let declaration_at = from + crate::executions::EXECUTION_COLUMNS.split(',').count();
        let declaration = row.try_get(declaration_at)?;
        Ok(Some(JobContext { job, execution, declaration }))
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRow>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row = sql::query(&sql).bind(id).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode).transpose()
    }

    /// Dispatched jobs whose lease ran out go back to the queue without a nonce (the next poll
    /// issues a new one). Returns how many.
    pub async fn requeue_unacknowledged(&self, now: i64) -> Result<u64> {
        self.write(
            sql::query(
                "UPDATE jobs SET status = 'Queued', nonce = NULL, lease_until = NULL, updated_at = $1
                 WHERE status = 'Dispatched' AND lease_until < $1",
            )
            .bind(now),
        )
        .await
    }

    /// Puts dispatched jobs back in the queue as if their claims (`(id, nonce)`) had not happened
    /// (no nonce, the attempt not counted), in one transaction: the poll they were claimed for
    /// never got them. A job since acknowledged or claimed again is left alone. Returns how many
    /// went back.
    pub async fn release_jobs(&self, claims: &[(&str, &str)], now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut released = 0;
        for (id, nonce) in claims {
            released += sql::query(RELEASE).bind(*id).bind(*nonce).bind(now).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    /// Removes dead row versions of the queue's tables on PostgreSQL (nothing on SQLite, whose
    /// b-trees drop an updated row's old entries at once). Every claim moves a job out of the
    /// `Queued` range of the claim index, but the entry of its old version stays there, oldest
    /// first, until VACUUM removes it; each claim walks past all of them, so claims slowed down
    /// as a run grew (B1 on PostgreSQL: 358 jobs/s over 5,000 jobs, about 100 over 20,000).
    /// SKIP_LOCKED: a replica already vacuuming makes this a no-op.
    pub async fn vacuum_queue(&self) -> Result<()> {
        if self.backend() == Backend::Postgres {
            sql::query("VACUUM (SKIP_LOCKED) jobs, executions, steps").execute(self.pool()).await?;
        }
        Ok(())
    }

    /// In-progress jobs whose lease ran out become `TimedOut`; returns them.
    pub async fn time_out_expired(&self, now: i64) -> Result<Vec<JobRow>> {
        let sql = format!(
            "UPDATE jobs SET status = 'TimedOut', lease_until = NULL, updated_at = $1,
                 error = 'The job was not finished before its timeout'
             WHERE status = 'InProgress' AND lease_until < $1
             RETURNING {COLUMNS}"
        );
        let rows = self.write_returning(sql::query(&sql).bind(now)).await?;
        rows.iter().map(decode).collect()
    }
}

/// The PostgreSQL channel that carries the queue keys of newly queued jobs.
pub const ANNOUNCE_CHANNEL: &str = "sluice_jobs";

/// Announces, when `tx` commits, that jobs were queued on `queue_key`, so that long polls in
/// other server processes on the same PostgreSQL database wake. Nothing on SQLite.
pub async fn announce_in(tx: &mut Tx<'_>, backend: Backend, queue_key: &str) -> Result<()> {
    if backend == Backend::Postgres {
        sql::query("SELECT pg_notify($1, $2)").bind(ANNOUNCE_CHANNEL).bind(queue_key).defer(tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The opcodes SQLite compiles `statement` to, or its query plan with `EXPLAIN QUERY PLAN`.
    async fn explain(store: &Store, statement: &str, column: usize) -> Vec<String> {
        let mut tx = store.begin().await.unwrap();
        let explained = tx.with_lite(|conn| {
            let mut stmt = conn.prepare(statement).unwrap();
            // Parameters left unbound are NULL, which does not change what the statement compiles to.
            let mut rows = stmt.raw_query();
            let mut column_values = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                column_values.push(row.get::<_, String>(column).unwrap());
            }
            column_values
        });
        explained.expect("a SQLite store")
    }

    /// Every write of a job checks `jobs_open_by_step`'s predicate for the old and the new row.
    /// An IN list there made SQLite build a temporary b-tree for each check (migration 0017);
    /// the abandon of a step's jobs must still find them through the index.
    #[tokio::test]
    async fn job_writes_check_the_open_jobs_predicate_without_temporary_tables() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("sluice.db"))).await.unwrap();
        for statement in [finish_update!(), RELEASE, "UPDATE jobs SET status = 'InProgress' WHERE id = $1"] {
            let opcodes = explain(&store, &format!("EXPLAIN {statement}"), 1).await;
            assert!(!opcodes.iter().any(|op| op == "OpenEphemeral"), "{statement}: {opcodes:?}");
        }
        let plan = explain(&store, &format!("EXPLAIN QUERY PLAN {ABANDON}"), 3).await;
        assert!(plan.iter().any(|step| step.contains("jobs_open_by_step")), "{plan:?}");
        store.close().await;
    }
}

//! Executions and their steps (pipeline executions and action executions today). Transitions
//! run inside one transaction the engine opens; [`lock_pipeline`] serialises the transitions of
//! one pipeline on PostgreSQL, [`share_pipeline`] lets PARALLEL ones share it while each locks
//! its execution ([`lock_and_read_execution`]). On SQLite one writer runs one transaction at a
//! time, so these order nothing there.

use crate::sql::{self, Columns, Row};

use crate::{Result, Store, Tx};

/// One execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRow {
    pub id: String,
    pub kind: String,
    pub tenant: String,
    pub definition_name: String,
    pub definition_version: i64,
    pub status: String,
    pub client_token: Option<String>,
    pub data: String,
    pub stage_index: i64,
    pub stage_state: String,
    /// The execution that started this one (an automation's `aws:executeAutomation` parent).
    pub parent_id: Option<String>,
    /// Where an automation is: its current step and that step's action.
    pub current_step: Option<String>,
    pub current_action: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// One step (an action execution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub id: String,
    pub execution_id: String,
    pub name: String,
    pub position: i64,
    pub status: String,
    pub attempt: i64,
    pub data: String,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

pub(crate) const EXECUTION_COLUMNS: &str =
    "id, kind, tenant, definition_name, definition_version, status, client_token, \
     data, stage_index, stage_state, created_at, updated_at, finished_at, parent_id, current_step, \
     current_action";
pub(crate) const STEP_COLUMNS: &str =
    "id, execution_id, name, position, status, attempt, data, error, started_at, finished_at";

pub(crate) fn decode_execution(row: &impl Columns) -> Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        tenant: row.try_get(2)?,
        definition_name: row.try_get(3)?,
        definition_version: row.try_get::<Option<i64>>(4)?.unwrap_or(0),
        status: row.try_get(5)?,
        client_token: row.try_get(6)?,
        data: row.try_get(7)?,
        stage_index: row.try_get::<Option<i64>>(8)?.unwrap_or(0),
        stage_state: row.try_get::<Option<String>>(9)?.unwrap_or_default(),
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        finished_at: row.try_get(12)?,
        parent_id: row.try_get(13)?,
        current_step: row.try_get(14)?,
        current_action: row.try_get(15)?,
    })
}

pub(crate) fn decode_step(row: &impl Columns) -> Result<StepRow> {
    decode_step_at(row, 0)
}

/// A step from [`STEP_COLUMNS`] starting at column `first`.
pub(crate) fn decode_step_at(row: &impl Columns, first: usize) -> Result<StepRow> {
    Ok(StepRow {
        id: row.try_get(first)?,
        execution_id: row.try_get(first + 1)?,
        name: row.try_get(first + 2)?,
        position: row.try_get(first + 3)?,
        status: row.try_get(first + 4)?,
        attempt: row.try_get(first + 5)?,
        data: row.try_get(first + 6)?,
        error: row.try_get(first + 7)?,
        started_at: row.try_get(first + 8)?,
        finished_at: row.try_get(first + 9)?,
    })
}

/// What the statement that locks a pipeline read of it: the latest version of this
/// incarnation of the pipeline (see migration 0014), which together name its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineHold {
    pub version: i64,
    pub incarnation: String,
}

fn decode_hold(row: Option<Row>) -> Result<Option<PipelineHold>> {
    row.map(|row| Ok(PipelineHold { version: row.try_get(0)?, incarnation: row.try_get(1)? })).transpose()
}

/// Serialises transitions of one pipeline; None if the pipeline does not exist.
pub async fn lock_pipeline(tx: &mut Tx<'_>, name: &str) -> Result<Option<PipelineHold>> {
    let row =
        sql::query("UPDATE pipelines SET version = version WHERE name = $1 RETURNING version, incarnation")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    decode_hold(row)
}

/// Holds off exclusive transitions of a pipeline ([`lock_pipeline`]) while letting other shared
/// ones run: PARALLEL executions do not share stages, so their transitions only lock their own
/// execution rows. A row share lock on PostgreSQL; on SQLite (one writer) a plain read. None if
/// the pipeline does not exist.
pub async fn share_pipeline(
    tx: &mut Tx<'_>,
    name: &str,
    backend: crate::Backend,
) -> Result<Option<PipelineHold>> {
    let sql = match backend {
        crate::Backend::Postgres => "SELECT version, incarnation FROM pipelines WHERE name = $1 FOR SHARE",
        crate::Backend::Sqlite => "SELECT version, incarnation FROM pipelines WHERE name = $1",
    };
    decode_hold(sql::query(sql).bind(name).fetch_optional(tx).await?)
}

/// [`share_pipeline`] and then [`lock_and_read_execution`] of execution `id`: the pipeline's
/// hold (None if the pipeline does not exist) and the execution (None if it does not exist).
///
/// One statement on PostgreSQL: the update of the execution runs only once the pipeline row is
/// shared (its `EXISTS` on the share is a one-time filter evaluated before the scan), so locks
/// are still taken pipeline first. If the statement had to wait for either lock, the update
/// re-reads the execution's latest version, as a statement of its own would. On SQLite (one
/// writer) two plain reads.
pub async fn share_pipeline_locking_execution(
    tx: &mut Tx<'_>,
    name: &str,
    id: &str,
    backend: crate::Backend,
) -> Result<Option<(PipelineHold, Option<ExecutionRow>)>> {
    if backend == crate::Backend::Sqlite {
        let Some(hold) = share_pipeline(tx, name, backend).await? else { return Ok(None) };
        return Ok(Some((hold, execution_in(tx, id).await?)));
    }
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH hold AS (SELECT version, incarnation FROM pipelines WHERE name = $1 FOR SHARE),
                  locked AS (UPDATE executions SET updated_at = updated_at
                             WHERE id = $2 AND EXISTS (SELECT 1 FROM hold)
                             RETURNING {EXECUTION_COLUMNS})
             SELECT hold.version, hold.incarnation, locked.* FROM hold LEFT JOIN locked ON true"
        )
    });
    let Some(row) = sql::query(&SQL).bind(name).bind(id).fetch_optional(&mut *tx).await? else {
        return Ok(None);
    };
    let hold = PipelineHold { version: row.try_get(0)?, incarnation: row.try_get(1)? };
    let execution = sql::Part { row: &row, from: 2 };
    let execution = match execution.try_get::<Option<String>>(0)? {
        Some(_) => Some(decode_execution(&execution)?),
        None => None,
    };
    Ok(Some((hold, execution)))
}

/// Begins a transaction that shares pipeline `name` as [`share_pipeline`] does, guarded by the
/// pipeline still being at `hold` (version and incarnation): on PostgreSQL nothing is sent
/// before the transaction's first statement, and one that only inserts commits as one statement
/// ([`Store::begin_guarded`]). [`crate::Error::GuardFailed`] when the pipeline has changed.
pub async fn begin_sharing_pipeline(store: &Store, name: &str, hold: &PipelineHold) -> Result<Tx<'static>> {
    let sql = match store.backend() {
        crate::Backend::Postgres => {
            "SELECT 1 FROM pipelines WHERE name = $1 AND version = $2 AND incarnation = $3 FOR SHARE"
        }
        crate::Backend::Sqlite => {
            "SELECT 1 FROM pipelines WHERE name = $1 AND version = $2 AND incarnation = $3"
        }
    };
    let guard = sql::query(sql).bind(name.to_string()).bind(hold.version).bind(hold.incarnation.clone());
    store.begin_guarded(guard).await
}

pub async fn insert_execution(tx: &mut Tx<'_>, row: &ExecutionRow) -> Result<()> {
    sql::query(
        "INSERT INTO executions (id, kind, tenant, definition_name, definition_version, status, client_token,
                                 data, stage_index, stage_state, created_at, updated_at, finished_at,
                                 parent_id, current_step, current_action)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&row.id)
    .bind(&row.kind)
    .bind(&row.tenant)
    .bind(&row.definition_name)
    .bind(row.definition_version)
    .bind(&row.status)
    .bind(&row.client_token)
    .bind(&row.data)
    .bind(row.stage_index)
    .bind(&row.stage_state)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.finished_at)
    .bind(&row.parent_id)
    .bind(&row.current_step)
    .bind(&row.current_action)
    .defer_keyed(tx, format!("executions:{}", row.id))
    .await
}

/// Writes an execution's mutable fields; on PostgreSQL held for the transaction's next round
/// trip (see [`sql::Query::defer_keyed`]).
pub async fn update_execution(tx: &mut Tx<'_>, row: &ExecutionRow) -> Result<()> {
    sql::query(
        "UPDATE executions SET status = $2, data = $3, stage_index = $4, stage_state = $5,
             updated_at = $6, finished_at = $7, current_step = $8, current_action = $9
         WHERE id = $1",
    )
    .bind(&row.id)
    .bind(&row.status)
    .bind(&row.data)
    .bind(row.stage_index)
    .bind(&row.stage_state)
    .bind(row.updated_at)
    .bind(row.finished_at)
    .bind(&row.current_step)
    .bind(&row.current_action)
    .defer_keyed(tx, format!("executions:{}", row.id))
    .await
}

/// Serialises transitions of one execution (a row lock on PostgreSQL; on SQLite the writer
/// connection already runs one transaction at a time); false if there is no such execution.
pub async fn lock_execution(tx: &mut Tx<'_>, id: &str) -> Result<bool> {
    if tx.is_sqlite() {
        // A no-op update would lock nothing more there, and would dirty the row's page.
        let found = sql::query("SELECT 1 FROM executions WHERE id = $1").bind(id).fetch_optional(tx).await?;
        return Ok(found.is_some());
    }
    let done = sql::query("UPDATE executions SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(done == 1)
}

/// [`lock_execution`] and [`execution_in`] in one statement: the execution, locked; None if
/// there is no such execution. On SQLite, [`execution_in`] (the writer's turn is the lock).
pub async fn lock_and_read_execution(tx: &mut Tx<'_>, id: &str) -> Result<Option<ExecutionRow>> {
    if tx.is_sqlite() {
        return execution_in(tx, id).await;
    }
    let sql =
        format!("UPDATE executions SET updated_at = updated_at WHERE id = $1 RETURNING {EXECUTION_COLUMNS}");
    let row = sql::query(&sql).bind(id).fetch_optional(tx).await?;
    row.as_ref().map(decode_execution).transpose()
}

/// Every step of an execution inside a transition, in start order.
pub async fn steps_in(tx: &mut Tx<'_>, execution_id: &str) -> Result<Vec<StepRow>> {
    let sql =
        format!("SELECT {STEP_COLUMNS} FROM steps WHERE execution_id = $1 ORDER BY position, started_at, id");
    let rows = sql::query(&sql).bind(execution_id).fetch_all(&mut *tx).await?;
    rows.iter().map(decode_step).collect()
}

pub async fn execution_in(tx: &mut Tx<'_>, id: &str) -> Result<Option<ExecutionRow>> {
    let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
    let row = sql::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode_execution).transpose()
}

/// The execution started with this client token, if any.
pub async fn execution_by_token(
    tx: &mut Tx<'_>,
    kind: &str,
    tenant: &str,
    name: &str,
    token: &str,
) -> Result<Option<ExecutionRow>> {
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions
         WHERE kind = $1 AND tenant = $2 AND definition_name = $3 AND client_token = $4"
    );
    let row =
        sql::query(&sql).bind(kind).bind(tenant).bind(name).bind(token).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode_execution).transpose()
}

/// In-progress executions of a pipeline at `stage_index` in any of `stage_states`, oldest
/// first: one statement where a stage request needs both its running and its waiting executions.
pub async fn executions_at_stage(
    tx: &mut Tx<'_>,
    name: &str,
    stage_index: i64,
    stage_states: &[&str],
) -> Result<Vec<ExecutionRow>> {
    if stage_states.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..stage_states.len()).map(|n| format!("${}", n + 3)).collect();
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions
         WHERE kind = 'pipeline' AND definition_name = $1 AND stage_index = $2
           AND stage_state IN ({}) AND status = 'InProgress'
         ORDER BY created_at, id",
        placeholders.join(", ")
    );
    let query = stage_states.iter().fold(sql::query(&sql).bind(name).bind(stage_index), |q, s| q.bind(*s));
    let rows = query.fetch_all(&mut *tx).await?;
    rows.iter().map(decode_execution).collect()
}

/// Whether an execution of the pipeline started after `(created_at, id)` has run stage
/// `stage_index` or a later one, that is, has steps there (a retry is only for the latest run of
/// a stage).
pub async fn later_execution_reached(
    tx: &mut Tx<'_>,
    name: &str,
    created_at: i64,
    id: &str,
    stage_index: i64,
) -> Result<bool> {
    let row = sql::query(
        "SELECT id FROM executions
         WHERE kind = 'pipeline' AND definition_name = $1
           AND (created_at > $2 OR (created_at = $2 AND id > $3))
           AND stage_index >= $4
           AND EXISTS (SELECT 1 FROM steps WHERE steps.execution_id = executions.id AND steps.position >= $4)
         LIMIT 1",
    )
    .bind(name)
    .bind(created_at)
    .bind(id)
    .bind(stage_index)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.is_some())
}

pub async fn insert_step(tx: &mut Tx<'_>, row: &StepRow) -> Result<()> {
    sql::query(
        "INSERT INTO steps (id, execution_id, name, position, status, attempt, data, error, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id)
    .bind(&row.execution_id)
    .bind(&row.name)
    .bind(row.position)
    .bind(&row.status)
    .bind(row.attempt)
    .bind(&row.data)
    .bind(&row.error)
    .bind(row.started_at)
    .bind(row.finished_at)
    .defer(tx)
    .await
}

pub async fn update_step(tx: &mut Tx<'_>, row: &StepRow) -> Result<()> {
    step_update(row).execute(&mut *tx).await?;
    Ok(())
}

/// [`update_step`], perhaps held for the transaction's next round trip (see
/// [`sql::Query::defer_keyed`]): for a step that existed before the transaction.
pub async fn update_step_later(tx: &mut Tx<'_>, row: &StepRow) -> Result<()> {
    step_update(row).defer_keyed(tx, format!("steps:{}", row.id)).await
}

fn step_update(row: &StepRow) -> sql::Query<'static> {
    sql::query(
        "UPDATE steps SET status = $2, data = $3, error = $4, finished_at = $5, attempt = $6 WHERE id = $1",
    )
    .bind(&row.id)
    .bind(&row.status)
    .bind(&row.data)
    .bind(&row.error)
    .bind(row.finished_at)
    .bind(row.attempt)
}

pub async fn step_in(tx: &mut Tx<'_>, id: &str) -> Result<Option<StepRow>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = $1");
    let row = sql::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
    row.as_ref().map(decode_step).transpose()
}

/// Steps of an execution at one position (a stage), in start order. They are sorted here rather
/// than by `ORDER BY`: a stage has a few steps, and SQLite sorts even two rows in a sorter it
/// allocates and frees, inside every job result's turn on the writer.
pub async fn steps_at(tx: &mut Tx<'_>, execution_id: &str, position: i64) -> Result<Vec<StepRow>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {STEP_COLUMNS} FROM steps WHERE execution_id = $1 AND position = $2")
    });
    let rows = sql::query(&SQL).bind(execution_id).bind(position).fetch_all(&mut *tx).await?;
    let mut steps = rows.iter().map(decode_step).collect::<Result<Vec<_>>>()?;
    steps.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    Ok(steps)
}

impl Store {
    /// One step by id.
    pub async fn step(&self, id: &str) -> Result<Option<StepRow>> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = $1");
        let row = sql::query(&sql).bind(id).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_step).transpose()
    }

    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRow>> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row = sql::query(&sql).bind(id).fetch_optional(self.reads()).await?;
        row.as_ref().map(decode_execution).transpose()
    }

    /// Executions of a definition, newest first, strictly before the (created_at, id) cursor.
    pub async fn list_executions(
        &self,
        kind: &str,
        tenant: &str,
        name: &str,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<ExecutionRow>> {
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions
             WHERE kind = $1 AND tenant = $2 AND definition_name = $3
               AND (created_at < $4 OR (created_at = $4 AND id < $5) OR $5 = '')
             ORDER BY created_at DESC, id DESC LIMIT $6"
        );
        let rows = sql::query(&sql)
            .bind(kind)
            .bind(tenant)
            .bind(name)
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(self.reads())
            .await?;
        rows.iter().map(decode_execution).collect()
    }

    /// Every step of an execution, in start order.
    pub async fn steps_of(&self, execution_id: &str) -> Result<Vec<StepRow>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE execution_id = $1 ORDER BY position, started_at, id"
        );
        let rows = sql::query(&sql).bind(execution_id).fetch_all(self.reads()).await?;
        rows.iter().map(decode_step).collect()
    }
}

/// A wait to record (an approval, a timer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWait<'a> {
    pub id: &'a str,
    pub execution_id: &'a str,
    pub step_id: &'a str,
    pub kind: &'a str,
    pub token: Option<&'a str>,
    pub due_at: Option<i64>,
    pub at: i64,
}

pub async fn insert_wait(tx: &mut Tx<'_>, wait: &NewWait<'_>) -> Result<()> {
    sql::query(
        "INSERT INTO waits (id, execution_id, step_id, kind, token, due_at, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, '{}', $7)",
    )
    .bind(wait.id)
    .bind(wait.execution_id)
    .bind(wait.step_id)
    .bind(wait.kind)
    .bind(wait.token)
    .bind(wait.due_at)
    .bind(wait.at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes the executions of a pipeline being deleted, and what hangs from them, in the
/// deleting transaction. A recreated pipeline of the same name then starts with no history and
/// no disabled transitions (AWS documents only that the pipeline is deleted; its history can no
/// longer be read, since every read names the pipeline). The unfinished jobs of its unfinished
/// executions fail first, so no poll hands them out, no result is taken for them and their
/// artifact credentials end; jobs are kept, like the finished ones, for their ids. Events are
/// never deleted.
pub async fn delete_pipeline_executions(tx: &mut Tx<'_>, name: &str, at: i64) -> Result<()> {
    const OF_PIPELINE: &str = "SELECT id FROM executions WHERE kind = 'pipeline' AND definition_name = $1";
    sql::query(
        "UPDATE jobs SET status = 'Failed', error = 'The pipeline was deleted', lease_until = NULL,
             updated_at = $2
         WHERE step_id IN (SELECT s.id FROM executions e JOIN steps s ON s.execution_id = e.id
                           WHERE e.kind = 'pipeline' AND e.definition_name = $1
                             AND (e.status = 'InProgress' OR e.status = 'Stopping'))
           AND (status = 'Queued' OR status = 'Dispatched' OR status = 'InProgress')",
    )
    .bind(name)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    for table in ["waits", "steps"] {
        let statement = format!("DELETE FROM {table} WHERE execution_id IN ({OF_PIPELINE})");
        sql::query_owned(statement).bind(name).execute(&mut *tx).await?;
    }
    sql::query("DELETE FROM executions WHERE kind = 'pipeline' AND definition_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sql::query("DELETE FROM stage_transitions WHERE pipeline = $1").bind(name).execute(&mut *tx).await?;
    Ok(())
}

/// Marks a step's open waits resolved.
pub async fn resolve_waits(tx: &mut Tx<'_>, step_id: &str, at: i64) -> Result<()> {
    sql::query("UPDATE waits SET resolved_at = $2 WHERE step_id = $1 AND resolved_at IS NULL")
        .bind(step_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl Store {
    /// Unresolved waits of `kind` due at or before `now`: (execution id, step id).
    pub async fn due_waits(&self, kind: &str, now: i64, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = sql::query(
            "SELECT execution_id, step_id FROM waits
             WHERE resolved_at IS NULL AND kind = $1 AND due_at <= $2 ORDER BY due_at LIMIT $3",
        )
        .bind(kind)
        .bind(now)
        .bind(limit)
        .fetch_all(self.reads())
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}

/// An approval wait found by its token: (execution id, step id, resolved).
pub async fn wait_by_token(tx: &mut Tx<'_>, token: &str) -> Result<Option<(String, String, bool)>> {
    let row = sql::query(
        "SELECT execution_id, step_id, resolved_at FROM waits WHERE token = $1 AND kind = 'approval'",
    )
    .bind(token)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<Option<i64>>(2)?.is_some()))).transpose()
}

/// A job read inside a transition.
pub async fn job_in(tx: &mut Tx<'_>, id: &str) -> Result<Option<crate::jobs::JobRow>> {
    crate::jobs::job_in(tx, id).await
}

/// A step with the execution it belongs to (for listing action executions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOfExecution {
    pub step: StepRow,
    pub definition_version: i64,
}

impl Store {
    /// Steps of a definition's executions, newest first by (started_at, id), optionally of one
    /// execution, strictly before the cursor.
    pub async fn list_steps(
        &self,
        kind: &str,
        tenant: &str,
        name: &str,
        execution_id: Option<&str>,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<StepOfExecution>> {
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        let columns = STEP_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, e.definition_version FROM steps s JOIN executions e ON e.id = s.execution_id
             WHERE e.kind = $1 AND e.tenant = $2 AND e.definition_name = $3
               AND ($4 IS NULL OR e.id = $4)
               AND (s.started_at < $5 OR (s.started_at = $5 AND s.id < $6) OR $6 = '')
             ORDER BY s.started_at DESC, s.id DESC LIMIT $7"
        );
        let rows = sql::query(&sql)
            .bind(kind)
            .bind(tenant)
            .bind(name)
            .bind(execution_id)
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(self.reads())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StepOfExecution {
                    step: decode_step(row)?,
                    definition_version: row.try_get::<Option<i64>>(10)?.unwrap_or(0),
                })
            })
            .collect()
    }
}

/// The state of a stage's inbound transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    pub stage: String,
    pub enabled: bool,
    pub reason: Option<String>,
    pub changed_by: String,
    pub changed_at: i64,
}

/// Records a stage's inbound transition state inside `tx`.
pub async fn set_transition(tx: &mut Tx<'_>, pipeline: &str, row: &TransitionRow) -> Result<()> {
    sql::query(
        "INSERT INTO stage_transitions (pipeline, stage, enabled, reason, changed_by, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (pipeline, stage) DO UPDATE SET enabled = excluded.enabled, reason = excluded.reason,
             changed_by = excluded.changed_by, changed_at = excluded.changed_at",
    )
    .bind(pipeline)
    .bind(&row.stage)
    .bind(i64::from(row.enabled))
    .bind(&row.reason)
    .bind(&row.changed_by)
    .bind(row.changed_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether a stage's inbound transition is disabled, read inside `tx`.
pub async fn transition_disabled(tx: &mut Tx<'_>, pipeline: &str, stage: &str) -> Result<bool> {
    let row = sql::query("SELECT enabled FROM stage_transitions WHERE pipeline = $1 AND stage = $2")
        .bind(pipeline)
        .bind(stage)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.map(|r| r.try_get::<i64>(0)).transpose()?.is_some_and(|enabled| enabled == 0))
}

impl Store {
    /// Every recorded transition state of a pipeline.
    pub async fn transitions(&self, pipeline: &str) -> Result<Vec<TransitionRow>> {
        let rows = sql::query(
            "SELECT stage, enabled, reason, changed_by, changed_at FROM stage_transitions WHERE pipeline = $1",
        )
        .bind(pipeline)
        .fetch_all(self.reads())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TransitionRow {
                    stage: r.try_get(0)?,
                    enabled: r.try_get::<i64>(1)? != 0,
                    reason: r.try_get(2)?,
                    changed_by: r.try_get(3)?,
                    changed_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}

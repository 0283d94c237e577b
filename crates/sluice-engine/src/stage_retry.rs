//! RetryStageExecution: the failed (or stopped) stage of the latest execution to run it starts
//! again, with its failed actions only (`FAILED_ACTIONS`) or all of its actions
//! (`ALL_ACTIONS`). The steps a retry replaces stay in the history (ListActionExecutions shows
//! them) but carry `replacedByRetry` in their data, so stage checks and GetPipelineState look at
//! the stage's current attempt only. The execution counts its retries per stage in
//! `stageRetries`; a step's `attempt` is its stage's attempt.

use serde_json::{json, Map, Value};
use sluice_store::executions::{self as rows, StepRow};

use crate::executions::{data_of, status, step_status, Work, RUNNING};
use crate::{Engine, Error, Principal, Result};

/// StageRetryMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    FailedActions,
    AllActions,
}

impl RetryMode {
    fn wire_name(self) -> &'static str {
        match self {
            RetryMode::FailedActions => "FAILED_ACTIONS",
            RetryMode::AllActions => "ALL_ACTIONS",
        }
    }
}

const REPLACED: &str = "replacedByRetry";

/// The steps of a stage's current attempt: those no retry replaced.
pub(crate) fn current_steps(steps: Vec<StepRow>) -> Vec<StepRow> {
    steps.into_iter().filter(|s| !data_of(&s.data).contains_key(REPLACED)).collect()
}

/// How many times a stage was retried by hand in an execution.
pub fn stage_retries(execution_data: &Map<String, Value>, stage: &str) -> i64 {
    execution_data.get("stageRetries").and_then(|r| r.get(stage)).and_then(Value::as_i64).unwrap_or(0)
}

/// The attempt number of a stage's current run (1 before any retry).
pub(crate) fn stage_attempt(execution_data: &Map<String, Value>, stage: &str) -> i64 {
    stage_retries(execution_data, stage) + 1
}

impl Engine {
    /// RetryStageExecution. The execution must be Failed or Stopped in `stage_name`, run the
    /// pipeline's current version, and be the latest execution to have run that stage; unless
    /// the pipeline runs in PARALLEL mode the stage must be free.
    pub async fn retry_stage_execution(
        &self,
        actor: &Principal,
        pipeline: &str,
        stage_name: &str,
        id: &str,
        mode: RetryMode,
    ) -> Result<()> {
        let row = self.pipeline_execution(pipeline, id).await?;
        let def = self.definition(pipeline, Some(row.definition_version)).await?;
        let Some(stage) = def.spec.stages.iter().position(|s| s.name == stage_name) else {
            return Err(Error::StageNotFound(format!(
                "Stage {stage_name} does not exist in pipeline {pipeline}"
            )));
        };
        if self.definition(pipeline, None).await?.version != def.version {
            return Err(Error::StageNotRetryable(format!(
                "Pipeline {pipeline} was updated after execution {id} started; its stages can no longer be retried"
            )));
        }
        let mut t = self.transition(def.clone()).await?;
        let mut execution = t.execution(id).await?;
        if execution.status != status::FAILED && execution.status != status::STOPPED {
            return Err(Error::StageNotRetryable(format!(
                "Execution {id} is {}; only a Failed or Stopped stage can be retried",
                execution.status
            )));
        }
        let ended_in = &def.spec.stages[execution.stage_index as usize].name;
        let steps = current_steps(rows::steps_at(&mut t.tx, id, stage as i64).await?);
        if ended_in != stage_name || steps.is_empty() {
            return Err(Error::StageNotRetryable(format!(
                "Execution {id} ended in stage {ended_in}, not in {stage_name}"
            )));
        }
        let replaced: Vec<StepRow> = match mode {
            RetryMode::AllActions => steps,
            RetryMode::FailedActions => {
                steps.into_iter().filter(|s| s.status != step_status::SUCCEEDED).collect()
            }
        };
        if replaced.is_empty() {
            return Err(Error::StageNotRetryable(format!(
                "Stage {stage_name} of execution {id} has no failed actions to retry"
            )));
        }
        if rows::later_execution_reached(&mut t.tx, pipeline, execution.created_at, id, stage as i64).await? {
            return Err(Error::NotLatestPipelineExecution(format!(
                "A later execution of {pipeline} has run stage {stage_name}; execution {id} is out of date"
            )));
        }
        if def.mode != "PARALLEL" {
            let running = t.executions_at_stage(stage as i64, &[RUNNING]).await?;
            if let Some(other) = running.iter().find(|r| r.id != id) {
                return Err(Error::Conflict(format!(
                    "Stage {stage_name} is running execution {}; retry when it is free",
                    other.id
                )));
            }
        }
        for mut step in replaced.iter().cloned() {
            let mut data = data_of(&step.data);
            data.insert(REPLACED.into(), json!(true));
            step.data = Value::Object(data).to_string();
            rows::update_step(&mut t.tx, &step).await?;
        }
        let mut data = data_of(&execution.data);
        let retries = stage_retries(&data, stage_name) + 1;
        let counts = data.entry("stageRetries").or_insert_with(|| json!({}));
        if let Some(map) = counts.as_object_mut() {
            map.insert(stage_name.to_string(), json!(retries));
        }
        execution.data = Value::Object(data).to_string();
        execution.status = status::IN_PROGRESS.into();
        execution.stage_state = RUNNING.into();
        execution.finished_at = None;
        execution.updated_at = t.now;
        t.save_execution(&execution).await?;
        t.event(id, &actor.arn, &format!("RetryStageExecution({})", mode.wire_name())).await?;
        match mode {
            RetryMode::AllActions => {
                let first = def.spec.stages[stage].actions.iter().map(|a| a.run_order).min().unwrap_or(1);
                t.start_group(&execution, &def, stage, first).await?;
            }
            RetryMode::FailedActions => {
                let again = def.spec.stages[stage]
                    .actions
                    .iter()
                    .filter(|a| replaced.iter().any(|s| s.name == a.name));
                for action in again.cloned().collect::<Vec<_>>() {
                    t.start_action(&execution, &def, stage, &action).await?;
                }
                t.work.push_back(Work::StepDone { execution: id.to_string(), stage });
            }
        }
        t.run().await?;
        t.commit().await
    }
}

//! The automation state machine. A [`Run`] is one transaction: it locks each execution it
//! touches, works through a queue of follow-on work (a step that finishes at once enters the
//! next; a child execution that ends finishes its parent's step) and commits once.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{json, Map, Value};
use sluice_core::automation::branch;
use sluice_core::automation::document::{Document, OnCancel, OnFailure, Step, StepAction};
use sluice_core::automation::duration::sleep_delay;
use sluice_core::automation::parameters;
use sluice_core::automation::selector::Selector;
use sluice_core::automation::template::{self, Reference};
use sluice_core::job::JobStatus;
use sluice_store::executions::{self as rows, ExecutionRow, NewWait, StepRow};
use sluice_store::jobs::{self, NewJob};
use sluice_store::Tx;

use super::{builtin_outputs, execution_not_found, status, stored_runbook, JOB_QUEUE, KIND};
use crate::{Engine, Error, Result};

/// Wait kinds an automation step leaves in the waits table.
pub(crate) mod wait {
    pub const SLEEP: &str = "automation_sleep";
    pub const PAUSE: &str = "automation_pause";
    pub const APPROVE: &str = "automation_approve";
    pub const TIMEOUT: &str = "automation_timeout";
}

/// How long a script or command job may run when its step sets no `timeoutSeconds`.
const SCRIPT_TIMEOUT_SECONDS: u64 = 600;
const COMMAND_TIMEOUT_SECONDS: u64 = 3_600;

/// How many steps one transaction may run: a runbook that loops without ever waiting is
/// refused rather than run forever.
const MAX_WORK_PER_RUN: usize = 10_000;

/// How a step ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The action's result, which output selectors read.
    Success(Value),
    Failed {
        message: String,
        failure_type: &'static str,
        timed_out: bool,
    },
    /// Stopped by StopStep or by cancelling the execution.
    Cancelled(String),
}

impl Outcome {
    pub(crate) fn failed(message: impl Into<String>) -> Outcome {
        Outcome::Failed { message: message.into(), failure_type: "Verification", timed_out: false }
    }

    pub(crate) fn timed_out(message: impl Into<String>) -> Outcome {
        Outcome::Failed { message: message.into(), failure_type: "Verification", timed_out: true }
    }
}

enum Work {
    /// Run step `step` of the execution, or end it when `None`. In Interactive mode a step
    /// only runs when a StartStep signal asked for it (`signalled`).
    Enter {
        execution: String,
        step: Option<String>,
        signalled: bool,
    },
    Finish {
        execution: String,
        step_id: String,
        outcome: Outcome,
    },
    Cancel {
        execution: String,
    },
}

/// An execution being changed: its row, its state and the runbook it runs.
pub(crate) struct Live {
    pub row: ExecutionRow,
    pub data: Map<String, Value>,
    pub doc: Document,
}

impl Live {
    fn flag(&self, key: &str) -> bool {
        self.data.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub(crate) fn interactive(&self) -> bool {
        self.data.get("mode").and_then(Value::as_str) == Some("Interactive")
    }

    pub(crate) fn cancelling(&self) -> bool {
        self.flag("cancelling")
    }

    pub(crate) fn pending_step(&self) -> Option<&str> {
        self.data.get("pendingStep").and_then(Value::as_str)
    }

    fn next_position(&mut self) -> i64 {
        let next = self.data.get("nextPosition").and_then(Value::as_i64).unwrap_or(0);
        self.data.insert("nextPosition".into(), json!(next + 1));
        next
    }

    fn set_status(&mut self, status: &str) {
        self.row.status = status.to_string();
    }

    fn at_step(&mut self, step: &Step) {
        self.row.current_step = Some(step.name.clone());
        self.row.current_action = Some(step.action.name().to_string());
    }

    fn values(&self, key: &str) -> Map<String, Value> {
        self.data.get(key).and_then(Value::as_object).cloned().unwrap_or_default()
    }

    fn put_value(&mut self, key: &str, name: String, value: Value) {
        let mut map = self.values(key);
        map.insert(name, value);
        self.data.insert(key.into(), Value::Object(map));
    }
}

/// What a new execution starts from.
pub(crate) struct Launch<'a> {
    pub name: &'a str,
    pub version: i64,
    pub doc: &'a Document,
    /// The runbook content as JSON, kept with the execution.
    pub content: String,
    pub parameters: BTreeMap<String, Value>,
    pub interactive: bool,
    pub client_token: Option<String>,
    /// The parent execution and its `aws:executeAutomation` step.
    pub parent: Option<(String, String)>,
    pub executed_by: &'a str,
}

/// The runbook version and parameters an `aws:executeAutomation` step starts.
struct ChildPlan {
    name: String,
    version: i64,
    doc: Document,
    content: String,
    parameters: BTreeMap<String, Value>,
}

/// One transaction over automation executions.
pub(crate) struct Run<'e> {
    engine: &'e Engine,
    pub tx: Tx<'static>,
    pub now: i64,
    lives: HashMap<String, Live>,
    work: VecDeque<Work>,
    queued_jobs: bool,
}

impl<'e> Run<'e> {
    pub(crate) async fn open(engine: &'e Engine) -> Result<Run<'e>> {
        let tx = engine.store().begin().await?;
        Ok(Run {
            engine,
            tx,
            now: engine.now_millis(),
            lives: HashMap::new(),
            work: VecDeque::new(),
            queued_jobs: false,
        })
    }

    /// Does the queued work, saves every execution touched and commits.
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.drain().await?;
        for live in self.lives.values_mut() {
            live.row.data = Value::Object(live.data.clone()).to_string();
            live.row.updated_at = self.now;
            rows::update_execution(&mut self.tx, &live.row).await?;
        }
        if self.queued_jobs {
            jobs::announce_in(&mut self.tx, self.engine.store().backend(), JOB_QUEUE).await?;
        }
        self.tx.commit().await?;
        if self.queued_jobs {
            self.engine.notify_queue(JOB_QUEUE);
        }
        Ok(())
    }

    /// Locks and loads an execution of this tenant (once per run).
    pub(crate) async fn live(&mut self, id: &str) -> Result<&mut Live> {
        if !self.lives.contains_key(id) {
            let live = self.load(id).await?;
            self.lives.insert(id.to_string(), live);
        }
        Ok(self.lives.get_mut(id).expect("just loaded"))
    }

    async fn load(&mut self, id: &str) -> Result<Live> {
        if !rows::lock_execution(&mut self.tx, id).await? {
            return Err(execution_not_found(id));
        }
        let row = rows::execution_in(&mut self.tx, id).await?.ok_or_else(|| execution_not_found(id))?;
        if row.kind != KIND || row.tenant != self.engine.account().account_id {
            return Err(execution_not_found(id));
        }
        let data = super::object(&row.data)?;
        let doc = stored_runbook(&data)?;
        Ok(Live { row, data, doc })
    }

    fn take(&mut self, id: &str) -> Live {
        self.lives.remove(id).expect("loaded before use")
    }

    fn put(&mut self, live: Live) {
        self.lives.insert(live.row.id.clone(), live);
    }

    pub(crate) fn enter(&mut self, execution: &str, step: Option<String>, signalled: bool) {
        self.work.push_back(Work::Enter { execution: execution.to_string(), step, signalled });
    }

    pub(crate) fn finish(&mut self, execution: &str, step_id: &str, outcome: Outcome) {
        let (execution, step_id) = (execution.to_string(), step_id.to_string());
        self.work.push_back(Work::Finish { execution, step_id, outcome });
    }

    pub(crate) fn cancel(&mut self, execution: &str) {
        self.work.push_back(Work::Cancel { execution: execution.to_string() });
    }

    /// Stores a new execution and queues its first step.
    pub(crate) async fn launch(&mut self, launch: Launch<'_>) -> Result<String> {
        let id = crate::new_id();
        let mut data = Map::new();
        data.insert("document".into(), json!(launch.content));
        data.insert("mode".into(), json!(if launch.interactive { "Interactive" } else { "Auto" }));
        data.insert("parameters".into(), json!(launch.parameters));
        data.insert("executedBy".into(), json!(launch.executed_by));
        if let Some((_, step_id)) = &launch.parent {
            data.insert("parentStepId".into(), json!(step_id));
        }
        let row = ExecutionRow {
            id: id.clone(),
            kind: KIND.into(),
            tenant: self.engine.account().account_id.clone(),
            definition_name: launch.name.to_string(),
            definition_version: launch.version,
            status: status::IN_PROGRESS.into(),
            client_token: launch.client_token,
            data: Value::Object(data.clone()).to_string(),
            stage_index: 0,
            stage_state: String::new(),
            parent_id: launch.parent.map(|(parent, _)| parent),
            current_step: None,
            current_action: None,
            created_at: self.now,
            updated_at: self.now,
            finished_at: None,
        };
        rows::insert_execution(&mut self.tx, &row).await?;
        self.event(&id, launch.executed_by, "StartAutomationExecution").await?;
        let first = launch.doc.steps.first().map(|step| step.name.clone());
        self.lives.insert(id.clone(), Live { row, data, doc: launch.doc.clone() });
        self.enter(&id, first, false);
        Ok(id)
    }

    pub(crate) async fn event(&mut self, execution: &str, actor: &str, kind: &str) -> Result<()> {
        let event = sluice_store::events::NewEvent {
            execution_id: Some(execution),
            job_id: None,
            actor,
            kind,
            subject: execution,
            detail: "{}",
            at: self.now,
        };
        sluice_store::events::append(&mut self.tx, &event).await?;
        Ok(())
    }

    async fn drain(&mut self) -> Result<()> {
        let mut done = 0;
        while let Some(work) = self.work.pop_front() {
            done += 1;
            if done > MAX_WORK_PER_RUN {
                return Err(Error::Validation(format!(
                    "The runbook ran more than {MAX_WORK_PER_RUN} steps without waiting; a loop of \
                     steps needs an aws:sleep or a wait in it"
                )));
            }
            match work {
                Work::Enter { execution, step, signalled } => {
                    self.live(&execution).await?;
                    let mut live = self.take(&execution);
                    let done = self.enter_step(&mut live, step, signalled).await;
                    self.put(live);
                    done?;
                }
                Work::Finish { execution, step_id, outcome } => {
                    self.live(&execution).await?;
                    let mut live = self.take(&execution);
                    let done = self.finish_step(&mut live, &step_id, outcome).await;
                    self.put(live);
                    done?;
                }
                Work::Cancel { execution } => {
                    self.live(&execution).await?;
                    let mut live = self.take(&execution);
                    let done = self.cancel_execution(&mut live).await;
                    self.put(live);
                    done?;
                }
            }
        }
        Ok(())
    }

    async fn enter_step(&mut self, live: &mut Live, step: Option<String>, signalled: bool) -> Result<()> {
        if status::is_final(&live.row.status) {
            return Ok(());
        }
        let Some(name) = step else { return self.end(live).await };
        let step = live.doc.step(&name).cloned().ok_or_else(|| {
            Error::Internal(format!("step {name} is not in the runbook the execution runs"))
        })?;
        live.at_step(&step);
        if live.interactive() && !signalled {
            live.data.insert("pendingStep".into(), json!(name));
            live.set_status(status::WAITING);
            return Ok(());
        }
        live.data.remove("pendingStep");
        live.set_status(if live.cancelling() { status::CANCELLING } else { status::IN_PROGRESS });
        let mut data = Map::new();
        data.insert("action".into(), json!(step.action.name()));
        data.insert("onFailure".into(), json!(step.on_failure.to_string()));
        data.insert("onCancel".into(), json!(step.on_cancel.to_string()));
        data.insert("isEnd".into(), json!(step.is_end));
        data.insert("isCritical".into(), json!(step.is_critical));
        data.insert("maxAttempts".into(), json!(step.max_attempts));
        if let Some(next) = &step.next_step {
            data.insert("nextStep".into(), json!(next));
        }
        if let Some(timeout) = step.timeout_seconds {
            data.insert("timeoutSeconds".into(), json!(timeout));
        }
        let mut row = StepRow {
            id: crate::new_id(),
            execution_id: live.row.id.clone(),
            name: step.name.clone(),
            position: live.next_position(),
            status: status::IN_PROGRESS.into(),
            attempt: 1,
            data: Value::Object(data).to_string(),
            error: None,
            started_at: Some(self.now),
            finished_at: None,
        };
        rows::insert_step(&mut self.tx, &row).await?;
        self.dispatch(live, &step, &mut row).await
    }

    /// Starts (or, on a retry, restarts) a step's action.
    async fn dispatch(&mut self, live: &mut Live, step: &Step, row: &mut StepRow) -> Result<()> {
        let mut data = super::object(&row.data)?;
        let inputs = match self.render(live, &step.inputs) {
            Ok(inputs) => inputs,
            Err(message) => {
                rows::update_step(&mut self.tx, row).await?;
                self.finish(&live.row.id, &row.id, Outcome::failed(message));
                return Ok(());
            }
        };
        data.insert("inputs".into(), inputs.clone());
        if let (Some(timeout), false) = (step.timeout_seconds, step.action == StepAction::Branch) {
            let due = self.now.saturating_add(timeout.saturating_mul(1000) as i64);
            self.wait(live, row, wait::TIMEOUT, Some(due)).await?;
        }
        let outcome = match step.action {
            StepAction::Sleep => self.sleep(live, row, &inputs).await?,
            StepAction::Pause => {
                self.wait_for_signal(live, row, wait::PAUSE).await?;
                None
            }
            StepAction::Approve => self.approve(live, row, &inputs).await?,
            StepAction::Branch => Some(match branch::evaluate(&inputs) {
                Ok(next) => {
                    if let Some(next) = next {
                        data.insert("branchTo".into(), json!(next));
                    }
                    Outcome::Success(Value::Null)
                }
                Err(err) => Outcome::failed(err.to_string()),
            }),
            StepAction::ExecuteAutomation => self.start_child(live, row, &inputs, &mut data).await?,
            StepAction::ExecuteScript | StepAction::RunCommand => {
                self.queue_job(live, step, row, &inputs, &mut data).await?;
                None
            }
        };
        row.data = Value::Object(data).to_string();
        rows::update_step(&mut self.tx, row).await?;
        if let Some(outcome) = outcome {
            self.finish(&live.row.id, &row.id, outcome);
        }
        Ok(())
    }

    fn render(&self, live: &Live, inputs: &Value) -> Result<Value, String> {
        let parameters = live.values("parameters");
        let outputs = live.values("stepOutputs");
        let account = self.engine.account();
        let now = chrono::DateTime::from_timestamp_millis(self.now).unwrap_or_default();
        let lookup = |name: &str| -> Option<Value> {
            match Reference::parse(name) {
                Reference::Parameter(p) => parameters.get(&p).cloned(),
                Reference::StepOutput { .. } => outputs.get(name).cloned(),
                Reference::System(system) => match system.as_str() {
                    "automation:EXECUTION_ID" | "automation:DOCUMENT_EXECUTION_ID" => {
                        Some(json!(live.row.id))
                    }
                    "global:ACCOUNT_ID" => Some(json!(account.account_id)),
                    "global:REGION" => Some(json!(account.region)),
                    "global:AWS_PARTITION" => Some(json!("aws")),
                    "global:DATE" => Some(json!(now.format("%Y-%m-%d").to_string())),
                    "global:DATE_TIME" => Some(json!(now.format("%Y-%m-%d_%H.%M.%S").to_string())),
                    _ => None,
                },
                Reference::ParameterStore(_) => None,
            }
        };
        template::render(inputs, &lookup)
            .map_err(|err| format!("The step's inputs could not be resolved: {err}"))
    }

    async fn wait(&mut self, live: &Live, row: &StepRow, kind: &str, due_at: Option<i64>) -> Result<()> {
        let id = crate::new_id();
        let wait = NewWait {
            id: &id,
            execution_id: &live.row.id,
            step_id: &row.id,
            kind,
            token: None,
            due_at,
            at: self.now,
        };
        rows::insert_wait(&mut self.tx, &wait).await?;
        Ok(())
    }

    async fn wait_for_signal(&mut self, live: &mut Live, row: &mut StepRow, kind: &str) -> Result<()> {
        self.wait(live, row, kind, None).await?;
        row.status = status::WAITING.into();
        live.set_status(status::WAITING);
        Ok(())
    }

    async fn sleep(&mut self, live: &Live, row: &StepRow, inputs: &Value) -> Result<Option<Outcome>> {
        match sleep_delay(inputs, self.now) {
            Ok(delay) if delay.is_zero() => Ok(Some(Outcome::Success(Value::Null))),
            Ok(delay) => {
                let due = self.now.saturating_add(delay.as_millis() as i64);
                self.wait(live, row, wait::SLEEP, Some(due)).await?;
                Ok(None)
            }
            Err(err) => Ok(Some(Outcome::failed(err.to_string()))),
        }
    }

    async fn approve(
        &mut self,
        live: &mut Live,
        row: &mut StepRow,
        inputs: &Value,
    ) -> Result<Option<Outcome>> {
        let approvers = inputs.get("Approvers").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
        let required = inputs.get("MinRequiredApprovals").and_then(Value::as_u64).unwrap_or(1);
        if approvers == 0 || required == 0 || required as usize > approvers {
            let message = format!(
                "aws:approve needs Approvers and at most as many MinRequiredApprovals ({required}) as approvers ({approvers})"
            );
            return Ok(Some(Outcome::failed(message)));
        }
        self.wait_for_signal(live, row, wait::APPROVE).await?;
        Ok(None)
    }

    async fn start_child(
        &mut self,
        live: &Live,
        row: &StepRow,
        inputs: &Value,
        data: &mut Map<String, Value>,
    ) -> Result<Option<Outcome>> {
        let plan = match self.child_plan(live, inputs).await? {
            Ok(plan) => plan,
            Err(message) => return Ok(Some(Outcome::failed(message))),
        };
        let executed_by = live.data.get("executedBy").and_then(Value::as_str).unwrap_or_default().to_string();
        let child = self
            .launch(Launch {
                name: &plan.name,
                version: plan.version,
                doc: &plan.doc,
                content: plan.content,
                parameters: plan.parameters,
                interactive: false,
                client_token: None,
                parent: Some((live.row.id.clone(), row.id.clone())),
                executed_by: &executed_by,
            })
            .await?;
        data.insert("childId".into(), json!(child));
        Ok(None)
    }

    /// The child runbook an `aws:executeAutomation` step names, read in this transaction, and
    /// its checked parameters; `Err` is the step's failure message.
    async fn child_plan(&mut self, live: &Live, inputs: &Value) -> Result<Result<ChildPlan, String>> {
        use sluice_core::automation::document::{convert, DocumentFormat};
        use sluice_store::documents::{document_in, document_version_in};
        let Some(name) = inputs.get("DocumentName").and_then(Value::as_str) else {
            return Ok(Err("aws:executeAutomation needs a DocumentName".into()));
        };
        let name = self.engine.document_name(name).to_string();
        if name == live.row.definition_name {
            return Ok(Err(format!("Runbook {name} cannot start itself")));
        }
        let Some(document) = document_in(&mut self.tx, &name).await? else {
            return Ok(Err(format!("Document {name} does not exist")));
        };
        let version = match inputs.get("DocumentVersion").and_then(Value::as_str) {
            None | Some("$DEFAULT") => document.default_version,
            Some("$LATEST") => document.latest_version,
            Some(text) => match text.parse::<i64>() {
                Ok(number) => number,
                Err(_) => return Ok(Err(format!("Document version {text} is not valid"))),
            },
        };
        let Some(stored) = document_version_in(&mut self.tx, &name, version).await? else {
            return Ok(Err(format!("Version {version} of document {name} does not exist")));
        };
        let format = DocumentFormat::from_name(&stored.format).unwrap_or(DocumentFormat::Json);
        let doc = Document::parse(&stored.content, format).map_err(|e| Error::Internal(e.to_string()))?;
        let content = convert(&stored.content, format, DocumentFormat::Json)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let given = runtime_parameters(inputs.get("RuntimeParameters"));
        match parameters::resolve(&doc, &given) {
            Ok(parameters) => Ok(Ok(ChildPlan { name, version, doc, content, parameters })),
            Err(err) => Ok(Err(format!("The child runbook's parameters are not valid: {err}"))),
        }
    }

    async fn queue_job(
        &mut self,
        live: &Live,
        step: &Step,
        row: &StepRow,
        inputs: &Value,
        data: &mut Map<String, Value>,
    ) -> Result<()> {
        let default = match step.action {
            StepAction::RunCommand => COMMAND_TIMEOUT_SECONDS,
            _ => SCRIPT_TIMEOUT_SECONDS,
        };
        let id = crate::new_id();
        let job = json!({
            "executionId": live.row.id,
            "stepId": row.id,
            "stepName": step.name,
            "action": step.action.name(),
            "inputs": inputs,
            "timeoutSeconds": step.timeout_seconds.unwrap_or(default),
        });
        let job_text = job.to_string();
        let new = NewJob {
            id: &id,
            queue_key: JOB_QUEUE,
            tenant: &live.row.tenant,
            data: &job_text,
            execution_id: Some(&live.row.id),
            step_id: Some(&row.id),
            continuation_token: None,
            timeout_millis: None,
            at: self.now,
        };
        jobs::insert(&mut self.tx, &new).await?;
        data.insert("jobId".into(), json!(id));
        self.queued_jobs = true;
        Ok(())
    }

    async fn finish_step(&mut self, live: &mut Live, step_id: &str, outcome: Outcome) -> Result<()> {
        let Some(mut row) = rows::step_in(&mut self.tx, step_id).await? else { return Ok(()) };
        if status::is_final(&row.status) || row.execution_id != live.row.id {
            return Ok(());
        }
        rows::resolve_waits(&mut self.tx, step_id, self.now).await?;
        jobs::abandon_for_step(&mut self.tx, step_id, self.now).await?;
        let mut data = super::object(&row.data)?;
        if !matches!(outcome, Outcome::Success(_)) {
            self.stop_child(&data).await?;
        }
        let step = live.doc.step(&row.name).cloned().ok_or_else(|| {
            Error::Internal(format!("step {} is not in the runbook the execution runs", row.name))
        })?;
        let outcome = match outcome {
            Outcome::Success(result) => match collect_outputs(&step, &data, &result) {
                Ok(outputs) => {
                    for (name, value) in &outputs {
                        live.put_value("stepOutputs", format!("{}.{name}", step.name), value.clone());
                    }
                    data.insert("outputs".into(), Value::Object(outputs));
                    Outcome::Success(result)
                }
                Err(message) => Outcome::failed(message),
            },
            other => other,
        };
        row.finished_at = Some(self.now);
        match outcome {
            Outcome::Success(_) => {
                row.status = status::SUCCESS.into();
                let next = data.get("branchTo").and_then(Value::as_str).map(str::to_owned);
                let next = next.or_else(|| successor(&live.doc, &step));
                self.enter(&live.row.id, next, false);
            }
            Outcome::Failed { message, failure_type, timed_out } => {
                if row.attempt < i64::from(step.max_attempts) && !live.cancelling() {
                    return self.retry(live, &step, row, data, &message).await;
                }
                row.status = if timed_out { status::TIMED_OUT } else { status::FAILED }.into();
                record_failure(&mut data, &message, failure_type);
                self.after_failure(live, &step, &message);
            }
            Outcome::Cancelled(message) => {
                row.status = status::CANCELLED.into();
                record_failure(&mut data, &message, "Cancellation");
                if !live.cancelling() {
                    self.after_failure(live, &step, &message);
                }
            }
        }
        if !matches!(live.row.status.as_str(), status::CANCELLING) && !status::is_final(&live.row.status) {
            live.set_status(status::IN_PROGRESS);
        }
        row.data = Value::Object(data).to_string();
        rows::update_step(&mut self.tx, &row).await?;
        Ok(())
    }

    async fn retry(
        &mut self,
        live: &mut Live,
        step: &Step,
        mut row: StepRow,
        mut data: Map<String, Value>,
        message: &str,
    ) -> Result<()> {
        row.attempt += 1;
        row.finished_at = None;
        row.status = status::IN_PROGRESS.into();
        data.insert("previousFailure".into(), json!(message));
        row.data = Value::Object(data).to_string();
        live.set_status(status::IN_PROGRESS);
        self.dispatch(live, step, &mut row).await
    }

    /// Where a failed step leads: the execution fails (`Abort`), goes on (`Continue`), or jumps
    /// (`step:NAME`); a critical step's failure fails the execution in the end.
    fn after_failure(&mut self, live: &mut Live, step: &Step, message: &str) {
        let failure = format!("Step {} failed: {message}", step.name);
        if step.is_critical {
            live.data.insert("criticalFailure".into(), json!(failure));
        }
        match &step.on_failure {
            OnFailure::Abort => {
                live.data.insert("criticalFailure".into(), json!(failure));
                self.enter(&live.row.id, None, false);
            }
            OnFailure::Continue => {
                let next = successor(&live.doc, step);
                self.enter(&live.row.id, next, false);
            }
            OnFailure::Step(next) => self.enter(&live.row.id, Some(next.clone()), false),
        }
    }

    /// Ends an execution: Cancelled when it was being cancelled, Failed after a critical
    /// failure, Success otherwise; a child's end finishes its parent's step.
    async fn end(&mut self, live: &mut Live) -> Result<()> {
        let failure = live.data.get("criticalFailure").and_then(Value::as_str).map(str::to_owned);
        let final_status = match (live.cancelling(), &failure) {
            (true, _) => status::CANCELLED,
            (false, Some(_)) => status::FAILED,
            (false, None) => status::SUCCESS,
        };
        if let (status::FAILED, Some(message)) = (final_status, failure) {
            live.data.insert("failureMessage".into(), json!(message));
        }
        let outputs = declared_outputs(live);
        live.data.insert("outputs".into(), Value::Object(outputs.clone()));
        live.data.remove("pendingStep");
        live.set_status(final_status);
        live.row.finished_at = Some(self.now);
        let (Some(parent), Some(step_id)) = (
            live.row.parent_id.clone(),
            live.data.get("parentStepId").and_then(Value::as_str).map(str::to_owned),
        ) else {
            return Ok(());
        };
        let result = json!({
            "ExecutionId": live.row.id,
            "Status": final_status,
            "Output": Value::Object(outputs).to_string(),
        });
        let outcome = match final_status {
            status::SUCCESS => Outcome::Success(result),
            status::CANCELLED => Outcome::Cancelled(format!("Child execution {} was cancelled", live.row.id)),
            _ => Outcome::failed(format!(
                "Child execution {} failed: {}",
                live.row.id,
                live.data.get("failureMessage").and_then(Value::as_str).unwrap_or("")
            )),
        };
        self.finish(&parent, &step_id, outcome);
        Ok(())
    }

    /// Cancels an execution: its running steps become Cancelled (their jobs end, their child
    /// executions are cancelled too); a step with `onCancel: step:NAME` runs that step before
    /// the execution ends Cancelled.
    async fn cancel_execution(&mut self, live: &mut Live) -> Result<()> {
        if status::is_final(&live.row.status) || live.cancelling() {
            return Ok(());
        }
        live.data.insert("cancelling".into(), json!(true));
        live.set_status(status::CANCELLING);
        let mut on_cancel = None;
        for mut row in rows::steps_in(&mut self.tx, &live.row.id).await? {
            if status::is_final(&row.status) {
                continue;
            }
            rows::resolve_waits(&mut self.tx, &row.id, self.now).await?;
            jobs::abandon_for_step(&mut self.tx, &row.id, self.now).await?;
            let mut data = super::object(&row.data)?;
            self.stop_child(&data).await?;
            record_failure(&mut data, "The execution was cancelled", "Cancellation");
            row.status = status::CANCELLED.into();
            row.finished_at = Some(self.now);
            row.data = Value::Object(data).to_string();
            rows::update_step(&mut self.tx, &row).await?;
            if let Some(OnCancel::Step(next)) = live.doc.step(&row.name).map(|s| s.on_cancel.clone()) {
                on_cancel = Some(next);
            }
        }
        live.data.remove("pendingStep");
        self.enter(&live.row.id, on_cancel, true);
        Ok(())
    }

    async fn stop_child(&mut self, data: &Map<String, Value>) -> Result<()> {
        if let Some(child) = data.get("childId").and_then(Value::as_str) {
            self.cancel(child);
        }
        Ok(())
    }

    /// A job's end, reported by a worker or the sweeper.
    pub(crate) async fn job_finished(&mut self, job: &jobs::JobRow, outcome: Outcome) -> Result<()> {
        let final_status = match &outcome {
            Outcome::Success(_) => JobStatus::Succeeded,
            Outcome::Failed { timed_out: true, .. } => JobStatus::TimedOut,
            _ => JobStatus::Failed,
        };
        let error = match &outcome {
            Outcome::Failed { message, .. } | Outcome::Cancelled(message) => Some(message.as_str()),
            Outcome::Success(_) => None,
        };
        jobs::finish(&mut self.tx, &job.id, final_status, error, self.now).await?;
        if let (Some(execution), Some(step)) = (&job.execution_id, &job.step_id) {
            self.live(execution).await?;
            self.finish(execution, step, outcome);
        }
        Ok(())
    }
}

/// The step after `step` when it succeeds or continues: none after `isEnd`, else `nextStep`,
/// else the next in the runbook.
fn successor(doc: &Document, step: &Step) -> Option<String> {
    if step.is_end {
        return None;
    }
    if let Some(next) = &step.next_step {
        return Some(next.clone());
    }
    let index = doc.steps.iter().position(|s| s.name == step.name)?;
    doc.steps.get(index + 1).map(|s| s.name.clone())
}

fn record_failure(data: &mut Map<String, Value>, message: &str, failure_type: &str) {
    data.insert("failureMessage".into(), json!(message));
    data.insert(
        "failureDetails".into(),
        json!({"FailureStage": "Execution", "FailureType": failure_type, "Details": {}}),
    );
}

/// The step's outputs: the action's automatic ones and the runbook's selectors over `result`.
fn collect_outputs(
    step: &Step,
    data: &Map<String, Value>,
    result: &Value,
) -> Result<Map<String, Value>, String> {
    let mut result = result.clone();
    if step.action == StepAction::Approve {
        result = approval_result(data);
    }
    let mut outputs = builtin_outputs(step.action.name(), &result);
    for output in &step.outputs {
        let selector = Selector::parse(&output.selector).map_err(|e| e.to_string())?;
        let value = selector
            .output(&result, output.kind)
            .map_err(|e| format!("Output {} could not be read: {e}", output.name))?;
        outputs.insert(output.name.clone(), value);
    }
    Ok(outputs)
}

/// What an approved `aws:approve` step reports.
fn approval_result(data: &Map<String, Value>) -> Value {
    let decisions: Vec<Value> = data
        .get("approvals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|approval| Value::String(approval.to_string()))
        .collect();
    json!({"ApprovalStatus": "Approved", "ApproverDecisions": decisions})
}

/// The runbook's declared `outputs` (`step.Output`) that its steps produced.
fn declared_outputs(live: &Live) -> Map<String, Value> {
    let produced = live.values("stepOutputs");
    live.doc
        .outputs
        .iter()
        .filter_map(|name| produced.get(name).map(|value| (name.clone(), value.clone())))
        .collect()
}

/// `RuntimeParameters` of `aws:executeAutomation` as lists of strings.
fn runtime_parameters(value: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    let Some(Value::Object(map)) = value else { return BTreeMap::new() };
    map.iter()
        .map(|(name, value)| {
            let values = match value {
                Value::Array(items) => items.iter().map(template::plain_text).collect(),
                other => vec![template::plain_text(other)],
            };
            (name.clone(), values)
        })
        .collect()
}

//! SSM Automation executions on the engine's shared tables: an execution row per run of a
//! runbook version, a step row per step execution, wait rows for sleeps, pauses, approvals and
//! step timeouts, and jobs for `aws:executeScript` / `aws:runCommand` that `sluice worker
//! --automation` processes run. [`run`] holds the state machine, [`signals`] the operator's
//! signals, stops and the timers, [`jobs`] the worker protocol. See docs/AUTOMATION.md.

pub mod jobs;
mod run;
pub mod signals;

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_core::automation::document::{convert, Document, DocumentFormat};
use sluice_core::automation::parameters;
use sluice_store::automation::AutomationFilter;
use sluice_store::executions::{self as rows, ExecutionRow, StepRow};

use self::run::Run;
use crate::documents::VersionRef;
use crate::{Engine, Error, Principal, Result};

/// The `kind` of automation rows in the executions table.
pub const KIND: &str = "automation";

/// The job queue `sluice worker --automation` polls.
pub const JOB_QUEUE: &str = "automation";

/// AutomationExecutionStatus values Sluice sets, for executions and steps alike.
pub mod status {
    pub const PENDING: &str = "Pending";
    pub const IN_PROGRESS: &str = "InProgress";
    pub const WAITING: &str = "Waiting";
    pub const SUCCESS: &str = "Success";
    pub const TIMED_OUT: &str = "TimedOut";
    pub const CANCELLING: &str = "Cancelling";
    pub const CANCELLED: &str = "Cancelled";
    pub const FAILED: &str = "Failed";

    /// Whether nothing more happens to an execution or step in this status.
    pub fn is_final(status: &str) -> bool {
        matches!(status, SUCCESS | TIMED_OUT | CANCELLED | FAILED)
    }
}

/// StartAutomationExecution's input, checked against the model by the facade.
#[derive(Debug, Clone)]
pub struct StartAutomation {
    pub document_name: String,
    pub document_version: Option<String>,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub interactive: bool,
    pub client_token: Option<String>,
}

/// An execution with its stored state and its steps, for GetAutomationExecution and
/// DescribeAutomationExecutions.
#[derive(Debug, Clone)]
pub struct AutomationView {
    pub row: ExecutionRow,
    pub data: Map<String, Value>,
    pub steps: Vec<StepView>,
}

/// One step execution.
#[derive(Debug, Clone)]
pub struct StepView {
    pub row: StepRow,
    pub data: Map<String, Value>,
}

impl AutomationView {
    fn from_row(row: ExecutionRow) -> Result<AutomationView> {
        let data = object(&row.data)?;
        Ok(AutomationView { row, data, steps: Vec::new() })
    }

    pub fn mode(&self) -> &str {
        self.data.get("mode").and_then(Value::as_str).unwrap_or("Auto")
    }

    pub fn executed_by(&self) -> &str {
        self.data.get("executedBy").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn failure_message(&self) -> Option<&str> {
        self.data.get("failureMessage").and_then(Value::as_str)
    }

    /// Runtime parameters as the wire shows them.
    pub fn parameters(&self) -> BTreeMap<String, Vec<String>> {
        wire_map(self.data.get("parameters"))
    }

    /// The runbook's declared `outputs`, as far as their steps produced them.
    pub fn outputs(&self) -> BTreeMap<String, Vec<String>> {
        wire_map(self.data.get("outputs"))
    }
}

impl StepView {
    fn from_row(row: StepRow) -> Result<StepView> {
        let data = object(&row.data)?;
        Ok(StepView { row, data })
    }
}

/// A stored JSON object.
fn object(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Internal("stored automation state is not a JSON object".into())),
    }
}

/// A stored map of typed values as `map<string, list<string>>`.
pub fn wire_map(value: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    let Some(Value::Object(map)) = value else { return BTreeMap::new() };
    let typed: BTreeMap<String, Value> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    parameters::to_wire(&typed)
}

/// DescribeAutomationExecutions filters: key and values as sent.
pub type FilterInput = Vec<(String, Vec<String>)>;

/// One page of executions and the token of the next.
#[derive(Debug, Clone)]
pub struct ExecutionPage {
    pub executions: Vec<AutomationView>,
    pub next_token: Option<String>,
}

/// One page of step executions and the token of the next.
#[derive(Debug, Clone)]
pub struct StepPage {
    pub steps: Vec<StepView>,
    pub next_token: Option<String>,
}

const EXECUTIONS_SCOPE: &str = "DescribeAutomationExecutions";

impl Engine {
    /// StartAutomationExecution: checks the parameters against the runbook, stores the
    /// execution and runs it as far as it goes without waiting, in one transaction. A repeated
    /// `ClientToken` returns the first execution's id.
    pub async fn start_automation(&self, actor: &Principal, start: StartAutomation) -> Result<String> {
        let name = self.document_name(&start.document_name).to_string();
        let version = self.runbook_version(&name, start.document_version.as_deref()).await?;
        let doc = version.runbook()?;
        let resolved = parameters::resolve(&doc, &start.parameters)
            .map_err(|e| Error::InvalidAutomationExecutionParameters(e.to_string()))?;
        let content = convert(&version.version.content, version.format()?, DocumentFormat::Json)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut run = Run::open(self).await?;
        if let Some(token) = &start.client_token {
            let tenant = &self.account().account_id;
            if let Some(existing) = rows::execution_by_token(&mut run.tx, KIND, tenant, &name, token).await? {
                return Ok(existing.id);
            }
        }
        let launch = run::Launch {
            name: &name,
            version: version.version.version,
            doc: &doc,
            content,
            parameters: resolved,
            interactive: start.interactive,
            client_token: start.client_token.clone(),
            parent: None,
            executed_by: &actor.arn,
        };
        let id = run.launch(launch).await?;
        run.commit().await?;
        Ok(id)
    }

    /// The runbook version a start names: `$DEFAULT` unless told otherwise.
    async fn runbook_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<crate::documents::DocumentView> {
        let version = match version {
            Some(text) => VersionRef::parse(text).map_err(|_| {
                Error::AutomationDefinitionVersionNotFound(format!("Version {text} of {name} does not exist"))
            })?,
            None => VersionRef::Default,
        };
        match self.document(name, version, None).await {
            Ok(view) => Ok(view),
            Err(Error::InvalidDocument(_)) => {
                Err(Error::AutomationDefinitionNotFound(format!("Document {name} does not exist")))
            }
            Err(Error::InvalidDocumentVersion(message)) => {
                Err(Error::AutomationDefinitionVersionNotFound(message))
            }
            Err(other) => Err(other),
        }
    }

    /// GetAutomationExecution: the execution and every step it ran, in order.
    pub async fn automation_execution(&self, id: &str) -> Result<AutomationView> {
        let row = self.automation_row(id).await?;
        let mut view = AutomationView::from_row(row)?;
        view.steps = self.automation_steps(id).await?;
        Ok(view)
    }

    async fn automation_row(&self, id: &str) -> Result<ExecutionRow> {
        let row = self.store().execution(id).await?;
        row.filter(|row| row.kind == KIND && row.tenant == self.account().account_id)
            .ok_or_else(|| execution_not_found(id))
    }

    async fn automation_steps(&self, id: &str) -> Result<Vec<StepView>> {
        self.store().steps_of(id).await?.into_iter().map(StepView::from_row).collect()
    }

    /// DescribeAutomationExecutions: newest first, `max` per page (1–50).
    pub async fn describe_automations(
        &self,
        filters: &FilterInput,
        max: i64,
        token: Option<&str>,
    ) -> Result<ExecutionPage> {
        let filter = automation_filter(filters)?;
        let cursor = token.map(|t| self.open_token(EXECUTIONS_SCOPE, t)).transpose()?;
        let cursor = cursor.as_deref().map(parse_cursor).transpose()?;
        let before = cursor.as_ref().map(|(at, id)| (*at, id.as_str()));
        let tenant = &self.account().account_id;
        let mut rows = self.store().list_automation_executions(tenant, &filter, before, max + 1).await?;
        let next_token = if rows.len() as i64 > max {
            rows.truncate(max as usize);
            rows.last()
                .map(|last| self.seal_token(EXECUTIONS_SCOPE, &format!("{}\n{}", last.created_at, last.id)))
        } else {
            None
        };
        let executions = rows.into_iter().map(AutomationView::from_row).collect::<Result<_>>()?;
        Ok(ExecutionPage { executions, next_token })
    }

    /// DescribeAutomationStepExecutions: an execution's steps in the order they ran (or the
    /// reverse), filtered, `max` per page.
    pub async fn describe_automation_steps(
        &self,
        id: &str,
        filters: &FilterInput,
        reverse: bool,
        max: usize,
        token: Option<&str>,
    ) -> Result<StepPage> {
        self.automation_row(id).await?;
        let matches = step_filter(filters)?;
        let mut steps: Vec<StepView> = self.automation_steps(id).await?.into_iter().filter(matches).collect();
        if reverse {
            steps.reverse();
        }
        let scope = format!("DescribeAutomationStepExecutions:{id}:{reverse}");
        let skip = match token {
            Some(token) => self.open_token(&scope, token)?.parse::<usize>().map_err(|_| bad_token())?,
            None => 0,
        };
        let rest: Vec<StepView> = steps.into_iter().skip(skip).collect();
        let next_token = (rest.len() > max).then(|| self.seal_token(&scope, &(skip + max).to_string()));
        Ok(StepPage { steps: rest.into_iter().take(max).collect(), next_token })
    }
}

fn bad_token() -> Error {
    Error::InvalidNextToken("The next token is not valid".into())
}

fn parse_cursor(text: &str) -> Result<(i64, String)> {
    let (at, id) = text.split_once('\n').ok_or_else(bad_token)?;
    Ok((at.parse().map_err(|_| bad_token())?, id.to_string()))
}

pub(crate) fn execution_not_found(id: &str) -> Error {
    Error::AutomationExecutionNotFound(format!("Automation execution {id} does not exist"))
}

/// A filter value naming a point in time (ISO 8601), as epoch milliseconds.
fn time_value(key: &str, values: &[String]) -> Result<i64> {
    let [value] = values else {
        return Err(Error::InvalidFilterValue(format!("{key} takes exactly one time value")));
    };
    sluice_core::automation::duration::parse_timestamp(value)
        .map(|at| at.timestamp_millis())
        .map_err(|_| Error::InvalidFilterValue(format!("{key} value {value:?} is not an ISO 8601 time")))
}

fn automation_filter(filters: &FilterInput) -> Result<AutomationFilter> {
    let mut filter = AutomationFilter::default();
    for (key, values) in filters {
        let values = values.clone();
        match key.as_str() {
            "DocumentNamePrefix" => filter.document_name_prefixes.extend(values),
            "ExecutionStatus" => filter.statuses.extend(values),
            "ExecutionId" => filter.execution_ids.extend(values),
            "ParentExecutionId" => filter.parent_ids.extend(values),
            "CurrentAction" => filter.current_actions.extend(values),
            "StartTimeBefore" => filter.started_before = Some(time_value(key, &values)?),
            "StartTimeAfter" => filter.started_after = Some(time_value(key, &values)?),
            other => {
                return Err(Error::InvalidFilterKey(format!(
                    "Filter key {other} is not supported for automation executions"
                )))
            }
        }
    }
    Ok(filter)
}

/// One filter of DescribeAutomationStepExecutions as a test on a step.
type StepCheck = Box<dyn Fn(&StepView) -> bool + Send>;

/// A predicate for DescribeAutomationStepExecutions' filters (values of one key OR-ed, keys
/// AND-ed).
fn step_filter(filters: &FilterInput) -> Result<impl Fn(&StepView) -> bool> {
    let mut checks: Vec<StepCheck> = Vec::new();
    for (key, values) in filters {
        let values = values.clone();
        let check: StepCheck = match key.as_str() {
            "StepExecutionStatus" => Box::new(move |s| values.contains(&s.row.status)),
            "StepExecutionId" => Box::new(move |s| values.contains(&s.row.id)),
            "StepName" => Box::new(move |s| values.contains(&s.row.name)),
            "Action" => Box::new(move |s| {
                values.iter().any(|v| Some(v.as_str()) == s.data.get("action").and_then(Value::as_str))
            }),
            "StartTimeBefore" => {
                let at = time_value(key, &values)?;
                Box::new(move |s| s.row.started_at.is_some_and(|started| started < at))
            }
            "StartTimeAfter" => {
                let at = time_value(key, &values)?;
                Box::new(move |s| s.row.started_at.is_some_and(|started| started >= at))
            }
            other => {
                return Err(Error::InvalidFilterKey(format!(
                    "Filter key {other} is not supported for step executions"
                )))
            }
        };
        checks.push(check);
    }
    Ok(move |step: &StepView| checks.iter().all(|check| check(step)))
}

/// The runbook an execution runs, from the copy stored with it.
pub(crate) fn stored_runbook(data: &Map<String, Value>) -> Result<Document> {
    let content = data.get("document").and_then(Value::as_str).unwrap_or_default();
    Document::parse(content, DocumentFormat::Json).map_err(|e| Error::Internal(e.to_string()))
}

/// Automatic outputs an action gives besides the runbook's `outputs`.
pub(crate) fn builtin_outputs(action: &str, result: &Value) -> Map<String, Value> {
    let keys: &[&str] = match action {
        "aws:executeAutomation" => &["ExecutionId", "Status", "Output"],
        "aws:approve" => &["ApprovalStatus", "ApproverDecisions"],
        "aws:runCommand" => &["CommandId", "Status", "ResponseCode", "Output"],
        "aws:executeScript" => &["OutputPayload"],
        _ => &[],
    };
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = result.get(*key) {
            out.insert((*key).to_string(), value.clone());
        }
    }
    out
}

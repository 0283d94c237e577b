//! The SSM facade's Automation execution operations: StartAutomationExecution,
//! GetAutomationExecution, DescribeAutomationExecutions, DescribeAutomationStepExecutions,
//! StopAutomationExecution and SendAutomationSignal, in AWS's wire shapes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sluice_engine::automation::signals::Signal;
use sluice_engine::automation::{AutomationView, FilterInput, StartAutomation, StepView};
use sluice_engine::{Engine, Error as EngineError, Principal};

use crate::codepipeline::{parse, timestamp};

type Output = Result<Value, EngineError>;

/// Runs one automation operation, if `operation` is one.
pub async fn call(engine: &Engine, principal: &Principal, operation: &str, input: Value) -> Option<Output> {
    let output = match operation {
        "StartAutomationExecution" => start(engine, principal, input).await,
        "GetAutomationExecution" => get(engine, input).await,
        "DescribeAutomationExecutions" => describe(engine, input).await,
        "DescribeAutomationStepExecutions" => describe_steps(engine, input).await,
        "StopAutomationExecution" => stop(engine, principal, input).await,
        "SendAutomationSignal" => signal(engine, principal, input).await,
        _ => return None,
    };
    Some(output)
}

/// The operations [`call`] serves.
pub const OPERATIONS: &[&str] = &[
    "StartAutomationExecution",
    "GetAutomationExecution",
    "DescribeAutomationExecutions",
    "DescribeAutomationStepExecutions",
    "StopAutomationExecution",
    "SendAutomationSignal",
];

fn read<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, EngineError> {
    parse(input).map_err(|err| EngineError::Validation(err.message))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartInput {
    document_name: String,
    document_version: Option<String>,
    parameters: Option<BTreeMap<String, Vec<String>>>,
    mode: Option<String>,
    client_token: Option<String>,
    targets: Option<Value>,
    target_maps: Option<Value>,
    target_locations: Option<Value>,
    target_parameter_name: Option<String>,
}

async fn start(engine: &Engine, principal: &Principal, input: Value) -> Output {
    let input: StartInput = read(input)?;
    let targeted = input.targets.is_some()
        || input.target_maps.is_some()
        || input.target_locations.is_some()
        || input.target_parameter_name.is_some();
    if targeted {
        return Err(EngineError::Validation(
            "Targets, TargetMaps, TargetLocations and TargetParameterName are not supported: Sluice runs \
             each automation once, locally"
                .into(),
        ));
    }
    let start = StartAutomation {
        document_name: input.document_name,
        document_version: input.document_version,
        parameters: input.parameters.unwrap_or_default(),
        interactive: input.mode.as_deref() == Some("Interactive"),
        client_token: input.client_token,
    };
    let id = engine.start_automation(principal, start).await?;
    Ok(json!({"AutomationExecutionId": id}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecutionIdInput {
    automation_execution_id: String,
}

async fn get(engine: &Engine, input: Value) -> Output {
    let input: ExecutionIdInput = read(input)?;
    let view = engine.automation_execution(&input.automation_execution_id).await?;
    let mut execution = metadata(&view);
    execution.remove("AutomationType");
    execution.remove("LogFile");
    let steps: Vec<Value> = view.steps.iter().map(step_execution).collect();
    execution.insert("StepExecutions".into(), json!(steps));
    execution.insert("StepExecutionsTruncated".into(), json!(false));
    execution.insert("Parameters".into(), json!(view.parameters()));
    Ok(json!({"AutomationExecution": execution}))
}

/// The fields GetAutomationExecution and DescribeAutomationExecutions share.
fn metadata(view: &AutomationView) -> Map<String, Value> {
    let row = &view.row;
    let mut out = Map::new();
    out.insert("AutomationExecutionId".into(), json!(row.id));
    out.insert("DocumentName".into(), json!(row.definition_name));
    out.insert("DocumentVersion".into(), json!(row.definition_version.to_string()));
    out.insert("AutomationExecutionStatus".into(), json!(row.status));
    out.insert("ExecutionStartTime".into(), timestamp(row.created_at));
    if let Some(end) = row.finished_at {
        out.insert("ExecutionEndTime".into(), timestamp(end));
    }
    out.insert("ExecutedBy".into(), json!(view.executed_by()));
    out.insert("Mode".into(), json!(view.mode()));
    out.insert("Outputs".into(), json!(view.outputs()));
    out.insert("AutomationType".into(), json!("Local"));
    out.insert("LogFile".into(), json!(""));
    let optional = [
        ("ParentAutomationExecutionId", row.parent_id.as_deref()),
        ("CurrentStepName", row.current_step.as_deref()),
        ("CurrentAction", row.current_action.as_deref()),
        ("FailureMessage", view.failure_message()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            out.insert(key.into(), json!(value));
        }
    }
    out
}

fn step_execution(step: &StepView) -> Value {
    let data = &step.data;
    let row = &step.row;
    let mut out = Map::new();
    out.insert("StepName".into(), json!(row.name));
    out.insert("StepExecutionId".into(), json!(row.id));
    out.insert("StepStatus".into(), json!(row.status));
    if let Some(started) = row.started_at {
        out.insert("ExecutionStartTime".into(), timestamp(started));
    }
    if let Some(finished) = row.finished_at {
        out.insert("ExecutionEndTime".into(), timestamp(finished));
    }
    // Inputs is a map of strings: each rendered input as JSON text, as AWS shows them.
    let inputs: Map<String, Value> = match data.get("inputs") {
        Some(Value::Object(inputs)) => {
            inputs.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect()
        }
        _ => Map::new(),
    };
    out.insert("Inputs".into(), Value::Object(inputs));
    out.insert("Outputs".into(), json!(sluice_engine::automation::wire_map(data.get("outputs"))));
    let copied = [
        ("action", "Action"),
        ("onFailure", "OnFailure"),
        ("maxAttempts", "MaxAttempts"),
        ("timeoutSeconds", "TimeoutSeconds"),
        ("isEnd", "IsEnd"),
        ("isCritical", "IsCritical"),
        ("nextStep", "NextStep"),
        ("failureMessage", "FailureMessage"),
        ("failureDetails", "FailureDetails"),
    ];
    for (from, to) in copied {
        if let Some(value) = data.get(from) {
            out.insert(to.into(), value.clone());
        }
    }
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireFilter {
    key: String,
    values: Vec<String>,
}

fn filters(wire: Option<Vec<WireFilter>>) -> FilterInput {
    wire.unwrap_or_default().into_iter().map(|f| (f.key, f.values)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInput {
    filters: Option<Vec<WireFilter>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

async fn describe(engine: &Engine, input: Value) -> Output {
    let input: DescribeInput = read(input)?;
    let page = engine
        .describe_automations(
            &filters(input.filters),
            input.max_results.unwrap_or(50),
            input.next_token.as_deref(),
        )
        .await?;
    let list: Vec<Value> = page.executions.iter().map(|view| Value::Object(metadata(view))).collect();
    let mut out = json!({"AutomationExecutionMetadataList": list});
    if let Some(token) = page.next_token {
        out["NextToken"] = json!(token);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeStepsInput {
    automation_execution_id: String,
    filters: Option<Vec<WireFilter>>,
    max_results: Option<usize>,
    next_token: Option<String>,
    reverse_order: Option<bool>,
}

async fn describe_steps(engine: &Engine, input: Value) -> Output {
    let input: DescribeStepsInput = read(input)?;
    let page = engine
        .describe_automation_steps(
            &input.automation_execution_id,
            &filters(input.filters),
            input.reverse_order.unwrap_or(false),
            input.max_results.unwrap_or(50),
            input.next_token.as_deref(),
        )
        .await?;
    let steps: Vec<Value> = page.steps.iter().map(step_execution).collect();
    let mut out = json!({"StepExecutions": steps});
    if let Some(token) = page.next_token {
        out["NextToken"] = json!(token);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StopInput {
    automation_execution_id: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

async fn stop(engine: &Engine, principal: &Principal, input: Value) -> Output {
    let input: StopInput = read(input)?;
    if input.kind.as_deref().unwrap_or("Cancel") != "Cancel" {
        return Err(EngineError::Validation(
            "Type Complete applies to rate-controlled executions, which Sluice does not run; use Cancel"
                .into(),
        ));
    }
    engine.stop_automation(principal, &input.automation_execution_id).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignalInput {
    automation_execution_id: String,
    signal_type: String,
    payload: Option<BTreeMap<String, Vec<String>>>,
}

async fn signal(engine: &Engine, principal: &Principal, input: Value) -> Output {
    let input: SignalInput = read(input)?;
    let signal = Signal::from_name(&input.signal_type).ok_or_else(|| {
        EngineError::InvalidAutomationSignal(format!("SignalType {} is not known", input.signal_type))
    })?;
    let payload = input.payload.unwrap_or_default();
    engine.send_automation_signal(principal, &input.automation_execution_id, signal, &payload).await?;
    Ok(json!({}))
}

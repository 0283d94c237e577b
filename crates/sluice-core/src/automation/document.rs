//! Automation runbooks (schemaVersion 0.3): JSON or YAML content parsed into a [`Document`], the
//! rules CreateDocument enforces before storing one, format conversion for GetDocument and the
//! parameter list DescribeDocument shows.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::branch::Branch;
use super::duration::{parse_sleep_duration, parse_timestamp};
use super::parameters::{check_allowed_values, fits_type};
use super::selector::Selector;
use super::template::{plain_text, references, whole_reference, Reference, SYSTEM_VARIABLES};

static STEP_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[a-zA-Z0-9_]+$").expect("compiles"));

const STEP_KEYS: &[&str] = &[
    "name",
    "action",
    "description",
    "inputs",
    "outputs",
    "maxAttempts",
    "timeoutSeconds",
    "onFailure",
    "onCancel",
    "isEnd",
    "nextStep",
    "isCritical",
];

named_enum! {
    /// The wire's DocumentFormat, less TEXT (which Automation runbooks can't use).
    pub enum DocumentFormat {
        Json = "JSON",
        Yaml = "YAML",
    }
}

named_enum! {
    /// A parameter's `type`; step outputs use the same names.
    pub enum ParameterType {
        String = "String",
        StringList = "StringList",
        Integer = "Integer",
        Boolean = "Boolean",
        MapList = "MapList",
        StringMap = "StringMap",
    }
}

named_enum! {
    /// The actions Sluice runs.
    pub enum StepAction {
        Sleep = "aws:sleep",
        Pause = "aws:pause",
        Approve = "aws:approve",
        Branch = "aws:branch",
        ExecuteAutomation = "aws:executeAutomation",
        ExecuteScript = "aws:executeScript",
        RunCommand = "aws:runCommand",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDef {
    pub name: String,
    pub kind: ParameterType,
    pub description: Option<String>,
    pub default: Option<Value>,
    /// Each allowed value as text.
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub min_items: Option<usize>,
    pub max_items: Option<usize>,
}

/// `onFailure`: `Abort` (the default), `Continue` or `step:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
    Step(String),
}

/// `onCancel`: `Abort` (the default) or `step:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnCancel {
    Abort,
    Step(String),
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnFailure::Abort => f.write_str("Abort"),
            OnFailure::Continue => f.write_str("Continue"),
            OnFailure::Step(step) => write!(f, "step:{step}"),
        }
    }
}

impl fmt::Display for OnCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnCancel::Abort => f.write_str("Abort"),
            OnCancel::Step(step) => write!(f, "step:{step}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub name: String,
    pub selector: String,
    pub kind: ParameterType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: StepAction,
    /// As written: placeholders are rendered when the step runs.
    pub inputs: Value,
    pub on_failure: OnFailure,
    pub on_cancel: OnCancel,
    pub timeout_seconds: Option<u64>,
    pub max_attempts: u32,
    pub next_step: Option<String>,
    pub is_end: bool,
    /// Defaults to true, or to false when `onFailure` is `Continue`.
    pub is_critical: bool,
    pub outputs: Vec<StepOutput>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub schema_version: String,
    pub description: Option<String>,
    pub assume_role: Option<String>,
    /// In the order the content declares them.
    pub parameters: Vec<ParameterDef>,
    pub steps: Vec<Step>,
    /// `stepName.OutputName` entries.
    pub outputs: Vec<String>,
}

/// One entry of DescribeDocument's `Parameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSummary {
    pub name: String,
    pub kind: ParameterType,
    pub description: Option<String>,
    /// Strings as they are, other defaults as compact JSON.
    pub default_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// AWS's `InvalidDocumentContent`; the text says what is wrong.
    #[error("{0}")]
    InvalidContent(String),
}

impl Document {
    /// Parses and checks every creation rule.
    pub fn parse(content: &str, format: DocumentFormat) -> Result<Document, DocumentError> {
        let tree = read_tree(content, format)?;
        let json =
            serde_json::to_value(&tree).map_err(|e| invalid(format!("content isn't JSON-like: {e}")))?;
        let top = json.as_object().ok_or_else(|| invalid("content must be a map".into()))?;
        let parameters =
            tree.get("parameters").and_then(|p| p.as_mapping()).into_iter().flat_map(|p| p.keys());
        let order: Vec<&str> = parameters.filter_map(|key| key.as_str()).collect();
        let document = Document::from_map(top, &order).map_err(invalid)?;
        document.validate().map_err(invalid)?;
        Ok(document)
    }

    pub fn parameter(&self, name: &str) -> Option<&ParameterDef> {
        self.parameters.iter().find(|p| p.name == name)
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    pub fn parameter_summaries(&self) -> Vec<ParameterSummary> {
        let summary = |p: &ParameterDef| ParameterSummary {
            name: p.name.clone(),
            kind: p.kind,
            description: p.description.clone(),
            default_value: p.default.as_ref().map(plain_text),
        };
        self.parameters.iter().map(summary).collect()
    }

    fn from_map(top: &Map<String, Value>, parameter_order: &[&str]) -> Result<Document, String> {
        match top.get("schemaVersion").map(plain_text).as_deref() {
            Some("0.3") => {}
            Some(other) => return Err(format!("schemaVersion must be \"0.3\", not {other:?}")),
            None => return Err("schemaVersion is required and must be \"0.3\"".into()),
        }
        let steps = match top.get("mainSteps") {
            Some(Value::Array(steps)) if !steps.is_empty() => {
                steps.iter().enumerate().map(parse_step).collect()
            }
            _ => Err("mainSteps must be a non-empty list of steps".to_owned()),
        };
        let outputs = match top.get("outputs") {
            None => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                items.iter().map(plain_text).collect()
            }
            Some(_) => return Err("outputs must be a list of \"stepName.OutputName\" strings".into()),
        };
        Ok(Document {
            schema_version: "0.3".into(),
            description: optional_string(top, "description")?,
            assume_role: optional_string(top, "assumeRole")?,
            parameters: parse_parameters(top.get("parameters"), parameter_order)?,
            steps: steps?,
            outputs,
        })
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        if let Some(step) = self.steps.iter().find(|s| !names.insert(s.name.as_str())) {
            return Err(format!("step name {} is used more than once", step.name));
        }
        for (index, step) in self.steps.iter().enumerate() {
            self.check_step(index, step).map_err(|reason| format!("step {}: {reason}", step.name))?;
        }
        if let Some(role) = &self.assume_role {
            let role = Value::String(role.clone());
            self.check_references(&role, 0).map_err(|reason| format!("assumeRole: {reason}"))?;
        }
        for output in &self.outputs {
            if output.split_once('.').and_then(|(step, _)| self.step(step)).is_none() {
                return Err(format!(
                    "output {output} must be stepName.OutputName for a step of this document"
                ));
            }
        }
        Ok(())
    }

    fn check_step(&self, index: usize, step: &Step) -> Result<(), String> {
        if let Some(next) = &step.next_step {
            self.target("nextStep", next)?;
        }
        if let OnFailure::Step(target) = &step.on_failure {
            self.target("onFailure", target)?;
        }
        if let OnCancel::Step(target) = &step.on_cancel {
            let action = self.target("onCancel", target)?.action;
            if matches!(action, StepAction::Approve | StepAction::Pause | StepAction::Sleep) {
                return Err(format!("onCancel can't move to {target}, an {action} step"));
            }
        }
        self.check_inputs(step)?;
        self.check_references(&step.inputs, index)
    }

    fn target(&self, field: &str, name: &str) -> Result<&Step, String> {
        self.step(name).ok_or_else(|| format!("{field} names step {name}, which does not exist"))
    }

    fn check_inputs(&self, step: &Step) -> Result<(), String> {
        let inputs = &step.inputs;
        match step.action {
            StepAction::Sleep => check_sleep(inputs),
            StepAction::Pause => Ok(()),
            StepAction::Approve => check_approve(inputs),
            StepAction::Branch => {
                let branch = Branch::parse(inputs).map_err(|e| e.to_string())?;
                for target in branch.targets() {
                    self.target("aws:branch", target)?;
                }
                Ok(())
            }
            StepAction::ExecuteAutomation => {
                require_string(inputs, "DocumentName").and_then(|()| expect_map(inputs, "RuntimeParameters"))
            }
            StepAction::ExecuteScript => check_script(inputs),
            StepAction::RunCommand => {
                require_string(inputs, "DocumentName").and_then(|()| expect_map(inputs, "Parameters"))
            }
        }
    }

    /// Every placeholder must name a parameter, a step before `step_index`, or a system variable.
    fn check_references(&self, value: &Value, step_index: usize) -> Result<(), String> {
        for reference in references(value) {
            let problem = match Reference::parse(&reference) {
                _ if self.parameter(&reference).is_some() => None,
                Reference::Parameter(_) => Some("names no parameter of this document"),
                Reference::StepOutput { step, .. } => {
                    (!self.steps[..step_index].iter().any(|s| s.name == step))
                        .then_some("must name the output of an earlier step")
                }
                Reference::System(name) => (!SYSTEM_VARIABLES.contains(&name.as_str()))
                    .then_some("is not an automation or global variable"),
                Reference::ParameterStore(_) => Some("is only allowed as a parameter's default"),
            };
            if let Some(problem) = problem {
                return Err(format!("{{{{ {reference} }}}} {problem}"));
            }
        }
        Ok(())
    }
}

/// GetDocument's format conversion, keeping key order. Content already in `to` comes back as is.
pub fn convert(content: &str, from: DocumentFormat, to: DocumentFormat) -> Result<String, DocumentError> {
    if from == to {
        return Ok(content.to_owned());
    }
    let tree = read_tree(content, from)?;
    let written = match to {
        DocumentFormat::Json => serde_json::to_string_pretty(&tree).map_err(|e| e.to_string()),
        DocumentFormat::Yaml => serde_norway::to_string(&tree).map_err(|e| e.to_string()),
    };
    written.map_err(|e| invalid(format!("content can't be written as {to}: {e}")))
}

fn invalid(message: String) -> DocumentError {
    DocumentError::InvalidContent(message)
}

/// Reads content into a tree that keeps map order.
fn read_tree(content: &str, format: DocumentFormat) -> Result<serde_norway::Value, DocumentError> {
    let tree = match format {
        DocumentFormat::Json => serde_json::from_str(content).map_err(|e| e.to_string()),
        DocumentFormat::Yaml => serde_norway::from_str(content).map_err(|e| e.to_string()),
    };
    tree.map_err(|e| invalid(format!("content is not valid {format}: {e}")))
}

/// `map[key]` read by `read`; an error saying it must be `what` if it can't be read.
fn optional<'a, T>(
    map: &'a Map<String, Value>,
    key: &str,
    read: fn(&'a Value) -> Option<T>,
    what: &str,
) -> Result<Option<T>, String> {
    map.get(key).map(|value| read(value).ok_or_else(|| format!("{key} must be {what}"))).transpose()
}

fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    optional(map, key, |v| v.as_str().map(str::to_owned), "a string")
}

fn optional_count(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    optional(map, key, Value::as_u64, "a whole number")
}

fn optional_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    optional(map, key, Value::as_bool, "true or false")
}

fn parse_parameters(value: Option<&Value>, order: &[&str]) -> Result<Vec<ParameterDef>, String> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let defs = value.as_object().ok_or("parameters must be a map from name to definition")?;
    let parse = |name: &&str| {
        let def = defs.get(*name).unwrap_or(&Value::Null);
        parse_parameter(name, def).map_err(|reason| format!("parameter {name}: {reason}"))
    };
    order.iter().map(parse).collect()
}

fn parse_parameter(name: &str, value: &Value) -> Result<ParameterDef, String> {
    let map = value.as_object().ok_or("its definition must be a map")?;
    let kind = optional_string(map, "type")?.ok_or("type is required")?;
    let kind = ParameterType::from_name(&kind).ok_or_else(|| {
        format!(
            "type {kind} is not supported; use String, StringList, Integer, Boolean, MapList or StringMap"
        )
    })?;
    let allowed_values = optional(map, "allowedValues", Value::as_array, "a list")?;
    let allowed_pattern = optional_string(map, "allowedPattern")?;
    if let Some(pattern) = &allowed_pattern {
        Regex::new(pattern).map_err(|_| format!("allowedPattern {pattern:?} is not a regular expression"))?;
    }
    let count = |key| optional_count(map, key).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)));
    let (min_items, max_items) = (count("minItems")?, count("maxItems")?);
    if let Some((min, max)) = min_items.zip(max_items).filter(|(min, max)| min > max) {
        return Err(format!("minItems {min} is more than maxItems {max}"));
    }
    let def = ParameterDef {
        name: name.to_owned(),
        kind,
        description: optional_string(map, "description")?,
        default: map.get("default").cloned(),
        allowed_values: allowed_values.into_iter().flatten().map(plain_text).collect(),
        allowed_pattern,
        min_items,
        max_items,
    };
    check_default(&def)?;
    Ok(def)
}

/// A default must fit the type and the allowed values, unless it is a `{{ ssm:... }}` reference.
fn check_default(def: &ParameterDef) -> Result<(), String> {
    let Some(default) = &def.default else { return Ok(()) };
    let reference = default.as_str().and_then(whole_reference).map(Reference::parse);
    if matches!(reference, Some(Reference::ParameterStore(_))) {
        return Ok(());
    }
    if !fits_type(def.kind, default) {
        return Err(format!("default {} is not a {}", plain_text(default), def.kind));
    }
    check_allowed_values(def, default).map_err(|reason| format!("default {reason}"))
}

fn parse_step((index, value): (usize, &Value)) -> Result<Step, String> {
    let map = value.as_object().ok_or_else(|| format!("mainSteps[{index}] must be a map"))?;
    match map.get("name") {
        Some(Value::String(name)) => {
            parse_step_fields(name, map).map_err(|reason| format!("step {name}: {reason}"))
        }
        _ => Err(format!("mainSteps[{index}] needs a name")),
    }
}

fn parse_step_fields(name: &str, map: &Map<String, Value>) -> Result<Step, String> {
    if !STEP_NAME.is_match(name) {
        return Err("a step name may use only letters, digits and underscores".into());
    }
    if let Some(key) = map.keys().find(|key| !STEP_KEYS.contains(&key.as_str())) {
        return Err(format!("{key} is not a step property"));
    }
    let action = optional_string(map, "action")?.ok_or("action is required")?;
    let action = StepAction::from_name(&action).ok_or_else(|| {
        let names: Vec<_> = StepAction::ALL.iter().map(|a| a.name()).collect();
        format!("action {action} is not supported; Sluice runs {}", names.join(", "))
    })?;
    let inputs = optional(map, "inputs", |v| v.is_object().then(|| v.clone()), "a map")?;
    let on_failure = match optional_string(map, "onFailure")?.as_deref() {
        None => OnFailure::Abort,
        Some(text) if text.eq_ignore_ascii_case("Abort") => OnFailure::Abort,
        Some(text) if text.eq_ignore_ascii_case("Continue") => OnFailure::Continue,
        Some(text) => OnFailure::Step(
            step_target(text)
                .ok_or_else(|| format!("onFailure must be Abort, Continue or step:<name>, not {text}"))?,
        ),
    };
    let on_cancel = match optional_string(map, "onCancel")?.as_deref() {
        None => OnCancel::Abort,
        Some(text) if text.eq_ignore_ascii_case("Abort") => OnCancel::Abort,
        Some(text) => OnCancel::Step(
            step_target(text).ok_or_else(|| format!("onCancel must be Abort or step:<name>, not {text}"))?,
        ),
    };
    let timeout_seconds = optional_count(map, "timeoutSeconds")?;
    if timeout_seconds == Some(0) {
        return Err("timeoutSeconds must be at least 1".into());
    }
    let max_attempts = optional_count(map, "maxAttempts")?.unwrap_or(1);
    let max_attempts =
        u32::try_from(max_attempts).ok().filter(|n| *n >= 1).ok_or("maxAttempts must be at least 1")?;
    Ok(Step {
        name: name.to_owned(),
        action,
        inputs: inputs.unwrap_or_else(|| Value::Object(Map::new())),
        is_critical: optional_bool(map, "isCritical")?.unwrap_or(on_failure != OnFailure::Continue),
        on_failure,
        on_cancel,
        timeout_seconds,
        max_attempts,
        next_step: optional_string(map, "nextStep")?,
        is_end: optional_bool(map, "isEnd")?.unwrap_or(false),
        outputs: optional(map, "outputs", Value::as_array, "a list")?
            .into_iter()
            .flatten()
            .enumerate()
            .map(parse_output)
            .collect::<Result<_, _>>()?,
    })
}

fn step_target(text: &str) -> Option<String> {
    text.strip_prefix("step:").filter(|name| !name.is_empty()).map(str::to_owned)
}

fn parse_output((index, item): (usize, &Value)) -> Result<StepOutput, String> {
    let parse = || -> Result<StepOutput, String> {
        let map = item.as_object().ok_or("an output must be a map with Name, Selector and Type")?;
        let name = optional_string(map, "Name")?.ok_or("Name is required")?;
        let selector = optional_string(map, "Selector")?.ok_or("Selector is required")?;
        Selector::parse(&selector).map_err(|e| e.to_string())?;
        let kind = optional_string(map, "Type")?.ok_or("Type is required")?;
        let kind =
            ParameterType::from_name(&kind).ok_or_else(|| format!("Type {kind} is not an output type"))?;
        Ok(StepOutput { name, selector, kind })
    };
    parse().map_err(|reason| format!("outputs[{index}]: {reason}"))
}

fn has_references(value: &Value) -> bool {
    !references(value).is_empty()
}

fn require_string(inputs: &Value, key: &str) -> Result<(), String> {
    match inputs.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(()),
        _ => Err(format!("{key} is required")),
    }
}

/// A map, or a placeholder that will render to one, when present.
fn expect_map(inputs: &Value, key: &str) -> Result<(), String> {
    match inputs.get(key) {
        None | Some(Value::Object(_)) => Ok(()),
        Some(value @ Value::String(_)) if has_references(value) => Ok(()),
        Some(_) => Err(format!("{key} must be a map")),
    }
}

/// Literal times are checked now; times built from placeholders when the step runs.
fn check_sleep(inputs: &Value) -> Result<(), String> {
    let checked = match (inputs.get("Duration"), inputs.get("Timestamp")) {
        (Some(value), None) | (None, Some(value)) if has_references(value) => Ok(()),
        (Some(Value::String(text)), None) => parse_sleep_duration(text).map(drop),
        (None, Some(Value::String(text))) => parse_timestamp(text).map(drop),
        _ => return Err("aws:sleep needs exactly one of Duration or Timestamp".into()),
    };
    checked.map_err(|e| e.to_string())
}

fn check_approve(inputs: &Value) -> Result<(), String> {
    let approvers = match inputs.get("Approvers") {
        Some(value @ Value::Array(list))
            if (1..=10).contains(&list.len()) && list.iter().all(Value::is_string) =>
        {
            (!has_references(value)).then_some(list.len() as u64)
        }
        Some(Value::String(text)) if whole_reference(text).is_some() => None,
        _ => return Err("Approvers must be a list of 1 to 10 principals".into()),
    };
    let min = match inputs.get("MinRequiredApprovals") {
        None => return Ok(()),
        Some(Value::String(text)) if whole_reference(text).is_some() => return Ok(()),
        Some(value) => value.as_u64().filter(|n| (1..=10).contains(n)),
    };
    let min = min.ok_or("MinRequiredApprovals must be a whole number from 1 to 10")?;
    match approvers {
        Some(count) if min > count => {
            Err(format!("MinRequiredApprovals is {min} but only {count} approvers are listed"))
        }
        _ => Ok(()),
    }
}

fn check_script(inputs: &Value) -> Result<(), String> {
    let runtime = match inputs.get("Runtime") {
        Some(Value::String(runtime)) if !runtime.is_empty() => runtime,
        _ => return Err("Runtime is required".into()),
    };
    if runtime.starts_with("python") {
        require_string(inputs, "Handler")
            .map_err(|_| format!("Handler is required for the {runtime} runtime"))?;
    }
    require_string(inputs, "Script")
        .or_else(|_| require_string(inputs, "Attachment"))
        .map_err(|_| "Script or Attachment is required".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUNBOOK: &str = r#"
description: Restart and report
schemaVersion: '0.3'
assumeRole: '{{ AutomationAssumeRole }}'
parameters:
  InstanceIds: {type: StringList, description: Instances to restart}
  AutomationAssumeRole: {type: String, default: ''}
  Attempts: {type: Integer, default: 2}
mainSteps:
  - name: approve
    action: aws:approve
    timeoutSeconds: 3600
    onCancel: step:child
    inputs: {Approvers: [alice, bob], MinRequiredApprovals: 2, Message: 'Restart {{ InstanceIds }}?'}
  - name: restart
    action: aws:runCommand
    maxAttempts: 3
    onFailure: step:report
    nextStep: check
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ['{{ InstanceIds }}']
      Parameters: {commands: ['reboot # {{ automation:EXECUTION_ID }} in {{ global:REGION }}']}
  - name: check
    action: aws:executeScript
    onFailure: Continue
    inputs: {Runtime: python3.11, Handler: main, Script: 'def main(e, c): return {"ok": True}'}
    outputs: [{Name: ok, Selector: $.Payload.ok, Type: Boolean}]
  - name: decide
    action: aws:branch
    inputs:
      Choices: [{NextStep: report, Variable: '{{ check.ok }}', BooleanEquals: true}]
      Default: child
  - {name: child, action: 'aws:executeAutomation', inputs: {DocumentName: Other, RuntimeParameters: {}}}
  - {name: nap, action: 'aws:sleep', inputs: {Duration: PT5M}}
  - {name: report, action: 'aws:pause', isEnd: true}
outputs: [check.ok]
"#;

    fn runbook() -> Document {
        Document::parse(RUNBOOK, DocumentFormat::Yaml).unwrap()
    }

    /// Parses a small JSON runbook, holding parameter `Ids` and pause step `first`, after `change`.
    fn parse_after(change: impl FnOnce(&mut Value)) -> Result<Document, String> {
        let mut doc = json!({
            "schemaVersion": "0.3",
            "parameters": {"Ids": {"type": "StringList"}},
            "mainSteps": [{"name": "first", "action": "aws:pause", "inputs": {}}],
        });
        change(&mut doc);
        Document::parse(&doc.to_string(), DocumentFormat::Json).map_err(|e| e.to_string())
    }

    fn with_step(step: Value) -> Result<Document, String> {
        parse_after(|doc| doc["mainSteps"].as_array_mut().unwrap().push(step))
    }

    fn step_error(action: &str, inputs: Value) -> String {
        with_step(json!({"name": "s", "action": action, "inputs": inputs})).unwrap_err()
    }

    fn accepts(action: &str, inputs: Value) {
        let result = with_step(json!({"name": "s", "action": action, "inputs": inputs}));
        assert!(result.is_ok(), "{action}: {result:?}");
    }

    #[test]
    fn a_yaml_runbook_is_parsed() {
        let doc = runbook();
        assert_eq!(
            (doc.schema_version.as_str(), doc.description.as_deref()),
            ("0.3", Some("Restart and report"))
        );
        assert_eq!(doc.assume_role.as_deref(), Some("{{ AutomationAssumeRole }}"));
        let names: Vec<_> = doc.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["InstanceIds", "AutomationAssumeRole", "Attempts"]);
        use StepAction::*;
        let actions: Vec<_> = doc.steps.iter().map(|s| s.action).collect();
        assert_eq!(actions, [Approve, RunCommand, ExecuteScript, Branch, ExecuteAutomation, Sleep, Pause]);
        assert_eq!(doc.outputs, ["check.ok"]);
        assert_eq!(doc.step("nap").unwrap().inputs, json!({"Duration": "PT5M"}));
    }

    #[test]
    fn step_properties_and_their_defaults() {
        let doc = runbook();
        let approve = doc.step("approve").unwrap();
        assert_eq!(
            (approve.timeout_seconds, approve.max_attempts, &approve.on_failure),
            (Some(3600), 1, &OnFailure::Abort)
        );
        assert_eq!(approve.on_cancel.to_string(), "step:child");
        assert!(approve.is_critical && !approve.is_end && approve.next_step.is_none());
        let restart = doc.step("restart").unwrap();
        assert_eq!((restart.max_attempts, restart.on_failure.to_string()), (3, "step:report".into()));
        assert_eq!(restart.next_step.as_deref(), Some("check"));
        let check = doc.step("check").unwrap();
        assert!(!check.is_critical, "onFailure Continue makes a step non-critical by default");
        let ok =
            StepOutput { name: "ok".into(), selector: "$.Payload.ok".into(), kind: ParameterType::Boolean };
        assert_eq!((check.on_failure.to_string(), &check.outputs[..]), ("Continue".into(), &[ok][..]));
        assert!(doc.step("report").unwrap().is_end);
        let lenient = json!({"name": "p", "action": "aws:pause", "onFailure": "abort", "onCancel": "ABORT"});
        let step = with_step(lenient).unwrap().steps.pop().unwrap();
        assert_eq!((step.on_failure, step.on_cancel), (OnFailure::Abort, OnCancel::Abort));
    }

    #[test]
    fn conversion_keeps_order_and_meaning() {
        let json = convert(RUNBOOK, DocumentFormat::Yaml, DocumentFormat::Json).unwrap();
        assert!(
            json.starts_with("{\n  \"description\": \"Restart and report\",\n  \"schemaVersion\""),
            "{json}"
        );
        assert_eq!(Document::parse(&json, DocumentFormat::Json).unwrap(), runbook());
        let yaml = convert(&json, DocumentFormat::Json, DocumentFormat::Yaml).unwrap();
        assert!(yaml.starts_with("description: Restart and report\nschemaVersion: '0.3'\n"), "{yaml}");
        assert_eq!(Document::parse(&yaml, DocumentFormat::Yaml).unwrap(), runbook());
        assert_eq!(convert("a: [", DocumentFormat::Yaml, DocumentFormat::Yaml).unwrap(), "a: [");
        let err = convert("{", DocumentFormat::Json, DocumentFormat::Yaml).unwrap_err().to_string();
        assert!(err.starts_with("content is not valid JSON: "), "{err}");
        assert_eq!(
            (DocumentFormat::from_name("YAML"), DocumentFormat::from_name("TEXT")),
            (Some(DocumentFormat::Yaml), None)
        );
    }

    #[test]
    fn parameter_summaries_show_defaults_as_text() {
        let summaries = runbook().parameter_summaries();
        assert_eq!(
            (summaries[0].description.as_deref(), summaries[2].kind),
            (Some("Instances to restart"), ParameterType::Integer)
        );
        let defaults: Vec<_> = summaries.iter().map(|s| s.default_value.as_deref()).collect();
        assert_eq!(defaults, [None, Some(""), Some("2")]);
    }

    #[test]
    fn content_errors() {
        let yaml = |text| Document::parse(text, DocumentFormat::Yaml).map_err(|e| e.to_string());
        assert!(yaml("a: [").unwrap_err().starts_with("content is not valid YAML: "));
        assert_eq!(yaml("[1]").unwrap_err(), "content must be a map");
        assert!(yaml("{[1]: a}").unwrap_err().starts_with("content isn't JSON-like: "));
        assert_eq!(
            yaml("schemaVersion: 0.3\nmainSteps: [{name: a, action: 'aws:pause'}]").unwrap().schema_version,
            "0.3"
        );
        let cases = [
            ("schemaVersion", Some(json!("2.2")), "schemaVersion must be \"0.3\", not \"2.2\""),
            ("schemaVersion", None, "schemaVersion is required and must be \"0.3\""),
            ("mainSteps", Some(json!([])), "mainSteps must be a non-empty list of steps"),
            ("outputs", Some(json!([1])), "outputs must be a list of \"stepName.OutputName\" strings"),
            (
                "outputs",
                Some(json!(["x.Y"])),
                "output x.Y must be stepName.OutputName for a step of this document",
            ),
            ("description", Some(json!(1)), "description must be a string"),
            ("parameters", Some(json!([])), "parameters must be a map from name to definition"),
        ];
        for (key, value, message) in cases {
            let result = parse_after(|doc| match value {
                Some(value) => doc[key] = value,
                None => drop(doc.as_object_mut().unwrap().remove(key)),
            });
            assert_eq!(result.unwrap_err(), message);
        }
    }

    #[test]
    fn step_property_errors() {
        let cases = [
            (json!({"name": "first", "action": "aws:pause"}), "step name first is used more than once"),
            (json!({"name": "a-b"}), "step a-b: a step name may use only letters, digits and underscores"),
            (json!({"action": "aws:pause"}), "mainSteps[1] needs a name"),
            (json!("x"), "mainSteps[1] must be a map"),
            (json!({"name": "p"}), "step p: action is required"),
        ];
        for (step, message) in cases {
            assert_eq!(with_step(step).unwrap_err(), message);
        }
        let output = |selector: &str, kind: &str| json!([{"Name": "o", "Selector": selector, "Type": kind}]);
        let cases = [
            (json!({"nextstep": "first"}), "nextstep is not a step property"),
            (json!({"inputs": []}), "inputs must be a map"),
            (json!({"onFailure": "Retry"}), "onFailure must be Abort, Continue or step:<name>, not Retry"),
            (json!({"onCancel": "Continue"}), "onCancel must be Abort or step:<name>, not Continue"),
            (json!({"timeoutSeconds": 0}), "timeoutSeconds must be at least 1"),
            (json!({"timeoutSeconds": "5"}), "timeoutSeconds must be a whole number"),
            (json!({"maxAttempts": 0}), "maxAttempts must be at least 1"),
            (json!({"isEnd": "yes"}), "isEnd must be true or false"),
            (json!({"nextStep": "gone"}), "nextStep names step gone, which does not exist"),
            (json!({"onFailure": "step:gone"}), "onFailure names step gone, which does not exist"),
            (json!({"onCancel": "step:gone"}), "onCancel names step gone, which does not exist"),
            (json!({"onCancel": "step:first"}), "onCancel can't move to first, an aws:pause step"),
            (json!({"outputs": output("x", "String")}), "outputs[0]: selector \"x\" is not of the form $, $.Key, $.Key.Sub or $.List[0]"),
            (json!({"outputs": output("$", "Map")}), "outputs[0]: Type Map is not an output type"),
            (json!({"outputs": [{"Selector": "$", "Type": "String"}]}), "outputs[0]: Name is required"),
            (json!({"action": "aws:executeAwsApi"}), "action aws:executeAwsApi is not supported; Sluice runs aws:sleep, aws:pause, aws:approve, aws:branch, aws:executeAutomation, aws:executeScript, aws:runCommand"),
        ];
        for (properties, message) in cases {
            let mut step = json!({"name": "p", "action": "aws:pause"});
            step.as_object_mut().unwrap().extend(properties.as_object().unwrap().clone());
            assert_eq!(with_step(step).unwrap_err(), format!("step p: {message}"));
        }
    }

    #[test]
    fn action_input_errors() {
        const SLEEP: &str = "aws:sleep needs exactly one of Duration or Timestamp";
        const APPROVERS: &str = "Approvers must be a list of 1 to 10 principals";
        const MIN: &str = "MinRequiredApprovals must be a whole number from 1 to 10";
        let choice = |next: &str| json!([{"NextStep": next, "Variable": "x", "Contains": "x"}]);
        let cases = [
            ("aws:sleep", json!({}), SLEEP),
            ("aws:sleep", json!({"Duration": "PT1S", "Timestamp": "2026-01-01T00:00:00Z"}), SLEEP),
            ("aws:sleep", json!({"Duration": 10}), SLEEP),
            (
                "aws:sleep",
                json!({"Duration": "10m"}),
                "\"10m\" is not an ISO 8601 duration such as PT10M or P1DT2H",
            ),
            (
                "aws:sleep",
                json!({"Duration": "P7D"}),
                "\"P7D\" is longer than the maximum delay of 604799 seconds (7 days)",
            ),
            (
                "aws:sleep",
                json!({"Timestamp": "noon"}),
                "\"noon\" is not an ISO 8601 timestamp such as 2026-01-01T00:00:00Z",
            ),
            ("aws:approve", json!({}), APPROVERS),
            ("aws:approve", json!({"Approvers": []}), APPROVERS),
            ("aws:approve", json!({"Approvers": vec!["a"; 11]}), APPROVERS),
            ("aws:approve", json!({"Approvers": "alice"}), APPROVERS),
            ("aws:approve", json!({"Approvers": ["a"], "MinRequiredApprovals": 0}), MIN),
            ("aws:approve", json!({"Approvers": ["a"], "MinRequiredApprovals": 11}), MIN),
            (
                "aws:approve",
                json!({"Approvers": ["a", "b"], "MinRequiredApprovals": 3}),
                "MinRequiredApprovals is 3 but only 2 approvers are listed",
            ),
            ("aws:branch", json!({"Choices": []}), "Choices must be a non-empty list"),
            (
                "aws:branch",
                json!({"Choices": choice("gone")}),
                "aws:branch names step gone, which does not exist",
            ),
            (
                "aws:branch",
                json!({"Choices": choice("first"), "Default": "gone"}),
                "aws:branch names step gone, which does not exist",
            ),
            ("aws:executeAutomation", json!({}), "DocumentName is required"),
            (
                "aws:executeAutomation",
                json!({"DocumentName": "D", "RuntimeParameters": [1]}),
                "RuntimeParameters must be a map",
            ),
            ("aws:executeScript", json!({"Handler": "h", "Script": "s"}), "Runtime is required"),
            (
                "aws:executeScript",
                json!({"Runtime": "python3.11", "Script": "s"}),
                "Handler is required for the python3.11 runtime",
            ),
            (
                "aws:executeScript",
                json!({"Runtime": "python3.11", "Handler": "h"}),
                "Script or Attachment is required",
            ),
            ("aws:runCommand", json!({"Parameters": {}}), "DocumentName is required"),
            ("aws:runCommand", json!({"DocumentName": "D", "Parameters": "x"}), "Parameters must be a map"),
        ];
        for (action, inputs, message) in cases {
            assert_eq!(step_error(action, inputs), format!("step s: {message}"));
        }
        let operator =
            step_error("aws:branch", json!({"Choices": [{"NextStep": "first", "Variable": "x", "Is": "x"}]}));
        assert!(
            operator
                .starts_with("step s: Choices[0]: Is is not a supported operator; use one of StringEquals"),
            "{operator}"
        );
    }

    #[test]
    fn valid_action_inputs() {
        accepts("aws:sleep", json!({"Timestamp": "2026-01-01T00:00:00Z"}));
        accepts("aws:sleep", json!({"Duration": "PT{{ Ids }}S"}));
        accepts("aws:approve", json!({"Approvers": "{{ Ids }}", "MinRequiredApprovals": 3}));
        accepts("aws:approve", json!({"Approvers": ["{{ Ids }}"], "MinRequiredApprovals": 3}));
        accepts(
            "aws:branch",
            json!({"Choices": [{"NextStep": "first", "Variable": "{{Ids}}", "Contains": "i"}], "Default": "first"}),
        );
        accepts("aws:executeAutomation", json!({"DocumentName": "D", "RuntimeParameters": "{{ Ids }}"}));
        accepts("aws:executeScript", json!({"Runtime": "PowerShell 7.4", "Script": "Get-Date"}));
        accepts(
            "aws:executeScript",
            json!({"Runtime": "python3.11", "Handler": "m.h", "Attachment": "m.zip"}),
        );
        accepts("aws:runCommand", json!({"DocumentName": "D", "InstanceIds": ["{{ Ids }}"]}));
        accepts("aws:pause", json!({"Anything": 1}));
    }

    #[test]
    fn parameter_definition_errors() {
        let cases = [
            (
                json!({"type": "Text"}),
                "type Text is not supported; use String, StringList, Integer, Boolean, MapList or StringMap",
            ),
            (json!({"description": "d"}), "type is required"),
            (json!("String"), "its definition must be a map"),
            (json!({"type": "Integer", "default": "3"}), "default 3 is not a Integer"),
            (json!({"type": "Boolean", "default": "true"}), "default true is not a Boolean"),
            (json!({"type": "StringList", "default": "a"}), "default a is not a StringList"),
            (json!({"type": "MapList", "default": [1]}), "default [1] is not a MapList"),
            (json!({"type": "StringMap", "default": []}), "default [] is not a StringMap"),
            (
                json!({"type": "String", "default": "", "allowedValues": ["a", "b"]}),
                "default value \"\" is not one of the allowed values: a, b",
            ),
            (
                json!({"type": "StringList", "default": ["a", "c"], "allowedValues": ["a", "b"]}),
                "default value \"c\" is not one of the allowed values: a, b",
            ),
            (
                json!({"type": "String", "allowedPattern": "(a"}),
                "allowedPattern \"(a\" is not a regular expression",
            ),
            (
                json!({"type": "StringList", "minItems": 3, "maxItems": 2}),
                "minItems 3 is more than maxItems 2",
            ),
            (json!({"type": "String", "allowedValues": "a"}), "allowedValues must be a list"),
        ];
        for (def, message) in cases {
            assert_eq!(
                parse_after(|d| d["parameters"]["P"] = def).unwrap_err(),
                format!("parameter P: {message}")
            );
        }
        let ssm = json!({"type": "StringList", "default": "{{ ssm:/my/commands }}"});
        let doc = parse_after(|d| d["parameters"]["Cmds"] = ssm).unwrap();
        assert_eq!(doc.parameter("Cmds").unwrap().default, Some(json!("{{ ssm:/my/commands }}")));
    }

    #[test]
    fn references_must_resolve() {
        let cases = [
            (json!({"x": "{{ Nope }}"}), "{{ Nope }} names no parameter of this document"),
            (json!({"x": ["a {{ gone.Out }}"]}), "{{ gone.Out }} must name the output of an earlier step"),
            (json!({"x": "{{ s.Out }}"}), "{{ s.Out }} must name the output of an earlier step"),
            (json!({"x": "{{ global:TIME }}"}), "{{ global:TIME }} is not an automation or global variable"),
            (json!({"x": "{{ ssm:/a }}"}), "{{ ssm:/a }} is only allowed as a parameter's default"),
        ];
        for (inputs, message) in cases {
            assert_eq!(step_error("aws:pause", inputs), format!("step s: {message}"));
        }
        let later = parse_after(|d| {
            d["mainSteps"][0]["inputs"] = json!({"x": "{{ later.Out }}"});
            d["mainSteps"].as_array_mut().unwrap().push(json!({"name": "later", "action": "aws:pause"}));
        });
        assert_eq!(later.unwrap_err(), "step first: {{ later.Out }} must name the output of an earlier step");
        let role = parse_after(|d| d["assumeRole"] = json!("{{ Role }}")).unwrap_err();
        assert_eq!(role, "assumeRole: {{ Role }} names no parameter of this document");
        let builtins: Vec<_> = SYSTEM_VARIABLES.iter().map(|name| format!("{{{{{name}}}}}")).collect();
        accepts("aws:pause", json!({"all": builtins, "earlier": "{{ first.Output }}", "param": "{{Ids}}"}));
    }
}

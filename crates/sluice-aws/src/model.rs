//! Input checking against an AWS service model's constraint facts (types, required members,
//! lengths, ranges, patterns, enums), extracted by `tools/extract_model.py`. Type mismatches are
//! `SerializationException`; constraint violations are `ValidationException` with AWS's
//! "N validation error(s) detected" message. Unknown members are ignored, as AWS does.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AwsError;

#[derive(Debug, Deserialize)]
struct Operation {
    input: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: String,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    values: Option<Vec<String>>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    members: HashMap<String, String>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
    #[serde(skip)]
    regex: OnceLock<Option<Regex>>,
}

impl Shape {
    fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| self.pattern.as_ref().and_then(|p| Regex::new(&format!("^(?:{p})$")).ok()))
            .as_ref()
    }
}

/// One service's shapes and operations.
#[derive(Debug, Deserialize)]
pub struct Model {
    operations: HashMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

/// What checking found.
#[derive(Debug, Default)]
struct Findings {
    violations: Vec<String>,
    type_error: Option<String>,
}

impl Model {
    /// Parses an extracted model; panics on a malformed embedded model (a build defect).
    pub fn from_embedded(json: &str) -> Model {
        serde_json::from_str(json).expect("embedded service model is valid")
    }

    /// Whether the service defines this operation.
    pub fn has_operation(&self, name: &str) -> bool {
        self.operations.contains_key(name)
    }

    /// Checks an operation's input.
    pub fn check_input(&self, operation: &str, input: &Value) -> Result<(), AwsError> {
        let Some(shape) = self.operations.get(operation).and_then(|o| o.input.as_deref()) else {
            return Ok(());
        };
        let mut findings = Findings::default();
        self.check(shape, input, "", &mut findings);
        if let Some(message) = findings.type_error {
            return Err(AwsError::serialization(message));
        }
        match findings.violations.len() {
            0 => Ok(()),
            n => {
                let noun = if n == 1 { "error" } else { "errors" };
                Err(AwsError::validation(format!(
                    "{n} validation {noun} detected: {}",
                    findings.violations.join("; ")
                )))
            }
        }
    }

    fn check(&self, shape_name: &str, value: &Value, path: &str, findings: &mut Findings) {
        let Some(shape) = self.shapes.get(shape_name) else { return };
        if value.is_null() {
            return;
        }
        match shape.kind.as_str() {
            "structure" => self.check_structure(shape, value, path, findings),
            "list" => self.check_list(shape, value, path, findings),
            "map" => self.check_map(shape, value, path, findings),
            "string" => check_string(shape, value, path, findings),
            "integer" | "long" => check_integer(shape, value, path, findings),
            "boolean" => expect(value.is_boolean(), "boolean", value, path, findings),
            "double" | "float" | "timestamp" => expect(value.is_number(), "number", value, path, findings),
            "blob" => expect(value.is_string(), "base64 string", value, path, findings),
            _ => {}
        }
    }

    fn check_structure(&self, shape: &Shape, value: &Value, path: &str, findings: &mut Findings) {
        let Some(object) = value.as_object() else {
            return type_error(findings, "structure", value, path);
        };
        for name in &shape.required {
            if object.get(name).is_none_or(Value::is_null) {
                findings.violations.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    join(path, name)
                ));
            }
        }
        for (name, member_shape) in &shape.members {
            if let Some(member) = object.get(name) {
                self.check(member_shape, member, &join(path, name), findings);
            }
        }
    }

    fn check_list(&self, shape: &Shape, value: &Value, path: &str, findings: &mut Findings) {
        let Some(items) = value.as_array() else {
            return type_error(findings, "list", value, path);
        };
        check_length(shape, items.len(), "length", value, path, findings);
        if let Some(member) = &shape.member {
            for (i, item) in items.iter().enumerate() {
                self.check(member, item, &format!("{path}.{}.member", i + 1), findings);
            }
        }
    }

    fn check_map(&self, shape: &Shape, value: &Value, path: &str, findings: &mut Findings) {
        let Some(object) = value.as_object() else {
            return type_error(findings, "map", value, path);
        };
        check_length(shape, object.len(), "length", value, path, findings);
        for (key, item) in object {
            if let Some(key_shape) = &shape.key {
                self.check(key_shape, &Value::from(key.as_str()), &format!("{path}.key"), findings);
            }
            if let Some(value_shape) = &shape.value {
                self.check(value_shape, item, &format!("{path}.{key}"), findings);
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.chars().take(100).collect(),
        other => other.to_string().chars().take(100).collect(),
    }
}

fn type_error(findings: &mut Findings, expected: &str, value: &Value, path: &str) {
    if findings.type_error.is_none() {
        let what = match value {
            Value::Object(_) => "structure",
            Value::Array(_) => "list",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        };
        let at = if path.is_empty() { "the request body" } else { path };
        findings.type_error = Some(format!("Expected a {expected} at '{at}' but found a {what}"));
    }
}

fn expect(ok: bool, expected: &str, value: &Value, path: &str, findings: &mut Findings) {
    if !ok {
        type_error(findings, expected, value, path);
    }
}

fn check_length(shape: &Shape, len: usize, what: &str, value: &Value, path: &str, findings: &mut Findings) {
    let len = len as f64;
    if let Some(min) = shape.min.filter(|&min| len < min) {
        findings.violations.push(format!(
            "Value '{}' at '{path}' failed to satisfy constraint: Member must have {what} greater than or equal to {min}",
            shown(value)
        ));
    }
    if let Some(max) = shape.max.filter(|&max| len > max) {
        findings.violations.push(format!(
            "Value '{}' at '{path}' failed to satisfy constraint: Member must have {what} less than or equal to {max}",
            shown(value)
        ));
    }
}

fn check_string(shape: &Shape, value: &Value, path: &str, findings: &mut Findings) {
    let Some(text) = value.as_str() else {
        return type_error(findings, "string", value, path);
    };
    check_length(shape, text.chars().count(), "length", value, path, findings);
    if let Some(regex) = shape.regex() {
        if !regex.is_match(text) {
            findings.violations.push(format!(
                "Value '{}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                shown(value),
                shape.pattern.as_deref().unwrap_or_default()
            ));
        }
    }
    if let Some(values) = &shape.values {
        if !values.iter().any(|v| v == text) {
            findings.violations.push(format!(
                "Value '{}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                shown(value),
                values.join(", ")
            ));
        }
    }
}

fn check_integer(shape: &Shape, value: &Value, path: &str, findings: &mut Findings) {
    let Some(number) = value.as_i64() else {
        return type_error(findings, "integer", value, path);
    };
    let number = number as f64;
    if let Some(min) = shape.min.filter(|&min| number < min) {
        findings.violations.push(format!(
            "Value '{number}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
        ));
    }
    if let Some(max) = shape.max.filter(|&max| number > max) {
        findings.violations.push(format!(
            "Value '{number}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> Model {
        Model::from_embedded(include_str!("../models/codepipeline.json"))
    }

    fn code_and_message(result: Result<(), AwsError>) -> (String, String) {
        let err = result.unwrap_err();
        (err.code.to_string(), err.message)
    }

    #[test]
    fn valid_input_passes() {
        let input = json!({"name": "my-pipeline", "version": 2});
        assert!(model().check_input("GetPipeline", &input).is_ok());
    }

    #[test]
    fn required_members_and_patterns_are_reported_together() {
        let (code, message) = code_and_message(model().check_input("GetPipeline", &json!({})));
        assert_eq!(code, "ValidationException");
        assert_eq!(
            message,
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
        let input = json!({"name": "bad name!", "version": 0});
        let (_, message) = code_and_message(model().check_input("GetPipeline", &input));
        assert!(message.starts_with("2 validation errors detected"), "{message}");
        assert!(message.contains("regular expression pattern"), "{message}");
        assert!(message.contains("greater than or equal to 1"), "{message}");
    }

    #[test]
    fn nested_paths_enums_and_lengths() {
        let input = json!({
            "category": "Painting",
            "provider": "P",
            "version": "1234567890",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 9},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}
        });
        let (_, message) = code_and_message(model().check_input("CreateCustomActionType", &input));
        assert!(message.starts_with("3 validation errors"), "{message}");
        assert!(message.contains("at 'category'") && message.contains("enum value set"), "{message}");
        assert!(message.contains("at 'inputArtifactDetails.maximumCount'"), "{message}");
        assert!(message.contains("at 'version'"), "{message}");
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let (code, message) = code_and_message(model().check_input("GetPipeline", &json!({"name": 5})));
        assert_eq!(code, "SerializationException");
        assert!(message.contains("'name'"), "{message}");
        let (code, _) = code_and_message(model().check_input("GetPipeline", &json!([1])));
        assert_eq!(code, "SerializationException");
        let (code, _) =
            code_and_message(model().check_input("GetPipeline", &json!({"name": "p", "version": 1.5})));
        assert_eq!(code, "SerializationException");
    }

    #[test]
    fn list_members_are_indexed_from_one() {
        let input = json!({"pipeline": {
            "name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
            "stages": [{"name": "S", "actions": [{"name": "bad name", "actionTypeId":
                {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}}]}]
        }});
        let (_, message) = code_and_message(model().check_input("CreatePipeline", &input));
        assert!(message.contains("'pipeline.stages.1.member.actions.1.member.name'"), "{message}");
    }
}

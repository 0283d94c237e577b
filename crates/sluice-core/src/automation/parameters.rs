//! Runtime parameters of an automation: StartAutomationExecution's lists of strings checked
//! against the runbook's declarations and typed, defaults applied; and the way back to lists of
//! strings for GetAutomationExecution.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::document::{Document, ParameterDef, ParameterType};
use super::template::plain_text;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("Parameter {0} is not defined in the document")]
    Unknown(String),
    #[error("Parameter {0} is required: it has no default value")]
    Missing(String),
    #[error("Parameter {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// Types every given parameter, checks its constraints and fills in defaults.
pub fn resolve(
    doc: &Document,
    given: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Value>, ParameterError> {
    if let Some(name) = given.keys().find(|name| doc.parameter(name).is_none()) {
        return Err(ParameterError::Unknown(name.clone()));
    }
    let mut resolved = BTreeMap::new();
    for def in &doc.parameters {
        let value = match given.get(&def.name) {
            Some(values) => typed(def.kind, values)
                .and_then(|value| check_constraints(def, &value).map(|()| value))
                .map_err(|reason| ParameterError::Invalid { name: def.name.clone(), reason })?,
            None => def.default.clone().ok_or_else(|| ParameterError::Missing(def.name.clone()))?,
        };
        resolved.insert(def.name.clone(), value);
    }
    Ok(resolved)
}

/// Resolved values as the wire shows them: lists item by item, anything else as one string
/// (maps as JSON text).
pub fn to_wire(resolved: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    let wire = |value: &Value| match value {
        Value::Array(items) => items.iter().map(plain_text).collect(),
        other => vec![plain_text(other)],
    };
    resolved.iter().map(|(name, value)| (name.clone(), wire(value))).collect()
}

fn typed(kind: ParameterType, values: &[String]) -> Result<Value, String> {
    match kind {
        ParameterType::StringList => Ok(Value::Array(values.iter().cloned().map(Value::String).collect())),
        ParameterType::MapList => map_list(values),
        ParameterType::String => one(values).map(|text| Value::String(text.to_owned())),
        ParameterType::Integer => one(values).and_then(|text| {
            text.parse::<i64>().map(Value::from).map_err(|_| format!("must be an integer, not {text:?}"))
        }),
        ParameterType::Boolean => one(values).and_then(|text| match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("must be true or false, not {text:?}")),
        }),
        ParameterType::StringMap => one(values).and_then(|text| {
            serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| format!("must be a JSON object, not {text:?}"))
        }),
    }
}

fn one(values: &[String]) -> Result<&str, String> {
    match values {
        [value] => Ok(value),
        _ => Err(format!("takes exactly one value, not {}", values.len())),
    }
}

/// One JSON object per value, or a single value holding a JSON list of objects.
fn map_list(values: &[String]) -> Result<Value, String> {
    if let [single] = values {
        if let Ok(list @ Value::Array(_)) = serde_json::from_str::<Value>(single) {
            return match fits_type(ParameterType::MapList, &list) {
                true => Ok(list),
                false => Err("must be a list of JSON objects".into()),
            };
        }
    }
    let parse = |text: &String| {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("each value must be a JSON object, not {text:?}"))
    };
    values.iter().map(parse).collect::<Result<_, _>>().map(Value::Array)
}

fn check_constraints(def: &ParameterDef, value: &Value) -> Result<(), String> {
    if let Value::Array(items) = value {
        if let Some(min) = def.min_items.filter(|min| items.len() < *min) {
            return Err(format!("needs at least {min} values, not {}", items.len()));
        }
        if let Some(max) = def.max_items.filter(|max| items.len() > *max) {
            return Err(format!("takes at most {max} values, not {}", items.len()));
        }
    }
    check_allowed_values(def, value)?;
    if let Some(pattern) = &def.allowed_pattern {
        let regex =
            Regex::new(pattern).map_err(|_| format!("allowedPattern {pattern:?} does not compile"))?;
        if let Some(bad) = items(value).into_iter().find(|item| !regex.is_match(item)) {
            return Err(format!("value {bad:?} does not match the allowed pattern {pattern}"));
        }
    }
    Ok(())
}

/// Whether a (default) value has the JSON shape of `kind`.
pub(super) fn fits_type(kind: ParameterType, value: &Value) -> bool {
    match (kind, value) {
        (ParameterType::String, Value::String(_)) => true,
        (ParameterType::StringList, Value::Array(items)) => items.iter().all(Value::is_string),
        (ParameterType::Integer, Value::Number(n)) => n.as_i64().is_some(),
        (ParameterType::Boolean, Value::Bool(_)) => true,
        (ParameterType::StringMap, Value::Object(_)) => true,
        (ParameterType::MapList, Value::Array(items)) => items.iter().all(Value::is_object),
        _ => false,
    }
}

/// Every item of a list, or the value itself, must be one of `allowedValues` when it is set.
pub(super) fn check_allowed_values(def: &ParameterDef, value: &Value) -> Result<(), String> {
    if def.allowed_values.is_empty() {
        return Ok(());
    }
    match items(value).into_iter().find(|item| !def.allowed_values.contains(item)) {
        Some(bad) => {
            Err(format!("value {bad:?} is not one of the allowed values: {}", def.allowed_values.join(", ")))
        }
        None => Ok(()),
    }
}

fn items(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(plain_text).collect(),
        other => vec![plain_text(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automation::document::DocumentFormat;
    use serde_json::json;

    const RUNBOOK: &str = r#"
schemaVersion: '0.3'
parameters:
  Name: {type: String, allowedPattern: '^[a-z]+$'}
  Env: {type: String, default: dev, allowedValues: [dev, prod]}
  Ids: {type: StringList, minItems: 1, maxItems: 2, allowedPattern: '^i-'}
  Count: {type: Integer, default: 3, allowedValues: [1, 3, 5]}
  Force: {type: Boolean, default: false}
  Tags: {type: StringMap, default: {}}
  Devices: {type: MapList, default: []}
mainSteps:
  - {name: wait, action: 'aws:pause'}
"#;

    fn given(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn run(pairs: &[(&str, &[&str])]) -> Result<BTreeMap<String, Value>, ParameterError> {
        let doc = Document::parse(RUNBOOK, DocumentFormat::Yaml).unwrap();
        resolve(&doc, &given(pairs))
    }

    fn reason(pairs: &[(&str, &[&str])]) -> String {
        run(pairs).unwrap_err().to_string()
    }

    const REQUIRED: [(&str, &[&str]); 2] = [("Name", &["web"]), ("Ids", &["i-1"])];

    fn with(extra: (&'static str, &'static [&'static str])) -> Vec<(&'static str, &'static [&'static str])> {
        let mut pairs: Vec<_> = REQUIRED.iter().filter(|(k, _)| *k != extra.0).copied().collect();
        pairs.push(extra);
        pairs
    }

    #[test]
    fn values_are_typed_and_defaults_applied() {
        let resolved = run(&REQUIRED).unwrap();
        assert_eq!(
            Value::Object(resolved.into_iter().collect()),
            json!({"Name": "web", "Env": "dev", "Ids": ["i-1"], "Count": 3, "Force": false, "Tags": {}, "Devices": []})
        );
        let resolved = run(&[
            ("Name", &["web"]),
            ("Ids", &["i-1", "i-2"]),
            ("Env", &["prod"]),
            ("Count", &["5"]),
            ("Force", &["true"]),
            ("Tags", &[r#"{"a":"b"}"#]),
            ("Devices", &[r#"{"DeviceName":"/dev/sda1"}"#, r#"{"DeviceName":"/dev/sdb"}"#]),
        ])
        .unwrap();
        assert_eq!(resolved["Env"], json!("prod"));
        assert_eq!(resolved["Count"], json!(5));
        assert_eq!(resolved["Force"], json!(true));
        assert_eq!(resolved["Tags"], json!({"a": "b"}));
        assert_eq!(resolved["Devices"], json!([{"DeviceName": "/dev/sda1"}, {"DeviceName": "/dev/sdb"}]));
    }

    #[test]
    fn a_map_list_may_arrive_as_one_json_list() {
        let resolved = run(&with(("Devices", &[r#"[{"a":1},{"b":2}]"#]))).unwrap();
        assert_eq!(resolved["Devices"], json!([{"a": 1}, {"b": 2}]));
        assert_eq!(reason(&with(("Devices", &["[1]"]))), "Parameter Devices: must be a list of JSON objects");
        assert_eq!(
            reason(&with(("Devices", &["x"]))),
            "Parameter Devices: each value must be a JSON object, not \"x\""
        );
    }

    #[test]
    fn unknown_and_missing_parameters_are_named() {
        assert_eq!(reason(&with(("Nope", &["x"]))), "Parameter Nope is not defined in the document");
        assert_eq!(reason(&[("Name", &["web"])]), "Parameter Ids is required: it has no default value");
    }

    #[test]
    fn type_errors_say_why() {
        assert_eq!(reason(&with(("Name", &["a", "b"]))), "Parameter Name: takes exactly one value, not 2");
        assert_eq!(reason(&with(("Name", &[]))), "Parameter Name: takes exactly one value, not 0");
        assert_eq!(reason(&with(("Count", &["3.5"]))), "Parameter Count: must be an integer, not \"3.5\"");
        assert_eq!(reason(&with(("Force", &["yes"]))), "Parameter Force: must be true or false, not \"yes\"");
        assert_eq!(reason(&with(("Tags", &["[1]"]))), "Parameter Tags: must be a JSON object, not \"[1]\"");
    }

    #[test]
    fn constraints_are_enforced() {
        assert_eq!(reason(&with(("Ids", &[]))), "Parameter Ids: needs at least 1 values, not 0");
        assert_eq!(
            reason(&with(("Ids", &["i-1", "i-2", "i-3"]))),
            "Parameter Ids: takes at most 2 values, not 3"
        );
        assert_eq!(
            reason(&with(("Ids", &["i-1", "x-2"]))),
            "Parameter Ids: value \"x-2\" does not match the allowed pattern ^i-"
        );
        assert_eq!(
            reason(&with(("Name", &["Web1"]))),
            "Parameter Name: value \"Web1\" does not match the allowed pattern ^[a-z]+$"
        );
        assert_eq!(
            reason(&with(("Env", &["test"]))),
            "Parameter Env: value \"test\" is not one of the allowed values: dev, prod"
        );
        assert_eq!(
            reason(&with(("Count", &["4"]))),
            "Parameter Count: value \"4\" is not one of the allowed values: 1, 3, 5"
        );
    }

    #[test]
    fn resolved_values_go_back_to_the_wire() {
        let resolved = run(&with(("Tags", &[r#"{"a":"b"}"#]))).unwrap();
        let wire = to_wire(&resolved);
        assert_eq!(wire["Name"], vec!["web"]);
        assert_eq!(wire["Ids"], vec!["i-1"]);
        assert_eq!(wire["Count"], vec!["3"]);
        assert_eq!(wire["Force"], vec!["false"]);
        assert_eq!(wire["Tags"], vec![r#"{"a":"b"}"#]);
        assert_eq!(wire["Devices"], Vec::<String>::new());
        assert_eq!(
            to_wire(&BTreeMap::from([("M".to_owned(), json!([{"k": "v"}]))]))["M"],
            vec![r#"{"k":"v"}"#]
        );
    }

    #[test]
    fn fits_type_matches_json_shapes() {
        assert!(fits_type(ParameterType::String, &json!("")));
        assert!(!fits_type(ParameterType::String, &json!(1)));
        assert!(fits_type(ParameterType::StringList, &json!(["a"])));
        assert!(!fits_type(ParameterType::StringList, &json!([1])));
        assert!(fits_type(ParameterType::Integer, &json!(-4)));
        assert!(!fits_type(ParameterType::Integer, &json!("3")));
        assert!(!fits_type(ParameterType::Integer, &json!(3.5)));
        assert!(fits_type(ParameterType::Boolean, &json!(true)));
        assert!(!fits_type(ParameterType::Boolean, &json!("true")));
        assert!(fits_type(ParameterType::StringMap, &json!({"a": "b"})));
        assert!(!fits_type(ParameterType::StringMap, &json!([])));
        assert!(fits_type(ParameterType::MapList, &json!([{"a": 1}])));
        assert!(!fits_type(ParameterType::MapList, &json!(["a"])));
    }
}

//! `{{ reference }}` placeholders in runbook inputs: what they may name, finding them, and
//! substituting their values.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*([A-Za-z0-9_.:/\-]+)\s*\}\}").expect("placeholder pattern compiles")
});

/// The automation and global variables a runbook may use without declaring them.
pub const SYSTEM_VARIABLES: &[&str] = &[
    "automation:EXECUTION_ID",
    "automation:DOCUMENT_EXECUTION_ID",
    "global:ACCOUNT_ID",
    "global:AWS_PARTITION",
    "global:DATE",
    "global:DATE_TIME",
    "global:REGION",
];

/// What the text between the braces names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `{{ InstanceId }}`
    Parameter(String),
    /// `{{ getInstance.platform }}`
    StepOutput { step: String, output: String },
    /// `{{ global:REGION }}`, `{{ automation:EXECUTION_ID }}`, or an unknown `prefix:NAME`.
    System(String),
    /// `{{ ssm:/path }}`: only allowed in a parameter's default.
    ParameterStore(String),
}

impl Reference {
    pub fn parse(text: &str) -> Reference {
        if text.starts_with("ssm:") || text.starts_with("ssm-secure:") {
            return Reference::ParameterStore(text.to_owned());
        }
        if text.contains(':') {
            return Reference::System(text.to_owned());
        }
        match text.split_once('.') {
            Some((step, output)) => {
                Reference::StepOutput { step: step.to_owned(), output: output.to_owned() }
            }
            None => Reference::Parameter(text.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the reference {{{{ {0} }}}} has no value")]
    Unresolved(String),
}

/// Every reference in the strings of `value` (map keys excluded), in order, repeats kept.
pub fn references(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            found.extend(PLACEHOLDER.captures_iter(text).map(|c| c[1].to_owned()));
        }
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, found)),
        Value::Object(map) => map.values().for_each(|item| collect_references(item, found)),
        _ => {}
    }
}

/// The reference `text` consists of, if it is exactly one placeholder.
pub fn whole_reference(text: &str) -> Option<&str> {
    let captures = PLACEHOLDER.captures(text)?;
    let whole = captures.get(0)?;
    if whole.start() != 0 || whole.end() != text.len() {
        return None;
    }
    captures.get(1).map(|m| m.as_str())
}

/// Substitutes every placeholder in `value`. A string that is exactly one placeholder becomes the
/// typed value; a list item that is exactly one placeholder naming a list is spliced into the
/// list (`InstanceIds: ["{{ Ids }}"]` with a StringList `Ids`); placeholders inside longer text
/// are replaced by the value's text.
pub fn render(value: &Value, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, TemplateError> {
    match value {
        Value::String(text) => render_string(text, lookup),
        Value::Array(items) => {
            let mut rendered = Vec::with_capacity(items.len());
            for item in items {
                let is_whole = item.as_str().and_then(whole_reference).is_some();
                match render(item, lookup)? {
                    Value::Array(spliced) if is_whole => rendered.extend(spliced),
                    other => rendered.push(other),
                }
            }
            Ok(Value::Array(rendered))
        }
        Value::Object(map) => {
            let mut rendered = serde_json::Map::new();
            for (key, item) in map {
                rendered.insert(key.clone(), render(item, lookup)?);
            }
            Ok(Value::Object(rendered))
        }
        other => Ok(other.clone()),
    }
}

fn render_string(text: &str, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, TemplateError> {
    let resolve = |name: &str| lookup(name).ok_or_else(|| TemplateError::Unresolved(name.to_owned()));
    if let Some(name) = whole_reference(text) {
        return resolve(name);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for captures in PLACEHOLDER.captures_iter(text) {
        let Some(whole) = captures.get(0) else { continue };
        out.push_str(&text[copied..whole.start()]);
        out.push_str(&plain_text(&resolve(&captures[1])?));
        copied = whole.end();
    }
    out.push_str(&text[copied..]);
    Ok(Value::String(out))
}

/// A value as text: strings as they are, anything else as compact JSON.
pub fn plain_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(name: &str) -> Option<Value> {
        match name {
            "Name" => Some(json!("web")),
            "Ids" => Some(json!(["i-1", "i-2"])),
            "Count" => Some(json!(3)),
            "Tags" => Some(json!({"env": "prod"})),
            "step.Output" => Some(json!("out")),
            "global:REGION" => Some(json!("eu-west-1")),
            "automation:EXECUTION_ID" => Some(json!("exec-1")),
            _ => None,
        }
    }

    #[test]
    fn references_are_classified() {
        assert_eq!(Reference::parse("Name"), Reference::Parameter("Name".into()));
        assert_eq!(
            Reference::parse("step.Output"),
            Reference::StepOutput { step: "step".into(), output: "Output".into() }
        );
        assert_eq!(Reference::parse("global:REGION"), Reference::System("global:REGION".into()));
        assert_eq!(Reference::parse("ssm:/a/b"), Reference::ParameterStore("ssm:/a/b".into()));
    }

    #[test]
    fn references_are_found_in_nested_strings_but_not_keys() {
        let value =
            json!({"{{ Key }}": ["{{Name}}", {"x": "a {{ step.Output }} b {{global:DATE}}"}], "n": 1});
        assert_eq!(references(&value), vec!["Name", "step.Output", "global:DATE"]);
        assert!(references(&json!("{{ not a name }} {single}")).is_empty());
    }

    #[test]
    fn whole_reference_needs_the_entire_string() {
        assert_eq!(whole_reference("{{ Name }}"), Some("Name"));
        assert_eq!(whole_reference("{{Name}}"), Some("Name"));
        assert_eq!(whole_reference(" {{Name}}"), None);
        assert_eq!(whole_reference("{{Name}}{{Count}}"), None);
    }

    #[test]
    fn a_whole_reference_keeps_its_type() {
        assert_eq!(render(&json!("{{ Count }}"), &lookup).unwrap(), json!(3));
        assert_eq!(render(&json!("{{Ids}}"), &lookup).unwrap(), json!(["i-1", "i-2"]));
        assert_eq!(render(&json!({"t": "{{ Tags }}"}), &lookup).unwrap(), json!({"t": {"env": "prod"}}));
    }

    #[test]
    fn references_inside_text_are_interpolated() {
        let value =
            json!("{{ Name }}-{{ Count }} in {{global:REGION}} ({{ automation:EXECUTION_ID }}) {{Ids}}");
        assert_eq!(render(&value, &lookup).unwrap(), json!(r#"web-3 in eu-west-1 (exec-1) ["i-1","i-2"]"#));
    }

    #[test]
    fn a_list_item_naming_a_list_is_spliced() {
        let value = json!(["{{ Ids }}", "i-3", "{{ Name }}", ["{{Ids}}"]]);
        assert_eq!(render(&value, &lookup).unwrap(), json!(["i-1", "i-2", "i-3", "web", ["i-1", "i-2"]]));
    }

    #[test]
    fn other_values_pass_through() {
        let value = json!({"a": true, "b": null, "c": 1.5, "d": "plain"});
        assert_eq!(render(&value, &lookup).unwrap(), value);
    }

    #[test]
    fn an_unresolvable_reference_is_named() {
        let err = render(&json!({"x": ["ok {{ Name }}", "{{ Missing }}"]}), &lookup).unwrap_err();
        assert_eq!(err.to_string(), "the reference {{ Missing }} has no value");
        let err = render(&json!("a {{ other.Out }}"), &lookup).unwrap_err();
        assert_eq!(err, TemplateError::Unresolved("other.Out".into()));
    }
}

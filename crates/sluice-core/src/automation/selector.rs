//! Step output selectors (`$.Payload.list[0]`): picking a value out of an action's result and
//! coercing it to the output's declared type.

use serde_json::Value;

use super::document::ParameterType;
use super::template::plain_text;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("selector {0:?} is not of the form $, $.Key, $.Key.Sub or $.List[0]")]
    Malformed(String),
    #[error("selector {0:?} matches nothing in the result")]
    NotFound(String),
    #[error("selector {selector:?} found {found}, which can't be read as {expected}")]
    WrongType { selector: String, expected: ParameterType, found: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    segments: Vec<Segment>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let malformed = || SelectorError::Malformed(text.to_owned());
        let mut rest = text.strip_prefix('$').ok_or_else(malformed)?;
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after_dot) = rest.strip_prefix('.') {
                let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
                if end == 0 {
                    return Err(malformed());
                }
                segments.push(Segment::Key(after_dot[..end].to_owned()));
                rest = &after_dot[end..];
            } else if let Some(after_bracket) = rest.strip_prefix('[') {
                let (index, after) = after_bracket.split_once(']').ok_or_else(malformed)?;
                segments.push(Segment::Index(index.parse().map_err(|_| malformed())?));
                rest = after;
            } else {
                return Err(malformed());
            }
        }
        Ok(Selector { text: text.to_owned(), segments })
    }

    /// The selected value, or None if a key or index is missing.
    pub fn select<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(value, |current, segment| match segment {
            Segment::Key(key) => current.get(key),
            Segment::Index(index) => current.get(index),
        })
    }

    /// Selects and coerces to `kind`.
    pub fn output(&self, result: &Value, kind: ParameterType) -> Result<Value, SelectorError> {
        let found = self.select(result).ok_or_else(|| SelectorError::NotFound(self.text.clone()))?;
        coerce(found, kind).ok_or_else(|| SelectorError::WrongType {
            selector: self.text.clone(),
            expected: kind,
            found: plain_text(found),
        })
    }
}

/// `value` as `kind`: scalars become String; numeric or boolean text becomes Integer or Boolean;
/// lists of scalars become StringList. None if it doesn't fit.
pub fn coerce(value: &Value, kind: ParameterType) -> Option<Value> {
    match (kind, value) {
        (ParameterType::String, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            Some(Value::String(plain_text(value)))
        }
        (ParameterType::Integer, Value::Number(n)) => n.as_i64().map(Value::from),
        (ParameterType::Integer, Value::String(text)) => text.trim().parse::<i64>().ok().map(Value::from),
        (ParameterType::Boolean, Value::Bool(_)) => Some(value.clone()),
        (ParameterType::Boolean, Value::String(text)) => match text.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (ParameterType::StringList, Value::Array(items)) => items
            .iter()
            .map(|item| coerce(item, ParameterType::String))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        (ParameterType::StringMap, Value::Object(_)) => Some(value.clone()),
        (ParameterType::MapList, Value::Array(items)) if items.iter().all(Value::is_object) => {
            Some(value.clone())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result() -> Value {
        json!({"Payload": {"key": "v", "n": 7, "flag": "true", "list": ["a", 2, true], "maps": [{"k": 1}],
               "nested": {"deep": [{"x": "y"}]}}})
    }

    fn output(selector: &str, kind: ParameterType) -> Result<Value, SelectorError> {
        Selector::parse(selector)?.output(&result(), kind)
    }

    #[test]
    fn selectors_walk_keys_and_indexes() {
        assert_eq!(output("$.Payload.key", ParameterType::String).unwrap(), json!("v"));
        assert_eq!(output("$.Payload.list[0]", ParameterType::String).unwrap(), json!("a"));
        assert_eq!(output("$.Payload.nested.deep[0].x", ParameterType::String).unwrap(), json!("y"));
        assert_eq!(output("$", ParameterType::StringMap).unwrap(), result());
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for text in ["", "Payload", "$Payload", "$.", "$..a", "$.a[", "$.a[x]", "$.a[-1]", "$[0]x"] {
            assert_eq!(Selector::parse(text), Err(SelectorError::Malformed(text.into())), "{text}");
        }
    }

    #[test]
    fn missing_paths_are_reported() {
        for text in ["$.Nope", "$.Payload.list[9]", "$.Payload.key.deeper", "$.Payload[0]"] {
            assert_eq!(output(text, ParameterType::String), Err(SelectorError::NotFound(text.into())));
        }
    }

    #[test]
    fn values_are_coerced_to_the_declared_type() {
        assert_eq!(output("$.Payload.n", ParameterType::String).unwrap(), json!("7"));
        assert_eq!(output("$.Payload.n", ParameterType::Integer).unwrap(), json!(7));
        assert_eq!(output("$.Payload.flag", ParameterType::Boolean).unwrap(), json!(true));
        assert_eq!(output("$.Payload.list", ParameterType::StringList).unwrap(), json!(["a", "2", "true"]));
        assert_eq!(output("$.Payload.maps", ParameterType::MapList).unwrap(), json!([{"k": 1}]));
        assert_eq!(coerce(&json!(" 12 "), ParameterType::Integer), Some(json!(12)));
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        let err = output("$.Payload.key", ParameterType::Integer).unwrap_err();
        assert_eq!(err.to_string(), "selector \"$.Payload.key\" found v, which can't be read as Integer");
        assert!(output("$.Payload.nested", ParameterType::String).is_err());
        assert!(output("$.Payload.key", ParameterType::Boolean).is_err());
        assert!(output("$.Payload.list", ParameterType::MapList).is_err());
        assert!(output("$.Payload.maps", ParameterType::StringList).is_err());
        assert!(output("$.Payload.list", ParameterType::StringMap).is_err());
        assert_eq!(coerce(&json!(1.5), ParameterType::Integer), None);
    }
}

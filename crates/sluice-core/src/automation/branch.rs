//! `aws:branch`: the shape of its Choices (checked when a runbook is created) and picking the next
//! step once the step's inputs are rendered.

use serde_json::Value;

use super::template::plain_text;

named_enum! {
    /// The comparison operators `aws:branch` supports.
    pub enum Operator {
        StringEquals = "StringEquals",
        EqualsIgnoreCase = "EqualsIgnoreCase",
        StartsWith = "StartsWith",
        EndsWith = "EndsWith",
        Contains = "Contains",
        NumericEquals = "NumericEquals",
        NumericGreater = "NumericGreater",
        NumericGreaterOrEquals = "NumericGreaterOrEquals",
        NumericLesser = "NumericLesser",
        NumericLesserOrEquals = "NumericLesserOrEquals",
        BooleanEquals = "BooleanEquals",
    }
}

/// A test on a variable, or a combination of tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare { variable: Value, operator: Operator, operand: Value },
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub next_step: String,
    pub condition: Condition,
}

/// The parsed inputs of an `aws:branch` step.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub choices: Vec<Choice>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Evaluation(String),
}

impl Branch {
    pub fn parse(inputs: &Value) -> Result<Branch, BranchError> {
        let invalid = |message: String| BranchError::Invalid(message);
        let choices = inputs.get("Choices").and_then(Value::as_array).filter(|c| !c.is_empty());
        let choices = choices.ok_or_else(|| invalid("Choices must be a non-empty list".into()))?;
        let default = match inputs.get("Default") {
            None => None,
            Some(Value::String(step)) => Some(step.clone()),
            Some(_) => return Err(invalid("Default must be the name of a step".into())),
        };
        let choices = choices
            .iter()
            .enumerate()
            .map(|(index, choice)| {
                parse_choice(choice).map_err(|r| invalid(format!("Choices[{index}]: {r}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Branch { choices, default })
    }

    /// Every step this branch can jump to.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.choices.iter().map(|c| c.next_step.as_str()).chain(self.default.as_deref())
    }

    /// The NextStep of the first choice that holds, else Default; None when neither applies (the
    /// AWS guide says the automation then goes on to the following step in the runbook).
    pub fn next_step(&self) -> Result<Option<&str>, BranchError> {
        for (index, choice) in self.choices.iter().enumerate() {
            let holds = holds(&choice.condition)
                .map_err(|reason| BranchError::Evaluation(format!("Choices[{index}]: {reason}")))?;
            if holds {
                return Ok(Some(&choice.next_step));
            }
        }
        Ok(self.default.as_deref())
    }
}

/// Parses rendered `aws:branch` inputs and picks the next step; see [`Branch::next_step`].
pub fn evaluate(inputs: &Value) -> Result<Option<String>, BranchError> {
    Ok(Branch::parse(inputs)?.next_step()?.map(str::to_owned))
}

fn parse_choice(value: &Value) -> Result<Choice, String> {
    let mut map = value.as_object().cloned().ok_or("a choice must be a map")?;
    let next_step = match map.remove("NextStep") {
        Some(Value::String(step)) if !step.is_empty() => step,
        _ => return Err("NextStep must name a step".into()),
    };
    Ok(Choice { next_step, condition: parse_condition(&Value::Object(map))? })
}

fn parse_condition(value: &Value) -> Result<Condition, String> {
    let map = value.as_object().ok_or("a condition must be a map")?;
    if map.contains_key("NextStep") {
        return Err("NextStep belongs at the top of a choice, not inside And, Or or Not".into());
    }
    if let Some(logical) = ["And", "Or", "Not"].into_iter().find(|key| map.contains_key(*key)) {
        if map.len() != 1 {
            return Err(format!("{logical} must be the only key of its condition"));
        }
        let inner = &map[logical];
        if logical == "Not" {
            return Ok(Condition::Not(Box::new(parse_condition(inner)?)));
        }
        let items = inner.as_array().filter(|items| !items.is_empty());
        let items = items.ok_or_else(|| format!("{logical} must be a non-empty list of conditions"))?;
        let parsed = items.iter().map(parse_condition).collect::<Result<Vec<_>, _>>()?;
        return Ok(if logical == "And" { Condition::And(parsed) } else { Condition::Or(parsed) });
    }
    let variable =
        map.get("Variable").ok_or("a condition needs a Variable and an operator, or And, Or or Not")?;
    let mut operators = map.iter().filter(|(key, _)| *key != "Variable");
    let (name, operand) = operators.next().ok_or("a condition needs an operator such as StringEquals")?;
    if let Some((other, _)) = operators.next() {
        return Err(format!("a condition takes one operator; found {name} and {other}"));
    }
    let operator = Operator::from_name(name).ok_or_else(|| {
        let names: Vec<_> = Operator::ALL.iter().map(|op| op.name()).collect();
        format!("{name} is not a supported operator; use one of {}", names.join(", "))
    })?;
    Ok(Condition::Compare { variable: variable.clone(), operator, operand: operand.clone() })
}

fn holds(condition: &Condition) -> Result<bool, String> {
    match condition {
        Condition::And(items) => {
            for item in items {
                if !holds(item)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(items) => {
            for item in items {
                if holds(item)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(inner) => Ok(!holds(inner)?),
        Condition::Compare { variable, operator, operand } => compare(variable, *operator, operand),
    }
}

fn compare(variable: &Value, operator: Operator, operand: &Value) -> Result<bool, String> {
    let (text, expected) = (plain_text(variable), plain_text(operand));
    let number = |value: &Value| {
        number(value)
            .ok_or_else(|| format!("{} needs numbers; {} is not one", operator.name(), plain_text(value)))
    };
    let boolean = |value: &Value| {
        boolean(value)
            .ok_or_else(|| format!("BooleanEquals needs true or false; {} is neither", plain_text(value)))
    };
    Ok(match operator {
        Operator::StringEquals => text == expected,
        Operator::EqualsIgnoreCase => text.to_lowercase() == expected.to_lowercase(),
        Operator::StartsWith => text.starts_with(&expected),
        Operator::EndsWith => text.ends_with(&expected),
        Operator::Contains => match variable {
            Value::Array(items) => items.iter().any(|item| plain_text(item) == expected),
            _ => text.contains(&expected),
        },
        Operator::NumericEquals => number(variable)? == number(operand)?,
        Operator::NumericGreater => number(variable)? > number(operand)?,
        Operator::NumericGreaterOrEquals => number(variable)? >= number(operand)?,
        Operator::NumericLesser => number(variable)? < number(operand)?,
        Operator::NumericLesserOrEquals => number(variable)? <= number(operand)?,
        Operator::BooleanEquals => boolean(variable)? == boolean(operand)?,
    })
}

fn number(value: &Value) -> Option<f64> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    parsed.filter(|n: &f64| n.is_finite())
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn test(variable: Value, operator: &str, operand: Value) -> Result<bool, String> {
        let inputs = json!({"Choices": [{"NextStep": "yes", "Variable": variable, operator: operand}]});
        match evaluate(&inputs) {
            Ok(next) => Ok(next.is_some()),
            Err(err) => Err(err.to_string()),
        }
    }

    #[test]
    fn string_operators() {
        assert_eq!(test(json!("Linux"), "StringEquals", json!("Linux")), Ok(true));
        assert_eq!(test(json!("Linux"), "StringEquals", json!("linux")), Ok(false));
        assert_eq!(test(json!("Linux"), "EqualsIgnoreCase", json!("LINUX")), Ok(true));
        assert_eq!(test(json!("Linux"), "EqualsIgnoreCase", json!("Windows")), Ok(false));
        assert_eq!(test(json!("i-123"), "StartsWith", json!("i-")), Ok(true));
        assert_eq!(test(json!("i-123"), "StartsWith", json!("ami-")), Ok(false));
        assert_eq!(test(json!("file.zip"), "EndsWith", json!(".zip")), Ok(true));
        assert_eq!(test(json!("file.zip"), "EndsWith", json!(".py")), Ok(false));
        assert_eq!(test(json!("a running b"), "Contains", json!("running")), Ok(true));
        assert_eq!(test(json!("stopped"), "Contains", json!("running")), Ok(false));
        assert_eq!(test(json!(["a", "b"]), "Contains", json!("b")), Ok(true));
        assert_eq!(test(json!(["ab"]), "Contains", json!("b")), Ok(false));
        assert_eq!(test(json!(5), "StringEquals", json!("5")), Ok(true));
    }

    #[test]
    fn numeric_operators() {
        assert_eq!(test(json!(5), "NumericEquals", json!(5)), Ok(true));
        assert_eq!(test(json!("5"), "NumericEquals", json!(5.0)), Ok(true));
        assert_eq!(test(json!(5), "NumericEquals", json!(6)), Ok(false));
        assert_eq!(test(json!(6), "NumericGreater", json!(5)), Ok(true));
        assert_eq!(test(json!(5), "NumericGreater", json!(5)), Ok(false));
        assert_eq!(test(json!(5), "NumericGreaterOrEquals", json!(5)), Ok(true));
        assert_eq!(test(json!(4), "NumericGreaterOrEquals", json!(5)), Ok(false));
        assert_eq!(test(json!(4), "NumericLesser", json!("5")), Ok(true));
        assert_eq!(test(json!(5), "NumericLesser", json!(5)), Ok(false));
        assert_eq!(test(json!(5), "NumericLesserOrEquals", json!(5)), Ok(true));
        assert_eq!(test(json!(6), "NumericLesserOrEquals", json!(5)), Ok(false));
    }

    #[test]
    fn boolean_operator() {
        assert_eq!(test(json!(true), "BooleanEquals", json!(true)), Ok(true));
        assert_eq!(test(json!("false"), "BooleanEquals", json!(true)), Ok(false));
        assert_eq!(test(json!("True"), "BooleanEquals", json!("true")), Ok(true));
    }

    #[test]
    fn operands_of_the_wrong_kind_are_errors() {
        assert_eq!(
            test(json!("abc"), "NumericGreater", json!(1)),
            Err("Choices[0]: NumericGreater needs numbers; abc is not one".into())
        );
        assert_eq!(
            test(json!("yes"), "BooleanEquals", json!(true)),
            Err("Choices[0]: BooleanEquals needs true or false; yes is neither".into())
        );
    }

    #[test]
    fn first_matching_choice_wins_then_default_then_none() {
        let choices = json!([
            {"NextStep": "first", "Variable": "x", "StringEquals": "y"},
            {"NextStep": "second", "Variable": "x", "StartsWith": "x"},
            {"NextStep": "third", "Variable": "x", "StringEquals": "x"},
        ]);
        assert_eq!(evaluate(&json!({"Choices": choices, "Default": "d"})).unwrap(), Some("second".into()));
        let none_match = json!([{"NextStep": "first", "Variable": "x", "StringEquals": "y"}]);
        assert_eq!(evaluate(&json!({"Choices": none_match, "Default": "d"})).unwrap(), Some("d".into()));
        assert_eq!(evaluate(&json!({"Choices": none_match})).unwrap(), None);
    }

    #[test]
    fn and_or_not_nest() {
        let running = json!({"Variable": "running", "StringEquals": "running"});
        let windows = json!({"Variable": "Linux", "StringEquals": "Windows"});
        let inputs = |condition: Value| {
            let mut choice = condition;
            choice["NextStep"] = json!("go");
            json!({"Choices": [choice]})
        };
        let go = Ok(Some("go".to_owned()));
        assert_eq!(evaluate(&inputs(json!({"And": [running, windows]}))), Ok(None));
        assert_eq!(evaluate(&inputs(json!({"Or": [running, windows]}))), go);
        assert_eq!(evaluate(&inputs(json!({"Not": windows}))), go);
        assert_eq!(evaluate(&inputs(json!({"Not": {"Or": [windows, {"Not": running}]}}))), go);
        assert_eq!(evaluate(&inputs(json!({"And": [running, {"Not": windows}]}))), go);
    }

    #[test]
    fn targets_list_next_steps_and_default() {
        let branch = Branch::parse(&json!({"Choices": [
            {"NextStep": "a", "Variable": "x", "StringEquals": "x"},
            {"NextStep": "b", "Not": {"Variable": "x", "StringEquals": "x"}}], "Default": "c"}))
        .unwrap();
        assert_eq!(branch.targets().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[test]
    fn malformed_inputs_are_rejected_with_a_reason() {
        let x = json!({"Variable": "x", "StringEquals": "x"});
        let cases = [
            (json!({}), "Choices must be a non-empty list"),
            (json!({"Choices": []}), "Choices must be a non-empty list"),
            (
                json!({"Choices": [{"NextStep": "a", "Not": x}], "Default": 3}),
                "Default must be the name of a step",
            ),
        ];
        for (inputs, message) in cases {
            assert_eq!(Branch::parse(&inputs), Err(BranchError::Invalid(message.into())), "{inputs}");
        }
        let choices = [
            (json!("x"), "a choice must be a map"),
            (x.clone(), "NextStep must name a step"),
            (
                json!({"NextStep": "a", "StringEquals": "x"}),
                "a condition needs a Variable and an operator, or And, Or or Not",
            ),
            (json!({"NextStep": "a", "Variable": "x"}), "a condition needs an operator such as StringEquals"),
            (
                json!({"NextStep": "a", "Variable": "x", "StringEquals": "x", "Contains": "x"}),
                "a condition takes one operator; found Contains and StringEquals",
            ),
            (json!({"NextStep": "a", "And": []}), "And must be a non-empty list of conditions"),
            (json!({"NextStep": "a", "Or": x}), "Or must be a non-empty list of conditions"),
            (json!({"NextStep": "a", "Not": "x"}), "a condition must be a map"),
            (
                json!({"NextStep": "a", "Not": x, "Variable": "y"}),
                "Not must be the only key of its condition",
            ),
            (
                json!({"NextStep": "a", "Not": {"NextStep": "b", "Or": [x]}}),
                "NextStep belongs at the top of a choice, not inside And, Or or Not",
            ),
        ];
        for (choice, message) in choices {
            let inputs = json!({"Choices": [choice]});
            assert_eq!(Branch::parse(&inputs), Err(BranchError::Invalid(format!("Choices[0]: {message}"))));
        }
        let inputs = json!({"Choices": [{"NextStep": "a", "Variable": "x", "NumericGreaterThan": 1}]});
        let message = Branch::parse(&inputs).unwrap_err().to_string();
        let names: Vec<_> = Operator::ALL.iter().map(|op| op.name()).collect();
        let expected = format!(
            "Choices[0]: NumericGreaterThan is not a supported operator; use one of {}",
            names.join(", ")
        );
        assert_eq!((message, names.len()), (expected, 11));
    }
}

//! The Cloudforet (SpaceONE) query language: `spaceone.api.core.v2.Query` and `StatisticsQuery`
//! parsed from their proto3-JSON form into typed values, with the value rules and error codes of
//! Cloudforet's python-core. No IO: the store compiles these to SQL (docs/QUERY.md).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::clock::Millis;

/// A query error, named by Cloudforet's error code. Messages follow python-core's wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// `ERROR_DB_QUERY`: the query cannot be run (unknown operator or key, bad format, …).
    #[error("Database query failed. (reason = {0})")]
    DbQuery(String),
    /// `ERROR_OPERATOR_LIST_VALUE_TYPE`: a list operator got a scalar.
    #[error("The value of '{operator} operator' must be a list type. ({condition})")]
    OperatorListValueType { operator: String, condition: String },
    /// `ERROR_OPERATOR_VALUE_TYPE`: a scalar operator got a list.
    #[error("The value of '{operator} operator' does not support list type. ({condition})")]
    OperatorValueType { operator: String, condition: String },
    /// `ERROR_OPERATOR_DICT_VALUE_TYPE`: `match` wants an object.
    #[error("The value of '{operator} operator' must be a dictionary type. ({condition})")]
    OperatorDictValueType { operator: String, condition: String },
    /// `ERROR_OPERATOR_BOOLEAN_TYPE`: `exists` wants a boolean.
    #[error("The value of '{operator} operator' must be a boolean type. ({condition})")]
    OperatorBooleanType { operator: String, condition: String },
    /// `ERROR_INVALID_PARAMETER_TYPE`: a member has the wrong JSON type.
    #[error("Parameter type is invalid. (key = {key}, type = {kind})")]
    InvalidParameterType { key: String, kind: &'static str },
    /// `ERROR_REQUIRED_PARAMETER`: a required member is missing.
    #[error("Required parameter. (key = {0})")]
    RequiredParameter(String),
}

impl QueryError {
    /// Cloudforet's error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::DbQuery(_) => "ERROR_DB_QUERY",
            QueryError::OperatorListValueType { .. } => "ERROR_OPERATOR_LIST_VALUE_TYPE",
            QueryError::OperatorValueType { .. } => "ERROR_OPERATOR_VALUE_TYPE",
            QueryError::OperatorDictValueType { .. } => "ERROR_OPERATOR_DICT_VALUE_TYPE",
            QueryError::OperatorBooleanType { .. } => "ERROR_OPERATOR_BOOLEAN_TYPE",
            QueryError::InvalidParameterType { .. } => "ERROR_INVALID_PARAMETER_TYPE",
            QueryError::RequiredParameter(_) => "ERROR_REQUIRED_PARAMETER",
        }
    }

    /// `ERROR_DB_QUERY` with a reason.
    pub fn db(reason: impl Into<String>) -> QueryError {
        QueryError::DbQuery(reason.into())
    }
}

type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Every filter operator of Cloudforet's v2 query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
    Not,
    Exists,
    Contain,
    NotContain,
    In,
    NotIn,
    ContainIn,
    NotContainIn,
    Match,
    Regex,
    RegexIn,
    DatetimeGt,
    DatetimeLt,
    DatetimeGte,
    DatetimeLte,
    TimediffGt,
    TimediffLt,
    TimediffGte,
    TimediffLte,
}

/// A comparison, the part datetime and timediff operators share with `lt`…`gte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Comparison {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Lte => "<=",
            Comparison::Gt => ">",
            Comparison::Gte => ">=",
        }
    }
}

const OPERATORS: [(&str, Operator); 24] = [
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("eq", Operator::Eq),
    ("not", Operator::Not),
    ("exists", Operator::Exists),
    ("contain", Operator::Contain),
    ("not_contain", Operator::NotContain),
    ("in", Operator::In),
    ("not_in", Operator::NotIn),
    ("contain_in", Operator::ContainIn),
    ("not_contain_in", Operator::NotContainIn),
    ("match", Operator::Match),
    ("regex", Operator::Regex),
    ("regex_in", Operator::RegexIn),
    ("datetime_gt", Operator::DatetimeGt),
    ("datetime_lt", Operator::DatetimeLt),
    ("datetime_gte", Operator::DatetimeGte),
    ("datetime_lte", Operator::DatetimeLte),
    ("timediff_gt", Operator::TimediffGt),
    ("timediff_lt", Operator::TimediffLt),
    ("timediff_gte", Operator::TimediffGte),
    ("timediff_lte", Operator::TimediffLte),
];

impl Operator {
    /// The operator named `name`, as Cloudforet spells it.
    pub fn parse(name: &str) -> Option<Operator> {
        OPERATORS.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    /// Cloudforet's name for the operator.
    pub fn name(self) -> &'static str {
        OPERATORS.iter().find(|(_, op)| *op == self).map_or("eq", |(n, _)| n)
    }

    /// Whether the value must be a list (python-core's `is_multiple`).
    pub fn wants_list(self) -> bool {
        use Operator::*;
        matches!(self, In | NotIn | ContainIn | NotContainIn | RegexIn)
    }

    /// The comparison of `lt`…`gte` and of the datetime and timediff operators.
    pub fn comparison(self) -> Option<Comparison> {
        use Operator::*;
        match self {
            Lt | DatetimeLt | TimediffLt => Some(Comparison::Lt),
            Lte | DatetimeLte | TimediffLte => Some(Comparison::Lte),
            Gt | DatetimeGt | TimediffGt => Some(Comparison::Gt),
            Gte | DatetimeGte | TimediffGte => Some(Comparison::Gte),
            _ => None,
        }
    }
}

/// The base of a timediff value: `now`, or the start of today, this week (Monday) or this month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBase {
    Now,
    Day,
    Week,
    Month,
}

/// A timediff value such as `now-2h` or `now/d+1d`, resolved against a clock by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeDiff {
    pub base: TimeBase,
    /// Signed offset from the base, in milliseconds.
    pub offset: Millis,
}

impl TimeDiff {
    /// Parses Cloudforet's form: `now`, `now/d`, `now/w`, `now/m`, optionally followed by
    /// `+N<unit>` or `-N<unit>` with unit `s m h d w`; single spaces are allowed around the parts.
    pub fn parse(text: &str) -> Option<TimeDiff> {
        let compact: String = text.chars().filter(|c| *c != ' ').collect();
        let (base, rest) = [("now/d", TimeBase::Day), ("now/w", TimeBase::Week), ("now/m", TimeBase::Month)]
            .iter()
            .find_map(|(p, b)| compact.strip_prefix(p).map(|r| (*b, r)))
            .or_else(|| compact.strip_prefix("now").map(|r| (TimeBase::Now, r)))?;
        if rest.is_empty() {
            return Some(TimeDiff { base, offset: 0 });
        }
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let body = &rest[1..];
        let unit = body.chars().last()?;
        let number: i64 = body[..body.len() - 1]
            .parse()
            .ok()
            .filter(|_| body[..body.len() - 1].bytes().all(|b| b.is_ascii_digit()))?;
        let unit_ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        Some(TimeDiff { base, offset: sign * number.checked_mul(unit_ms)? })
    }

    /// The instant this value names when the time is `now` (UTC).
    pub fn resolve(&self, now: Millis) -> Millis {
        let day_ms = 86_400_000;
        let today = now.div_euclid(day_ms) * day_ms;
        let base = match self.base {
            TimeBase::Now => now,
            TimeBase::Day => today,
            // The epoch was a Thursday: days since the last Monday are (days + 3) mod 7.
            TimeBase::Week => today - (now.div_euclid(day_ms) + 3).rem_euclid(7) * day_ms,
            TimeBase::Month => month_start(now),
        };
        base + self.offset
    }
}

fn month_start(now: Millis) -> Millis {
    let at = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1)
        .map_or(now, |d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

/// The value of a condition, checked against its operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A scalar (string, number, bool or null) for `eq not lt lte gt gte contain not_contain`.
    One(Value),
    /// The list of `in not_in contain_in not_contain_in`.
    Many(Vec<Value>),
    /// `exists`.
    Flag(bool),
    /// `match` (Mongo's `$elemMatch`).
    Object(Map<String, Value>),
    /// `regex` (one pattern) and `regex_in` (several), each checked to compile.
    Patterns(Vec<String>),
    /// A datetime operator's value, parsed from ISO 8601.
    Instant(Millis),
    /// A timediff operator's value.
    TimeDiff(TimeDiff),
}

/// One filter condition `{key, operator, value}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub key: String,
    pub operator: Operator,
    pub value: Operand,
}

impl Condition {
    /// A condition built in code (tenancy scopes); the value is checked as a parsed one would be.
    pub fn new(key: &str, operator: Operator, value: Value) -> Result<Condition> {
        let mut object = Map::new();
        object.insert("k".into(), key.into());
        object.insert("o".into(), operator.name().into());
        object.insert("v".into(), value);
        Condition::from_json(&Value::Object(object))
    }

    /// `key = value` for a string value.
    pub fn eq(key: &str, value: &str) -> Condition {
        Condition { key: key.into(), operator: Operator::Eq, value: Operand::One(value.into()) }
    }

    /// Parses `{k|key, v|value, o|operator}`; a missing operator means `eq`.
    pub fn from_json(json: &Value) -> Result<Condition> {
        let object = json
            .as_object()
            .ok_or(QueryError::InvalidParameterType { key: "filter".into(), kind: "dict" })?;
        let key = alias(object, "key", "k");
        let value = alias(object, "value", "v").cloned().unwrap_or(Value::Null);
        let operator = match alias(object, "operator", "o") {
            None => Operator::Eq,
            Some(Value::String(name)) => Operator::parse(name).ok_or_else(unsupported_operator)?,
            Some(_) => return Err(unsupported_operator()),
        };
        let shown = json.to_string();
        check_list_rule(operator, &value, &shown)?;
        let key = match key {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err(QueryError::db("Filter condition should have key, value and operator.")),
        };
        let value = operand(operator, value, &shown)?;
        Ok(Condition { key, operator, value })
    }
}

fn unsupported_operator() -> QueryError {
    let names: Vec<&str> = OPERATORS.iter().map(|(n, _)| *n).collect();
    QueryError::db(format!("Filter operator is not supported. (operator = {names:?})"))
}

fn check_list_rule(operator: Operator, value: &Value, shown: &str) -> Result<()> {
    let condition = shown.to_string();
    let name = operator.name().to_string();
    match (operator.wants_list(), value.is_array()) {
        (true, false) => Err(QueryError::OperatorListValueType { operator: name, condition }),
        (false, true) => Err(QueryError::OperatorValueType { operator: name, condition }),
        _ => Ok(()),
    }
}

fn operand(operator: Operator, value: Value, shown: &str) -> Result<Operand> {
    use Operator::*;
    let name = operator.name().to_string();
    let condition = shown.to_string();
    Ok(match operator {
        In | NotIn | ContainIn | NotContainIn => Operand::Many(as_list(value)),
        Exists => match value {
            Value::Bool(flag) => Operand::Flag(flag),
            _ => return Err(QueryError::OperatorBooleanType { operator: name, condition }),
        },
        Match => match value {
            Value::Object(object) => Operand::Object(object),
            _ => return Err(QueryError::OperatorDictValueType { operator: name, condition }),
        },
        Regex | RegexIn => Operand::Patterns(patterns(value)?),
        DatetimeGt | DatetimeLt | DatetimeGte | DatetimeLte => {
            let instant = value.as_str().and_then(parse_datetime).ok_or_else(|| {
                QueryError::db(format!("The value of {name} operator is required ISO 8601 format."))
            })?;
            Operand::Instant(instant)
        }
        TimediffGt | TimediffLt | TimediffGte | TimediffLte => {
            let diff = value.as_str().and_then(TimeDiff::parse).ok_or_else(|| {
                QueryError::db(format!("The value of {name} operator is invalid. (value = {value})"))
            })?;
            Operand::TimeDiff(diff)
        }
        Lt | Lte | Gt | Gte | Eq | Not | Contain | NotContain => Operand::One(value),
    })
}

fn as_list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => vec![other],
    }
}

fn patterns(value: Value) -> Result<Vec<String>> {
    as_list(value)
        .into_iter()
        .map(|item| {
            let pattern = item
                .as_str()
                .ok_or_else(|| QueryError::db(format!("regex value must be a string: {item}")))?;
            regex::Regex::new(pattern)
                .map_err(|e| QueryError::db(format!("invalid regular expression {pattern:?}: {e}")))?;
            Ok(pattern.to_string())
        })
        .collect()
}

fn alias<'a>(object: &'a Map<String, Value>, long: &str, short: &str) -> Option<&'a Value> {
    member(object, long).or_else(|| object.get(short)).filter(|v| !v.is_null() || long == "value")
}

/// A member by its proto field name or by its proto3-JSON lowerCamelCase name
/// (`filter_or` or `filterOr`); proto3 JSON parsers accept both.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        let mut camel = String::with_capacity(name.len());
        let mut upper = false;
        for ch in name.chars() {
            match (ch, upper) {
                ('_', _) => upper = true,
                (c, true) => {
                    camel.push(c.to_ascii_uppercase());
                    upper = false;
                }
                (c, false) => camel.push(c),
            }
        }
        object.get(&camel)
    })
}

/// Parses an ISO 8601 datetime as dateutil's `isoparse` reads it (date `YYYY`, `YYYY-MM`,
/// `YYYY-MM-DD` or `YYYYMMDD`; optional time `HH[:MM[:SS[.fff…]]]` or `HHMMSS` after any one
/// separator character; optional `Z` or `±HH[:MM]`). A value without an offset is UTC.
pub fn parse_datetime(text: &str) -> Option<Millis> {
    let (date_part, rest) = split_date(text)?;
    let date = parse_date(date_part)?;
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    let mut chars = rest.chars();
    chars.next()?;
    let time_and_zone = chars.as_str();
    let (time_part, offset) = split_zone(time_and_zone)?;
    let time = parse_time(time_part)?;
    let local = NaiveDateTime::new(date, time);
    Some(local.and_utc().timestamp_millis() - offset * 1000)
}

fn split_date(text: &str) -> Option<(&str, &str)> {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(text.len());
    if end < text.len() && !text.is_char_boundary(end) {
        return None;
    }
    Some((&text[..end], &text[end..]))
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let number = |s: &str| s.parse::<u32>().ok();
    let (y, m, d) = match text.len() {
        4 => (text, "1", "1"),
        7 if &text[4..5] == "-" => (&text[..4], &text[5..7], "1"),
        8 if text.bytes().all(|b| b.is_ascii_digit()) => (&text[..4], &text[4..6], &text[6..8]),
        10 if &text[4..5] == "-" && &text[7..8] == "-" => (&text[..4], &text[5..7], &text[8..10]),
        _ => return None,
    };
    if !text.replace('-', "").bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, number(m)?, number(d)?)
}

/// Splits a time from its zone; the offset is in seconds east of UTC.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(time) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((time, 0));
    }
    let Some(at) = text.find(['+', '-']) else {
        return Some((text, 0));
    };
    let sign = if &text[at..at + 1] == "-" { -1 } else { 1 };
    let zone = text[at + 1..].replace(':', "");
    if !zone.bytes().all(|b| b.is_ascii_digit()) || !matches!(zone.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = zone[..2].parse().ok()?;
    let minutes: i64 = if zone.len() == 4 { zone[2..].parse().ok()? } else { 0 };
    Some((&text[..at], sign * (hours * 3600 + minutes * 60)))
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let (clock, fraction) = match text.split_once(['.', ',']) {
        Some((c, f)) => (c, f),
        None => (text, ""),
    };
    let digits = clock.replace(':', "");
    if digits.is_empty()
        || digits.len() % 2 != 0
        || digits.len() > 6
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part = |i: usize| digits.get(i..i + 2).map_or(Some(0), |s| s.parse::<u32>().ok());
    let millis: u32 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    NaiveTime::from_hms_milli_opt(part(0)?, part(2)?, part(4)?, millis)
}

/// Cloudforet's datetime form, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_datetime(at: Millis) -> String {
    match Utc.timestamp_millis_opt(at).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => at.to_string(),
    }
}

/// The form `push` gives a datetime sub-field, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_datetime_seconds(at: Millis) -> String {
    match DateTime::<Utc>::from_timestamp_millis(at) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => at.to_string(),
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub key: String,
    pub desc: bool,
}

/// A 1-based page. `limit` 0 means no paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: u32,
    pub limit: u32,
}

impl Page {
    /// The rows to skip (`start` below 1 counts as 1) and how many to return, or None when
    /// the page does not limit.
    pub fn window(&self) -> Option<(u64, u64)> {
        (self.limit > 0).then(|| (u64::from(self.start.max(1) - 1), u64::from(self.limit)))
    }
}

/// `spaceone.api.core.v2.Query`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub filter: Vec<Condition>,
    pub filter_or: Vec<Condition>,
    pub sort: Vec<SortKey>,
    pub page: Option<Page>,
    pub only: Vec<String>,
    pub minimal: bool,
    pub count_only: bool,
    pub keyword: Option<String>,
}

impl Query {
    /// Parses the proto3-JSON form. Unknown members (`unwind`, `lookup`, `add_fields`) are
    /// refused with `ERROR_DB_QUERY`, as Sluice does not serve them.
    pub fn from_json(json: &Value) -> Result<Query> {
        let object = object_of(json, "query")?;
        refuse_unserved(object, &["unwind", "lookup", "add_fields"])?;
        Ok(Query {
            filter: conditions(object, "filter")?,
            filter_or: conditions(object, "filter_or")?,
            sort: sort_keys(object.get("sort"), "sort")?,
            page: page(object)?,
            only: strings(object, "only")?,
            minimal: flag(object, "minimal")?,
            count_only: flag(object, "count_only")?,
            keyword: text(object, "keyword")?,
        })
    }
}

fn refuse_unserved(object: &Map<String, Value>, names: &[&str]) -> Result<()> {
    match names.iter().find(|n| object.get(**n).is_some_and(|v| !is_empty(v))) {
        Some(name) => Err(QueryError::db(format!("'{name}' is not supported"))),
        None => Ok(()),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn object_of<'a>(json: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    json.as_object().ok_or_else(|| QueryError::InvalidParameterType { key: key.into(), kind: "dict" })
}

fn list<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a [Value]> {
    match member(object, key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(QueryError::InvalidParameterType { key: key.into(), kind: "list" }),
    }
}

fn conditions(object: &Map<String, Value>, key: &str) -> Result<Vec<Condition>> {
    list(object, key)?.iter().map(Condition::from_json).collect()
}

fn sort_keys(value: Option<&Value>, key: &str) -> Result<Vec<SortKey>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(QueryError::InvalidParameterType { key: key.into(), kind: "list" }),
    };
    items
        .iter()
        .map(|item| {
            let object = object_of(item, key)?;
            let name = match alias(object, "key", "k") {
                Some(Value::String(k)) => k.clone(),
                Some(_) => {
                    return Err(QueryError::InvalidParameterType { key: format!("{key}.key"), kind: "str" })
                }
                None => return Err(QueryError::RequiredParameter(format!("{key}.key"))),
            };
            Ok(SortKey { key: name, desc: flag(object, "desc")? })
        })
        .collect()
}

fn page(object: &Map<String, Value>) -> Result<Option<Page>> {
    let Some(json) = object.get("page").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let page = object_of(json, "page")?;
    let number = |name: &str| -> Result<u32> {
        match page.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| QueryError::InvalidParameterType { key: format!("page.{name}"), kind: "int" }),
        }
    };
    Ok(Some(Page { start: number("start")?.max(1), limit: number("limit")? }))
}

fn strings(object: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    list(object, key)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| QueryError::InvalidParameterType { key: key.into(), kind: "str" })
        })
        .collect()
}

fn flag(object: &Map<String, Value>, key: &str) -> Result<bool> {
    match member(object, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(QueryError::InvalidParameterType { key: key.into(), kind: "bool" }),
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match member(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(QueryError::InvalidParameterType { key: key.into(), kind: "str" }),
    }
}

fn required_text(object: &Map<String, Value>, long: &str, short: &str, path: &str) -> Result<String> {
    match alias(object, long, short) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None => Err(QueryError::db(format!(
            "'{path}' condition requires a {long}: {}",
            Value::Object(object.clone())
        ))),
        Some(_) => Err(QueryError::InvalidParameterType { key: path.into(), kind: "str" }),
    }
}

fn optional_text(object: &Map<String, Value>, long: &str, short: &str, path: &str) -> Result<Option<String>> {
    match alias(object, long, short) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(QueryError::InvalidParameterType { key: path.into(), kind: "str" }),
    }
}

/// `spaceone.api.core.v2.StatisticsQuery`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatQuery {
    pub filter: Vec<Condition>,
    pub filter_or: Vec<Condition>,
    pub aggregate: Vec<Stage>,
    pub page: Option<Page>,
    pub distinct: Option<String>,
    pub keyword: Option<String>,
}

/// One aggregation stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Group(Group),
    Count { name: String },
    Sort(Vec<SortKey>),
    Project(Project),
    Limit(u64),
    Skip(u64),
}

/// A `group` stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub keys: Vec<GroupKey>,
    pub fields: Vec<GroupField>,
}

/// A group key; `date_format` is `year`, `month`, `day` or a `$dateToString` format.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupKey {
    pub key: String,
    pub name: String,
    pub date_format: Option<String>,
}

/// The accumulators of a group field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOperator {
    Count,
    Sum,
    Average,
    Max,
    Min,
    First,
    Last,
    Push,
    AddToSet,
}

const GROUP_OPERATORS: [(&str, GroupOperator); 9] = [
    ("count", GroupOperator::Count),
    ("sum", GroupOperator::Sum),
    ("average", GroupOperator::Average),
    ("max", GroupOperator::Max),
    ("min", GroupOperator::Min),
    ("first", GroupOperator::First),
    ("last", GroupOperator::Last),
    ("push", GroupOperator::Push),
    ("add_to_set", GroupOperator::AddToSet),
];

/// A sub-field of `push`: the pushed object's `name` takes the row's `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubField {
    pub key: String,
    pub name: String,
}

/// A group field: `name` receives `operator` over `key` (or over `fields` for `push`);
/// `conditions` restrict what `count`, `sum` and `average` take in.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupField {
    pub key: Option<String>,
    pub name: String,
    pub operator: GroupOperator,
    pub fields: Vec<SubField>,
    pub conditions: Vec<Condition>,
}

/// A `project` stage: each field `name` takes `key`; `exclude_keys` drops the group keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub fields: Vec<SubField>,
    pub exclude_keys: bool,
}

impl StatQuery {
    /// Parses the proto3-JSON form. Without `aggregate` or `distinct` it is
    /// `ERROR_REQUIRED_PARAMETER (key = aggregate)`, as python-core answers.
    pub fn from_json(json: &Value) -> Result<StatQuery> {
        let object = object_of(json, "query")?;
        let aggregate = match object.get("aggregate") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(stages)) => stages.iter().map(stage).collect::<Result<_>>()?,
            Some(_) => {
                return Err(QueryError::InvalidParameterType { key: "aggregate".into(), kind: "list" })
            }
        };
        let distinct = text(object, "distinct")?.filter(|d| !d.is_empty());
        if aggregate.is_empty() && distinct.is_none() {
            return Err(QueryError::RequiredParameter("aggregate".into()));
        }
        Ok(StatQuery {
            filter: conditions(object, "filter")?,
            filter_or: conditions(object, "filter_or")?,
            aggregate,
            page: page(object)?,
            distinct,
            keyword: text(object, "keyword")?,
        })
    }
}

fn stage(json: &Value) -> Result<Stage> {
    let object = object_of(json, "aggregate")?;
    if let Some(group) = object.get("group") {
        return group_stage(object_of(group, "aggregate.group")?);
    }
    if let Some(count) = object.get("count") {
        let count = object_of(count, "aggregate.count")?;
        return match count.get("name") {
            Some(Value::String(name)) if !name.is_empty() => Ok(Stage::Count { name: name.clone() }),
            _ => Err(QueryError::RequiredParameter("aggregate.count.name".into())),
        };
    }
    if let Some(sort) = object.get("sort") {
        return Ok(Stage::Sort(sort_keys(Some(sort), "aggregate.sort")?));
    }
    if let Some(project) = object.get("project") {
        return project_stage(object_of(project, "aggregate.project")?);
    }
    for (name, make) in [("limit", Stage::Limit as fn(u64) -> Stage), ("skip", Stage::Skip)] {
        if let Some(value) = object.get(name) {
            let n = value.as_u64().ok_or_else(|| QueryError::InvalidParameterType {
                key: format!("aggregate.{name}"),
                kind: "int",
            })?;
            return Ok(make(n));
        }
    }
    if object.contains_key("unwind") {
        return Err(QueryError::db("'aggregate.unwind' is not supported"));
    }
    Err(QueryError::RequiredParameter(
        "aggregate.unwind or aggregate.group or aggregate.count or aggregate.sort or aggregate.project or aggregate.limit or aggregate.skip".into(),
    ))
}

fn group_stage(object: &Map<String, Value>) -> Result<Stage> {
    let keys = list(object, "keys")?.iter().map(group_key).collect::<Result<Vec<_>>>()?;
    let fields = list(object, "fields")?.iter().map(group_field).collect::<Result<Vec<_>>>()?;
    if keys.is_empty() && fields.is_empty() {
        return Err(QueryError::RequiredParameter("aggregate.group.keys || aggregate.group.fields".into()));
    }
    Ok(Stage::Group(Group { keys, fields }))
}

fn group_key(json: &Value) -> Result<GroupKey> {
    let object = object_of(json, "aggregate.group.keys")?;
    let path = "aggregate.group.keys";
    Ok(GroupKey {
        key: required_text(object, "key", "k", path)?,
        name: required_text(object, "name", "n", path)?,
        date_format: optional_text(object, "date_format", "date_format", "aggregate.group.keys.date_format")?,
    })
}

fn group_field(json: &Value) -> Result<GroupField> {
    let path = "aggregate.group.fields";
    let object = object_of(json, path)?;
    let operator_name = optional_text(object, "operator", "o", path)?.unwrap_or_default();
    let names: Vec<&str> = GROUP_OPERATORS.iter().map(|(n, _)| *n).collect();
    let operator = GROUP_OPERATORS.iter().find(|(n, _)| *n == operator_name).map(|(_, o)| *o).ok_or_else(|| {
        QueryError::db(format!("'{path}' condition's {operator_name} operator is not supported. (supported_operator = {names:?})"))
    })?;
    let name = required_text(object, "name", "n", path)?;
    let key = optional_text(object, "key", "k", path)?;
    let fields = list(object, "fields")?
        .iter()
        .map(|f| sub_field(f, "aggregate.group.fields.fields"))
        .collect::<Result<Vec<_>>>()?;
    let conditions = list(object, "conditions")?.iter().map(sub_condition).collect::<Result<Vec<_>>>()?;
    let field = GroupField { key, name, operator, fields, conditions };
    check_group_field(&field, json)?;
    Ok(field)
}

fn check_group_field(field: &GroupField, json: &Value) -> Result<()> {
    use GroupOperator::*;
    let needs_key = !matches!(field.operator, Count | Push);
    if needs_key && field.key.is_none() {
        return Err(QueryError::db(format!("'aggregate.group.fields' condition requires a key: {json}")));
    }
    if field.operator == Push && field.key.is_none() && field.fields.is_empty() {
        return Err(QueryError::db(format!("'aggregate.group.fields' condition requires fields: {json}")));
    }
    if !field.conditions.is_empty() && !matches!(field.operator, Count | Sum | Average) {
        return Err(QueryError::db(format!(
            "'aggregate.group.fields' condition's conditions not supported: {json}"
        )));
    }
    Ok(())
}

fn sub_field(json: &Value, path: &str) -> Result<SubField> {
    let object = object_of(json, path)?;
    Ok(SubField {
        key: required_text(object, "key", "k", path)?,
        name: required_text(object, "name", "n", path)?,
    })
}

const SUB_CONDITION_OPERATORS: [Operator; 6] =
    [Operator::Eq, Operator::Not, Operator::Gt, Operator::Gte, Operator::Lt, Operator::Lte];

fn sub_condition(json: &Value) -> Result<Condition> {
    let path = "aggregate.group.fields.conditions";
    let object = object_of(json, path)?;
    for (long, short) in [("key", "k"), ("value", "v"), ("operator", "o")] {
        if object.get(long).or_else(|| object.get(short)).is_none_or(Value::is_null) {
            return Err(QueryError::db(format!("'{path}.{long}' condition requires a {long}: {json}")));
        }
    }
    let condition = Condition::from_json(json)?;
    if !SUB_CONDITION_OPERATORS.contains(&condition.operator) {
        let names: Vec<&str> = SUB_CONDITION_OPERATORS.iter().map(|o| o.name()).collect();
        return Err(QueryError::db(format!(
            "'{path}.operator' condition's {} operator is not supported. (supported_operator = {names:?})",
            condition.operator.name()
        )));
    }
    Ok(condition)
}

fn project_stage(object: &Map<String, Value>) -> Result<Stage> {
    let path = "aggregate.project.fields";
    let items = list(object, "fields")?;
    if items.is_empty() {
        return Err(QueryError::RequiredParameter(path.into()));
    }
    let fields = items
        .iter()
        .map(|item| {
            let field = object_of(item, path)?;
            if let Some(op) = optional_text(field, "operator", "o", path)? {
                return Err(QueryError::db(format!("'{path}' condition's {op} operator is not supported.")));
            }
            sub_field(item, path)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Stage::Project(Project { fields, exclude_keys: flag(object, "exclude_keys")? }))
}

#[cfg(test)]
mod tests;

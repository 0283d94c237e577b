//! Cloudforet `stat`: `distinct`, and `aggregate` pipelines whose filter and first `group`
//! (or `count`) run in SQL — GROUP BY with window functions for `first`/`last` and JSON array
//! aggregates for `push`/`add_to_set` — while later stages (`sort`, `project`, `count`,
//! `limit`, `skip`) run over the grouped documents.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use sluice_core::clock::Millis;
use sluice_core::query::{
    Condition, Group, GroupField, GroupKey, GroupOperator, Page, Project, QueryError, SortKey, Stage,
    StatQuery,
};

use super::exec::{Bind, Column};
use super::{pairs, static_pairs, Compiler, FieldKind, QueryTable};
use crate::{Backend, Result, Store};

type Doc = Map<String, Value>;

impl Store {
    /// Runs a Cloudforet `StatisticsQuery` over `table`, ANDed with `scope`, and answers
    /// Cloudforet's shape: `{"results": [...]}`, plus `total_count` when the page has a limit.
    /// Timediff values are resolved against `now` (the caller's clock).
    pub async fn stat(
        &self,
        table: &QueryTable,
        scope: &[Condition],
        query: &StatQuery,
        now: Millis,
    ) -> Result<Value> {
        let mut c = Compiler::new(table, self.backend, now);
        let filter = c.where_clause(scope, &query.filter, &query.filter_or, query.keyword.as_deref())?;
        let results = match &query.distinct {
            Some(key) if query.aggregate.is_empty() => self.distinct(c, &filter, key).await?,
            _ => self.aggregate(c, &filter, &query.aggregate).await?.into_iter().map(Value::Object).collect(),
        };
        Ok(paged(results, query.page))
    }

    async fn distinct(&self, c: Compiler<'_>, filter: &str, key: &str) -> Result<Vec<Value>> {
        let field = *c.table.field(key)?;
        let sql = format!(
            "SELECT DISTINCT {} FROM {} WHERE {filter} AND {} IS NOT NULL ORDER BY 1",
            c.ordered(&field),
            c.table.table,
            field.column
        );
        let rows = self.fetch(&sql, c.binds, vec![Column::Field(field.kind)]).await?;
        Ok(rows.into_iter().filter_map(|row| row.into_iter().next()).collect())
    }

    async fn aggregate(&self, c: Compiler<'_>, filter: &str, stages: &[Stage]) -> Result<Vec<Doc>> {
        let lead = stages.iter().take_while(|s| matches!(s, Stage::Sort(_))).count();
        let pre_sort = stages[..lead].iter().rev().find_map(|s| match s {
            Stage::Sort(keys) => Some(keys.as_slice()),
            _ => None,
        });
        let rest = &stages[lead..];
        let (docs, group_keys, rest) = match rest.first() {
            Some(Stage::Group(group)) => {
                let names = group.keys.iter().map(|k| k.name.clone()).collect();
                (self.sql_group(c, filter, group, pre_sort).await?, names, &rest[1..])
            }
            Some(Stage::Count { name }) => (self.sql_count(c, filter, name).await?, Vec::new(), &rest[1..]),
            _ => {
                let (docs, used) = self.sql_rows(c, filter, pre_sort, rest).await?;
                (docs, Vec::new(), &rest[used..])
            }
        };
        Ok(evaluate(docs, group_keys, rest)?)
    }

    async fn sql_count(&self, c: Compiler<'_>, filter: &str, name: &str) -> Result<Vec<Doc>> {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {filter}", c.table.table);
        let rows = self.fetch(&sql, c.binds, vec![Column::Int]).await?;
        let count = rows.first().and_then(|r| r.first()).and_then(Value::as_i64).unwrap_or(0);
        Ok(if count == 0 {
            Vec::new()
        } else {
            vec![Map::from_iter([(name.to_string(), Value::from(count))])]
        })
    }

    /// Raw rows for a pipeline that does not start with a group or count; leading skip and
    /// limit stages become OFFSET and LIMIT. Returns the rows and the stages it consumed.
    async fn sql_rows(
        &self,
        mut c: Compiler<'_>,
        filter: &str,
        pre_sort: Option<&[SortKey]>,
        stages: &[Stage],
    ) -> Result<(Vec<Doc>, usize)> {
        let (mut skip, mut limit, mut used) = (0u64, None::<u64>, 0);
        for stage in stages {
            match stage {
                Stage::Skip(n) => {
                    skip += n;
                    limit = limit.map(|l| l.saturating_sub(*n));
                }
                Stage::Limit(n) => limit = Some(limit.map_or(*n, |l| l.min(*n))),
                _ => break,
            }
            used += 1;
        }
        let table = c.table;
        let order = c.order_by(&pre_order(table, pre_sort), false)?;
        let l = c.bind(Bind::Int(limit.map_or(i64::MAX, |l| l.min(i64::MAX as u64) as i64)));
        let o = c.bind(Bind::Int(skip.min(i64::MAX as u64) as i64));
        let columns: Vec<&str> = table.fields.iter().map(|f| f.column).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {order} LIMIT {l} OFFSET {o}",
            columns.join(", "),
            table.table
        );
        let kinds = table.fields.iter().map(|f| Column::Field(f.kind)).collect();
        let rows = self.fetch(&sql, c.binds, kinds).await?;
        let docs = rows
            .into_iter()
            .map(|row| table.fields.iter().map(|f| f.key.to_string()).zip(row).collect())
            .collect();
        Ok((docs, used))
    }

    async fn sql_group(
        &self,
        mut c: Compiler<'_>,
        filter: &str,
        group: &Group,
        pre_sort: Option<&[SortKey]>,
    ) -> Result<Vec<Doc>> {
        let table = c.table;
        let mut names = Vec::new();
        let mut columns = Vec::new();
        let mut key_exprs = String::new();
        for (i, key) in group.keys.iter().enumerate() {
            let (expr, column) = group_key(&mut c, key)?;
            key_exprs.push_str(&format!(", {expr} AS __g{i}"));
            names.push(key.name.clone());
            columns.push(column);
        }
        let pre = pre_order(table, pre_sort);
        let order = c.order_by(&pre, false)?;
        let mut select: Vec<String> = (0..group.keys.len()).map(|i| format!("__g{i}")).collect();
        let group_by = select.join(", ");
        for (j, field) in group.fields.iter().enumerate() {
            let (expr, column) = accumulator(&mut c, field, &order)?;
            select.push(format!("{expr} AS __a{j}"));
            names.push(field.name.clone());
            columns.push(column);
        }
        let t = table.table;
        let used = used_columns(table, group, &pre).join(", ");
        let mut source = format!("SELECT {used}{key_exprs} FROM {t} WHERE {filter}");
        if group.fields.iter().any(|f| matches!(f.operator, GroupOperator::First | GroupOperator::Last)) {
            let partition =
                if group_by.is_empty() { String::new() } else { format!("PARTITION BY {group_by} ") };
            source = format!(
                "SELECT l1.*, ROW_NUMBER() OVER ({partition}ORDER BY {order}) AS __rn, \
                 COUNT(*) OVER ({partition}) AS __cnt FROM ({source}) l1"
            );
        }
        let mut sql = format!("SELECT {} FROM ({source}) l2", select.join(", "));
        if !group_by.is_empty() {
            let keys_order: Vec<String> = columns[..group.keys.len()]
                .iter()
                .enumerate()
                .map(|(i, col)| match (c.backend, col.is_text()) {
                    (Backend::Postgres, true) => format!("__g{i} COLLATE \"C\" ASC NULLS FIRST"),
                    _ => format!("__g{i} ASC NULLS FIRST"),
                })
                .collect();
            sql.push_str(&format!(
                " GROUP BY {group_by} HAVING COUNT(*) > 0 ORDER BY {}",
                keys_order.join(", ")
            ));
        } else {
            sql.push_str(" HAVING COUNT(*) > 0");
        }
        let rows = self.fetch(&sql, c.binds, columns).await?;
        Ok(rows.into_iter().map(|row| names.iter().cloned().zip(row).collect()).collect())
    }
}

/// The columns a group reads (keys, accumulated fields, conditions, order), so the rows it
/// sorts for `first`/`last` carry nothing else.
fn used_columns(table: &QueryTable, group: &Group, order: &[(String, bool)]) -> Vec<&'static str> {
    let mut keys: Vec<&str> = group.keys.iter().map(|k| k.key.as_str()).collect();
    for field in &group.fields {
        keys.extend(field.key.as_deref());
        keys.extend(field.fields.iter().map(|f| f.key.as_str()));
        keys.extend(field.conditions.iter().map(|c| c.key.as_str()));
    }
    keys.extend(order.iter().map(|(k, _)| k.as_str()));
    keys.push(table.id_field);
    let mut columns = Vec::new();
    for field in keys.into_iter().filter_map(|k| table.field(k).ok()) {
        if !columns.contains(&field.column) {
            columns.push(field.column);
        }
    }
    columns
}

fn pre_order(table: &QueryTable, pre_sort: Option<&[SortKey]>) -> Vec<(String, bool)> {
    match pre_sort {
        Some(keys) => pairs(keys),
        None => static_pairs(table.natural_order),
    }
}

/// A group key's expression: the column, or its date formatted as `date_format` says.
fn group_key(c: &mut Compiler<'_>, key: &GroupKey) -> Result<(String, Column), QueryError> {
    let field = *c.table.field(&key.key)?;
    let Some(format) = &key.date_format else {
        return Ok((field.column.to_string(), Column::Field(field.kind)));
    };
    if field.kind != FieldKind::Timestamp {
        return Err(QueryError::db(format!(
            "'aggregate.group.keys' date_format needs a datetime key: '{}'",
            key.key
        )));
    }
    let number = |spec| match c.backend {
        Backend::Sqlite => format!("CAST({} AS INTEGER)", date_part(c.backend, field.column, spec)),
        Backend::Postgres => format!("CAST({} AS BIGINT)", date_part(c.backend, field.column, spec)),
    };
    match format.as_str() {
        "year" => Ok((number('Y'), Column::Int)),
        "month" => Ok((number('m'), Column::Int)),
        "day" => Ok((number('d'), Column::Int)),
        _ => Ok((date_string(c, field.column, format)?, Column::Text)),
    }
}

/// `$dateToString`'s format as concatenated date parts; literal text is bound.
fn date_string(c: &mut Compiler<'_>, column: &str, format: &str) -> Result<String, QueryError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            literal.push(ch);
            continue;
        }
        match chars.next() {
            Some('%') => literal.push('%'),
            Some(spec @ ('Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'j' | 'L')) => {
                if !literal.is_empty() {
                    pieces.push(c.bind(Bind::Text(std::mem::take(&mut literal))));
                }
                pieces.push(date_part(c.backend, column, spec));
            }
            other => {
                let spec = other.map(String::from).unwrap_or_default();
                return Err(QueryError::db(format!("date_format specifier %{spec} is not supported")));
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(c.bind(Bind::Text(literal)));
    }
    Ok(format!("({})", pieces.join(" || ")))
}

/// One zero-padded part of an epoch-millisecond column's UTC date, as fixed SQL text.
fn date_part(backend: Backend, column: &str, spec: char) -> String {
    if spec == 'L' {
        return match backend {
            Backend::Sqlite => format!("printf('%03d', {column} % 1000)"),
            Backend::Postgres => format!("lpad(CAST({column} % 1000 AS TEXT), 3, '0')"),
        };
    }
    let (sqlite, postgres) = match spec {
        'Y' => ("%Y", "YYYY"),
        'm' => ("%m", "MM"),
        'd' => ("%d", "DD"),
        'H' => ("%H", "HH24"),
        'M' => ("%M", "MI"),
        'S' => ("%S", "SS"),
        _ => ("%j", "DDD"),
    };
    match backend {
        Backend::Sqlite => format!("strftime('{sqlite}', {column} / 1000, 'unixepoch')"),
        Backend::Postgres => {
            format!("to_char(to_timestamp(CAST({column} AS DOUBLE PRECISION) / 1000) AT TIME ZONE 'UTC', '{postgres}')")
        }
    }
}

/// A group field's SQL aggregate and how its result is shown.
fn accumulator(
    c: &mut Compiler<'_>,
    field: &GroupField,
    order: &str,
) -> Result<(String, Column), QueryError> {
    use GroupOperator::*;
    let conditions = conditions(c, &field.conditions)?;
    if field.operator == Count {
        return Ok(match conditions {
            None => ("COUNT(*)".into(), Column::Int),
            Some(when) => (format!("SUM(CASE WHEN {when} THEN 1 ELSE 0 END)"), Column::Int),
        });
    }
    if field.operator == Push && field.key.is_none() {
        return push_objects(c, field, order);
    }
    let key = field.key.as_deref().unwrap_or_default();
    let target = *c.table.field(key)?;
    let column = target.column;
    Ok(match field.operator {
        Sum | Average => {
            if target.kind != FieldKind::Int {
                return Err(QueryError::db(format!(
                    "The {} operator needs a numeric key: '{key}'",
                    operator_name(field)
                )));
            }
            let value = conditions
                .map_or(column.to_string(), |when| format!("CASE WHEN {when} THEN {column} ELSE 0 END"));
            if field.operator == Sum {
                (format!("CAST(COALESCE(SUM({value}), 0) AS BIGINT)"), Column::Int)
            } else {
                (format!("CAST(AVG({value}) AS DOUBLE PRECISION)"), Column::Float)
            }
        }
        Max => (format!("MAX({})", c.ordered(&target)), Column::Field(target.kind)),
        Min => (format!("MIN({})", c.ordered(&target)), Column::Field(target.kind)),
        First => (format!("MAX(CASE WHEN __rn = 1 THEN {column} END)"), Column::Field(target.kind)),
        Last => (format!("MAX(CASE WHEN __rn = __cnt THEN {column} END)"), Column::Field(target.kind)),
        AddToSet => {
            let ordered = c.ordered(&target);
            (json_array_agg(c.backend, &format!("DISTINCT {ordered}"), &ordered), Column::Pushed(target.kind))
        }
        Push | Count => (json_array_agg(c.backend, column, order), Column::Pushed(target.kind)),
    })
}

fn operator_name(field: &GroupField) -> &'static str {
    match field.operator {
        GroupOperator::Sum => "sum",
        _ => "average",
    }
}

fn push_objects(
    c: &mut Compiler<'_>,
    field: &GroupField,
    order: &str,
) -> Result<(String, Column), QueryError> {
    let mut columns = Vec::new();
    let mut names = Vec::new();
    for sub in &field.fields {
        let target = c.table.field(&sub.key)?;
        columns.push(target.column);
        names.push((sub.name.clone(), target.kind));
    }
    let row = match c.backend {
        Backend::Sqlite => format!("json_array({})", columns.join(", ")),
        Backend::Postgres => format!("json_build_array({})", columns.join(", ")),
    };
    Ok((json_array_agg(c.backend, &row, order), Column::PushedObjects(names)))
}

fn json_array_agg(backend: Backend, value: &str, order: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_group_array({value} ORDER BY {order})"),
        Backend::Postgres => format!("CAST(json_agg({value} ORDER BY {order}) AS TEXT)"),
    }
}

fn conditions(c: &mut Compiler<'_>, conditions: &[Condition]) -> Result<Option<String>, QueryError> {
    if conditions.is_empty() {
        return Ok(None);
    }
    let parts = conditions.iter().map(|cond| c.condition(cond)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(parts.join(" AND ")))
}

/// The stages after the SQL part, over documents.
fn evaluate(
    mut docs: Vec<Doc>,
    mut group_keys: Vec<String>,
    stages: &[Stage],
) -> Result<Vec<Doc>, QueryError> {
    for stage in stages {
        match stage {
            Stage::Group(_) => {
                return Err(QueryError::db(
                    "Only one group stage is supported, and it must come before other stages except sort.",
                ))
            }
            Stage::Count { name } => {
                let count = docs.len();
                docs = if count == 0 {
                    Vec::new()
                } else {
                    vec![Map::from_iter([(name.clone(), Value::from(count))])]
                };
                group_keys.clear();
            }
            Stage::Sort(keys) => docs.sort_by(|a, b| compare_docs(a, b, keys)),
            Stage::Project(project) => {
                docs = docs.into_iter().map(|doc| projected(doc, project, &group_keys)).collect();
                if project.exclude_keys {
                    group_keys.clear();
                }
            }
            Stage::Limit(n) => docs.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
            Stage::Skip(n) => {
                let n = usize::try_from(*n).unwrap_or(usize::MAX).min(docs.len());
                docs.drain(..n);
            }
        }
    }
    Ok(docs)
}

fn projected(doc: Doc, project: &Project, group_keys: &[String]) -> Doc {
    let mut out = Map::new();
    if !project.exclude_keys {
        for key in group_keys {
            if let Some(value) = doc.get(key) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for field in &project.fields {
        if let Some(value) = doc.get(&field.key) {
            out.insert(field.name.clone(), value.clone());
        }
    }
    out
}

fn compare_docs(a: &Doc, b: &Doc, keys: &[SortKey]) -> Ordering {
    for key in keys {
        let ordering = compare_values(a.get(&key.key), b.get(&key.key));
        let ordering = if key.desc { ordering.reverse() } else { ordering };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Mongo's order across types: null, numbers, strings, objects, arrays, booleans.
fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Number(_)) => 1,
            Some(Value::String(_)) => 2,
            Some(Value::Object(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Bool(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Cloudforet's page over results: `total_count` only when the page has a limit.
fn paged(results: Vec<Value>, page: Option<Page>) -> Value {
    let mut out = Map::new();
    match page.and_then(|p| p.window()) {
        Some((skip, limit)) => {
            out.insert("total_count".into(), Value::from(results.len()));
            let page: Vec<Value> = results.into_iter().skip(skip as usize).take(limit as usize).collect();
            out.insert("results".into(), Value::Array(page));
        }
        None => {
            out.insert("results".into(), Value::Array(results));
        }
    }
    Value::Object(out)
}

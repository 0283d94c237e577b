//! The SSM facade (2014-11-06): Automation document operations (create, read, describe, list,
//! update, default version, delete); execution operations live in [`crate::ssm_automation`]. Input has already passed the model check; engine errors
//! take SSM's names through [`AwsError::from_ssm`].

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sluice_core::automation::document::{convert, DocumentFormat};
use sluice_engine::documents::{DocumentRow, DocumentView, NewRunbook, RunbookUpdate, VersionRef};
use sluice_engine::{Engine, Error as EngineError, Principal};

use crate::codepipeline::{parse, timestamp};
use crate::error::AwsError;
use crate::model::Model;

/// The embedded SSM model.
pub fn model() -> Model {
    Model::from_embedded(include_str!("../models/ssm.json"))
}

/// Operations this facade serves; every other modelled operation is `UnknownOperationException`.
pub const OPERATIONS: &[&str] = &[
    "CreateDocument",
    "GetDocument",
    "DescribeDocument",
    "ListDocuments",
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "DeleteDocument",
];

pub fn serves(operation: &str) -> bool {
    OPERATIONS.contains(&operation) || crate::ssm_automation::OPERATIONS.contains(&operation)
}

/// Runs one operation.
pub async fn call(
    engine: &Engine,
    principal: &Principal,
    operation: &str,
    input: Value,
) -> Result<String, AwsError> {
    let output = match operation {
        "CreateDocument" => create_document(engine, principal, parse(input)?).await,
        "GetDocument" => get_document(engine, parse(input)?).await,
        "DescribeDocument" => describe_document(engine, parse(input)?).await,
        "ListDocuments" => list_documents(engine, parse(input)?).await,
        "UpdateDocument" => update_document(engine, principal, parse(input)?).await,
        "UpdateDocumentDefaultVersion" => update_default_version(engine, principal, parse(input)?).await,
        "DeleteDocument" => delete_document(engine, principal, parse(input)?).await,
        other => match crate::ssm_automation::call(engine, principal, other, input).await {
            Some(output) => output,
            None => {
                return Err(AwsError::unknown_operation(format!(
                    "Operation {other} is not supported by Sluice yet"
                )))
            }
        },
    };
    output.map(|value| value.to_string()).map_err(AwsError::from_ssm)
}

type Output = Result<Value, EngineError>;

/// A wire DocumentFormat; TEXT cannot hold a runbook.
fn format(wire: Option<&str>) -> Result<DocumentFormat, EngineError> {
    let Some(wire) = wire else { return Ok(DocumentFormat::Json) };
    DocumentFormat::from_name(wire).ok_or_else(|| {
        EngineError::Validation(format!("DocumentFormat {wire} is not supported for Automation documents"))
    })
}

fn version_ref(wire: Option<&str>) -> Result<Option<VersionRef>, EngineError> {
    wire.map(VersionRef::parse).transpose()
}

fn insert_some(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        object.insert(key.into(), json!(value));
    }
}

/// DocumentDescription for one version of a document.
fn description(view: &DocumentView) -> Output {
    let runbook = view.runbook()?;
    let document = &view.document;
    let parameters: Vec<Value> = runbook
        .parameter_summaries()
        .into_iter()
        .map(|p| {
            let mut value = Map::new();
            value.insert("Name".into(), json!(p.name));
            value.insert("Type".into(), json!(p.kind.name()));
            insert_some(&mut value, "Description", p.description.as_deref());
            insert_some(&mut value, "DefaultValue", p.default_value.as_deref());
            Value::Object(value)
        })
        .collect();
    let mut out = json!({
        "Name": document.name,
        "Hash": view.version.hash,
        "HashType": "Sha256",
        "Owner": document.owner,
        "CreatedDate": timestamp(view.version.created_at),
        "Status": "Active",
        "DocumentVersion": view.version.version.to_string(),
        "Parameters": parameters,
        "PlatformTypes": [],
        "DocumentType": document.document_type,
        "SchemaVersion": runbook.schema_version,
        "LatestVersion": document.latest_version.to_string(),
        "DefaultVersion": document.default_version.to_string(),
        "DocumentFormat": view.version.format,
    });
    let object = out.as_object_mut().expect("an object");
    insert_some(object, "Description", runbook.description.as_deref());
    insert_some(object, "VersionName", view.version.version_name.as_deref());
    Ok(out)
}

#[derive(Deserialize)]
struct WireTag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDocumentInput {
    content: String,
    name: String,
    document_type: Option<String>,
    document_format: Option<String>,
    version_name: Option<String>,
    tags: Option<Vec<WireTag>>,
}

async fn create_document(engine: &Engine, principal: &Principal, input: CreateDocumentInput) -> Output {
    let tags: Vec<(String, String)> =
        input.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect();
    let new = NewRunbook {
        format: format(input.document_format.as_deref())?,
        name: input.name,
        content: input.content,
        // AWS's default type is Command, which Sluice does not serve.
        document_type: input.document_type.unwrap_or_else(|| "Command".into()),
        version_name: input.version_name,
        tags: tags.clone(),
    };
    let view = engine.create_document(principal, new).await?;
    let mut description = description(&view)?;
    description["Tags"] = tags.iter().map(|(key, value)| json!({"Key": key, "Value": value})).collect();
    Ok(json!({"DocumentDescription": description}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetDocumentInput {
    name: String,
    version_name: Option<String>,
    document_version: Option<String>,
    document_format: Option<String>,
}

async fn get_document(engine: &Engine, input: GetDocumentInput) -> Output {
    let name = engine.document_name(&input.name);
    let version = version_ref(input.document_version.as_deref())?.unwrap_or(VersionRef::Default);
    let view = engine.document(name, version, input.version_name.as_deref()).await?;
    let stored = view.format()?;
    let wanted = match input.document_format.as_deref() {
        Some(wire) => format(Some(wire))?,
        None => stored,
    };
    let content = convert(&view.version.content, stored, wanted)
        .map_err(|e| EngineError::Internal(format!("stored document does not convert: {e}")))?;
    let mut out = json!({
        "Name": view.document.name,
        "CreatedDate": timestamp(view.version.created_at),
        "DocumentVersion": view.version.version.to_string(),
        "Status": "Active",
        "Content": content,
        "DocumentType": view.document.document_type,
        "DocumentFormat": wanted.name(),
    });
    insert_some(out.as_object_mut().expect("an object"), "VersionName", view.version.version_name.as_deref());
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeDocumentInput {
    name: String,
    document_version: Option<String>,
    version_name: Option<String>,
}

async fn describe_document(engine: &Engine, input: DescribeDocumentInput) -> Output {
    let name = engine.document_name(&input.name);
    let version = version_ref(input.document_version.as_deref())?.unwrap_or(VersionRef::Default);
    let view = engine.document(name, version, input.version_name.as_deref()).await?;
    Ok(json!({"Document": description(&view)?}))
}

#[derive(Deserialize)]
struct WireKeyValuesFilter {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Values")]
    values: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireLegacyFilter {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListDocumentsInput {
    document_filter_list: Option<Vec<WireLegacyFilter>>,
    filters: Option<Vec<WireKeyValuesFilter>>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

fn identifier(document: &DocumentRow) -> Value {
    let mut out = json!({
        "Name": document.name,
        "CreatedDate": timestamp(document.created_at),
        "Owner": document.owner,
        "PlatformTypes": [],
        "DocumentVersion": document.default_version.to_string(),
        "DocumentType": document.document_type,
        "SchemaVersion": "0.3",
        "DocumentFormat": document.default_format,
    });
    insert_some(
        out.as_object_mut().expect("an object"),
        "VersionName",
        document.default_version_name.as_deref(),
    );
    out
}

async fn list_documents(engine: &Engine, input: ListDocumentsInput) -> Output {
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for filter in input.filters.unwrap_or_default() {
        let key = filter.key.ok_or_else(|| EngineError::InvalidFilterKey("A filter needs a Key".into()))?;
        filters.push((key, filter.values.unwrap_or_default()));
    }
    // The legacy list names the same keys with one value each.
    for filter in input.document_filter_list.unwrap_or_default() {
        filters.push((filter.key, vec![filter.value]));
    }
    let max = input.max_results.unwrap_or(50);
    let (page, next) = engine.list_documents(&filters, input.next_token.as_deref(), max).await?;
    let mut out = json!({"DocumentIdentifiers": page.iter().map(identifier).collect::<Vec<_>>()});
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDocumentInput {
    content: String,
    name: String,
    version_name: Option<String>,
    document_version: Option<String>,
    document_format: Option<String>,
}

async fn update_document(engine: &Engine, principal: &Principal, input: UpdateDocumentInput) -> Output {
    let update = RunbookUpdate {
        format: format(input.document_format.as_deref())?,
        version: version_ref(input.document_version.as_deref())?,
        name: input.name,
        content: input.content,
        version_name: input.version_name,
    };
    let view = engine.update_document(principal, update).await?;
    Ok(json!({"DocumentDescription": description(&view)?}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDefaultVersionInput {
    name: String,
    document_version: String,
}

async fn update_default_version(
    engine: &Engine,
    principal: &Principal,
    input: UpdateDefaultVersionInput,
) -> Output {
    let version = match VersionRef::parse(&input.document_version)? {
        VersionRef::Number(n) => n,
        _ => return Err(EngineError::InvalidDocumentVersion("The default version must be a number".into())),
    };
    let document = engine.set_default_document_version(principal, &input.name, version).await?;
    let mut out = json!({"Name": document.name, "DefaultVersion": document.default_version.to_string()});
    insert_some(
        out.as_object_mut().expect("an object"),
        "DefaultVersionName",
        document.default_version_name.as_deref(),
    );
    Ok(json!({"Description": out}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteDocumentInput {
    name: String,
    document_version: Option<String>,
    version_name: Option<String>,
}

async fn delete_document(engine: &Engine, principal: &Principal, input: DeleteDocumentInput) -> Output {
    let version = version_ref(input.document_version.as_deref())?;
    engine.delete_document(principal, &input.name, version, input.version_name.as_deref()).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_default_to_json_and_refuse_text() {
        assert_eq!(format(None).unwrap(), DocumentFormat::Json);
        assert_eq!(format(Some("YAML")).unwrap(), DocumentFormat::Yaml);
        assert!(matches!(format(Some("TEXT")), Err(EngineError::Validation(_))));
    }

    #[test]
    fn the_model_knows_the_document_operations() {
        let model = model();
        for operation in OPERATIONS {
            assert!(model.has_operation(operation), "{operation}");
        }
    }
}

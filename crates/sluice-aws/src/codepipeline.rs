//! The CodePipeline facade (2015-07-09): wire shapes in and out of the engine for the control
//! plane (action types, pipelines, tags). Input has already passed the model check, so the
//! typed parsing here only fails on a Sluice defect or a member the model does not constrain.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_core::action_type::{
    ActionType, ActionTypeId, ActionTypeSettings, ArtifactBounds, ConfigProperty, Owner,
};
use sluice_engine::pipelines::PipelineMeta;
use sluice_engine::{Engine, Error as EngineError, Principal};

use crate::error::AwsError;
use crate::model::Model;

/// The embedded CodePipeline model.
pub fn model() -> Model {
    Model::from_embedded(include_str!("../models/codepipeline.json"))
}

/// Whether this facade serves an operation; every other modelled operation is
/// `UnknownOperationException`.
pub fn serves(operation: &str) -> bool {
    OPERATIONS.contains(&operation) || crate::codepipeline_runs::OPERATIONS.contains(&operation)
}

/// Control-plane operations (executions and jobs are in `codepipeline_runs`).
pub const OPERATIONS: &[&str] = &[
    "CreateCustomActionType",
    "DeleteCustomActionType",
    "ListActionTypes",
    "GetActionType",
    "CreatePipeline",
    "GetPipeline",
    "UpdatePipeline",
    "DeletePipeline",
    "ListPipelines",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// Runs one operation.
pub async fn call(
    engine: &Engine,
    principal: &Principal,
    operation: &str,
    input: Value,
) -> Result<String, AwsError> {
    match operation {
        "CreateCustomActionType" => create_custom_action_type(engine, principal, parse(input)?).await,
        "DeleteCustomActionType" => delete_custom_action_type(engine, principal, parse(input)?).await,
        "ListActionTypes" => list_action_types(engine, parse(input)?).await,
        "GetActionType" => get_action_type(engine, parse(input)?).await,
        "CreatePipeline" => create_pipeline(engine, principal, parse(input)?).await,
        "GetPipeline" => get_pipeline(engine, parse(input)?).await,
        "UpdatePipeline" => update_pipeline(engine, principal, parse(input)?).await,
        "DeletePipeline" => delete_pipeline(engine, principal, parse(input)?).await,
        "ListPipelines" => list_pipelines(engine, parse(input)?).await,
        "TagResource" => tag_resource(engine, parse(input)?).await,
        "UntagResource" => untag_resource(engine, parse(input)?).await,
        "ListTagsForResource" => list_tags_for_resource(engine, parse(input)?).await,
        other => crate::codepipeline_runs::call(engine, principal, other, input).await.unwrap_or_else(|| {
            Err(AwsError::unknown_operation(format!("Operation {other} is not supported by Sluice yet")))
        }),
    }
}

pub(crate) fn parse<T: DeserializeOwned>(input: Value) -> Result<T, AwsError> {
    serde_json::from_value(input)
        .map_err(|e| AwsError::serialization(format!("Cannot read the request: {e}")))
}

/// `{"pipeline": <declaration>, ...rest}` without re-parsing the stored declaration text.
fn with_pipeline(declaration: &str, rest: Value) -> String {
    let rest = rest.to_string();
    match rest.strip_prefix('{').filter(|r| *r != "}") {
        Some(more) => format!("{{\"pipeline\":{declaration},{more}"),
        None => format!("{{\"pipeline\":{declaration}}}"),
    }
}

/// Epoch seconds with milliseconds, as AWS JSON timestamps are.
pub(crate) fn timestamp(millis: i64) -> Value {
    json!(millis as f64 / 1000.0)
}

#[derive(Deserialize)]
struct WireTag {
    key: String,
    value: String,
}

fn tag_pairs(tags: Option<Vec<WireTag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect()
}

fn wire_tags(tags: &[(String, String)]) -> Value {
    tags.iter().map(|(key, value)| json!({"key": key, "value": value})).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireArtifactDetails {
    minimum_count: u32,
    maximum_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireSettings {
    third_party_configuration_url: Option<String>,
    entity_url_template: Option<String>,
    execution_url_template: Option<String>,
    revision_url_template: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProperty {
    name: String,
    required: bool,
    key: bool,
    secret: bool,
    queryable: Option<bool>,
    description: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateCustomActionTypeInput {
    category: String,
    provider: String,
    version: String,
    settings: Option<WireSettings>,
    configuration_properties: Option<Vec<WireProperty>>,
    input_artifact_details: WireArtifactDetails,
    output_artifact_details: WireArtifactDetails,
    tags: Option<Vec<WireTag>>,
}

fn bounds(details: WireArtifactDetails) -> ArtifactBounds {
    ArtifactBounds { min: details.minimum_count, max: details.maximum_count }
}

fn property(wire: WireProperty) -> Result<ConfigProperty, AwsError> {
    Ok(ConfigProperty {
        name: wire.name,
        required: wire.required,
        key: wire.key,
        secret: wire.secret,
        queryable: wire.queryable.unwrap_or(false),
        description: wire.description,
        kind: wire.kind.map(|k| k.parse()).transpose().map_err(AwsError::validation)?,
    })
}

fn type_id(
    category: &str,
    owner: Owner,
    provider: String,
    version: String,
) -> Result<ActionTypeId, AwsError> {
    Ok(ActionTypeId { category: category.parse().map_err(AwsError::validation)?, owner, provider, version })
}

fn action_type_from(input: CreateCustomActionTypeInput, owner: Owner) -> Result<ActionType, AwsError> {
    let settings = input.settings.unwrap_or_default();
    Ok(ActionType {
        id: type_id(&input.category, owner, input.provider, input.version)?,
        settings: ActionTypeSettings {
            third_party_configuration_url: settings.third_party_configuration_url,
            entity_url_template: settings.entity_url_template,
            execution_url_template: settings.execution_url_template,
            revision_url_template: settings.revision_url_template,
        },
        properties: input
            .configuration_properties
            .unwrap_or_default()
            .into_iter()
            .map(property)
            .collect::<Result<_, _>>()?,
        input: bounds(input.input_artifact_details),
        output: bounds(input.output_artifact_details),
    })
}

/// A third-party action type declared in CreateCustomActionType's shape (the admin API's
/// `register-third-party` body), checked against the model like the AWS operation.
pub fn third_party_declaration(model: &Model, body: Value) -> Result<ActionType, AwsError> {
    model.check_input("CreateCustomActionType", &body)?;
    action_type_from(parse(body)?, Owner::ThirdParty)
}

async fn create_custom_action_type(
    engine: &Engine,
    principal: &Principal,
    mut input: CreateCustomActionTypeInput,
) -> Result<String, AwsError> {
    let tags = tag_pairs(input.tags.take());
    let action_type = action_type_from(input, Owner::Custom)?;
    let created = engine.create_custom_action_type(principal, action_type, tags.clone()).await?;
    Ok(json!({"actionType": wire_action_type(&created), "tags": wire_tags(&tags)}).to_string())
}

fn wire_id(id: &ActionTypeId) -> Value {
    json!({"category": id.category.as_str(), "owner": id.owner.as_str(), "provider": id.provider, "version": id.version})
}

fn wire_settings(settings: &ActionTypeSettings) -> Value {
    let mut object = serde_json::Map::new();
    let fields = [
        ("thirdPartyConfigurationUrl", &settings.third_party_configuration_url),
        ("entityUrlTemplate", &settings.entity_url_template),
        ("executionUrlTemplate", &settings.execution_url_template),
        ("revisionUrlTemplate", &settings.revision_url_template),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            object.insert(name.into(), json!(value));
        }
    }
    Value::Object(object)
}

fn wire_property(p: &ConfigProperty) -> Value {
    let mut value = json!({"name": p.name, "required": p.required, "key": p.key, "secret": p.secret, "queryable": p.queryable});
    if let Some(description) = &p.description {
        value["description"] = json!(description);
    }
    if let Some(kind) = p.kind {
        value["type"] = json!(kind.as_str());
    }
    value
}

fn wire_action_type(t: &ActionType) -> Value {
    json!({
        "id": wire_id(&t.id),
        "settings": wire_settings(&t.settings),
        "actionConfigurationProperties": t.properties.iter().map(wire_property).collect::<Vec<_>>(),
        "inputArtifactDetails": {"minimumCount": t.input.min, "maximumCount": t.input.max},
        "outputArtifactDetails": {"minimumCount": t.output.min, "maximumCount": t.output.max},
    })
}

/// An ActionTypeId on the wire.
#[derive(Deserialize)]
pub(crate) struct WireActionTypeId {
    category: String,
    owner: String,
    provider: String,
    version: String,
}

impl WireActionTypeId {
    pub(crate) fn to_core(&self) -> Result<ActionTypeId, AwsError> {
        let owner = self.owner.parse::<Owner>().map_err(AwsError::validation)?;
        type_id(&self.category, owner, self.provider.clone(), self.version.clone())
    }
}

#[derive(Deserialize)]
struct DeleteCustomActionTypeInput {
    category: String,
    provider: String,
    version: String,
}

async fn delete_custom_action_type(
    engine: &Engine,
    principal: &Principal,
    input: DeleteCustomActionTypeInput,
) -> Result<String, AwsError> {
    let id = type_id(&input.category, Owner::Custom, input.provider, input.version)?;
    // DeleteCustomActionType models no not-found error: deleting an absent type succeeds.
    engine.delete_custom_action_type(principal, &id).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListActionTypesInput {
    action_owner_filter: Option<String>,
    next_token: Option<String>,
    region_filter: Option<String>,
}

async fn list_action_types(engine: &Engine, input: ListActionTypesInput) -> Result<String, AwsError> {
    if input.next_token.is_some() {
        // Every action type fits in one page, so no token was ever handed out.
        return Err(EngineError::InvalidNextToken("The next token is not valid".into()).into());
    }
    let owner =
        input.action_owner_filter.map(|o| o.parse::<Owner>()).transpose().map_err(AwsError::validation)?;
    let types = match input.region_filter {
        Some(region) if region != engine.account().region => Vec::new(),
        _ => engine.list_action_types(owner).await?,
    };
    Ok(json!({"actionTypes": types.iter().map(wire_action_type).collect::<Vec<_>>()}).to_string())
}

#[derive(Deserialize)]
struct GetActionTypeInput {
    category: String,
    owner: String,
    provider: String,
    version: String,
}

async fn get_action_type(engine: &Engine, input: GetActionTypeInput) -> Result<String, AwsError> {
    let owner = input.owner.parse::<Owner>().map_err(AwsError::validation)?;
    let id = type_id(&input.category, owner, input.provider, input.version)?;
    let Some(found) = engine.action_type(&id).await? else {
        return Err(EngineError::ActionTypeNotFound(format!("Action type {id} does not exist")).into());
    };
    Ok(json!({"actionType": action_type_declaration(&found)}).to_string())
}

/// GetActionType's richer shape (ActionTypeDeclaration).
fn action_type_declaration(t: &ActionType) -> Value {
    let properties: Vec<Value> = t
        .properties
        .iter()
        .map(|p| {
            let mut value = json!({"name": p.name, "optional": !p.required, "key": p.key, "noEcho": p.secret, "queryable": p.queryable});
            if let Some(description) = &p.description {
                value["description"] = json!(description);
            }
            value
        })
        .collect();
    let mut urls = wire_settings(&t.settings);
    if let Some(url) = urls.as_object_mut().and_then(|o| o.remove("thirdPartyConfigurationUrl")) {
        urls["configurationUrl"] = url;
    }
    json!({
        "id": wire_id(&t.id),
        "executor": {"type": "JobWorker", "configuration": {"jobWorkerExecutorConfiguration": {}}},
        "inputArtifactDetails": {"minimumCount": t.input.min, "maximumCount": t.input.max},
        "outputArtifactDetails": {"minimumCount": t.output.min, "maximumCount": t.output.max},
        "properties": properties,
        "urls": urls,
    })
}

#[derive(Deserialize)]
struct CreatePipelineInput {
    pipeline: Value,
    tags: Option<Vec<WireTag>>,
}

async fn create_pipeline(
    engine: &Engine,
    principal: &Principal,
    input: CreatePipelineInput,
) -> Result<String, AwsError> {
    let tags = tag_pairs(input.tags);
    let view = engine.create_pipeline(principal, input.pipeline, tags.clone()).await?;
    Ok(with_pipeline(&view.declaration, json!({"tags": wire_tags(&tags)})))
}

#[derive(Deserialize)]
struct GetPipelineInput {
    name: String,
    version: Option<i64>,
}

async fn get_pipeline(engine: &Engine, input: GetPipelineInput) -> Result<String, AwsError> {
    let view = engine.pipeline(&input.name, input.version).await?;
    let metadata = json!({
        "pipelineArn": view.arn,
        "created": timestamp(view.meta.created_at),
        "updated": timestamp(view.meta.updated_at),
    });
    Ok(with_pipeline(&view.declaration, json!({"metadata": metadata})))
}

#[derive(Deserialize)]
struct UpdatePipelineInput {
    pipeline: Value,
}

async fn update_pipeline(
    engine: &Engine,
    principal: &Principal,
    input: UpdatePipelineInput,
) -> Result<String, AwsError> {
    let view = engine.update_pipeline(principal, input.pipeline).await?;
    Ok(with_pipeline(&view.declaration, json!({})))
}

#[derive(Deserialize)]
struct DeletePipelineInput {
    name: String,
}

async fn delete_pipeline(
    engine: &Engine,
    principal: &Principal,
    input: DeletePipelineInput,
) -> Result<String, AwsError> {
    // DeletePipeline models no not-found error: deleting an absent pipeline succeeds.
    engine.delete_pipeline(principal, &input.name).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPipelinesInput {
    next_token: Option<String>,
    max_results: Option<usize>,
}

fn pipeline_summary(meta: &PipelineMeta) -> Value {
    json!({
        "name": meta.name,
        "version": meta.version,
        "pipelineType": meta.pipeline_type,
        "executionMode": meta.execution_mode,
        "created": timestamp(meta.created_at),
        "updated": timestamp(meta.updated_at),
    })
}

async fn list_pipelines(engine: &Engine, input: ListPipelinesInput) -> Result<String, AwsError> {
    let max = input.max_results.unwrap_or(100);
    let (page, next) = engine.list_pipelines(input.next_token.as_deref(), max).await?;
    let mut output = json!({"pipelines": page.iter().map(pipeline_summary).collect::<Vec<_>>()});
    if let Some(next) = next {
        output["nextToken"] = json!(next);
    }
    Ok(output.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceInput {
    resource_arn: String,
    tags: Vec<WireTag>,
}

async fn tag_resource(engine: &Engine, input: TagResourceInput) -> Result<String, AwsError> {
    engine.tag_resource(&input.resource_arn, tag_pairs(Some(input.tags))).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

async fn untag_resource(engine: &Engine, input: UntagResourceInput) -> Result<String, AwsError> {
    engine.untag_resource(&input.resource_arn, input.tag_keys).await?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsForResourceInput {
    resource_arn: String,
    next_token: Option<String>,
    max_results: Option<usize>,
}

async fn list_tags_for_resource(
    engine: &Engine,
    input: ListTagsForResourceInput,
) -> Result<String, AwsError> {
    let max = input.max_results.unwrap_or(50);
    let (tags, next) = engine.list_tags(&input.resource_arn, input.next_token.as_deref(), max).await?;
    let mut output = json!({"tags": wire_tags(&tags)});
    if let Some(next) = next {
        output["nextToken"] = json!(next);
    }
    Ok(output.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_text_is_embedded_as_is() {
        let text = with_pipeline("{\"name\":\"p\"}", json!({"metadata": {"a": 1}}));
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, json!({"pipeline": {"name": "p"}, "metadata": {"a": 1}}));
        assert_eq!(with_pipeline("{\"name\":\"p\"}", json!({})), "{\"pipeline\":{\"name\":\"p\"}}");
    }
}

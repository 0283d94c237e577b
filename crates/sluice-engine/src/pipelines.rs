//! Pipeline declarations: validation against the structural rules and the action types they
//! use, version history, and secret configuration properties.
//!
//! A declaration is kept in CodePipeline's JSON layout (the pipeline definition format). Values
//! of properties an action type marks `secret` are sealed in a separate column and the stored
//! text carries [`SECRET_MASK`] in their place, so a read is one row and no decryption. An update
//! that sends the mask back keeps the stored secret, so get → edit → update round-trips.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use sluice_core::action_type::{ActionType, ActionTypeId};
use sluice_core::pipeline::{validate, ActionSpec, PipelineSpec, StageSpec};
use sluice_store::events::NewEvent;
pub use sluice_store::pipelines::PipelineMeta;
use sluice_store::pipelines::{PipelineWrite, UpdateOutcome};

use crate::{tags, Engine, Error, Principal, Result};

/// What reads show in place of a secret configuration value.
pub const SECRET_MASK: &str = "****";

/// Secret values by `stage/action/property`.
pub(crate) type Secrets = BTreeMap<String, String>;

/// A stored pipeline version as callers see it (secrets masked).
#[derive(Debug, Clone)]
pub struct PipelineView {
    /// The declaration as a JSON object text, with its `version`.
    pub declaration: String,
    pub meta: PipelineMeta,
    pub arn: String,
}

/// Adds `"version":N` to a stored declaration text (a non-empty JSON object written by
/// `serde_json`), without parsing it.
fn with_version(stored: &str, version: i64) -> Option<String> {
    let body = stored.trim_end().strip_suffix('}')?;
    if !body.trim_start().starts_with('{') || body.trim() == "{" {
        return None;
    }
    Some(format!("{body},\"version\":{version}}}"))
}

fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object().and_then(|o| o.get(key))
}

fn text_field(value: &Value, key: &str) -> Result<String> {
    field(value, key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Validation(format!("Member {key} is required and must be a string")))
}

fn list_field<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    field(value, key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn names_in(list: &[Value]) -> Result<Vec<String>> {
    list.iter().map(|item| text_field(item, "name")).collect()
}

fn type_id_of(action: &Value) -> Result<ActionTypeId> {
    let id = field(action, "actionTypeId")
        .ok_or_else(|| Error::Validation("Member actionTypeId is required".into()))?;
    let parse = |key: &str| -> Result<String> { text_field(id, key) };
    Ok(ActionTypeId {
        category: parse("category")?.parse().map_err(Error::Validation)?,
        owner: parse("owner")?.parse().map_err(Error::Validation)?,
        provider: parse("provider")?,
        version: parse("version")?,
    })
}

fn configuration_of(action: &Value) -> BTreeMap<String, String> {
    field(action, "configuration")
        .and_then(Value::as_object)
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn action_spec(action: &Value) -> Result<ActionSpec> {
    let run_order = field(action, "runOrder").and_then(Value::as_u64).unwrap_or(1);
    Ok(ActionSpec {
        name: text_field(action, "name")?,
        type_id: type_id_of(action)?,
        run_order: u32::try_from(run_order).map_err(|_| Error::Validation("runOrder is too large".into()))?,
        configuration: configuration_of(action),
        input_artifacts: names_in(list_field(action, "inputArtifacts"))?,
        output_artifacts: names_in(list_field(action, "outputArtifacts"))?,
        namespace: field(action, "namespace").and_then(Value::as_str).map(str::to_string),
    })
}

/// The engine's view of a declaration.
pub fn spec_from_declaration(declaration: &Value) -> Result<PipelineSpec> {
    let stages = list_field(declaration, "stages")
        .iter()
        .map(|stage| {
            Ok(StageSpec {
                name: text_field(stage, "name")?,
                actions: list_field(stage, "actions").iter().map(action_spec).collect::<Result<_>>()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(PipelineSpec { name: text_field(declaration, "name")?, stages })
}

fn check_modes(declaration: &Value) -> Result<()> {
    let pipeline_type = field(declaration, "pipelineType").and_then(Value::as_str).unwrap_or("V1");
    let mode = field(declaration, "executionMode").and_then(Value::as_str).unwrap_or("SUPERSEDED");
    if pipeline_type == "V1" && mode != "SUPERSEDED" {
        return Err(Error::Validation(format!(
            "Execution mode {mode} is supported only for pipelines of type V2"
        )));
    }
    for v2_only in ["variables", "triggers"] {
        if pipeline_type == "V1" && !list_field(declaration, v2_only).is_empty() {
            return Err(Error::Validation(format!(
                "Pipeline {v2_only} are supported only for pipelines of type V2"
            )));
        }
    }
    let stores = [field(declaration, "artifactStore"), field(declaration, "artifactStores")];
    if stores.iter().filter(|s| s.is_some()).count() != 1 {
        return Err(Error::Structure(sluice_core::pipeline::StructureError::Structure(
            "A pipeline must declare either artifactStore or artifactStores, not both".into(),
        )));
    }
    Ok(())
}

/// Fills the defaults AWS reports back: type V1, mode SUPERSEDED, runOrder 1.
fn with_defaults(mut declaration: Value) -> Value {
    if let Some(object) = declaration.as_object_mut() {
        object.entry("pipelineType").or_insert_with(|| Value::from("V1"));
        object.entry("executionMode").or_insert_with(|| Value::from("SUPERSEDED"));
        object.remove("version");
    }
    for_each_action(&mut declaration, |_, _, action| {
        action.entry("runOrder").or_insert_with(|| Value::from(1));
    });
    declaration
}

fn for_each_action(declaration: &mut Value, mut visit: impl FnMut(&str, &str, &mut Map<String, Value>)) {
    let Some(stages) = declaration.get_mut("stages").and_then(Value::as_array_mut) else { return };
    for stage in stages {
        let stage_name = stage.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(actions) = stage.get_mut("actions").and_then(Value::as_array_mut) else { continue };
        for action in actions {
            let action_name = action.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            if let Some(object) = action.as_object_mut() {
                visit(&stage_name, &action_name, object);
            }
        }
    }
}

/// Cuts secret values out of `declaration`, keeping previous secrets where the mask came back.
fn split_secrets(
    declaration: &mut Value,
    types: &HashMap<ActionTypeId, ActionType>,
    previous: &Secrets,
) -> Secrets {
    let mut secrets = Secrets::new();
    for_each_action(declaration, |stage, action_name, action| {
        let Some(action_type) = type_id_of(&Value::Object(action.clone())).ok().and_then(|id| types.get(&id))
        else {
            return;
        };
        let Some(configuration) = action.get_mut("configuration").and_then(Value::as_object_mut) else {
            return;
        };
        for property in action_type.properties.iter().filter(|p| p.secret) {
            let Some(Value::String(value)) = configuration.remove(&property.name) else { continue };
            let path = format!("{stage}/{action_name}/{}", property.name);
            let kept = (value == SECRET_MASK).then(|| previous.get(&path).cloned()).flatten();
            secrets.insert(path, kept.unwrap_or(value));
        }
    });
    secrets
}

/// Puts [`SECRET_MASK`] where a secret value was cut out.
fn mask_secrets(declaration: &mut Value, secrets: &Secrets) {
    for_each_action(declaration, |stage, action_name, action| {
        let prefix = format!("{stage}/{action_name}/");
        for path in secrets.keys().filter(|p| p.starts_with(&prefix)) {
            let key = &path[prefix.len()..];
            let configuration = action.entry("configuration").or_insert_with(|| Value::Object(Map::new()));
            if let Some(configuration) = configuration.as_object_mut() {
                configuration.insert(key.to_string(), Value::from(SECRET_MASK));
            }
        }
    });
}

fn mode_of(declaration: &Value, key: &str) -> String {
    field(declaration, key).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Engine {
    async fn types_used(&self, spec: &PipelineSpec) -> Result<HashMap<ActionTypeId, ActionType>> {
        let mut types = HashMap::new();
        for action in spec.stages.iter().flat_map(|s| &s.actions) {
            if !types.contains_key(&action.type_id) {
                if let Some(found) = self.action_type(&action.type_id).await? {
                    types.insert(action.type_id.clone(), found);
                }
            }
        }
        Ok(types)
    }

    /// Validates a declaration and returns it with defaults filled and its secrets split off.
    async fn prepare(&self, declaration: Value, previous: &Secrets) -> Result<(Value, Secrets)> {
        let mut declaration = with_defaults(declaration);
        let spec = spec_from_declaration(&declaration)?;
        check_modes(&declaration)?;
        let types = self.types_used(&spec).await?;
        validate(&spec, |id| types.get(id).cloned())?;
        let secrets = split_secrets(&mut declaration, &types, previous);
        mask_secrets(&mut declaration, &secrets);
        Ok((declaration, secrets))
    }

    fn seal_secrets(&self, secrets: &Secrets) -> Option<Vec<u8>> {
        if secrets.is_empty() {
            return None;
        }
        let plain = serde_json::to_vec(secrets).expect("a string map serialises");
        Some(self.secrets.seal(&plain))
    }

    /// A pipeline version as (declaration, secrets).
    pub(crate) async fn pipeline_version_with_secrets(
        &self,
        name: &str,
        version: i64,
    ) -> Result<(String, Secrets)> {
        let stored =
            self.store.pipeline(name, Some(version)).await?.ok_or_else(|| pipeline_not_found(name))?;
        let declaration = with_version(&stored.declaration, stored.version)
            .ok_or_else(|| Error::Internal(format!("stored declaration of {name} is not a JSON object")))?;
        Ok((declaration, self.open_secrets(stored.secrets.as_deref())?))
    }

    /// A pipeline version read inside a transition's transaction, as (declaration, secrets).
    pub(crate) async fn pipeline_in(
        &self,
        tx: &mut sluice_store::Tx<'_>,
        name: &str,
        version: i64,
    ) -> Result<(String, Secrets)> {
        let stored = sluice_store::pipelines::pipeline_in(tx, name, Some(version))
            .await?
            .ok_or_else(|| pipeline_not_found(name))?;
        let declaration = with_version(&stored.declaration, stored.version)
            .ok_or_else(|| Error::Internal(format!("stored declaration of {name} is not a JSON object")))?;
        Ok((declaration, self.open_secrets(stored.secrets.as_deref())?))
    }

    /// The definition of a pipeline version from its stored declaration, read elsewhere (None:
    /// the version is gone, so is the pipeline).
    pub(crate) fn stored_definition(
        &self,
        name: &str,
        version: i64,
        stored: Option<&str>,
    ) -> Result<crate::executions::Definition> {
        let stored = stored.ok_or_else(|| pipeline_not_found(name))?;
        let declaration = with_version(stored, version)
            .ok_or_else(|| Error::Internal(format!("stored declaration of {name} is not a JSON object")))?;
        self.definition_from(name, &declaration, version)
    }

    fn open_secrets(&self, sealed: Option<&[u8]>) -> Result<Secrets> {
        let Some(sealed) = sealed else { return Ok(Secrets::new()) };
        let plain = self
            .secrets
            .open(sealed)
            .ok_or_else(|| Error::Internal("pipeline secrets cannot be decrypted".into()))?;
        serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Creates version 1 of a pipeline.
    pub async fn create_pipeline(
        &self,
        actor: &Principal,
        declaration: Value,
        tag_list: Vec<(String, String)>,
    ) -> Result<PipelineView> {
        tags::check(&tag_list)?;
        let (declaration, secrets) = self.prepare(declaration, &Secrets::new()).await?;
        let name = text_field(&declaration, "name")?;
        let text = declaration.to_string();
        let sealed = self.seal_secrets(&secrets);
        let write = PipelineWrite {
            name: &name,
            pipeline_type: &mode_of(&declaration, "pipelineType"),
            execution_mode: &mode_of(&declaration, "executionMode"),
            declaration: &text,
            secrets: sealed.as_deref(),
        };
        let arn = self.account.pipeline_arn(&name);
        let event = pipeline_event(actor, "CreatePipeline", &name, self.now_millis());
        match self.store.create_pipeline(&write, &arn, &tag_list, &event).await {
            Err(sluice_store::Error::Conflict) => {
                return Err(Error::PipelineNameInUse(format!("PipelineName {name} is unavailable")))
            }
            other => other?,
        }
        self.pipeline(&name, None).await
    }

    /// Stores the next version of a pipeline.
    pub async fn update_pipeline(&self, actor: &Principal, declaration: Value) -> Result<PipelineView> {
        let name = text_field(&declaration, "name")?;
        let current = self.store.pipeline(&name, None).await?.ok_or_else(|| pipeline_not_found(&name))?;
        let previous = self.open_secrets(current.secrets.as_deref())?;
        let (declaration, secrets) = self.prepare(declaration, &previous).await?;
        let text = declaration.to_string();
        let sealed = self.seal_secrets(&secrets);
        let write = PipelineWrite {
            name: &name,
            pipeline_type: &mode_of(&declaration, "pipelineType"),
            execution_mode: &mode_of(&declaration, "executionMode"),
            declaration: &text,
            secrets: sealed.as_deref(),
        };
        let event = pipeline_event(actor, "UpdatePipeline", &name, self.now_millis());
        match self.store.update_pipeline(&write, &event).await? {
            UpdateOutcome::Updated { version } => self.pipeline(&name, Some(version)).await,
            UpdateOutcome::NotFound => Err(pipeline_not_found(&name)),
        }
    }

    /// A version of a pipeline (the latest when `version` is None), secrets masked.
    pub async fn pipeline(&self, name: &str, version: Option<i64>) -> Result<PipelineView> {
        let Some(stored) = self.store.pipeline(name, version).await? else {
            return Err(match (version, self.store.pipeline_meta(name).await?) {
                (Some(v), Some(_)) => {
                    Error::PipelineVersionNotFound(format!("Pipeline {name} has no version {v}"))
                }
                _ => pipeline_not_found(name),
            });
        };
        let declaration = with_version(&stored.declaration, stored.version)
            .ok_or_else(|| Error::Internal(format!("stored declaration of {name} is not a JSON object")))?;
        Ok(PipelineView { declaration, arn: self.account.pipeline_arn(name), meta: stored.meta })
    }

    /// Deletes a pipeline with its versions and tags; false if it did not exist.
    pub async fn delete_pipeline(&self, actor: &Principal, name: &str) -> Result<bool> {
        let event = pipeline_event(actor, "DeletePipeline", name, self.now_millis());
        Ok(self.store.delete_pipeline(name, &self.account.pipeline_arn(name), &event).await?)
    }

    /// A page of pipeline summaries by name and the token for the next page.
    pub async fn list_pipelines(
        &self,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<PipelineMeta>, Option<String>)> {
        let after = next_token.map(|t| self.open_token("pipelines", t)).transpose()?;
        let mut page = self.store.list_pipelines(after.as_deref(), max_results as i64 + 1).await?;
        let next = if page.len() > max_results {
            page.truncate(max_results);
            page.last().map(|m| self.seal_token("pipelines", &m.name))
        } else {
            None
        };
        Ok((page, next))
    }
}

pub(crate) fn pipeline_not_found(name: &str) -> Error {
    Error::PipelineNotFound(format!("Account does not have a pipeline with name '{name}'"))
}

fn pipeline_event<'a>(actor: &'a Principal, kind: &'a str, name: &'a str, at: i64) -> NewEvent<'a> {
    NewEvent { execution_id: None, job_id: None, actor: &actor.arn, kind, subject: name, detail: "{}", at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::action_type::{ActionTypeSettings, ArtifactBounds, Category, ConfigProperty, Owner};

    fn deploy_type() -> ActionType {
        ActionType {
            id: ActionTypeId {
                category: Category::Deploy,
                owner: Owner::Custom,
                provider: "Ship".into(),
                version: "1".into(),
            },
            settings: ActionTypeSettings::default(),
            properties: vec![ConfigProperty {
                name: "Password".into(),
                required: true,
                key: false,
                secret: true,
                queryable: false,
                description: None,
                kind: None,
            }],
            input: ArtifactBounds { min: 0, max: 1 },
            output: ArtifactBounds { min: 0, max: 0 },
        }
    }

    fn declaration(password: &str) -> Value {
        json!({
            "name": "p",
            "stages": [
                {"name": "Deploy", "actions": [{
                    "name": "Ship",
                    "actionTypeId": {"category": "Deploy", "owner": "Custom", "provider": "Ship", "version": "1"},
                    "configuration": {"Password": password}
                }]}
            ]
        })
    }

    #[test]
    fn secrets_are_cut_out_masked_and_kept_on_mask() {
        let types = HashMap::from([(deploy_type().id, deploy_type())]);
        let mut decl = declaration("s3cret");
        let secrets = split_secrets(&mut decl, &types, &Secrets::new());
        assert!(!decl.to_string().contains("s3cret"));
        assert_eq!(secrets.get("Deploy/Ship/Password").map(String::as_str), Some("s3cret"));

        mask_secrets(&mut decl, &secrets);
        assert_eq!(decl["stages"][0]["actions"][0]["configuration"]["Password"], SECRET_MASK);

        let mut again = declaration(SECRET_MASK);
        let kept = split_secrets(&mut again, &types, &secrets);
        assert_eq!(kept, secrets);
        let mut changed = declaration("new");
        let replaced = split_secrets(&mut changed, &types, &secrets);
        assert_eq!(replaced.get("Deploy/Ship/Password").map(String::as_str), Some("new"));
    }

    #[test]
    fn version_is_spliced_into_the_object() {
        let text = json!({"name": "p", "stages": []}).to_string();
        let spliced: Value = serde_json::from_str(&with_version(&text, 3).unwrap()).unwrap();
        assert_eq!(spliced, json!({"name": "p", "stages": [], "version": 3}));
        assert_eq!(with_version("{}", 1), None);
        assert_eq!(with_version("[1]", 1), None);
        assert_eq!(with_version("", 1), None);
    }

    #[test]
    fn defaults_are_filled() {
        let decl = with_defaults(declaration("x"));
        assert_eq!(decl["pipelineType"], "V1");
        assert_eq!(decl["executionMode"], "SUPERSEDED");
        assert_eq!(decl["stages"][0]["actions"][0]["runOrder"], 1);
    }

    #[test]
    fn modes_need_v2() {
        let mut decl = declaration("x");
        decl["artifactStore"] = json!({"type": "S3", "location": "bucket"});
        decl["executionMode"] = json!("QUEUED");
        assert!(matches!(check_modes(&decl), Err(Error::Validation(_))));
        decl["pipelineType"] = json!("V2");
        assert!(check_modes(&decl).is_ok());
        decl["artifactStores"] = json!({"us-east-1": {"type": "S3", "location": "bucket"}});
        assert!(matches!(check_modes(&decl), Err(Error::Structure(_))));
    }
}

//! Pipeline structure as the engine sees it, and the structural rules a declaration must obey
//! before it is stored (AWS's `InvalidStructureException` rules).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::action_type::{ActionType, ActionTypeId, Category, MAX_QUERYABLE_VALUE_LEN};

/// One action of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    pub name: String,
    pub type_id: ActionTypeId,
    pub run_order: u32,
    pub configuration: BTreeMap<String, String>,
    pub input_artifacts: Vec<String>,
    pub output_artifacts: Vec<String>,
    pub namespace: Option<String>,
}

/// One stage: actions grouped by run order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSpec {
    pub name: String,
    pub actions: Vec<ActionSpec>,
}

/// The parts of a pipeline declaration the engine validates and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSpec {
    pub name: String,
    pub stages: Vec<StageSpec>,
}

/// Why a declaration is invalid; the text is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructureError {
    /// The shape of the pipeline: stages, names, placement, artifact flow.
    #[error("{0}")]
    Structure(String),
    /// One action against its action type: type exists, artifact counts, configuration.
    #[error("{0}")]
    Action(String),
}

impl StructureError {
    pub fn message(&self) -> &str {
        match self {
            StructureError::Structure(m) | StructureError::Action(m) => m,
        }
    }
}

fn invalid<T>(message: String) -> Result<T, StructureError> {
    Err(StructureError::Structure(message))
}

fn invalid_action<T>(message: String) -> Result<T, StructureError> {
    Err(StructureError::Action(message))
}

/// Checks every structural rule; `lookup` finds an action type (None: it does not exist).
pub fn validate(
    spec: &PipelineSpec,
    lookup: impl Fn(&ActionTypeId) -> Option<ActionType>,
) -> Result<(), StructureError> {
    if spec.stages.len() < 2 {
        return invalid(format!(
            "Pipeline {:?} has {} stage(s); a pipeline must contain at least two stages",
            spec.name,
            spec.stages.len()
        ));
    }
    check_unique_names(spec)?;
    check_source_placement(spec)?;
    for stage in &spec.stages {
        for action in &stage.actions {
            let Some(action_type) = lookup(&action.type_id) else {
                return invalid_action(format!(
                    "Action {:?} in stage {:?} uses action type {} which does not exist",
                    action.name, stage.name, action.type_id
                ));
            };
            check_action_against_type(stage, action, &action_type)?;
        }
    }
    check_artifact_flow(spec)
}

fn check_unique_names(spec: &PipelineSpec) -> Result<(), StructureError> {
    let mut stages = HashSet::new();
    let mut namespaces = HashSet::new();
    for stage in &spec.stages {
        if !stages.insert(stage.name.as_str()) {
            return invalid(format!("Stage name {:?} is used more than once", stage.name));
        }
        if stage.actions.is_empty() {
            return invalid(format!("Stage {:?} must contain at least one action", stage.name));
        }
        let mut actions = HashSet::new();
        for action in &stage.actions {
            if !actions.insert(action.name.as_str()) {
                return invalid(format!(
                    "Action name {:?} is used more than once in stage {:?}",
                    action.name, stage.name
                ));
            }
            if let Some(ns) = &action.namespace {
                if !namespaces.insert(ns.as_str()) {
                    return invalid(format!("Namespace {ns:?} is used by more than one action"));
                }
            }
        }
    }
    Ok(())
}

fn check_source_placement(spec: &PipelineSpec) -> Result<(), StructureError> {
    for (index, stage) in spec.stages.iter().enumerate() {
        for action in &stage.actions {
            let is_source = action.type_id.category == Category::Source;
            if index == 0 && !is_source {
                return invalid(format!(
                    "The first stage {:?} may contain only source actions; action {:?} is a {} action",
                    stage.name, action.name, action.type_id.category
                ));
            }
            if index > 0 && is_source {
                return invalid(format!(
                    "Source action {:?} is in stage {:?}; source actions may only be in the first stage",
                    action.name, stage.name
                ));
            }
        }
    }
    Ok(())
}

fn check_action_against_type(
    stage: &StageSpec,
    action: &ActionSpec,
    action_type: &ActionType,
) -> Result<(), StructureError> {
    let counts = [
        ("input", action.input_artifacts.len(), action_type.input),
        ("output", action.output_artifacts.len(), action_type.output),
    ];
    for (kind, count, bounds) in counts {
        if !bounds.contains(count) {
            return invalid_action(format!(
                "Action {:?} in stage {:?} has {count} {kind} artifact(s); action type {} allows {} to {}",
                action.name, stage.name, action.type_id, bounds.min, bounds.max
            ));
        }
    }
    for property in &action_type.properties {
        let value = action.configuration.get(&property.name);
        if property.required && value.is_none() {
            return invalid_action(format!(
                "Action configuration for action {:?} is missing required configuration {:?}",
                action.name, property.name
            ));
        }
        if property.queryable && value.is_some_and(|v| v.chars().count() > MAX_QUERYABLE_VALUE_LEN) {
            return invalid_action(format!(
                "Queryable configuration {:?} of action {:?} is longer than {MAX_QUERYABLE_VALUE_LEN} characters",
                property.name, action.name
            ));
        }
    }
    let declared: HashSet<&str> = action_type.properties.iter().map(|p| p.name.as_str()).collect();
    if let Some(unknown) = action.configuration.keys().find(|k| !declared.contains(k.as_str())) {
        return invalid_action(format!(
            "Action configuration for action {:?} contains unknown configuration {unknown:?}",
            action.name
        ));
    }
    Ok(())
}

/// Every input artifact must be produced by an action that runs earlier: in an earlier stage, or
/// in the same stage with a lower run order. Output artifact names are unique in the pipeline.
fn check_artifact_flow(spec: &PipelineSpec) -> Result<(), StructureError> {
    let mut produced_at: HashMap<&str, (usize, u32)> = HashMap::new();
    for (stage_index, stage) in spec.stages.iter().enumerate() {
        for action in &stage.actions {
            for artifact in &action.output_artifacts {
                let position = (stage_index, action.run_order);
                if produced_at.insert(artifact.as_str(), position).is_some() {
                    return invalid(format!(
                        "Output artifact name {artifact:?} is used by more than one action"
                    ));
                }
            }
        }
    }
    for (stage_index, stage) in spec.stages.iter().enumerate() {
        for action in &stage.actions {
            for artifact in &action.input_artifacts {
                let earlier = produced_at.get(artifact.as_str()).is_some_and(|&(s, order)| {
                    s < stage_index || (s == stage_index && order < action.run_order)
                });
                if !earlier {
                    return invalid(format!(
                        "Input artifact {artifact:?} of action {:?} in stage {:?} is not the output of an action that runs before it",
                        action.name, stage.name
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action_type::{
        builtin_action_types, ActionTypeSettings, ArtifactBounds, ConfigProperty, Owner,
    };

    fn build_type() -> ActionType {
        ActionType {
            id: type_id(Category::Build, Owner::Custom, "Make"),
            settings: ActionTypeSettings::default(),
            properties: vec![
                ConfigProperty {
                    name: "Target".into(),
                    required: true,
                    key: true,
                    secret: false,
                    queryable: true,
                    description: None,
                    kind: None,
                },
                ConfigProperty {
                    name: "Token".into(),
                    required: false,
                    key: false,
                    secret: true,
                    queryable: false,
                    description: None,
                    kind: None,
                },
            ],
            input: ArtifactBounds { min: 1, max: 1 },
            output: ArtifactBounds { min: 0, max: 1 },
        }
    }

    fn type_id(category: Category, owner: Owner, provider: &str) -> ActionTypeId {
        ActionTypeId { category, owner, provider: provider.into(), version: "1".into() }
    }

    fn lookup(id: &ActionTypeId) -> Option<ActionType> {
        builtin_action_types().into_iter().chain([build_type()]).find(|t| &t.id == id)
    }

    fn action(name: &str, type_id: ActionTypeId, inputs: &[&str], outputs: &[&str]) -> ActionSpec {
        ActionSpec {
            name: name.into(),
            type_id,
            run_order: 1,
            configuration: BTreeMap::new(),
            input_artifacts: inputs.iter().map(|s| s.to_string()).collect(),
            output_artifacts: outputs.iter().map(|s| s.to_string()).collect(),
            namespace: None,
        }
    }

    fn source() -> ActionSpec {
        let mut a = action("Src", type_id(Category::Source, Owner::Aws, "S3"), &[], &["code"]);
        a.configuration.insert("S3Bucket".into(), "b".into());
        a.configuration.insert("S3ObjectKey".into(), "k.zip".into());
        a
    }

    fn build() -> ActionSpec {
        let mut a = action("Make", type_id(Category::Build, Owner::Custom, "Make"), &["code"], &[]);
        a.configuration.insert("Target".into(), "all".into());
        a
    }

    fn approval() -> ActionSpec {
        action("Gate", type_id(Category::Approval, Owner::Aws, "Manual"), &[], &[])
    }

    fn pipeline(stages: Vec<(&str, Vec<ActionSpec>)>) -> PipelineSpec {
        PipelineSpec {
            name: "p".into(),
            stages: stages
                .into_iter()
                .map(|(name, actions)| StageSpec { name: name.into(), actions })
                .collect(),
        }
    }

    fn error_of(spec: &PipelineSpec) -> String {
        validate(spec, lookup).unwrap_err().message().to_string()
    }

    #[test]
    fn a_three_stage_pipeline_is_valid() {
        let spec = pipeline(vec![
            ("Source", vec![source()]),
            ("Approve", vec![approval()]),
            ("Build", vec![build()]),
        ]);
        assert_eq!(validate(&spec, lookup), Ok(()));
    }

    #[test]
    fn each_rule_is_enforced() {
        let cases = [
            (pipeline(vec![("Source", vec![source()])]), "at least two stages"),
            (pipeline(vec![("S", vec![source()]), ("S", vec![build()])]), "more than once"),
            (pipeline(vec![("S", vec![source(), source()]), ("B", vec![build()])]), "more than once"),
            (pipeline(vec![("S", vec![build()]), ("B", vec![build()])]), "only source actions"),
            (pipeline(vec![("S", vec![source()]), ("B", vec![source()])]), "only be in the first"),
            (pipeline(vec![("S", vec![source()]), ("B", vec![])]), "at least one action"),
        ];
        for (spec, expected) in cases {
            let err = error_of(&spec);
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn action_type_rules_are_enforced() {
        let mut missing_type = build();
        missing_type.type_id.provider = "Nope".into();
        let mut missing_required = build();
        missing_required.configuration.clear();
        let mut unknown_key = build();
        unknown_key.configuration.insert("Colour".into(), "red".into());
        let mut too_many_inputs = build();
        too_many_inputs.input_artifacts.push("code2".into());
        let mut long_query = build();
        long_query.configuration.insert("Target".into(), "x".repeat(21));
        let cases = [
            (missing_type, "does not exist"),
            (missing_required, "missing required configuration \"Target\""),
            (unknown_key, "unknown configuration \"Colour\""),
            (too_many_inputs, "2 input artifact(s)"),
            (long_query, "longer than 20"),
        ];
        for (bad, expected) in cases {
            let err = validate(&pipeline(vec![("S", vec![source()]), ("B", vec![bad])]), lookup).unwrap_err();
            assert!(matches!(err, StructureError::Action(_)), "{err:?} is about one action");
            assert!(err.message().contains(expected), "{err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn inputs_must_come_from_earlier_actions() {
        let mut orphan = build();
        orphan.input_artifacts = vec!["nowhere".into()];
        let err = error_of(&pipeline(vec![("S", vec![source()]), ("B", vec![orphan])]));
        assert!(err.contains("\"nowhere\""), "{err}");

        // Same stage, same run order: not earlier.
        let mut producer = build();
        producer.name = "Producer".into();
        producer.output_artifacts = vec!["bin".into()];
        let mut consumer = build();
        consumer.name = "Consumer".into();
        consumer.input_artifacts = vec!["bin".into()];
        let spec = pipeline(vec![("S", vec![source()]), ("B", vec![producer.clone(), consumer.clone()])]);
        assert!(error_of(&spec).contains("\"bin\""));

        consumer.run_order = 2;
        let spec = pipeline(vec![("S", vec![source()]), ("B", vec![producer, consumer])]);
        assert_eq!(validate(&spec, lookup), Ok(()));
    }

    #[test]
    fn output_names_and_namespaces_are_unique() {
        let mut twin = build();
        twin.name = "Twin".into();
        twin.output_artifacts = vec!["code".into()];
        let err = error_of(&pipeline(vec![("S", vec![source()]), ("B", vec![twin])]));
        assert!(err.contains("more than one action"), "{err}");

        let mut a = build();
        a.namespace = Some("NS".into());
        let mut b = build();
        b.name = "Other".into();
        b.namespace = Some("NS".into());
        let err = error_of(&pipeline(vec![("S", vec![source()]), ("B", vec![a, b])]));
        assert!(err.contains("Namespace"), "{err}");
    }
}

//! The CodePipeline control plane through `aws-sdk-codepipeline`.

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionConfigurationProperty, ActionDeclaration, ActionOwner, ActionTypeId,
    ArtifactDetails, ArtifactStore, ArtifactStoreType, InputArtifact, OutputArtifact, PipelineDeclaration,
    StageDeclaration, Tag,
};
use aws_sdk_codepipeline::Client;

use crate::support::{error_code, Db, TestServer};

fn type_id(category: ActionCategory, owner: ActionOwner, provider: &str) -> ActionTypeId {
    ActionTypeId::builder().category(category).owner(owner).provider(provider).version("1").build().unwrap()
}

async fn create_build_type(client: &Client) {
    client
        .create_custom_action_type()
        .category(ActionCategory::Build)
        .provider("Make")
        .version("1")
        .configuration_properties(
            ActionConfigurationProperty::builder()
                .name("Target")
                .required(true)
                .key(true)
                .secret(false)
                .queryable(true)
                .build()
                .unwrap(),
        )
        .configuration_properties(
            ActionConfigurationProperty::builder()
                .name("Token")
                .required(false)
                .key(false)
                .secret(true)
                .build()
                .unwrap(),
        )
        .input_artifact_details(ArtifactDetails::builder().minimum_count(1).maximum_count(1).build())
        .output_artifact_details(ArtifactDetails::builder().minimum_count(0).maximum_count(1).build())
        .send()
        .await
        .unwrap();
}

fn action(name: &str, id: ActionTypeId) -> aws_sdk_codepipeline::types::builders::ActionDeclarationBuilder {
    ActionDeclaration::builder().name(name).action_type_id(id)
}

fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
    StageDeclaration::builder().name(name).set_actions(Some(actions)).build().unwrap()
}

fn three_stage_pipeline(name: &str, target: &str) -> PipelineDeclaration {
    let source = action("Src", type_id(ActionCategory::Source, ActionOwner::Aws, "S3"))
        .configuration("S3Bucket", "artifacts")
        .configuration("S3ObjectKey", "src.zip")
        .output_artifacts(OutputArtifact::builder().name("code").build().unwrap())
        .build()
        .unwrap();
    let approve =
        action("Gate", type_id(ActionCategory::Approval, ActionOwner::Aws, "Manual")).build().unwrap();
    let build = action("Make", type_id(ActionCategory::Build, ActionOwner::Custom, "Make"))
        .configuration("Target", target)
        .configuration("Token", "hunter2")
        .input_artifacts(InputArtifact::builder().name("code").build().unwrap())
        .build()
        .unwrap();
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/pipeline")
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap(),
        )
        .stages(stage("Source", vec![source]))
        .stages(stage("Approve", vec![approve]))
        .stages(stage("Build", vec![build]))
        .build()
        .unwrap()
}

fn build_config(pipeline: &PipelineDeclaration) -> std::collections::HashMap<String, String> {
    pipeline.stages()[2].actions()[0].configuration().cloned().unwrap_or_default()
}

async fn pipeline_lifecycle(db: Db) {
    let server = TestServer::start(db).await;
    let client = server.codepipeline();
    create_build_type(&client).await;

    let created = client
        .create_pipeline()
        .pipeline(three_stage_pipeline("demo", "all"))
        .tags(Tag::builder().key("team").value("core").build().unwrap())
        .send()
        .await
        .unwrap();
    let declared = created.pipeline().unwrap();
    assert_eq!(declared.version(), Some(1));
    assert_eq!(build_config(declared).get("Token").map(String::as_str), Some("****"));

    client.update_pipeline().pipeline(three_stage_pipeline("demo", "release")).send().await.unwrap();
    let latest = client.get_pipeline().name("demo").send().await.unwrap();
    let pipeline = latest.pipeline().unwrap();
    assert_eq!(pipeline.version(), Some(2));
    assert_eq!(build_config(pipeline).get("Target").map(String::as_str), Some("release"));
    assert_eq!(pipeline.stages()[0].actions()[0].run_order(), Some(1));
    let metadata = latest.metadata().unwrap();
    assert_eq!(metadata.pipeline_arn(), Some("arn:aws:codepipeline:us-east-1:123456789012:demo"));
    assert!(metadata.updated().unwrap() >= metadata.created().unwrap());

    let first = client.get_pipeline().name("demo").version(1).send().await.unwrap();
    assert_eq!(build_config(first.pipeline().unwrap()).get("Target").map(String::as_str), Some("all"));

    let listed = client.list_pipelines().send().await.unwrap();
    let names: Vec<_> = listed.pipelines().iter().filter_map(|p| p.name()).collect();
    assert_eq!(names, ["demo"]);
    assert_eq!(listed.pipelines()[0].version(), Some(2));

    client.delete_pipeline().name("demo").send().await.unwrap();
    let gone = client.get_pipeline().name("demo").send().await.unwrap_err();
    assert_eq!(error_code(&gone), "PipelineNotFoundException");
    server.stop().await;
}

#[tokio::test]
async fn pipeline_lifecycle_on_sqlite() {
    pipeline_lifecycle(Db::Sqlite).await;
}

#[tokio::test]
async fn pipeline_lifecycle_on_postgres() {
    pipeline_lifecycle(Db::Postgres).await;
}

#[tokio::test]
async fn list_pipelines_pages_without_gaps() {
    let server = TestServer::start(Db::Sqlite).await;
    let client = server.codepipeline();
    create_build_type(&client).await;
    for i in 0..7 {
        client
            .create_pipeline()
            .pipeline(three_stage_pipeline(&format!("p{i}"), "all"))
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = client.list_pipelines().max_results(3).set_next_token(token).send().await.unwrap();
        assert!(page.pipelines().len() <= 3);
        seen.extend(page.pipelines().iter().filter_map(|p| p.name().map(str::to_string)));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    let forged = client.list_pipelines().next_token("cDM").send().await.unwrap_err();
    assert_eq!(error_code(&forged), "InvalidNextTokenException");
    server.stop().await;
}

#[tokio::test]
async fn structural_rules_are_refused_with_aws_codes() {
    let server = TestServer::start(Db::Sqlite).await;
    let client = server.codepipeline();
    create_build_type(&client).await;

    let mut one_stage = three_stage_pipeline("one", "all");
    one_stage.stages.truncate(1);
    let mut orphan_input = three_stage_pipeline("orphan", "all");
    orphan_input.stages[2].actions[0].input_artifacts =
        Some(vec![InputArtifact::builder().name("nothing").build().unwrap()]);
    let mut missing_type = three_stage_pipeline("missing", "all");
    missing_type.stages[2].actions[0].action_type_id.as_mut().unwrap().provider = "Nope".into();
    let mut missing_config = three_stage_pipeline("noconfig", "all");
    missing_config.stages[2].actions[0].configuration.as_mut().unwrap().remove("Target");
    let mut bad_name = three_stage_pipeline("bad name!", "all");
    bad_name.stages.truncate(3);

    let cases = [
        (one_stage, "InvalidStructureException"),
        (orphan_input, "InvalidStructureException"),
        (missing_type, "InvalidActionDeclarationException"),
        (missing_config, "InvalidActionDeclarationException"),
        (bad_name, "ValidationException"),
    ];
    for (pipeline, expected) in cases {
        let name = pipeline.name().to_string();
        let err = client.create_pipeline().pipeline(pipeline).send().await.unwrap_err();
        assert_eq!(error_code(&err), expected, "pipeline {name}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    }
    let listed = client.list_pipelines().send().await.unwrap();
    assert!(listed.pipelines().is_empty(), "no refused pipeline was stored");
    server.stop().await;
}

#[tokio::test]
async fn action_types_list_builtins_and_custom() {
    let server = TestServer::start(Db::Sqlite).await;
    let client = server.codepipeline();
    create_build_type(&client).await;
    let listed = client.list_action_types().send().await.unwrap();
    let ids: Vec<String> = listed
        .action_types()
        .iter()
        .map(|t| {
            let id = t.id().unwrap();
            format!("{}/{}/{}/{}", id.category().as_str(), id.owner().as_str(), id.provider(), id.version())
        })
        .collect();
    assert_eq!(ids, ["Approval/AWS/Manual/1", "Source/AWS/S3/1", "Build/Custom/Make/1"]);

    let custom_only =
        client.list_action_types().action_owner_filter(ActionOwner::Custom).send().await.unwrap();
    assert_eq!(custom_only.action_types().len(), 1);

    client
        .delete_custom_action_type()
        .category(ActionCategory::Build)
        .provider("Make")
        .version("1")
        .send()
        .await
        .unwrap();
    let after = client.list_action_types().action_owner_filter(ActionOwner::Custom).send().await.unwrap();
    assert!(after.action_types().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn wrong_secret_and_unknown_key_are_refused() {
    let server = TestServer::start(Db::Sqlite).await;
    let wrong_secret =
        server.codepipeline_as(crate::support::ROOT_ID, "not-the-secret-key-00000000000000000000");
    let err = wrong_secret.list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");

    let unknown = server.codepipeline_as("AKIANOSUCHKEY0000000", "whatever-secret-0000000000000000000000000");
    let err = unknown.list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&err), "UnrecognizedClientException");
    server.stop().await;
}

#[tokio::test]
async fn a_skewed_client_clock_is_refused() {
    use sluice_core::clock::{Clock, ManualClock, SystemClock};
    let twenty_minutes_ahead = SystemClock.now_millis() + 20 * 60 * 1000;
    let clock = std::sync::Arc::new(ManualClock::new(twenty_minutes_ahead));
    let server = TestServer::start_with_clock(Db::Sqlite, clock.clone()).await;
    let err = server.codepipeline().list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");

    clock.set(SystemClock.now_millis());
    server.codepipeline().list_pipelines().send().await.unwrap();
    server.stop().await;
}

//! Pipeline executions through `aws-sdk-codepipeline`, and the sweeper driven by a manual clock.

use std::sync::Arc;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactDetails, ArtifactStore,
    ArtifactStoreType, FailureDetails, FailureType, InputArtifact, OutputArtifact, PipelineDeclaration,
    StageDeclaration, StageRetryMode,
};
use aws_sdk_codepipeline::Client;
use sluice_core::clock::{Clock, ManualClock, SystemClock};

use crate::support::{error_code, Db, TestServer};

fn type_id(category: ActionCategory, owner: ActionOwner, provider: &str) -> ActionTypeId {
    ActionTypeId::builder().category(category).owner(owner).provider(provider).version("1").build().unwrap()
}

fn build_type() -> ActionTypeId {
    type_id(ActionCategory::Build, ActionOwner::Custom, "Compile")
}

async fn prepare(server: &TestServer, client: &Client) {
    let mut upload = server.engine.begin_upload("sources", "app.zip", "application/zip").await.unwrap();
    upload.write(b"the source").await.unwrap();
    upload.finish(&server.engine).await.unwrap();
    client
        .create_custom_action_type()
        .category(ActionCategory::Build)
        .provider("Compile")
        .version("1")
        .input_artifact_details(ArtifactDetails::builder().minimum_count(1).maximum_count(1).build())
        .output_artifact_details(ArtifactDetails::builder().minimum_count(0).maximum_count(0).build())
        .send()
        .await
        .unwrap();
}

fn stage(name: &str, action: ActionDeclaration) -> StageDeclaration {
    StageDeclaration::builder().name(name).actions(action).build().unwrap()
}

/// Source → (Approve with a 5-minute timeout) → Build with a 5-minute job timeout.
fn pipeline(name: &str, with_approval: bool) -> PipelineDeclaration {
    pipeline_builder(name, with_approval).build().unwrap()
}

fn pipeline_builder(
    name: &str,
    with_approval: bool,
) -> aws_sdk_codepipeline::types::builders::PipelineDeclarationBuilder {
    let source = ActionDeclaration::builder()
        .name("Src")
        .action_type_id(type_id(ActionCategory::Source, ActionOwner::Aws, "S3"))
        .configuration("S3Bucket", "sources")
        .configuration("S3ObjectKey", "app.zip")
        .output_artifacts(OutputArtifact::builder().name("code").build().unwrap())
        .build()
        .unwrap();
    let build = ActionDeclaration::builder()
        .name("Compile")
        .action_type_id(build_type())
        .input_artifacts(InputArtifact::builder().name("code").build().unwrap())
        .timeout_in_minutes(5)
        .build()
        .unwrap();
    let mut builder = PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/p")
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap(),
        )
        .stages(stage("Source", source));
    if with_approval {
        let approve = ActionDeclaration::builder()
            .name("Gate")
            .action_type_id(type_id(ActionCategory::Approval, ActionOwner::Aws, "Manual"))
            .timeout_in_minutes(5)
            .build()
            .unwrap();
        builder = builder.stages(stage("Approve", approve));
    }
    builder.stages(stage("Build", build))
}

async fn status(client: &Client, pipeline: &str, id: &str) -> String {
    let execution = client
        .get_pipeline_execution()
        .pipeline_name(pipeline)
        .pipeline_execution_id(id)
        .send()
        .await
        .unwrap();
    execution.pipeline_execution().unwrap().status().unwrap().as_str().to_string()
}

#[tokio::test]
async fn a_job_runs_through_the_rust_sdk() {
    let server = TestServer::start(Db::Sqlite).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    client.create_pipeline().pipeline(pipeline("sdk", false)).send().await.unwrap();
    let started = client.start_pipeline_execution().name("sdk").send().await.unwrap();
    let id = started.pipeline_execution_id().unwrap().to_string();

    let polled = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap();
    let job = &polled.jobs()[0];
    let data = job.data().unwrap();
    assert_eq!(data.pipeline_context().unwrap().pipeline_execution_id(), Some(id.as_str()));
    assert!(data.artifact_credentials().is_some());
    assert_eq!(data.input_artifacts()[0].name(), Some("code"));
    let ack =
        client.acknowledge_job().job_id(job.id().unwrap()).nonce(job.nonce().unwrap()).send().await.unwrap();
    assert_eq!(ack.status().unwrap().as_str(), "InProgress");
    client.put_job_success_result().job_id(job.id().unwrap()).send().await.unwrap();
    assert_eq!(status(&client, "sdk", &id).await, "Succeeded");
    server.stop().await;
}

/// More concurrent starts than pooled connections: a transition never waits for a second
/// connection while it holds one, so none of them fails (it used to time out on the pool).
async fn concurrent_starts_all_succeed(db: Db) {
    let server = TestServer::start(db).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    client.create_pipeline().pipeline(pipeline("burst", false)).send().await.unwrap();
    let starts: Vec<_> = (0..40)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.start_pipeline_execution().name("burst").send().await })
        })
        .collect();
    for start in starts {
        let started = start.await.unwrap();
        assert!(started.is_ok(), "{:?}", started.err().map(|e| error_code(&e)));
    }
    let listed =
        client.list_pipeline_executions().pipeline_name("burst").max_results(100).send().await.unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 40);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_starts_on_sqlite() {
    concurrent_starts_all_succeed(Db::Sqlite).await;
}

#[tokio::test]
async fn concurrent_starts_on_postgres() {
    concurrent_starts_all_succeed(Db::Postgres).await;
}

/// Starts race with pollers that claim for themselves while transitions hand them jobs
/// directly (some polls taking batches): every job reaches exactly one worker, and none is left
/// claimed for a poll that had stopped looking (it would wait out its 60 s lease, past the
/// test's time limit).
async fn racing_polls_get_every_job_once(db: Db) {
    const EXECUTIONS: usize = 200;
    let server = TestServer::start(db).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    let parallel = pipeline_builder("race", false)
        .pipeline_type(aws_sdk_codepipeline::types::PipelineType::V2)
        .execution_mode(aws_sdk_codepipeline::types::ExecutionMode::Parallel)
        .build()
        .unwrap();
    client.create_pipeline().pipeline(parallel).send().await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let mut tasks = Vec::new();
    for producer in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (producer..EXECUTIONS).step_by(4) {
                client.start_pipeline_execution().name("race").send().await.unwrap();
            }
        }));
    }
    for poller in 0..8 {
        let (client, seen) = (client.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            while seen.lock().unwrap().len() < EXECUTIONS {
                let batch = if poller % 3 == 0 { 3 } else { 1 };
                let polled = client
                    .poll_for_jobs()
                    .action_type_id(build_type())
                    .max_batch_size(batch)
                    .send()
                    .await
                    .unwrap();
                for job in polled.jobs() {
                    let id = job.id().unwrap().to_string();
                    assert!(seen.lock().unwrap().insert(id.clone()), "job {id} handed out twice");
                    client.acknowledge_job().job_id(&id).nonce(job.nonce().unwrap()).send().await.unwrap();
                    client.put_job_success_result().job_id(&id).send().await.unwrap();
                }
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(45), all)
        .await
        .expect("every job handed out in time");
    let listed =
        client.list_pipeline_executions().pipeline_name("race").max_results(100).send().await.unwrap();
    assert!(listed
        .pipeline_execution_summaries()
        .iter()
        .all(|e| e.status().unwrap().as_str() == "Succeeded"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_polls_on_sqlite() {
    racing_polls_get_every_job_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_polls_on_postgres() {
    racing_polls_get_every_job_once(Db::Postgres).await;
}

/// A failed build stage retried through the SDK on PostgreSQL: the retry queues a new job and
/// the execution succeeds.
#[tokio::test]
async fn a_failed_stage_is_retried_through_the_rust_sdk() {
    let server = TestServer::start(Db::Postgres).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    client.create_pipeline().pipeline(pipeline("retry", false)).send().await.unwrap();
    let started = client.start_pipeline_execution().name("retry").send().await.unwrap();
    let id = started.pipeline_execution_id().unwrap().to_string();
    let run_job = |success: bool| {
        let client = client.clone();
        async move {
            let polled = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap();
            let job = &polled.jobs()[0];
            let job_id = job.id().unwrap();
            client.acknowledge_job().job_id(job_id).nonce(job.nonce().unwrap()).send().await.unwrap();
            if success {
                client.put_job_success_result().job_id(job_id).send().await.unwrap();
            } else {
                let details = FailureDetails::builder()
                    .r#type(FailureType::JobFailed)
                    .message("exit 2")
                    .build()
                    .unwrap();
                client.put_job_failure_result().job_id(job_id).failure_details(details).send().await.unwrap();
            }
        }
    };
    run_job(false).await;
    assert_eq!(status(&client, "retry", &id).await, "Failed");
    let retried = client
        .retry_stage_execution()
        .pipeline_name("retry")
        .stage_name("Build")
        .pipeline_execution_id(&id)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.pipeline_execution_id(), Some(id.as_str()));
    assert_eq!(status(&client, "retry", &id).await, "InProgress");
    run_job(true).await;
    assert_eq!(status(&client, "retry", &id).await, "Succeeded");
    let again = client
        .retry_stage_execution()
        .pipeline_name("retry")
        .stage_name("Build")
        .pipeline_execution_id(&id)
        .retry_mode(StageRetryMode::AllActions)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&again), "StageNotRetryableException");
    server.stop().await;
}

#[tokio::test]
async fn the_sweeper_requeues_and_times_out() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_millis()));
    let server = TestServer::start_with_clock(Db::Sqlite, clock.clone()).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    client.create_pipeline().pipeline(pipeline("swept", false)).send().await.unwrap();
    let id = client
        .start_pipeline_execution()
        .name("swept")
        .send()
        .await
        .unwrap()
        .pipeline_execution_id()
        .unwrap()
        .to_string();

    // Polled but never acknowledged: back to the queue after the dispatch lease, with a new nonce.
    let first = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap().jobs()[0].clone();
    clock.advance(61_000);
    server.engine.sweep().await.unwrap();
    let second = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap().jobs()[0].clone();
    assert_eq!(second.id(), first.id());
    assert_ne!(second.nonce(), first.nonce());
    let stale =
        client.acknowledge_job().job_id(first.id().unwrap()).nonce(first.nonce().unwrap()).send().await;
    assert_eq!(error_code(&stale.unwrap_err()), "InvalidNonceException");

    // Acknowledged but not finished within the action's 5-minute timeout: the action fails.
    client
        .acknowledge_job()
        .job_id(second.id().unwrap())
        .nonce(second.nonce().unwrap())
        .send()
        .await
        .unwrap();
    clock.advance(4 * 60_000);
    server.engine.sweep().await.unwrap();
    assert_eq!(status(&client, "swept", &id).await, "InProgress");
    clock.advance(2 * 60_000);
    server.engine.sweep().await.unwrap();
    assert_eq!(status(&client, "swept", &id).await, "Failed");
    let late = client.put_job_success_result().job_id(second.id().unwrap()).send().await;
    assert_eq!(error_code(&late.unwrap_err()), "InvalidJobStateException");
    server.stop().await;
}

#[tokio::test]
async fn an_unanswered_approval_times_out() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_millis()));
    let server = TestServer::start_with_clock(Db::Postgres, clock.clone()).await;
    let client = server.codepipeline();
    prepare(&server, &client).await;
    client.create_pipeline().pipeline(pipeline("gated", true)).send().await.unwrap();
    let id = client
        .start_pipeline_execution()
        .name("gated")
        .send()
        .await
        .unwrap()
        .pipeline_execution_id()
        .unwrap()
        .to_string();
    clock.advance(4 * 60_000);
    server.engine.sweep().await.unwrap();
    assert_eq!(status(&client, "gated", &id).await, "InProgress");
    clock.advance(2 * 60_000);
    server.engine.sweep().await.unwrap();
    assert_eq!(status(&client, "gated", &id).await, "Failed");
    let state = client.get_pipeline_state().name("gated").send().await.unwrap();
    let gate = state.stage_states()[1].action_states()[0].latest_execution().unwrap();
    assert_eq!(gate.status().unwrap().as_str(), "Failed");
    assert!(gate.error_details().unwrap().message().unwrap().contains("timed out"));
    server.stop().await;
}

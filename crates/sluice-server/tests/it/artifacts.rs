//! The artifact endpoint under job-scoped temporary credentials.

use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};
use std::sync::Arc;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactDetails, ArtifactStore,
    ArtifactStoreType, InputArtifact, Job, OutputArtifact, PipelineDeclaration, StageDeclaration,
};
use sluice_core::clock::{Clock, ManualClock, SystemClock};

use crate::support::{error_code, Db, TestServer, ROOT_ID, ROOT_SECRET};

struct Signer<'a> {
    id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
}

const ROOT: Signer<'static> = Signer { id: ROOT_ID, secret: ROOT_SECRET, token: None };

/// Signs with the artifact credentials a job was handed.
fn signer(job: &Job) -> Signer<'_> {
    let credentials = job.data().unwrap().artifact_credentials().unwrap();
    Signer {
        id: credentials.access_key_id(),
        secret: credentials.secret_access_key(),
        token: Some(credentials.session_token()),
    }
}

/// Sends a SigV4-signed S3 request; returns the status and the body as text.
async fn s3(
    server: &TestServer,
    signer: &Signer<'_>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let url: reqwest::Url = format!("{}{path}", server.endpoint).parse().unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let params = SigningParams {
        access_key_id: signer.id,
        secret_access_key: signer.secret,
        security_token: signer.token,
        region: "us-east-1",
        service: "s3",
        now_millis: server.engine.now_millis(),
    };
    let headers = vec![("host".to_string(), host)];
    let signed = sign_headers(&params, method, url.path(), url.query(), &headers, &sha256_hex(body), true);
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), url).body(body.to_vec());
    for (name, value) in signed {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn type_id(category: ActionCategory, owner: ActionOwner, provider: &str) -> ActionTypeId {
    ActionTypeId::builder().category(category).owner(owner).provider(provider).version("1").build().unwrap()
}

fn build_type() -> ActionTypeId {
    type_id(ActionCategory::Build, ActionOwner::Custom, "Package")
}

/// A pipeline `name` whose S3 source `in/source.zip` feeds a custom build action that writes one
/// artifact; one execution started. Returns the build job, polled.
async fn polled_build_job(server: &TestServer, name: &str) -> Job {
    assert_eq!(s3(server, &ROOT, "PUT", "/sources/in/source.zip", b"source bytes").await.0, 200);
    let client = server.codepipeline();
    let one = ArtifactDetails::builder().minimum_count(1).maximum_count(1).build();
    client
        .create_custom_action_type()
        .category(ActionCategory::Build)
        .provider("Package")
        .version("1")
        .input_artifact_details(one.clone())
        .output_artifact_details(one)
        .send()
        .await
        .unwrap();
    let source = ActionDeclaration::builder()
        .name("Src")
        .action_type_id(type_id(ActionCategory::Source, ActionOwner::Aws, "S3"))
        .configuration("S3Bucket", "sources")
        .configuration("S3ObjectKey", "in/source.zip")
        .output_artifacts(OutputArtifact::builder().name("code").build().unwrap())
        .build()
        .unwrap();
    let build = ActionDeclaration::builder()
        .name("Package")
        .action_type_id(build_type())
        .input_artifacts(InputArtifact::builder().name("code").build().unwrap())
        .output_artifacts(OutputArtifact::builder().name("package").build().unwrap())
        .timeout_in_minutes(5)
        .build()
        .unwrap();
    let stage = |name: &str, action: ActionDeclaration| {
        StageDeclaration::builder().name(name).actions(action).build().unwrap()
    };
    let pipeline = PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/p")
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap(),
        )
        .stages(stage("Source", source))
        .stages(stage("Build", build))
        .build()
        .unwrap();
    client.create_pipeline().pipeline(pipeline).send().await.unwrap();
    client.start_pipeline_execution().name(name).send().await.unwrap();
    let polled = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap();
    polled.jobs()[0].clone()
}

/// `/bucket/key` of a job's first input or output artifact.
fn artifact_path(job: &Job, input: bool) -> String {
    let data = job.data().unwrap();
    let artifact = if input { &data.input_artifacts()[0] } else { &data.output_artifacts()[0] };
    let s3 = artifact.location().unwrap().s3_location().unwrap();
    format!("/{}/{}", s3.bucket_name(), s3.object_key())
}

#[tokio::test]
async fn job_credentials_reach_only_their_objects_until_the_job_ends() {
    let server = TestServer::start(Db::Sqlite).await;
    let polled = polled_build_job(&server, "scoped").await;
    let (input, output) = (artifact_path(&polled, true), artifact_path(&polled, false));
    assert_eq!(s3(&server, &ROOT, "PUT", "/artifacts/other.zip", b"not yours").await.0, 200);
    let job = signer(&polled);
    assert!(job.id.starts_with("ASIA"));

    assert_eq!(s3(&server, &job, "GET", &input, b"").await, (200, "source bytes".into()));
    assert_eq!(s3(&server, &job, "HEAD", &input, b"").await.0, 200);
    let (status, body) = s3(&server, &job, "GET", "/artifacts/other.zip", b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert_eq!(s3(&server, &job, "PUT", &output, b"built").await.0, 200);
    assert_eq!(s3(&server, &job, "PUT", &input, b"overwrite").await.0, 403);
    assert_eq!(s3(&server, &job, "DELETE", &input, b"").await.0, 403);
    assert_eq!(s3(&server, &job, "GET", "/artifacts?list-type=2", b"").await.0, 403);
    assert_eq!(s3(&server, &ROOT, "GET", &output, b"").await, (200, "built".into()));
    assert_eq!(s3(&server, &ROOT, "GET", &input, b"").await.1, "source bytes");

    // The session token is part of the credentials, and it names the key it was issued with.
    let no_token = Signer { token: None, ..signer(&polled) };
    assert_eq!(s3(&server, &no_token, "GET", &input, b"").await.0, 403);
    let wrong_token = Signer { token: Some("not-the-token"), ..signer(&polled) };
    assert_eq!(s3(&server, &wrong_token, "GET", &input, b"").await.0, 403);
    let other_key = Signer { id: "ASIAOTHERKEY00000000", ..signer(&polled) };
    assert_eq!(s3(&server, &other_key, "GET", &input, b"").await.0, 403);
    let wrong_secret = Signer { secret: "0000000000000000000000000000000000000000", ..signer(&polled) };
    assert_eq!(s3(&server, &wrong_secret, "GET", &input, b"").await.0, 403);

    // Temporary credentials are for artifacts only.
    let credentials = polled.data().unwrap().artifact_credentials().unwrap();
    let codepipeline = {
        use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&server.endpoint)
            .credentials_provider(Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_string()),
                None,
                "job",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_codepipeline::Client::from_conf(config)
    };
    let refused = codepipeline.list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&refused), "AccessDeniedException");

    // GetJobDetails hands out further credentials for the same job; when the job ends, all of
    // them stop working at once.
    let client = server.codepipeline();
    let details = client.get_job_details().job_id(polled.id().unwrap()).send().await.unwrap();
    let fresh = details.job_details().unwrap().data().unwrap().artifact_credentials().unwrap();
    let fresh = Signer {
        id: fresh.access_key_id(),
        secret: fresh.secret_access_key(),
        token: Some(fresh.session_token()),
    };
    assert_eq!(s3(&server, &fresh, "GET", &input, b"").await.0, 200);
    client
        .acknowledge_job()
        .job_id(polled.id().unwrap())
        .nonce(polled.nonce().unwrap())
        .send()
        .await
        .unwrap();
    client.put_job_success_result().job_id(polled.id().unwrap()).send().await.unwrap();
    assert_eq!(s3(&server, &job, "GET", &input, b"").await.0, 403);
    assert_eq!(s3(&server, &fresh, "GET", &input, b"").await.0, 403);
    server.stop().await;
}

#[tokio::test]
async fn job_credentials_end_when_the_job_returns_to_the_queue() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_millis()));
    let server = TestServer::start_with_clock(Db::Sqlite, clock.clone()).await;
    let first = polled_build_job(&server, "requeued").await;
    let input = artifact_path(&first, true);
    assert_eq!(s3(&server, &signer(&first), "GET", &input, b"").await.0, 200);

    // Not acknowledged within the dispatch lease: the job goes back to the queue, and the
    // credentials of that first hand-out end although their own expiry is far off.
    clock.advance(61_000);
    server.engine.sweep().await.unwrap();
    let (status, body) = s3(&server, &signer(&first), "GET", &input, b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("InvalidAccessKeyId"), "{body}");
    let client = server.codepipeline();
    let second = client.poll_for_jobs().action_type_id(build_type()).send().await.unwrap().jobs()[0].clone();
    assert_eq!(second.id(), first.id());
    assert_eq!(s3(&server, &signer(&second), "GET", &input, b"").await.0, 200);

    server.stop().await;
}

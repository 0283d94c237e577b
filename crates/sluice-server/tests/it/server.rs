//! Health, metrics, the admin key API and graceful shutdown over plain HTTP.

use crate::support::{error_code, Db, TestServer, ROOT_ID, ROOT_SECRET};
use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};
use sluice_core::clock::{Clock, SystemClock};

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start(Db::Sqlite).await;
    let health = reqwest::get(format!("{}/health", server.endpoint)).await.unwrap();
    assert_eq!(health.status(), 200);

    server.codepipeline().list_pipelines().send().await.unwrap();
    let text = reqwest::get(format!("{}/metrics", server.endpoint)).await.unwrap().text().await.unwrap();
    assert!(text.contains("sluice_requests_total{operation=\"ListPipelines\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("sluice_request_duration_seconds_count{operation=\"ListPipelines\"} 1"), "{text}");
    server.stop().await;
}

async fn create_key(server: &TestServer, id: &str, secret: &str, name: &str) -> reqwest::Response {
    let url: reqwest::Url = format!("{}/admin/v1/keys", server.endpoint).parse().unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let body = serde_json::to_vec(&serde_json::json!({"name": name})).unwrap();
    let params = SigningParams {
        access_key_id: id,
        secret_access_key: secret,
        security_token: None,
        region: "us-east-1",
        service: "sluice",
        now_millis: SystemClock.now_millis(),
    };
    let headers = vec![("host".to_string(), host)];
    let signed = sign_headers(&params, "POST", "/admin/v1/keys", None, &headers, &sha256_hex(&body), false);
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in signed {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn root_creates_user_keys_that_work_and_cannot_create_more() {
    let server = TestServer::start(Db::Sqlite).await;
    let response = create_key(&server, ROOT_ID, ROOT_SECRET, "ci").await;
    assert_eq!(response.status(), 200);
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["accessKeyId"].as_str().unwrap().to_string();
    let secret = created["secretAccessKey"].as_str().unwrap().to_string();
    assert!(id.starts_with("AKIA") && secret.len() == 40);

    server.codepipeline_as(&id, &secret).list_pipelines().send().await.unwrap();

    let refused = create_key(&server, &id, &secret, "other").await;
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["__type"], "AccessDeniedException");

    // A wrong secret is refused on the admin API as on the facades.
    let wrong_service = create_key(&server, ROOT_ID, "bad-secret", "x").await;
    assert_eq!(wrong_service.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_operations_are_4xx() {
    let server = TestServer::start(Db::Sqlite).await;
    let missing = reqwest::get(format!("{}/nowhere", server.endpoint)).await.unwrap();
    assert_eq!(missing.status(), 404);

    // ListWebhooks is modelled but not served yet: a 4xx, never a 5xx.
    let err = server.codepipeline().list_webhooks().send().await.unwrap_err();
    assert_eq!(error_code(&err), "UnknownOperationException");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drains_and_data_survives_a_restart() {
    let server = TestServer::start(Db::Sqlite).await;
    let client = server.codepipeline();
    client
        .create_custom_action_type()
        .category(aws_sdk_codepipeline::types::ActionCategory::Test)
        .provider("Kept")
        .version("1")
        .input_artifact_details(
            aws_sdk_codepipeline::types::ArtifactDetails::builder().minimum_count(0).maximum_count(0).build(),
        )
        .output_artifact_details(
            aws_sdk_codepipeline::types::ArtifactDetails::builder().minimum_count(0).maximum_count(0).build(),
        )
        .send()
        .await
        .unwrap();
    let data_dir = server.data_dir.path().to_path_buf();
    let kept_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), kept_dir.path().join(entry.file_name())).unwrap();
    }
    server.stop().await;

    // A new server on a copy of the data directory sees the acknowledged change.
    let overrides = sluice_server::config::Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(kept_dir.path().to_path_buf()),
        ..Default::default()
    };
    let config = sluice_server::Config::load(None, overrides).unwrap();
    let app = sluice_server::bootstrap(&config, std::sync::Arc::new(SystemClock), None, None).await.unwrap();
    let found = app.engine().list_action_types(Some(sluice_core::action_type::Owner::Custom)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.provider, "Kept");
}

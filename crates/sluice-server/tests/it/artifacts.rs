//! The artifact endpoint under job-scoped temporary credentials.

use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};
use sluice_core::clock::{Clock, SystemClock};
use sluice_engine::keys::{JobScope, ObjectRef, TemporaryCredentials};

use crate::support::{error_code, Db, TestServer, ROOT_ID, ROOT_SECRET};

struct Signer<'a> {
    id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
}

const ROOT: Signer<'static> = Signer { id: ROOT_ID, secret: ROOT_SECRET, token: None };

fn signer(credentials: &TemporaryCredentials) -> Signer<'_> {
    Signer {
        id: &credentials.access_key_id,
        secret: &credentials.secret_access_key,
        token: Some(&credentials.session_token),
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
        now_millis: SystemClock.now_millis(),
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

fn object(key: &str) -> ObjectRef {
    ObjectRef { bucket: "artifacts".into(), key: key.into() }
}

#[tokio::test]
async fn job_credentials_reach_only_their_objects_until_revoked() {
    let server = TestServer::start(Db::Sqlite).await;
    assert_eq!(s3(&server, &ROOT, "PUT", "/artifacts/in/source.zip", b"source bytes").await.0, 200);
    assert_eq!(s3(&server, &ROOT, "PUT", "/artifacts/in/other.zip", b"not yours").await.0, 200);

    let scope = JobScope { read: vec![object("in/source.zip")], write: vec![object("out/build.zip")] };
    let expires = SystemClock.now_millis() + 3_600_000;
    let credentials = server.engine.mint_job_credentials("job-1", &scope, expires).await.unwrap();
    assert!(credentials.access_key_id.starts_with("ASIA"));
    let job = signer(&credentials);

    assert_eq!(s3(&server, &job, "GET", "/artifacts/in/source.zip", b"").await, (200, "source bytes".into()));
    assert_eq!(s3(&server, &job, "HEAD", "/artifacts/in/source.zip", b"").await.0, 200);
    let (status, body) = s3(&server, &job, "GET", "/artifacts/in/other.zip", b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert_eq!(s3(&server, &job, "PUT", "/artifacts/out/build.zip", b"built").await.0, 200);
    assert_eq!(s3(&server, &job, "PUT", "/artifacts/in/source.zip", b"overwrite").await.0, 403);
    assert_eq!(s3(&server, &job, "DELETE", "/artifacts/in/source.zip", b"").await.0, 403);
    assert_eq!(s3(&server, &job, "GET", "/artifacts?list-type=2", b"").await.0, 403);
    assert_eq!(s3(&server, &ROOT, "GET", "/artifacts/out/build.zip", b"").await, (200, "built".into()));
    assert_eq!(s3(&server, &ROOT, "GET", "/artifacts/in/source.zip", b"").await.1, "source bytes");

    // The session token is part of the credentials.
    let no_token = Signer { token: None, ..signer(&credentials) };
    assert_eq!(s3(&server, &no_token, "GET", "/artifacts/in/source.zip", b"").await.0, 403);
    let wrong_token = Signer { token: Some("not-the-token"), ..signer(&credentials) };
    assert_eq!(s3(&server, &wrong_token, "GET", "/artifacts/in/source.zip", b"").await.0, 403);

    // Temporary credentials are for artifacts only.
    let codepipeline = {
        use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&server.endpoint)
            .credentials_provider(Credentials::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                Some(credentials.session_token.clone()),
                None,
                "job",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_codepipeline::Client::from_conf(config)
    };
    let refused = codepipeline.list_pipelines().send().await.unwrap_err();
    assert_eq!(error_code(&refused), "AccessDeniedException");

    // When the job ends, its credentials stop working at once.
    server.engine.revoke_job_credentials("job-1").await.unwrap();
    assert_eq!(s3(&server, &job, "GET", "/artifacts/in/source.zip", b"").await.0, 403);
    server.stop().await;
}

#[tokio::test]
async fn expired_job_credentials_are_refused() {
    let server = TestServer::start(Db::Sqlite).await;
    assert_eq!(s3(&server, &ROOT, "PUT", "/artifacts/in/a", b"a").await.0, 200);
    let scope = JobScope { read: vec![object("in/a")], write: vec![] };
    let already_over = SystemClock.now_millis() - 1;
    let credentials = server.engine.mint_job_credentials("job-2", &scope, already_over).await.unwrap();
    let (status, body) = s3(&server, &signer(&credentials), "GET", "/artifacts/in/a", b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("InvalidAccessKeyId"), "{body}");
    server.stop().await;
}

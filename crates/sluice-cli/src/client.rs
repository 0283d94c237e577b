//! The operator commands' HTTP client: endpoint and credentials from the environment or the
//! server's credentials file, requests signed with SigV4 (signing name `sluice`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::Value;
use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};
use sluice_core::clock::{Clock, SystemClock};

/// A job's temporary artifact credentials.
pub struct TempCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl TempCredentials {
    fn params<'a>(&'a self, region: &'a str, service: &'static str) -> SigningParams<'a> {
        SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            security_token: Some(&self.session_token),
            region,
            service,
            now_millis: SystemClock.now_millis(),
        }
    }
}

fn host_of(url: &reqwest::Url) -> anyhow::Result<String> {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => Ok(format!("{host}:{port}")),
        (Some(host), None) => Ok(host.to_string()),
        _ => bail!("SLUICE_ENDPOINT has no host"),
    }
}

/// The JSON answer, or the server's error as `Code: message`.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let answer: Value = response.json().await.context("server answered with something other than JSON")?;
    if !status.is_success() {
        let code = answer.get("__type").and_then(Value::as_str).unwrap_or("Error");
        let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
        bail!("{code}: {message}");
    }
    Ok(answer)
}

/// Where and as whom to call.
pub struct Client {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    http: reqwest::Client,
}

struct FileCredentials {
    access_key_id: String,
    secret_access_key: String,
    region: Option<String>,
}

fn credentials_path() -> PathBuf {
    if let Ok(path) = std::env::var("SLUICE_CREDENTIALS_FILE") {
        return path.into();
    }
    let dir = std::env::var("SLUICE_DATA_DIR").unwrap_or_else(|_| "./sluice-data".into());
    PathBuf::from(dir).join("credentials")
}

/// Reads profile `[sluice]` of an AWS shared-credentials file.
fn read_credentials_file(path: &PathBuf) -> anyhow::Result<FileCredentials> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut in_profile = false;
    let (mut id, mut secret, mut region) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == "[sluice]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_string());
        match key.trim() {
            "aws_access_key_id" => id = value,
            "aws_secret_access_key" => secret = value,
            "region" => region = value,
            _ => {}
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(FileCredentials { access_key_id, secret_access_key, region })
        }
        _ => bail!("{} has no [sluice] profile with both keys", path.display()),
    }
}

impl Client {
    /// `SLUICE_ENDPOINT` (default `http://127.0.0.1:8750`) with credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or the server's credentials file.
    pub fn from_env() -> anyhow::Result<Client> {
        let endpoint = std::env::var("SLUICE_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8750".into());
        let env_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
        let env_secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
        let (access_key_id, secret_access_key, file_region, session_token) = match (env_id, env_secret) {
            (Some(id), Some(secret)) => (id, secret, None, std::env::var("AWS_SESSION_TOKEN").ok()),
            _ => {
                let file = read_credentials_file(&credentials_path())?;
                (file.access_key_id, file.secret_access_key, file.region, None)
            }
        };
        let region =
            std::env::var("SLUICE_REGION").ok().or(file_region).unwrap_or_else(|| "us-east-1".into());
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            access_key_id,
            secret_access_key,
            session_token,
            region,
            http: reqwest::Client::new(),
        })
    }

    /// POSTs JSON to an admin path and returns the JSON answer, or fails with the server's message.
    pub async fn post_admin(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url: reqwest::Url =
            format!("{}{path}", self.endpoint).parse().context("SLUICE_ENDPOINT is not a URL")?;
        let payload = serde_json::to_vec(body)?;
        let headers = vec![
            ("host".to_string(), host_of(&url)?),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        let signed = sign_headers(
            &self.params("sluice"),
            "POST",
            url.path(),
            None,
            &headers,
            &sha256_hex(&payload),
            false,
        );
        let mut request = self.http.post(url).header("content-type", "application/json").body(payload);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        answer(request.send().await.with_context(|| format!("cannot reach {}", self.endpoint))?).await
    }

    /// Calls a CodePipeline operation (AWS JSON 1.1); an AWS error becomes `Err("Code: message")`.
    pub async fn codepipeline(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        let url: reqwest::Url =
            format!("{}/", self.endpoint).parse().context("SLUICE_ENDPOINT is not a URL")?;
        let payload = serde_json::to_vec(body)?;
        let target = format!("CodePipeline_20150709.{operation}");
        let headers = vec![
            ("host".to_string(), host_of(&url)?),
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".to_string(), target),
        ];
        let signed = sign_headers(
            &self.params("codepipeline"),
            "POST",
            "/",
            None,
            &headers,
            &sha256_hex(&payload),
            false,
        );
        let mut request = self.http.post(url).body(payload);
        for (name, value) in headers.into_iter().skip(1).chain(signed) {
            request = request.header(name, value);
        }
        answer(request.send().await.with_context(|| format!("cannot reach {}", self.endpoint))?).await
    }

    /// Reads an artifact object with a job's temporary credentials.
    pub async fn get_object(
        &self,
        credentials: &TempCredentials,
        bucket: &str,
        key: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let (url, path) = self.object_url(bucket, key)?;
        let headers = vec![("host".to_string(), host_of(&url)?)];
        let signed = sign_headers(
            &credentials.params(&self.region, "s3"),
            "GET",
            &path,
            None,
            &headers,
            &sha256_hex(b""),
            true,
        );
        let mut request = self.http.get(url);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            bail!("GetObject s3://{bucket}/{key} answered {}", response.status());
        }
        Ok(response.bytes().await?.to_vec())
    }

    /// Writes an artifact object with a job's temporary credentials.
    pub async fn put_object(
        &self,
        credentials: &TempCredentials,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let (url, path) = self.object_url(bucket, key)?;
        let headers = vec![("host".to_string(), host_of(&url)?)];
        let signed = sign_headers(
            &credentials.params(&self.region, "s3"),
            "PUT",
            &path,
            None,
            &headers,
            &sha256_hex(&body),
            true,
        );
        let mut request = self.http.put(url).body(body);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            bail!("PutObject s3://{bucket}/{key} answered {}", response.status());
        }
        Ok(())
    }

    fn object_url(&self, bucket: &str, key: &str) -> anyhow::Result<(reqwest::Url, String)> {
        let encoded: Vec<String> = key
            .split('/')
            .map(|segment| {
                percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
            })
            .collect();
        let path = format!("/{bucket}/{}", encoded.join("/"));
        let url = format!("{}{path}", self.endpoint).parse().context("SLUICE_ENDPOINT is not a URL")?;
        Ok((url, path))
    }

    fn params(&self, service: &'static str) -> SigningParams<'_> {
        SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            security_token: self.session_token.as_deref(),
            region: &self.region,
            service,
            now_millis: SystemClock.now_millis(),
        }
    }

    pub async fn create_key(&self, name: &str) -> anyhow::Result<Value> {
        self.post_admin("/admin/v1/keys", &serde_json::json!({"name": name})).await
    }
}

//! `sluice worker`: a ready CodePipeline job worker. For each job of its action type it
//! acknowledges, downloads the input artifacts to `in/<ArtifactName>` in a fresh directory, runs
//! the command there with the action configuration as environment variables, uploads each
//! `out/<ArtifactName>/` directory as a zip to its output artifact, and reports success (the last
//! line of stdout as summary) or failure (exit code and the tail of stderr). Server errors are
//! retried with backoff, so it rides out restarts; SIGTERM stops polling and lets running jobs
//! finish.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::client::{Client, TempCredentials};

/// What the worker serves and runs.
pub struct WorkerSpec {
    pub action_type: Value,
    pub query: Option<(String, String)>,
    pub concurrency: usize,
    pub command: Vec<String>,
}

/// Parses `CATEGORY/OWNER/PROVIDER/VERSION`.
pub fn parse_action_type(text: &str) -> Result<Value, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let [category, owner, provider, version] = parts.as_slice() else {
        return Err(format!("{text:?} is not CATEGORY/OWNER/PROVIDER/VERSION"));
    };
    Ok(json!({"category": category, "owner": owner, "provider": provider, "version": version}))
}

/// Parses `KEY=VALUE`.
pub fn parse_query(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// Runs until SIGTERM/SIGINT; returns after running jobs finished.
pub async fn run(client: Client, spec: WorkerSpec) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let client = std::sync::Arc::new(client);
    let spec = std::sync::Arc::new(spec);
    let mut loops = Vec::new();
    for _ in 0..spec.concurrency.max(1) {
        loops.push(tokio::spawn(work_loop(client.clone(), spec.clone(), stopped.clone())));
    }
    shutdown_signal().await;
    eprintln!("sluice worker: stopping; running jobs finish first");
    let _ = stop.send(true);
    for handle in loops {
        handle.await?;
    }
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}

async fn work_loop(
    client: std::sync::Arc<Client>,
    spec: std::sync::Arc<WorkerSpec>,
    stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    while !*stopped.borrow() {
        match poll_once(&client, &spec).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(err) => {
                eprintln!("sluice worker: {err:#}; retrying in {backoff:?}");
                let mut wake = stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {},
                    _ = wake.changed() => {},
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn poll_once(client: &Client, spec: &WorkerSpec) -> anyhow::Result<()> {
    let mut body = json!({"actionTypeId": spec.action_type, "maxBatchSize": 1});
    if let Some((key, value)) = &spec.query {
        body["queryParam"] = json!({key: value});
    }
    let polled = client.codepipeline("PollForJobs", &body).await?;
    for job in polled["jobs"].as_array().cloned().unwrap_or_default() {
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let nonce = job["nonce"].as_str().unwrap_or_default();
        client.codepipeline("AcknowledgeJob", &json!({"jobId": id, "nonce": nonce})).await?;
        let report = match run_job(client, spec, &job).await {
            Ok(summary) => {
                let details = json!({"summary": summary, "percentComplete": 100});
                client
                    .codepipeline("PutJobSuccessResult", &json!({"jobId": id, "executionDetails": details}))
                    .await
            }
            Err(err) => {
                let message: String = format!("{err:#}").chars().take(4000).collect();
                let failure = json!({"type": "JobFailed", "message": message});
                client
                    .codepipeline("PutJobFailureResult", &json!({"jobId": id, "failureDetails": failure}))
                    .await
            }
        };
        report?;
    }
    Ok(())
}

fn credentials_of(data: &Value) -> anyhow::Result<TempCredentials> {
    let c = &data["artifactCredentials"];
    let text = |k: &str| c[k].as_str().map(str::to_string).context("job data has no artifact credentials");
    Ok(TempCredentials {
        access_key_id: text("accessKeyId")?,
        secret_access_key: text("secretAccessKey")?,
        session_token: text("sessionToken")?,
    })
}

fn location(artifact: &Value) -> (String, String, String) {
    let s3 = &artifact["location"]["s3Location"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (text(&artifact["name"]), text(&s3["bucketName"]), text(&s3["objectKey"]))
}

/// Runs one job in a fresh directory; the summary on success.
async fn run_job(client: &Client, spec: &WorkerSpec, job: &Value) -> anyhow::Result<String> {
    let data = &job["data"];
    let credentials = credentials_of(data)?;
    let dir = std::env::temp_dir().join(format!("sluice-job-{}", uuid::Uuid::new_v4().simple()));
    let result = run_in(client, spec, data, &credentials, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    client: &Client,
    spec: &WorkerSpec,
    data: &Value,
    credentials: &TempCredentials,
    dir: &Path,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir.join("in"))?;
    for artifact in data["inputArtifacts"].as_array().cloned().unwrap_or_default() {
        let (name, bucket, key) = location(&artifact);
        let bytes = client.get_object(credentials, &bucket, &key).await?;
        std::fs::write(dir.join("in").join(safe_name(&name)?), bytes)?;
    }
    let outputs = data["outputArtifacts"].as_array().cloned().unwrap_or_default();
    for artifact in &outputs {
        std::fs::create_dir_all(dir.join("out").join(safe_name(&location(artifact).0)?))?;
    }
    let mut command = tokio::process::Command::new(&spec.command[0]);
    command.args(&spec.command[1..]).current_dir(dir).kill_on_drop(true);
    if let Some(configuration) = data["actionConfiguration"]["configuration"].as_object() {
        for (name, value) in configuration {
            command.env(name, value.as_str().unwrap_or_default());
        }
    }
    command.env("SLUICE_JOB_PIPELINE", data["pipelineContext"]["pipelineName"].as_str().unwrap_or_default());
    command.env("SLUICE_JOB_CONTINUATION_TOKEN", data["continuationToken"].as_str().unwrap_or_default());
    let output = command.output().await.with_context(|| format!("cannot run {:?}", spec.command[0]))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("command exited with {}: {}", output.status, tail.trim());
    }
    for artifact in &outputs {
        let (name, bucket, key) = location(artifact);
        let archive = zip_directory(&dir.join("out").join(safe_name(&name)?))?;
        client.put_object(credentials, &bucket, &key, archive).await?;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("done").chars().take(2048).collect())
}

/// An artifact name as a single path component.
fn safe_name(name: &str) -> anyhow::Result<&str> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        bail!("artifact name {name:?} is not a plain name")
    }
}

/// The files under `dir` (recursively) as a zip archive.
fn zip_directory(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&current)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
            writer.start_file(relative, options)?;
            writer.write_all(&std::fs::read(&path)?)?;
        }
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        assert_eq!(parse_action_type("Build/Custom/Make/1").unwrap()["provider"], "Make");
        assert!(parse_action_type("Build/Custom/Make").is_err());
        assert_eq!(parse_query("Target=all").unwrap(), ("Target".into(), "all".into()));
        assert!(parse_query("Target").is_err());
        assert!(safe_name("bin").is_ok() && safe_name("../x").is_err() && safe_name("").is_err());
    }

    #[test]
    fn output_directories_become_zips() {
        let dir = std::env::temp_dir().join(format!("sluice-zip-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"alpha").unwrap();
        std::fs::write(dir.join("sub/b.txt"), b"beta").unwrap();
        let bytes = zip_directory(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, ["a.txt", "sub/b.txt"]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("sub/b.txt").unwrap(), &mut text).unwrap();
        assert_eq!(text, "beta");
    }
}

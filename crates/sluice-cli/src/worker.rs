//! `sluice worker`: a ready CodePipeline job worker. For each job of its action type it
//! acknowledges, downloads the input artifacts to `in/<ArtifactName>` in a fresh directory, runs
//! the command there with the action configuration as environment variables, uploads each
//! `out/<ArtifactName>/` directory as a zip to its output artifact, and reports success (the last
//! line of stdout as summary) or failure (exit code and the tail of stderr). While the command
//! runs, the last line it printed so far is reported as the action's progress (its summary, and
//! its percentage when the line starts with one, such as `40% linked`). Server errors are
//! retried with backoff, so it rides out restarts; SIGTERM stops polling and lets running jobs
//! finish.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::watch;

use crate::client::{Client, TempCredentials};

/// What the worker serves and runs.
pub struct WorkerSpec {
    pub action_type: Value,
    pub query: Option<(String, String)>,
    pub concurrency: usize,
    /// How often a running command's progress is reported (when it changed).
    pub progress_every: Duration,
    pub command: Vec<String>,
}

/// The most characters of a summary (CodePipeline's bound for execution details).
const SUMMARY_CHARS: usize = 2048;

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

/// Parses a positive number of seconds, such as `10` or `0.5`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text:?} must be more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
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
        let held = HeldJob { id: &id, nonce };
        let report = match run_job(client, spec, &held, &job).await {
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

/// A job this worker acknowledged: its id and the nonce that proves it holds it.
struct HeldJob<'a> {
    id: &'a str,
    nonce: &'a str,
}

/// Runs one job in a fresh directory; the summary on success.
async fn run_job(
    client: &Client,
    spec: &WorkerSpec,
    held: &HeldJob<'_>,
    job: &Value,
) -> anyhow::Result<String> {
    let data = &job["data"];
    let credentials = credentials_of(data)?;
    let dir = std::env::temp_dir().join(format!("sluice-job-{}", uuid::Uuid::new_v4().simple()));
    let result = run_in(client, spec, held, data, &credentials, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    client: &Client,
    spec: &WorkerSpec,
    held: &HeldJob<'_>,
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
    let finished = run_command(client, spec, held, command).await?;
    if !finished.status.success() {
        let stderr = String::from_utf8_lossy(&finished.stderr);
        let tail: String = stderr.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("command exited with {}: {}", finished.status, tail.trim());
    }
    for artifact in &outputs {
        let (name, bucket, key) = location(artifact);
        let archive = zip_directory(&dir.join("out").join(safe_name(&name)?))?;
        client.put_object(credentials, &bucket, &key, archive).await?;
    }
    Ok(finished.last_line.unwrap_or_else(|| "done".to_string()))
}

/// What a command left when it exited: its status, the last non-empty line it printed on
/// stdout (at most [`SUMMARY_CHARS`] characters), and its stderr.
struct Finished {
    status: ExitStatus,
    last_line: Option<String>,
    stderr: Vec<u8>,
}

/// Runs a job's command. While it runs, every `progress_every` the last line it printed, if
/// that changed, is reported as the job's progress; a report that fails is logged and the
/// command goes on.
async fn run_command(
    client: &Client,
    spec: &WorkerSpec,
    held: &HeldJob<'_>,
    mut command: tokio::process::Command,
) -> anyhow::Result<Finished> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| format!("cannot run {:?}", spec.command[0]))?;
    let last = Arc::new(Mutex::new(None));
    let stdout = child.stdout.take().context("the command has no stdout")?;
    let lines = tokio::spawn(keep_last_line(stdout, last.clone()));
    let mut stderr = child.stderr.take().context("the command has no stderr")?;
    let errors = tokio::spawn(async move {
        let mut bytes = Vec::new();
        stderr.read_to_end(&mut bytes).await.map(|_| bytes)
    });
    let mut tick = tokio::time::interval(spec.progress_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut reported: Option<String> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = tick.tick() => {
                let line = last.lock().expect("last line").clone();
                if line.is_some() && line != reported {
                    report_progress(client, held, line.as_deref().unwrap_or_default()).await;
                    reported = line;
                }
            }
        }
    };
    lines.await??;
    let stderr = errors.await??;
    let last_line = last.lock().expect("last line").take();
    Ok(Finished { status, last_line, stderr })
}

/// Reads `output` to its end, keeping its last non-empty line in `last`.
async fn keep_last_line(
    output: impl AsyncRead + Unpin,
    last: Arc<Mutex<Option<String>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).await? > 0 {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if !text.trim().is_empty() {
            *last.lock().expect("last line") = Some(text.chars().take(SUMMARY_CHARS).collect());
        }
        line.clear();
    }
    Ok(())
}

/// Reports a line as a running job's progress: the summary, and the percentage it starts
/// with, if any.
async fn report_progress(client: &Client, held: &HeldJob<'_>, line: &str) {
    let mut body = json!({"jobId": held.id, "nonce": held.nonce, "summary": line});
    if let Some(percent) = leading_percent(line) {
        body["percentComplete"] = json!(percent);
    }
    if let Err(err) = client.post_admin("/admin/v1/pipeline-jobs/progress", &body).await {
        eprintln!("sluice worker: reporting the progress of job {} failed: {err:#}", held.id);
    }
}

/// The percentage a line starts with (`40%` or `40 %`, from 0 to 100).
fn leading_percent(line: &str) -> Option<i64> {
    let line = line.trim_start();
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let rest = line[digits..].trim_start();
    if digits == 0 || digits > 3 || !rest.starts_with('%') {
        return None;
    }
    line[..digits].parse().ok().filter(|p| (0..=100).contains(p))
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
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err() && parse_seconds("-1").is_err() && parse_seconds("x").is_err());
    }

    #[test]
    fn a_line_may_start_with_its_percentage() {
        assert_eq!(leading_percent("40% linked"), Some(40));
        assert_eq!(leading_percent("  100 % done"), Some(100));
        assert_eq!(leading_percent("0%"), Some(0));
        assert_eq!(leading_percent("101% over"), None);
        assert_eq!(leading_percent("step 3 of 4"), None);
        assert_eq!(leading_percent("%"), None);
        assert_eq!(leading_percent("1000%"), None);
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

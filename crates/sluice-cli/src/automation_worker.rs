//! `sluice worker --automation`: runs the `aws:executeScript` and `aws:runCommand` steps of SSM
//! Automation executions, outside the server. Each job is acknowledged, run in a fresh directory
//! (a Python handler through a small driver, or shell commands), watched (the server is asked
//! every two seconds whether the job is still wanted; a cancelled execution's job is killed) and
//! bounded by its timeout, then reported. Server errors are retried with backoff; SIGTERM stops
//! polling and lets running jobs finish.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::client::Client;

/// Calls `handler(events, context)` from the step's script and writes its return value as JSON
/// to the result file; prints go to the step's output, an exception fails the step.
const PYTHON_DRIVER: &str = r#"
import json, sys
script, handler_name, payload, result = sys.argv[1:5]
namespace = {"__name__": "sluice_step"}
with open(script) as source:
    exec(compile(source.read(), "script", "exec"), namespace)
handler = namespace.get(handler_name)
if not callable(handler):
    sys.exit(f"Handler {handler_name} is not a function of the script")
with open(payload) as source:
    events = json.load(source)
value = handler(events, {})
with open(result, "w") as sink:
    json.dump(value, sink)
"#;

/// How often a running job asks whether it is still wanted.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How much of a command's output a result keeps, as AWS's runCommand `Output` does.
const OUTPUT_CHARS: usize = 2_500;

/// Runs until SIGTERM/SIGINT; returns after running jobs finished.
pub async fn run(client: Client, concurrency: usize) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let client = std::sync::Arc::new(client);
    let loops: Vec<_> =
        (0..concurrency.max(1)).map(|_| tokio::spawn(work_loop(client.clone(), stopped.clone()))).collect();
    crate::worker::shutdown_signal().await;
    eprintln!("sluice worker: stopping; running jobs finish first");
    let _ = stop.send(true);
    for handle in loops {
        handle.await?;
    }
    Ok(())
}

async fn work_loop(client: std::sync::Arc<Client>, stopped: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    while !*stopped.borrow() {
        match poll_once(&client).await {
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

async fn poll_once(client: &Client) -> anyhow::Result<()> {
    let polled = client
        .post_admin("/admin/v1/automation-jobs/poll", &json!({"maxJobs": 1, "waitSeconds": 10}))
        .await?;
    for job in polled["jobs"].as_array().cloned().unwrap_or_default() {
        let id = job["jobId"].as_str().unwrap_or_default().to_string();
        let nonce = job["nonce"].as_str().unwrap_or_default().to_string();
        client
            .post_admin("/admin/v1/automation-jobs/acknowledge", &json!({"jobId": id, "nonce": nonce}))
            .await?;
        let report = match run_watched(client, &id, &job).await {
            Watched::Finished(Ok(result)) => json!({"jobId": id, "nonce": nonce, "result": result}),
            Watched::Finished(Err(err)) => {
                json!({"jobId": id, "nonce": nonce, "failure": format!("{err:#}")})
            }
            Watched::NotWanted(status) => {
                eprintln!("sluice worker: job {id} is {status}; stopped it");
                continue;
            }
        };
        client.post_admin("/admin/v1/automation-jobs/complete", &report).await?;
    }
    Ok(())
}

enum Watched {
    Finished(anyhow::Result<Value>),
    /// The server no longer wants the job (its execution was cancelled): its status.
    NotWanted(String),
}

/// Runs a job while asking the server whether it is still wanted; dropping the run kills its
/// process.
async fn run_watched(client: &Client, id: &str, job: &Value) -> Watched {
    let timeout = Duration::from_secs(job["timeoutSeconds"].as_u64().unwrap_or(600));
    let dir = std::env::temp_dir().join(format!("sluice-step-{}", uuid::Uuid::new_v4().simple()));
    let mut run = Box::pin(tokio::time::timeout(timeout, run_job(job, &dir)));
    let outcome = loop {
        tokio::select! {
            finished = &mut run => break match finished {
                Ok(result) => Watched::Finished(result),
                Err(_) => Watched::Finished(Err(anyhow::anyhow!("The step ran past its {}s timeout", timeout.as_secs()))),
            },
            _ = tokio::time::sleep(STATUS_EVERY) => {
                let status = client.post_admin("/admin/v1/automation-jobs/status", &json!({"jobId": id})).await;
                if let Ok(status) = status {
                    let status = status["status"].as_str().unwrap_or_default().to_string();
                    if status != "InProgress" {
                        break Watched::NotWanted(status);
                    }
                }
            }
        }
    };
    drop(run); // kills the step's process if it still runs
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn run_job(job: &Value, dir: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir)?;
    let inputs = &job["inputs"];
    match job["action"].as_str().unwrap_or_default() {
        "aws:executeScript" => run_script(inputs, dir).await,
        "aws:runCommand" => run_command(inputs, dir).await,
        other => bail!("This worker does not run {other} steps"),
    }
}

async fn run_script(inputs: &Value, dir: &Path) -> anyhow::Result<Value> {
    let runtime = inputs["Runtime"].as_str().unwrap_or_default();
    if !runtime.starts_with("python3") {
        bail!("Runtime {runtime:?} is not supported: this worker runs python3 scripts");
    }
    let handler = inputs["Handler"].as_str().context("the step has no Handler")?;
    let script = inputs["Script"].as_str().context("the step has no Script")?;
    let payload = inputs.get("InputPayload").cloned().unwrap_or_else(|| json!({}));
    std::fs::write(dir.join("script.py"), script)?;
    std::fs::write(dir.join("driver.py"), PYTHON_DRIVER)?;
    std::fs::write(dir.join("payload.json"), payload.to_string())?;
    let mut command = tokio::process::Command::new("python3");
    command.args(["driver.py", "script.py", handler, "payload.json", "result.json"]);
    let (_, _) = finish(command, dir).await?;
    let text = std::fs::read_to_string(dir.join("result.json")).context("the script wrote no result")?;
    let value: Value = serde_json::from_str(&text).context("the handler's return value is not JSON")?;
    let output_payload = json!({"Payload": value}).to_string();
    Ok(json!({"Payload": value, "OutputPayload": output_payload}))
}

async fn run_command(inputs: &Value, dir: &Path) -> anyhow::Result<Value> {
    let document = inputs["DocumentName"].as_str().unwrap_or_default();
    if document != "AWS-RunShellScript" {
        bail!("DocumentName {document:?} is not supported: this worker runs AWS-RunShellScript");
    }
    let lines: Vec<String> = match &inputs["Parameters"]["commands"] {
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string())).collect()
        }
        Value::String(text) => vec![text.clone()],
        _ => bail!("Parameters.commands must be a list of shell commands"),
    };
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(lines.join("\n"));
    let (stdout, _) = finish(command, dir).await?;
    let output: String = tail(&stdout, OUTPUT_CHARS);
    let id = uuid::Uuid::new_v4().to_string();
    Ok(json!({"CommandId": id, "Status": "Success", "ResponseCode": 0, "Output": output}))
}

/// Runs `command` in `dir` without Sluice's or AWS's credentials in its environment; its stdout
/// and stderr, or an error with the exit code and stderr's tail.
async fn finish(mut command: tokio::process::Command, dir: &Path) -> anyhow::Result<(String, String)> {
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("SLUICE_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("cannot start the step's process")?;
    let (mut stdout, mut stderr) =
        (child.stdout.take().context("stdout")?, child.stderr.take().context("stderr")?);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (read_out, read_err, status) =
        tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err), child.wait());
    read_out?;
    read_err?;
    let status = status?;
    let (out, err) = (String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned());
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        bail!("The step's process exited with {code}: {}", tail(&err, 2_000).trim());
    }
    Ok((out, err))
}

/// The last `chars` characters of `text`.
fn tail(text: &str, chars: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(chars)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-step-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_script_returns_its_handlers_value() {
        let dir = scratch();
        let inputs = json!({
            "Runtime": "python3.11",
            "Handler": "go",
            "Script": "def go(events, context):\n    print('noise')\n    return {'sum': events['a'] + 1}\n",
            "InputPayload": {"a": 41},
        });
        let result = run_script(&inputs, &dir).await.unwrap();
        assert_eq!(result["Payload"], json!({"sum": 42}));
        assert_eq!(result["OutputPayload"], json!("{\"Payload\":{\"sum\":42}}"));
        let failing = json!({"Runtime": "python3.11", "Handler": "go", "Script": "def go(e, c):\n    raise ValueError('boom')\n"});
        let err = run_script(&failing, &dir).await.unwrap_err().to_string();
        assert!(err.contains("ValueError: boom"), "{err}");
        let powershell = json!({"Runtime": "PowerShell 7.4", "Handler": "go", "Script": ""});
        assert!(run_script(&powershell, &dir).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn commands_report_output_and_exit_codes() {
        let dir = scratch();
        let ok = json!({"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["echo one", "echo two"]}});
        let result = run_command(&ok, &dir).await.unwrap();
        assert_eq!(result["Output"], json!("one\ntwo\n"));
        assert_eq!(result["ResponseCode"], json!(0));
        let failing =
            json!({"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": "echo bad >&2; exit 3"}});
        let err = run_command(&failing, &dir).await.unwrap_err().to_string();
        assert!(err.contains("exited with 3") && err.contains("bad"), "{err}");
        let other = json!({"DocumentName": "AWS-RunPowerShellScript", "Parameters": {"commands": []}});
        assert!(run_command(&other, &dir).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tails_keep_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
    }
}

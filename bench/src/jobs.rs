//! The job benchmarks of issue 3, over signed HTTP against a running `sluice serve`:
//! B1/B1b per-job throughput (producers start executions of a two-stage PARALLEL pipeline of
//! custom actions, workers poll → acknowledge → succeed), B2 step handoff (one worker serves a
//! 40-stage pipeline) and B3 pickup latency (jobs created 20 ms apart, picked up by long polls).
//! A pipeline's first stage must hold source actions, so each run registers a custom Source and
//! a custom Build type and the first stage's jobs are source jobs.
//! Every run creates its own action type and pipeline, and stops by itself at `--timeout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::{call, client, now_millis, signed_request, HttpClient};

/// One benchmark run's target: the server and a name that is new in this run.
#[derive(Clone)]
pub struct Target {
    pub endpoint: String,
    pub client: HttpClient,
    pub provider: String,
}

impl Target {
    pub fn new(endpoint: &str, label: &str) -> Self {
        let provider = format!("{label}{}", now_millis() % 1_000_000_000);
        Target { endpoint: endpoint.to_string(), client: client(), provider }
    }

    async fn call(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        let request = signed_request(&self.endpoint, operation, body)?;
        let (status, answer) = call(&self.client, request).await?;
        if status != 200 {
            bail!("{operation} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        if answer.is_empty() {
            return Ok(json!({}));
        }
        Ok(serde_json::from_slice(&answer)?)
    }

    fn type_id(&self, category: Category) -> Value {
        json!({"category": category.name(), "owner": "Custom", "provider": self.provider, "version": "1"})
    }

    /// Custom Source and Build action types without artifacts, and a V2 pipeline of `stages`
    /// stages of one action each (a source action first, as pipelines require), with a pipeline
    /// variable `seq` that the action configuration carries.
    async fn create(&self, stages: usize, mode: &str) -> anyhow::Result<String> {
        for category in [Category::Source, Category::Build] {
            let action_type = json!({
                "category": category.name(), "provider": self.provider, "version": "1",
                "configurationProperties": [{"name": "Seq", "required": false, "key": false, "secret": false}],
                "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
                "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}
            });
            self.call("CreateCustomActionType", &action_type).await?;
        }
        let stages: Vec<Value> = (0..stages)
            .map(|i| {
                let category = if i == 0 { Category::Source } else { Category::Build };
                json!({"name": format!("S{i}"), "actions": [{"name": format!("A{i}"),
                       "actionTypeId": self.type_id(category), "configuration": {"Seq": "#{variables.seq}"}}]})
            })
            .collect();
        let name = format!("{}-pipe", self.provider);
        let pipeline = json!({"pipeline": {
            "name": name, "roleArn": "arn:aws:iam::123456789012:role/bench",
            "artifactStore": {"type": "S3", "location": "bench"},
            "pipelineType": "V2", "executionMode": mode,
            "variables": [{"name": "seq", "defaultValue": "0"}],
            "stages": stages,
        }});
        self.call("CreatePipeline", &pipeline).await?;
        Ok(name)
    }

    async fn start(&self, pipeline: &str, seq: usize) -> anyhow::Result<String> {
        let body = json!({"name": pipeline, "variables": [{"name": "seq", "value": seq.to_string()}]});
        let answer = self.call("StartPipelineExecution", &body).await?;
        Ok(answer["pipelineExecutionId"].as_str().unwrap_or_default().to_string())
    }

    async fn poll(&self, category: Category, batch: usize) -> anyhow::Result<Vec<Value>> {
        let body = json!({"actionTypeId": self.type_id(category), "maxBatchSize": batch});
        let answer = self.call("PollForJobs", &body).await?;
        Ok(answer["jobs"].as_array().cloned().unwrap_or_default())
    }

    /// Acknowledge, then report success: the job's whole life after its poll.
    async fn finish(&self, job: &Value) -> anyhow::Result<()> {
        self.acknowledge(job).await?;
        self.succeed(job).await
    }

    async fn acknowledge(&self, job: &Value) -> anyhow::Result<()> {
        let id = job["id"].as_str().context("job without id")?;
        self.call("AcknowledgeJob", &json!({"jobId": id, "nonce": job["nonce"]})).await?;
        Ok(())
    }

    async fn succeed(&self, job: &Value) -> anyhow::Result<()> {
        let id = job["id"].as_str().context("job without id")?;
        self.call("PutJobSuccessResult", &json!({"jobId": id})).await?;
        Ok(())
    }

    async fn execution_status(&self, pipeline: &str, id: &str) -> anyhow::Result<String> {
        let answer = self
            .call("GetPipelineExecution", &json!({"pipelineName": pipeline, "pipelineExecutionId": id}))
            .await?;
        Ok(answer["pipelineExecution"]["status"].as_str().unwrap_or_default().to_string())
    }
}

#[derive(Debug, Clone, Copy)]
enum Category {
    Source,
    Build,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Source => "Source",
            Category::Build => "Build",
        }
    }
}

fn within<T>(
    timeout: Duration,
    what: &str,
    result: Result<T, tokio::time::error::Elapsed>,
) -> anyhow::Result<T> {
    result.map_err(|_| anyhow::anyhow!("{what} did not finish within {timeout:?}"))
}

/// B1/B1b: `jobs` no-op jobs from executions of a two-stage PARALLEL pipeline.
pub async fn throughput(
    target: Target,
    jobs: usize,
    producers: usize,
    workers: usize,
    batch: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let pipeline = target.create(2, "PARALLEL").await?;
    let executions = jobs / 2;
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let last: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let begin = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (target, pipeline, started) = (target.clone(), pipeline.clone(), started.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = started.fetch_add(1, Ordering::SeqCst);
                if seq >= executions {
                    return anyhow::Ok(());
                }
                target.start(&pipeline, seq).await?;
            }
        }));
    }
    // Half the workers serve the source stage, half the build stage.
    for worker in 0..workers {
        let category = if worker % 2 == 0 { Category::Source } else { Category::Build };
        let (target, done, last) = (target.clone(), done.clone(), last.clone());
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::SeqCst) < jobs {
                // A batch is acknowledged first, as a worker must within the visibility
                // timeout, then worked through.
                let polled = target.poll(category, batch).await?;
                for job in &polled {
                    target.acknowledge(job).await?;
                }
                for job in polled {
                    target.succeed(&job).await?;
                    if done.fetch_add(1, Ordering::SeqCst) + 1 == jobs {
                        *last.lock().expect("last") = Some(Instant::now());
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    let all = futures_all(tasks);
    within(timeout, "B1", tokio::time::timeout(timeout, all).await)??;
    // From the first start to the last acknowledged (so committed) completion; the workers'
    // final empty long polls do not count.
    let end = last.lock().expect("last").context("no job completed")?;
    let seconds = (end - begin).as_secs_f64();
    let completed = done.load(Ordering::SeqCst);
    if completed != jobs {
        bail!("{completed} jobs completed, expected {jobs}");
    }
    Ok(json!({"shape": if batch > 1 { "B1b" } else { "B1" }, "jobs": jobs, "producers": producers,
              "workers": workers, "batch": batch, "seconds": seconds, "jobs_per_s": jobs as f64 / seconds}))
}

/// Waits for every task; the first failure is returned at once (the others are aborted), so a
/// refused request shows up as itself, not as a timeout.
async fn futures_all(tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let mut set = tokio::task::JoinSet::new();
    for task in tasks {
        set.spawn(async move { task.await? });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    Ok(())
}

/// B2: one worker serves a pipeline of `steps` sequential stages; ms per step over `rounds`
/// executions (the median round).
pub async fn handoff(
    target: Target,
    steps: usize,
    rounds: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let pipeline = target.create(steps, "QUEUED").await?;
    let mut per_step = Vec::new();
    for round in 0..rounds {
        let begin = Instant::now();
        let run = async {
            let id = target.start(&pipeline, round).await?;
            let mut finished = 0;
            while finished < steps {
                let category = if finished == 0 { Category::Source } else { Category::Build };
                for job in target.poll(category, 1).await? {
                    target.finish(&job).await?;
                    finished += 1;
                }
            }
            let status = target.execution_status(&pipeline, &id).await?;
            if status != "Succeeded" {
                bail!("execution {id} is {status} after {steps} steps");
            }
            anyhow::Ok(())
        };
        within(timeout, "B2", tokio::time::timeout(timeout, run).await)??;
        per_step.push(begin.elapsed().as_secs_f64() * 1000.0 / steps as f64);
    }
    let all = per_step.clone();
    per_step.sort_by(f64::total_cmp);
    Ok(json!({"shape": "B2", "steps": steps, "rounds": all, "ms_per_step": per_step[per_step.len() / 2]}))
}

/// B3: `jobs` executions started `interval` apart while `pollers` long-poll for their source
/// jobs; the latency from sending the start request to the poll answer that carries the job.
/// A drain task finishes the second stage's jobs.
pub async fn pickup(
    target: Target,
    jobs: usize,
    interval: Duration,
    pollers: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let pipeline = target.create(2, "PARALLEL").await?;
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; jobs]));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..pollers {
        let (target, sent, latencies) = (target.clone(), sent.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            while latencies.lock().expect("latencies").len() < jobs {
                for job in target.poll(Category::Source, 1).await? {
                    let picked = Instant::now();
                    let seq: usize = job["data"]["actionConfiguration"]["configuration"]["Seq"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .context("job without Seq")?;
                    let at = sent.lock().expect("sent")[seq].context("job picked before it was sent")?;
                    latencies.lock().expect("latencies").push((picked - at).as_secs_f64() * 1000.0);
                    target.finish(&job).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    let drain = {
        let target = target.clone();
        tokio::spawn(async move {
            let mut drained = 0;
            while drained < jobs {
                for job in target.poll(Category::Build, 10).await? {
                    target.finish(&job).await?;
                    drained += 1;
                }
            }
            anyhow::Ok(())
        })
    };
    tasks.push(drain);
    // Let the pollers enter their long polls before the first job.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let producer = {
        let (target, sent) = (target.clone(), sent.clone());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            for seq in 0..jobs {
                ticker.tick().await;
                sent.lock().expect("sent")[seq] = Some(Instant::now());
                target.start(&pipeline, seq).await?;
            }
            anyhow::Ok(())
        })
    };
    tasks.push(producer);
    within(timeout, "B3", tokio::time::timeout(timeout, futures_all(tasks)).await)??;
    let mut all = latencies.lock().expect("latencies").clone();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Ok(json!({"shape": "B3", "jobs": jobs, "interval_ms": interval.as_millis() as u64, "pollers": pollers,
              "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": all[all.len() - 1]}))
}

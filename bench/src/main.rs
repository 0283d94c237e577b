//! `sluice-bench`: load generators for Sluice. `bare` serves a bare axum handler for comparison;
//! `setup` creates the pipeline the reads use; `get-pipeline` sends signed GetPipeline requests
//! at a fixed concurrency for a bounded time and prints req/s and p50/p99 latency as JSON;
//! `throughput`, `handoff` and `pickup` are the job benchmarks B1/B1b, B2 and B3 ([`jobs`]);
//! `automation-paging` times DescribeAutomationExecutions pages ([`automation`]);
//! `cloudforet-jobs` times Cloudforet Job list and stat over REST ([`cloudforet`]).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use sluice_aws::sigv4::{sha256_hex, sign_headers, SigningParams};

mod automation;
mod cloudforet;
mod jobs;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a bare axum handler that answers any POST with a fixed JSON body.
    Bare {
        #[arg(long, default_value = "127.0.0.1:8760")]
        listen: String,
    },
    /// Create the custom action type and pipeline the reads use.
    Setup {
        #[arg(long)]
        endpoint: String,
    },
    /// B1/B1b: per-job throughput; producers start two-job executions, workers run the jobs.
    Throughput {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        #[arg(long, default_value_t = 16)]
        producers: usize,
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// PollForJobs maxBatchSize (1 for B1, 100 for B1b).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// B2: step handoff through a sequential pipeline served by one worker.
    Handoff {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 40)]
        steps: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// B3: pickup latency of single jobs created at a fixed interval.
    Pickup {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 300)]
        jobs: usize,
        #[arg(long, default_value_t = 20)]
        interval_ms: u64,
        #[arg(long, default_value_t = 1)]
        pollers: usize,
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// DescribeAutomationExecutions paging: walks `pages` pages of 50 from the newest, checking
    /// for gaps and duplicates, then times `samples` filtered first pages.
    AutomationPaging {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 200)]
        pages: usize,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Cloudforet Job list and stat over REST: four query shapes, `warmup` then `samples`
    /// requests each, one at a time, every answer checked against the seeder's counts.
    CloudforetJobs {
        #[arg(long)]
        endpoint: String,
        /// A DOMAIN_ADMIN token of the benchmark domain (`sluice cloudforet token`).
        #[arg(long)]
        token: String,
        /// The plugin the list shapes filter on.
        #[arg(long)]
        plugin: String,
        /// The seeder's JSON: `{"counts": {plugin: {status: n}}}` for the benchmark domain.
        #[arg(long)]
        seeded: String,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Stop measuring a shape after this many seconds even if fewer samples were sent.
        #[arg(long, default_value_t = 120)]
        budget_seconds: u64,
    },
    /// Signed GetPipeline requests at a fixed concurrency for a bounded time.
    GetPipeline {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

const PIPELINE: &str = "bench-pipeline";

/// The same allocator as the `sluice` binary, so the bare handler is compared like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Bare { listen } => bare(&listen).await,
            Command::Setup { endpoint } => setup(&endpoint).await,
            Command::Throughput { endpoint, jobs, producers, workers, batch, timeout_seconds } => {
                let target = jobs::Target::new(&endpoint, "Thru");
                let timeout = Duration::from_secs(timeout_seconds);
                println!("{}", jobs::throughput(target, jobs, producers, workers, batch, timeout).await?);
                Ok(())
            }
            Command::Handoff { endpoint, steps, rounds, timeout_seconds } => {
                let target = jobs::Target::new(&endpoint, "Hand");
                println!(
                    "{}",
                    jobs::handoff(target, steps, rounds, Duration::from_secs(timeout_seconds)).await?
                );
                Ok(())
            }
            Command::Pickup { endpoint, jobs, interval_ms, pollers, timeout_seconds } => {
                let target = jobs::Target::new(&endpoint, "Pick");
                let (interval, timeout) =
                    (Duration::from_millis(interval_ms), Duration::from_secs(timeout_seconds));
                println!("{}", jobs::pickup(target, jobs, interval, pollers, timeout).await?);
                Ok(())
            }
            Command::AutomationPaging { endpoint, pages, samples } => {
                println!("{}", automation::paging(&endpoint, pages, samples).await?);
                Ok(())
            }
            Command::CloudforetJobs { endpoint, token, plugin, seeded, warmup, samples, budget_seconds } => {
                let run = cloudforet::Run {
                    endpoint: &endpoint,
                    token: &token,
                    plugin: &plugin,
                    seeded_path: &seeded,
                    warmup,
                    samples,
                    budget: Duration::from_secs(budget_seconds),
                };
                println!("{}", cloudforet::jobs(run).await?);
                Ok(())
            }
            Command::GetPipeline { endpoint, concurrency, seconds } => {
                let report = get_pipeline(&endpoint, concurrency, Duration::from_secs(seconds)).await?;
                println!("{report}");
                Ok(())
            }
        }
    })
}

async fn bare(listen: &str) -> anyhow::Result<()> {
    let body = json!({"pipeline": {"name": PIPELINE, "version": 1}, "metadata": {}}).to_string();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/x-amz-json-1.1")], body) }
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("bare handler on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

struct Credentials {
    id: String,
    secret: String,
}

fn credentials() -> anyhow::Result<Credentials> {
    Ok(Credentials {
        id: std::env::var("AWS_ACCESS_KEY_ID").context("set AWS_ACCESS_KEY_ID")?,
        secret: std::env::var("AWS_SECRET_ACCESS_KEY").context("set AWS_SECRET_ACCESS_KEY")?,
    })
}

fn now_millis() -> i64 {
    #[allow(clippy::disallowed_methods)] // a load generator signs with the wall clock
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A signed AWS JSON 1.1 request; SigV4 signatures stay valid for 15 minutes, so one signed
/// request is replayed for the whole run.
fn signed_request(
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    signed_service_request(endpoint, ("CodePipeline_20150709", "codepipeline"), operation, body)
}

/// A signed AWS JSON 1.1 request to a service: (target prefix, signing name).
fn signed_service_request(
    endpoint: &str,
    (prefix, service): (&str, &str),
    operation: &str,
    body: &Value,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let creds = credentials()?;
    let uri: http::Uri = endpoint.parse()?;
    let host = uri.authority().context("endpoint has no host")?.to_string();
    let payload = body.to_string().into_bytes();
    let target = format!("{prefix}.{operation}");
    let headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amz-target".to_string(), target),
    ];
    let params = SigningParams {
        access_key_id: &creds.id,
        secret_access_key: &creds.secret,
        security_token: None,
        region: "us-east-1",
        service,
        now_millis: now_millis(),
    };
    let signed = sign_headers(&params, "POST", "/", None, &headers, &sha256_hex(&payload), false);
    let mut builder = http::Request::post(uri);
    for (name, value) in headers.iter().skip(1).chain(signed.iter()) {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(Bytes::from(payload)))?)
}

pub(crate) type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http()
}

async fn call(client: &HttpClient, request: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn setup(endpoint: &str) -> anyhow::Result<()> {
    let client = client();
    let action_type = json!({
        "category": "Build", "provider": "BenchBuild", "version": "1",
        "configurationProperties": [{"name": "Target", "required": true, "key": true, "secret": false}],
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}
    });
    let pipeline = json!({"pipeline": {
    "name": PIPELINE, "roleArn": "arn:aws:iam::123456789012:role/bench",
    "artifactStore": {"type": "S3", "location": "bench"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "bench", "S3ObjectKey": "src.zip"},
            "outputArtifacts": [{"name": "code"}]}]},
        {"name": "Build", "actions": [{"name": "Make",
            "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "BenchBuild", "version": "1"},
            "configuration": {"Target": "all"}, "inputArtifacts": [{"name": "code"}]}]}
    ]}});
    for (operation, body) in [("CreateCustomActionType", action_type), ("CreatePipeline", pipeline)] {
        let (status, answer) = call(&client, signed_request(endpoint, operation, &body)?).await?;
        if status != 200 {
            bail!("{operation} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
    }
    Ok(())
}

async fn get_pipeline(endpoint: &str, concurrency: usize, duration: Duration) -> anyhow::Result<Value> {
    let request = signed_request(endpoint, "GetPipeline", &json!({"name": PIPELINE}))?;
    let (parts, body) = request.into_parts();
    let client = client();
    let (status, answer) = call(&client, http::Request::from_parts(parts.clone(), body.clone())).await?;
    if status != 200 {
        bail!("GetPipeline answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, parts, body) = (client.clone(), parts.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match call(&client, http::Request::from_parts(parts.clone(), body.clone())).await {
                    Ok((200, _)) => latencies.push(sent.elapsed().as_micros() as u64),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await?;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(json!({
        "concurrency": concurrency,
        "requests": latencies.len(),
        "errors": errors,
        "seconds": elapsed,
        "req_per_s": latencies.len() as f64 / elapsed,
        "p50_ms": percentile(0.50) as f64 / 1000.0,
        "p99_ms": percentile(0.99) as f64 / 1000.0,
    }))
}

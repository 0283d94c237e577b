//! DescribeAutomationExecutions paging: a walk from the newest execution through `pages` pages of
//! 50 (every id must be new, and every page but the last full), then `samples` timed first pages
//! with an ExecutionStatus filter. Prints latencies (p50/p99 ms) as JSON.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::bail;
use serde_json::{json, Value};

use crate::{call, client, signed_service_request};

const SSM: (&str, &str) = ("AmazonSSM", "ssm");

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut millis: Vec<f64>) -> Value {
    millis.sort_by(|a, b| a.total_cmp(b));
    json!({"requests": millis.len(), "p50_ms": percentile(&millis, 0.5), "p99_ms": percentile(&millis, 0.99)})
}

/// One DescribeAutomationExecutions call: its answer and how long it took.
async fn describe(client: &crate::HttpClient, endpoint: &str, body: &Value) -> anyhow::Result<(Value, f64)> {
    let request = signed_service_request(endpoint, SSM, "DescribeAutomationExecutions", body)?;
    let started = Instant::now();
    let (status, answer) = call(client, request).await?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 {
        bail!("DescribeAutomationExecutions answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    Ok((serde_json::from_slice(&answer)?, took))
}

pub async fn paging(endpoint: &str, pages: usize, samples: usize) -> anyhow::Result<Value> {
    let client = client();
    let mut seen = HashSet::new();
    let mut walk = Vec::new();
    let mut token: Option<String> = None;
    for page in 0..pages {
        let mut body = json!({"MaxResults": 50});
        if let Some(token) = &token {
            body["NextToken"] = json!(token);
        }
        let (answer, took) = describe(&client, endpoint, &body).await?;
        walk.push(took);
        let list = answer["AutomationExecutionMetadataList"].as_array().cloned().unwrap_or_default();
        for item in &list {
            let id = item["AutomationExecutionId"].as_str().unwrap_or_default().to_string();
            if !seen.insert(id.clone()) {
                bail!("page {page} repeats execution {id}");
            }
        }
        token = answer["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
        if list.len() != 50 {
            bail!("page {page} has {} executions but is not the last", list.len());
        }
    }
    let mut filtered = Vec::new();
    let filter = json!({"MaxResults": 50, "Filters": [{"Key": "ExecutionStatus", "Values": ["Waiting"]}]});
    for _ in 0..samples {
        filtered.push(describe(&client, endpoint, &filter).await?.1);
    }
    Ok(json!({
        "executions_seen": seen.len(),
        "walk": summary(walk),
        "waiting_filter": summary(filtered),
    }))
}

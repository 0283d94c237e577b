//! Cloudforet Job `list` and `stat` latency over REST: four query shapes (a first page and page
//! 1001 of SUCCESS jobs of one plugin newest first, stat grouped by status, stat grouped by plugin
//! and status), each sent one at a time after a warm-up. Every answer is checked against the
//! counts the seeder wrote, so a wrong query fails the run. Prints latencies (p50/p99 ms) as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::{call, client, HttpClient};

/// Rows per list page.
const LIMIT: u64 = 20;

/// What the seeder stored in the benchmark domain: `counts[plugin][status]` rows.
struct Seeded {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Seeded {
    fn read(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let json: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (plugin, statuses) in json["counts"].as_object().context("no counts in the seed file")? {
            for (status, n) in statuses.as_object().context("counts are plugin → status → n")? {
                let n = n.as_u64().context("a count is not a number")?;
                counts.entry(plugin.clone()).or_default().insert(status.clone(), n);
            }
        }
        Ok(Self { counts })
    }

    fn by_status(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for statuses in self.counts.values() {
            for (status, n) in statuses {
                *totals.entry(status.clone()).or_default() += n;
            }
        }
        totals
    }

    fn count(&self, plugin: &str, status: &str) -> u64 {
        self.counts.get(plugin).and_then(|s| s.get(status)).copied().unwrap_or(0)
    }
}

/// The list shape: SUCCESS jobs of `plugin`, newest first, the page starting at `start`.
pub fn list_query(plugin: &str, start: u64) -> Value {
    json!({"query": {
        "filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}, {"k": "plugin_id", "v": plugin, "o": "eq"}],
        "sort": [{"key": "created_at", "desc": true}],
        "page": {"start": start, "limit": LIMIT}
    }})
}

/// The stat shape: count per combination of `keys`, largest first.
pub fn stat_query(keys: &[&str]) -> Value {
    let keys: Vec<Value> = keys.iter().map(|k| json!({"key": k, "name": k})).collect();
    json!({"query": {"aggregate": [
        {"group": {"keys": keys, "fields": [{"operator": "count", "name": "count"}]}},
        {"sort": [{"key": "count", "desc": true}]}
    ]}})
}

fn request(
    endpoint: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    Ok(http::Request::post(format!("{endpoint}{path}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body.to_string())))?)
}

/// One call: its answer and how long it took in ms.
async fn post(
    client: &HttpClient,
    endpoint: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<(Value, f64)> {
    let request = request(endpoint, path, token, body)?;
    let started = Instant::now();
    let (status, answer) = call(client, request).await?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 {
        bail!("{path} answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    Ok((serde_json::from_slice(&answer)?, took))
}

fn check_list(answer: &Value, plugin: &str, expected_total: u64) -> anyhow::Result<()> {
    let total = answer["total_count"].as_u64().context("list has no total_count")?;
    ensure!(total == expected_total, "list total_count {total}, seeded {expected_total}");
    let results = answer["results"].as_array().context("list has no results")?;
    ensure!(results.len() as u64 == LIMIT, "list returned {} jobs, not {LIMIT}", results.len());
    let mut previous: Option<&str> = None;
    for job in results {
        ensure!(
            job["status"] == "SUCCESS" && job["plugin_id"] == plugin,
            "list returned a foreign job: {job}"
        );
        let created = job["created_at"].as_str().context("a job without created_at")?;
        // Same-width ISO 8601 UTC strings compare in time order.
        ensure!(previous.is_none_or(|p| p >= created), "list is not newest first at {created}");
        previous = Some(created);
    }
    Ok(())
}

fn count_of(row: &Value) -> anyhow::Result<u64> {
    let n = row["count"].as_f64().context("a stat row without count")?;
    Ok(n as u64)
}

fn check_stat(answer: &Value, keys: &[&str], seeded: &Seeded) -> anyhow::Result<()> {
    let results = answer["results"].as_array().context("stat has no results")?;
    let mut got = BTreeMap::new();
    let mut previous = u64::MAX;
    for row in results {
        let n = count_of(row)?;
        ensure!(n <= previous, "stat is not sorted by count, descending");
        previous = n;
        let key: Vec<String> =
            keys.iter().map(|k| row[*k].as_str().unwrap_or_default().to_string()).collect();
        ensure!(got.insert(key.clone(), n).is_none(), "stat repeats the group {key:?}");
    }
    let mut want = BTreeMap::new();
    if keys == ["status"] {
        for (status, n) in seeded.by_status() {
            want.insert(vec![status], n);
        }
    } else {
        for (plugin, statuses) in &seeded.counts {
            for (status, n) in statuses {
                want.insert(vec![plugin.clone(), status.clone()], *n);
            }
        }
    }
    ensure!(got == want, "stat by {keys:?} answered {got:?}, seeded {want:?}");
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Settings for one run.
pub struct Run<'a> {
    pub endpoint: &'a str,
    pub token: &'a str,
    pub plugin: &'a str,
    pub seeded_path: &'a str,
    pub warmup: usize,
    pub samples: usize,
    /// Stop measuring a shape after this long even if fewer than `samples` were sent.
    pub budget: Duration,
}

pub async fn jobs(run: Run<'_>) -> anyhow::Result<Value> {
    let seeded = Seeded::read(run.seeded_path)?;
    let expected_total = seeded.count(run.plugin, "SUCCESS");
    ensure!(expected_total >= 1000 + LIMIT, "too few SUCCESS jobs of {} to reach page 1001", run.plugin);
    let client = client();
    let shapes: [(&str, &str, Value); 4] = [
        ("list_first_page", "/identity/v2/job/list", list_query(run.plugin, 1)),
        ("list_page_1001", "/identity/v2/job/list", list_query(run.plugin, 1001)),
        ("stat_by_status", "/identity/v2/job/stat", stat_query(&["status"])),
        ("stat_by_plugin_status", "/identity/v2/job/stat", stat_query(&["plugin_id", "status"])),
    ];
    let mut report = serde_json::Map::new();
    for (name, path, body) in &shapes {
        let check = |answer: &Value| match *name {
            "stat_by_status" => check_stat(answer, &["status"], &seeded),
            "stat_by_plugin_status" => check_stat(answer, &["plugin_id", "status"], &seeded),
            _ => check_list(answer, run.plugin, expected_total),
        };
        for _ in 0..run.warmup {
            let (answer, _) = post(&client, run.endpoint, path, run.token, body).await?;
            check(&answer).with_context(|| format!("{name} (warm-up)"))?;
        }
        let mut millis = Vec::with_capacity(run.samples);
        let started = Instant::now();
        while millis.len() < run.samples && started.elapsed() < run.budget {
            let (answer, took) = post(&client, run.endpoint, path, run.token, body).await?;
            check(&answer).with_context(|| name.to_string())?;
            millis.push(took);
        }
        millis.sort_by(|a, b| a.total_cmp(b));
        report.insert(
            name.to_string(),
            json!({"requests": millis.len(), "p50_ms": percentile(&millis, 0.5), "p99_ms": percentile(&millis, 0.99)}),
        );
    }
    report.insert("expected_list_total".into(), json!(expected_total));
    report.insert("stored".into(), json!(seeded.by_status().values().sum::<u64>()));
    Ok(Value::Object(report))
}

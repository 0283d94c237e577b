//! Request metrics in Prometheus text format: counts by operation and status, and latency
//! histograms by operation.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Thread-safe request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, operation: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner.requests.entry((operation.to_string(), status)).or_default() += 1;
        let histogram = inner.latency.entry(operation.to_string()).or_default();
        for (bucket, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP sluice_requests_total Requests handled, by operation and HTTP status.\n");
        out.push_str("# TYPE sluice_requests_total counter\n");
        for ((operation, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "sluice_requests_total{{operation=\"{}\",status=\"{status}\"}} {count}",
                escape(operation)
            );
        }
        out.push_str("# HELP sluice_request_duration_seconds Request latency, by operation.\n");
        out.push_str("# TYPE sluice_request_duration_seconds histogram\n");
        for (operation, h) in &inner.latency {
            let op = escape(operation);
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "sluice_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "sluice_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "sluice_request_duration_seconds_sum{{operation=\"{op}\"}} {}", h.sum);
            let _ = writeln!(out, "sluice_request_duration_seconds_count{{operation=\"{op}\"}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("GetPipeline", 200, Duration::from_micros(700));
        metrics.record("GetPipeline", 200, Duration::from_millis(30));
        metrics.record("GetPipeline", 400, Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains("sluice_requests_total{operation=\"GetPipeline\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("sluice_requests_total{operation=\"GetPipeline\",status=\"400\"} 1\n"));
        assert!(text.contains("le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("le=\"0.05\"} 3\n"), "{text}");
        assert!(text.contains("sluice_request_duration_seconds_count{operation=\"GetPipeline\"} 3\n"));
    }

    #[test]
    fn labels_are_escaped() {
        let metrics = Metrics::default();
        metrics.record("a\"b", 200, Duration::ZERO);
        assert!(metrics.render().contains("operation=\"a\\\"b\""));
    }
}

// Reads the JSON lines of the runs of ONE shape (from bench.mjs) on stdin and prints one JSON line:
// the median of the headline metric(s) over the runs, plus every run.
import { readFileSync } from "node:fs";
import { median, round } from "./common.mjs";

const runs = readFileSync(0, "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line));
if (runs.length === 0) {
  console.error("summarize.mjs: no runs on stdin");
  process.exit(1);
}
const { shape, graphile_worker, node, worker_settings } = runs[0];

const metricsByShape = {
  B1: ["jobs_per_s"],
  "B1-default-concurrency": ["jobs_per_s"],
  B1b: ["jobs_per_s"],
  B2: ["ms_per_step"],
  B3: ["p50_ms", "p95_ms", "p99_ms"],
};
const metrics = metricsByShape[shape];
if (!metrics) {
  console.error(`summarize.mjs: unknown shape ${shape}`);
  process.exit(1);
}

const out = { shape };
for (const m of metrics) out[`${m}_median`] = round(median(runs.map((r) => r[m])));
// "runs": the headline number of each run (an object per run when there are several metrics).
out.runs =
  metrics.length === 1
    ? runs.map((r) => r[metrics[0]])
    : runs.map((r) => Object.fromEntries([...metrics, "max_ms"].map((m) => [m, r[m]])));
Object.assign(out, { graphile_worker, node, worker_settings });
const strip = new Set(["shape", "graphile_worker", "node", "worker_settings"]);
out.run_details = runs.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !strip.has(k))));
console.log(JSON.stringify(out));

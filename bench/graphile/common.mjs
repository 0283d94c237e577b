// Shared helpers for the graphile-worker peer benchmark (bench.mjs and worker.mjs).
import { Logger } from "graphile-worker";

/** Microseconds on CLOCK_MONOTONIC. That clock is system-wide on Linux, so values taken in the
 * orchestrator process and in the worker process can be subtracted from each other. */
export const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** graphile-worker's default logger prints one "Completed task ..." line per job at info level.
 * Printing 20,000 lines to a pipe is harness overhead, not queue work, so we keep only warnings
 * and errors (the Sluice runs likewise use SLUICE_LOG=warn). */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`[graphile-worker ${level}] ${message}\n`);
  }
});

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an unsorted array of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const round = (x, digits = 3) => Number(x.toFixed(digits));

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

/** Worker-side graphile-worker settings per shape. Anything not listed is graphile-worker's
 * default for the installed version (pollInterval 2000, maxPoolSize 10, preparedStatements true,
 * no local queue, completeJobBatchDelay -1 = off, failJobBatchDelay -1 = off). */
export function shapeConfig(shape) {
  switch (shape) {
    case "b1":
      return {
        name: "B1",
        jobs: envInt("B1_JOBS", 20000),
        producers: envInt("B1_PRODUCERS", 16),
        jobsPerExecution: 2,
        jobsPerCall: 1, // each execution = 2 sequential addJob() calls
        worker: { concurrentJobs: envInt("B1_CONCURRENCY", 16) },
      };
    case "b1d":
      // B1 with graphile-worker's fully default concurrency (concurrentJobs = 1).
      return {
        name: "B1-default-concurrency",
        jobs: envInt("B1D_JOBS", envInt("B1_JOBS", 20000)),
        producers: envInt("B1_PRODUCERS", 16),
        jobsPerExecution: 2,
        jobsPerCall: 1,
        worker: {},
      };
    case "b1b": {
      const concurrentJobs = envInt("B1B_CONCURRENCY", envInt("B1_CONCURRENCY", 16));
      return {
        name: "B1b",
        jobs: envInt("B1B_JOBS", envInt("B1_JOBS", 20000)),
        producers: envInt("B1_PRODUCERS", 16),
        jobsPerExecution: 2,
        jobsPerCall: 2, // each execution = 1 addJobs() call carrying both jobs
        // The configuration of graphile-worker's documented performance test (docs/performance),
        // with concurrentJobs set to 16 to mirror our 16 workers.
        worker: {
          concurrentJobs,
          maxPoolSize: envInt("B1B_MAX_POOL", concurrentJobs + 2),
          preparedStatements: true,
          localQueue: { size: envInt("B1B_LOCAL_QUEUE", 500) },
          completeJobBatchDelay: envInt("B1B_COMPLETE_DELAY", 0),
          failJobBatchDelay: envInt("B1B_FAIL_DELAY", 0),
        },
      };
    }
    case "b2":
      return { name: "B2", steps: envInt("B2_STEPS", 40), worker: { concurrentJobs: 1 } };
    case "b3":
      return {
        name: "B3",
        jobs: envInt("B3_JOBS", 300),
        intervalMs: envInt("B3_INTERVAL_MS", 20),
        idleMs: envInt("B3_IDLE_MS", 1000),
        worker: {},
      };
    default:
      throw new Error(`unknown shape ${shape}; expected b1, b1b, b1d, b2 or b3`);
  }
}

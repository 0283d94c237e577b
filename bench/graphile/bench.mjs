// One run of one shape against graphile-worker, on a database that the caller (run.sh) created
// fresh and will drop. Prints one JSON line with the run's result on stdout.
//
//   node bench.mjs <b1|b1b|b1d|b2|b3> <connection string>
//
// This process is the load generator (producers, measurement); graphile-worker's run() lives in a
// forked child process (worker.mjs), like a Sluice server is a separate process from its load
// generator. Timestamps on both sides come from CLOCK_MONOTONIC (see common.mjs).
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { makeWorkerUtils } from "graphile-worker";
import { median, nowUs, percentile, quietLogger, round, shapeConfig, sleep } from "./common.mjs";

const [shape, connectionString] = process.argv.slice(2);
if (!shape || !connectionString) {
  console.error("usage: node bench.mjs <b1|b1b|b1d|b2|b3> <connection string>");
  process.exit(64);
}
const cfg = shapeConfig(shape);
const timeoutS = Number(process.env.RUN_TIMEOUT_S || 300);

// The package's "exports" hide package.json, so read the installed copy by path.
const graphileVersion = JSON.parse(
  readFileSync(new URL("./node_modules/graphile-worker/package.json", import.meta.url), "utf8"),
).version;

let child;
const deadline = setTimeout(() => {
  console.error(`bench.mjs: TIMEOUT: shape ${shape} did not finish within ${timeoutS} s; aborting`);
  child?.kill("SIGKILL");
  process.exit(2);
}, timeoutS * 1000);
deadline.unref();

function fail(message) {
  console.error(`bench.mjs: FAILED (${shape}): ${message}`);
  child?.kill("SIGKILL");
  process.exit(1);
}

// Producer-side utils. Its pool is sized so that every producer can have a call in flight.
const utils = await makeWorkerUtils({
  connectionString,
  maxPoolSize: Math.max(cfg.producers ?? 1, 2),
  logger: quietLogger,
});
await utils.migrate(); // create graphile's schema now, outside any timed window

const remainingJobs = async () => {
  const { rows } = await utils.withPgClient((c) =>
    c.query("select count(*)::int as n from graphile_worker._private_jobs"),
  );
  return rows[0].n;
};

/** Polls graphile's jobs table until it is empty; returns the time (µs) the empty answer arrived. */
async function waitForEmptyQueue(pollMs) {
  for (;;) {
    const n = await remainingJobs();
    const at = nowUs();
    if (n === 0) return at;
    await sleep(pollMs);
  }
}

// ---- worker child -------------------------------------------------------------------------
const messageWaiters = new Map();
const messageInbox = new Map();
function nextMessage(type) {
  if (messageInbox.has(type)) {
    const msg = messageInbox.get(type);
    messageInbox.delete(type);
    return Promise.resolve(msg);
  }
  return new Promise((resolve) => messageWaiters.set(type, resolve));
}

child = fork(new URL("./worker.mjs", import.meta.url), [], {
  env: {
    ...process.env,
    BENCH_WORKER_CONFIG: JSON.stringify({
      shape,
      connectionString,
      expected: cfg.jobs ?? cfg.steps,
      worker: cfg.worker,
    }),
  },
  stdio: ["ignore", "inherit", "inherit", "ipc"],
});
child.on("message", (msg) => {
  const waiter = messageWaiters.get(msg.type);
  if (waiter) {
    messageWaiters.delete(msg.type);
    waiter(msg);
  } else {
    messageInbox.set(msg.type, msg);
  }
});
let stopping = false;
child.on("exit", (code, signal) => {
  if (!stopping) fail(`worker process exited early (code ${code}, signal ${signal})`);
});

await nextMessage("ready");
await sleep(300); // let the worker make its first (empty) fetch and go idle

async function stopWorker() {
  stopping = true;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.send({ type: "stop" });
  const stopped = await nextMessage("stopped");
  await exited;
  return stopped;
}

// ---- shapes -------------------------------------------------------------------------------
async function throughput() {
  const { jobs, producers, jobsPerExecution, jobsPerCall } = cfg;
  const executions = Math.ceil(jobs / jobsPerExecution);
  let nextExecution = 0;
  let added = 0;
  const makeJob = (e, j) => ({ identifier: "noop", payload: { execution: e, job: j } });

  async function producer() {
    for (;;) {
      const e = nextExecution++;
      if (e >= executions) return;
      const inThis = Math.min(jobsPerExecution, jobs - e * jobsPerExecution);
      if (jobsPerCall === 1) {
        for (let j = 0; j < inThis; j++) {
          await utils.addJob("noop", { execution: e, job: j });
          added += 1;
        }
      } else {
        for (let j = 0; j < inThis; j += jobsPerCall) {
          const batch = [];
          for (let k = j; k < Math.min(inThis, j + jobsPerCall); k++) batch.push(makeJob(e, k));
          await utils.addJobs(batch);
          added += batch.length;
        }
      }
    }
  }

  const allInvoked = nextMessage("all-invoked");
  const startUs = nowUs();
  await Promise.all(Array.from({ length: producers }, producer));
  const addsDoneUs = nowUs();
  if (added !== jobs) fail(`added ${added} jobs, expected ${jobs}`);
  const invokedMsg = await allInvoked;
  const endUs = await waitForEmptyQueue(2);
  const stopped = await stopWorker();
  if (stopped.invoked !== jobs) fail(`task invoked ${stopped.invoked} times, expected ${jobs}`);
  if (stopped.errors !== 0) fail(`${stopped.errors} job errors`);
  const elapsedS = (endUs - startUs) / 1e6;
  return {
    jobs_per_s: round(jobs / elapsedS, 1),
    jobs,
    elapsed_s: round(elapsedS),
    adds_done_s: round((addsDoneUs - startUs) / 1e6),
    last_invoked_s: round((invokedMsg.atUs - startUs) / 1e6),
    add_calls: Math.ceil(jobsPerExecution / jobsPerCall) * executions,
    producers,
  };
}

async function stepHandoff() {
  const { steps } = cfg;
  const last = nextMessage("last-step-started");
  const startUs = nowUs();
  await utils.addJob("step", { i: 1, n: steps });
  const { stepStartsUs } = await last;
  const endUs = await waitForEmptyQueue(1);
  const stopped = await stopWorker();
  if (stopped.invoked !== steps) fail(`step task ran ${stopped.invoked} times, expected ${steps}`);
  if (stopped.errors !== 0) fail(`${stopped.errors} job errors`);
  const gapsMs = stepStartsUs.slice(1).map((t, i) => (t - stepStartsUs[i]) / 1000);
  const totalMs = (endUs - startUs) / 1000;
  return {
    ms_per_step: round(totalMs / steps),
    steps,
    total_ms: round(totalMs),
    first_pickup_ms: round((stepStartsUs[0] - startUs) / 1000),
    step_start_gap_p50_ms: round(median(gapsMs)),
    step_start_gap_max_ms: round(Math.max(...gapsMs)),
  };
}

async function pickupLatency() {
  const { jobs, intervalMs, idleMs } = cfg;
  await sleep(idleMs); // the worker sits idle on LISTEN before the first job arrives
  const probes = nextMessage("probes");
  const addedAtUs = new Array(jobs);
  const t0 = nowUs();
  for (let seq = 0; seq < jobs; seq++) {
    const dueUs = t0 + seq * intervalMs * 1000;
    const waitMs = (dueUs - nowUs()) / 1000;
    if (waitMs > 0) await sleep(waitMs);
    addedAtUs[seq] = nowUs();
    await utils.addJob("probe", { seq });
  }
  const { starts } = await probes;
  await waitForEmptyQueue(5);
  const stopped = await stopWorker();
  if (stopped.errors !== 0) fail(`${stopped.errors} job errors`);
  const latMs = addedAtUs.map((t, seq) => {
    const s = starts[seq];
    if (s === undefined) fail(`probe ${seq} never started`);
    return (s - t) / 1000;
  });
  const sent = (nowUs() - t0) / 1e6;
  return {
    p50_ms: round(percentile(latMs, 50)),
    p95_ms: round(percentile(latMs, 95)),
    p99_ms: round(percentile(latMs, 99)),
    max_ms: round(Math.max(...latMs)),
    mean_ms: round(latMs.reduce((a, b) => a + b, 0) / latMs.length),
    jobs,
    interval_ms: intervalMs,
    wall_s: round(sent),
  };
}

const measure = { b1: throughput, b1d: throughput, b1b: throughput, b2: stepHandoff, b3: pickupLatency }[shape];
const result = await measure();
await utils.release();
clearTimeout(deadline);
console.log(
  JSON.stringify({
    shape: cfg.name,
    graphile_worker: graphileVersion,
    node: process.version,
    worker_settings: cfg.worker,
    ...result,
  }),
);

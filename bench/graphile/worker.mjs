// The graphile-worker side of the benchmark: a separate Node process (the "server"), forked by
// bench.mjs (the "load generator") with an IPC channel. It runs graphile-worker's run() with the
// settings of the shape and reports to the parent only at a few milestones, so that the IPC
// channel adds no per-job cost to the measured path.
//
// Config comes in BENCH_WORKER_CONFIG (JSON): { shape, connectionString, expected, worker }.
import { EventEmitter } from "node:events";
import { run } from "graphile-worker";
import { nowUs, quietLogger } from "./common.mjs";

const config = JSON.parse(process.env.BENCH_WORKER_CONFIG);
const send = (msg) => process.send(msg);

let invoked = 0;
let errors = 0;
const stepStartsUs = [];
const probeStartsUs = new Map(); // seq -> task start (µs, CLOCK_MONOTONIC)

const taskList = {
  // B1 / B1b: no-op job. Tells the parent once the expected number of invocations is reached;
  // the parent then confirms completion by polling graphile's jobs table until it is empty.
  noop: async () => {
    invoked += 1;
    if (invoked === config.expected) send({ type: "all-invoked", atUs: nowUs() });
  },
  // B2: a chain of steps; step i adds step i+1 through the worker's own helpers.addJob.
  step: async (payload, helpers) => {
    stepStartsUs.push(nowUs());
    invoked += 1;
    if (payload.i < payload.n) {
      await helpers.addJob("step", { i: payload.i + 1, n: payload.n });
    } else {
      send({ type: "last-step-started", stepStartsUs });
    }
  },
  // B3: record the moment the task starts; report all once every probe has run.
  probe: async (payload) => {
    const t = nowUs();
    invoked += 1;
    if (!probeStartsUs.has(payload.seq)) probeStartsUs.set(payload.seq, t);
    if (probeStartsUs.size === config.expected) {
      send({ type: "probes", starts: Object.fromEntries(probeStartsUs) });
    }
  },
};

// Our own emitter, so listeners are in place before run() starts the pool.
const events = new EventEmitter();
events.on("job:error", () => {
  errors += 1;
});
const listening = new Promise((resolve) => events.once("pool:listen:success", resolve));

const runner = await run({
  taskList,
  noHandleSignals: true,
  logger: quietLogger,
  preset: {
    worker: {
      connectionString: config.connectionString,
      events,
      ...config.worker,
    },
  },
});
// run() resolves once the pool has started; the LISTEN connection comes up asynchronously.
await listening;

process.on("message", async (msg) => {
  if (msg?.type === "stop") {
    await runner.stop();
    send({ type: "stopped", invoked, errors });
    process.disconnect();
  }
});
process.on("disconnect", () => {
  // Parent went away (e.g. the harness timed out): don't linger.
  setTimeout(() => process.exit(0), 100).unref();
});

send({ type: "ready" });

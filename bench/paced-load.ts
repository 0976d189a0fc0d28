/**
 * A load loop of our own, for runs that must stop sending at an exact
 * moment (when the service's readiness drops), as clients behind a load
 * balancer do: `connections` keep-alive HTTP/1.1 connections (node:http
 * Agent), each one request at a time, together at a fixed overall rate.
 * Every request started is awaited to its end, so that its outcome is
 * known: none is cut off by the loop itself.
 */
import * as http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { type Latency, latencyOf } from "./loaders.js";

export interface PacedLoadRun {
  /** The full URL to POST to (loopback). */
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Concurrent keep-alive connections, each one request at a time. */
  connections: number;
  /** Requests per second over all connections. */
  rate: number;
  /** Stops sending new requests once aborted; in-flight ones finish. */
  stop: AbortSignal;
  /** Hard bounds: no request is started past either. */
  maxRequests: number;
  maxSeconds: number;
  /** Per request, in milliseconds (default 10 s). */
  timeoutMs?: number;
  /**
   * Checks the body of a 2xx response; returns what is wrong with it, or
   * undefined when it is right.
   */
  checkBody?: (body: string) => string | undefined;
}

export interface PacedLoadResult {
  tool: "paced-http1";
  connections: number;
  /** The overall rate asked for, requests per second. */
  targetRate: number;
  /** Requests started. Each one ended: `ok + failed === sent`. */
  sent: number;
  /** 2xx responses whose body passed `checkBody`. */
  ok: number;
  failed: number;
  /** Failures by kind: `status 503`, `ECONNRESET`, `timeout`, `body: …`. */
  failures: Record<string, number>;
  /** The first few failures, with when they happened (epoch ms). */
  firstFailures: { atMs: number; what: string }[];
  statusCodes: Record<string, number>;
  /** Epoch ms of the first request's start and of the last response. */
  startedAtMs: number;
  endedAtMs: number;
  /** From the first request's start to the last response's end. */
  durationSeconds: number;
  okPerSecond: number;
  latency: Latency;
  /** Why the loop stopped sending. */
  stoppedBy: "stop" | "maxRequests" | "maxSeconds";
  /** CPU seconds of this whole process during the run. */
  loadgenCpuSeconds: number;
}

/** A paced load under way. */
export interface PacedLoad {
  /** Requests started so far. */
  sent(): number;
  /** Settles once every request started has ended. */
  result: Promise<PacedLoadResult>;
}

/**
 * Starts the paced load; it runs until `stop` is aborted or a bound is
 * reached.
 */
export function startPacedLoad(run: PacedLoadRun): PacedLoad {
  const state = { sent: 0 };
  return { sent: () => state.sent, result: pacedLoad(run, state) };
}

async function pacedLoad(
  run: PacedLoadRun,
  state: { sent: number },
): Promise<PacedLoadResult> {
  const url = new URL(run.url);
  if (url.protocol !== "http:") throw new Error(`not http: ${run.url}`);
  const body = Buffer.from(run.body);
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: run.connections,
    maxFreeSockets: run.connections,
    // Spread the requests over all connections, as a balancer's pool does.
    scheduling: "fifo",
  });
  // One options object for every request: cheaper than a URL each time.
  const options: http.RequestOptions = {
    host: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    method: "POST",
    headers: { ...run.headers, "content-length": String(body.length) },
    agent,
    timeout: run.timeoutMs ?? 10_000,
  };
  const epoch = () => performance.timeOrigin + performance.now();

  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const firstFailures: { atMs: number; what: string }[] = [];
  const statusCodes: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let endedAtMs = 0;
  let stoppedBy: PacedLoadResult["stoppedBy"] | undefined;

  const fail = (what: string) => {
    failed += 1;
    failures[what] = (failures[what] ?? 0) + 1;
    if (firstFailures.length < 10) firstFailures.push({ atMs: epoch(), what });
  };

  const once = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      let settled = false;
      const done = (what?: string) => {
        if (settled) return;
        settled = true;
        endedAtMs = epoch();
        if (what === undefined) {
          ok += 1;
          latencies.push(performance.now() - start);
        } else {
          fail(what);
        }
        resolve();
      };
      const req = http.request(options, (res) => {
        const status = res.statusCode ?? 0;
        statusCodes[status] = (statusCodes[status] ?? 0) + 1;
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (e: NodeJS.ErrnoException) =>
          done(`response ${e.code ?? e.message}`),
        );
        res.on("close", () => {
          if (!res.complete) done("response cut off");
        });
        res.on("end", () => {
          if (status < 200 || status >= 300) return done(`status ${status}`);
          const problem = run.checkBody?.(Buffer.concat(chunks).toString());
          done(problem === undefined ? undefined : `body: ${problem}`);
        });
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      req.end(body);
    });

  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const startedAtMs = epoch();
  const deadline = t0 + run.maxSeconds * 1000;
  // Each connection sends every `connections / rate` seconds, the
  // connections staggered by `1 / rate`: together, `rate` per second. A
  // connection that falls behind (a slow response) catches up at once, as
  // h2load --rps does.
  const interval = (1000 * run.connections) / run.rate;
  // One listener for all the connections' waits.
  const stopped = new Promise<void>((resolve) => {
    if (run.stop.aborted) resolve();
    run.stop.addEventListener("abort", () => resolve(), { once: true });
  });
  const worker = async (i: number) => {
    let due = t0 + (1000 * i) / run.rate;
    for (;;) {
      const wait = due - performance.now();
      if (wait > 1 && !run.stop.aborted) {
        await Promise.race([sleep(wait), stopped]);
      }
      if (run.stop.aborted) stoppedBy ??= "stop";
      else if (state.sent >= run.maxRequests) stoppedBy ??= "maxRequests";
      else if (performance.now() >= deadline) stoppedBy ??= "maxSeconds";
      else {
        state.sent += 1;
        await once();
        due += interval;
        continue;
      }
      return;
    }
  };
  try {
    await Promise.all(
      Array.from({ length: run.connections }, (_, i) => worker(i)),
    );
  } finally {
    agent.destroy();
  }
  const cpu = process.cpuUsage(cpuStart);
  const durationSeconds = Math.max(1e-3, (endedAtMs - startedAtMs) / 1000);
  return {
    tool: "paced-http1",
    connections: run.connections,
    targetRate: run.rate,
    sent: state.sent,
    ok,
    failed,
    failures,
    firstFailures,
    statusCodes,
    startedAtMs,
    endedAtMs,
    durationSeconds,
    okPerSecond: ok / durationSeconds,
    latency: latencyOf(latencies),
    stoppedBy: stoppedBy ?? "stop",
    loadgenCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

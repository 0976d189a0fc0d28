/**
 * Load generators: autocannon (HTTP/1.1, in this process) and h2load
 * (HTTP/2 cleartext or HTTP/1.1, a child process), with one result shape
 * for both. Exported for reuse by other scripts (a soak test, say).
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import autocannon, { type Result as AutocannonResult } from "autocannon";
import { readCpu } from "./processes.js";

/** Latency percentiles, in milliseconds, of successful (2xx) responses. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** How many responses the percentiles are over. */
  count: number;
}

/** What one load run measured. */
export interface LoadResult {
  tool: "autocannon" | "h2load";
  /** The exact command (h2load) or options (autocannon), secrets redacted. */
  command: string;
  connections: number;
  /** The measured window, in seconds. */
  durationSeconds: number;
  /** Requests sent (autocannon) or started (h2load). */
  sent: number;
  /** Responses with an HTTP 2xx status. */
  ok: number;
  /** `ok` per second of the measured window. */
  okPerSecond: number;
  /** Responses with another status. */
  non2xx: number;
  /** Connection errors, timeouts, failed or errored streams. */
  errors: number;
  statusCodes: Record<string, number>;
  latency: Latency;
  /**
   * CPU seconds the load generator used: this process for autocannon
   * (which includes the benchmark's own sampling), the h2load child for
   * h2load.
   */
  loadgenCpuSeconds: number;
  /** The tool's own figures, as it printed or returned them. */
  raw: Record<string, unknown>;
}

/** Nearest-rank percentiles of `values` (milliseconds). */
export function latencyOf(values: Float64Array | number[]): Latency {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0, count: 0 };
  const at = (p: number) =>
    sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] ?? 0;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[n - 1] ?? 0,
    mean: sum / n,
    count: n,
  };
}

/** Replaces the credential in an Authorization header value. */
export function redactHeader(name: string, value: string): string {
  return name.toLowerCase() === "authorization"
    ? value.replace(/^(\S+\s+).*$/, "$1<key>")
    : value;
}

export interface AutocannonRun {
  url: string;
  method?: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  durationSeconds: number;
  /**
   * Stop after this many responses instead (autocannon's `amount`);
   * `durationSeconds` is then ignored.
   */
  amount?: number;
  /** Called with each response's status and time in milliseconds. */
  onResponse?: (statusCode: number, responseTimeMs: number) => void;
  signal?: AbortSignal;
}

/**
 * Runs autocannon (HTTP/1.1, keep-alive, no pipelining) for a fixed time,
 * or for a fixed number of requests (`amount`).
 * Latency percentiles are computed from every 2xx response's own time
 * (microsecond resolution), not from autocannon's histogram, which rounds
 * to whole milliseconds; autocannon's own figures are kept in `raw`.
 */
export async function runAutocannon(run: AutocannonRun): Promise<LoadResult> {
  run.signal?.throwIfAborted();
  const options = {
    url: run.url,
    method: run.method ?? "POST",
    headers: run.headers,
    body: run.body,
    connections: run.connections,
    pipelining: 1,
    duration: run.durationSeconds,
    ...(run.amount !== undefined && { amount: run.amount }),
    timeout: 10,
  };
  const latencies: number[] = [];
  const cpuStart = process.cpuUsage();
  const instance = autocannon(options);
  instance.on("response", (_client, statusCode, _bytes, responseTimeMs) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
    run.onResponse?.(statusCode, responseTimeMs);
  });
  const onAbort = () => instance.stop();
  run.signal?.addEventListener("abort", onAbort, { once: true });
  let result: AutocannonResult;
  try {
    result = await instance;
  } finally {
    run.signal?.removeEventListener("abort", onAbort);
  }
  const cpu = process.cpuUsage(cpuStart);
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
    statusCodes[code] = count;
  }
  // The same run from autocannon's command line.
  const command = [
    "npx",
    "autocannon",
    "-c",
    String(options.connections),
    ...(run.amount !== undefined
      ? ["-a", String(run.amount)]
      : ["-d", String(options.duration)]),
    "-p",
    "1",
    "-t",
    String(options.timeout),
    "-m",
    options.method,
    ...Object.entries(run.headers).flatMap(([k, v]) => [
      "-H",
      `${k}=${redactHeader(k, v)}`,
    ]),
    "-b",
    options.body,
    options.url,
  ]
    .map(shellQuote)
    .join(" ");
  return {
    tool: "autocannon",
    command,
    connections: run.connections,
    durationSeconds: result.duration,
    sent: result.requests.sent,
    ok: result["2xx"],
    okPerSecond: result["2xx"] / result.duration,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    statusCodes,
    latency: latencyOf(latencies),
    loadgenCpuSeconds: (cpu.user + cpu.system) / 1e6,
    raw: {
      requestsPerSecondMean: result.requests.mean,
      latencyMs: {
        p50: result.latency.p50,
        p99: result.latency.p99,
        mean: result.latency.mean,
        max: result.latency.max,
      },
      errors: result.errors,
      timeouts: result.timeouts,
      resets: result.resets,
      mismatches: result.mismatches,
    },
  };
}

/** The installed h2load's version line, or an error naming its package. */
export function h2loadVersion(): string {
  const probe = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      "h2load not found: it is in the Debian package nghttp2-client " +
        "(apt-get install nghttp2-client)",
    );
  }
  return probe.stdout.trim();
}

export interface H2loadRun {
  url: string;
  headers: Record<string, string>;
  /** A file holding the request body; h2load POSTs it. */
  bodyFile: string;
  connections: number;
  /** Timing-based run: `-D`. */
  durationSeconds?: number;
  /** Or a fixed number of requests across all connections: `-n`. */
  requests?: number;
  /** Requests per second for each connection (`--rps`): a fixed rate. */
  rps?: number;
  /** HTTP/1.1 instead of HTTP/2 cleartext (prior knowledge). */
  http1?: boolean;
  /** Where h2load writes one line per request (for the percentiles). */
  logFile: string;
  signal?: AbortSignal;
}

/** The h2load command line for a run. */
export function h2loadArgs(run: H2loadRun, redact = false): string[] {
  const args =
    run.requests !== undefined
      ? ["-n", String(run.requests)]
      : ["-D", String(run.durationSeconds)];
  if (run.rps !== undefined) args.push("--rps", String(run.rps));
  args.push("-c", String(run.connections), "-m", "1", "-t", "1");
  for (const [name, value] of Object.entries(run.headers)) {
    args.push("-H", `${name}: ${redact ? redactHeader(name, value) : value}`);
  }
  args.push("-d", run.bodyFile, "--log-file", run.logFile);
  if (run.http1) args.push("--h1");
  args.push(run.url);
  return args;
}

/**
 * Runs h2load for a fixed time or number of requests, one stream at a time
 * per connection (`-m 1`) so that concurrency equals `connections`, as
 * with autocannon.
 * Counts come from its summary; latency percentiles from its per-request
 * log, whose times are in microseconds.
 *
 * Note that h2load counts an HTTP 200 as success, and a failed gRPC call
 * is an HTTP 200 too (the error is in the grpc-status trailer): check gRPC
 * success by other means (the service's metrics).
 */
export async function runH2load(run: H2loadRun): Promise<LoadResult> {
  run.signal?.throwIfAborted();
  const args = h2loadArgs(run);
  // h2load appends to its log file: start from an empty one.
  writeFileSync(run.logFile, "");
  const cpuStart = readCpu("self")?.children ?? 0;
  const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  const onAbort = () => child.kill("SIGTERM");
  run.signal?.addEventListener("abort", onAbort, { once: true });
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  }).finally(() => run.signal?.removeEventListener("abort", onAbort));
  // h2load has been waited for: its CPU time is now in this process's
  // children's time.
  const cpuEnd = readCpu("self")?.children ?? cpuStart;
  const command = ["h2load", ...h2loadArgs(run, true)]
    .map(shellQuote)
    .join(" ");
  if (exitCode !== 0) {
    throw new Error(
      `h2load exited with ${exitCode}: ${command}\n${stderr}${stdout}`,
    );
  }
  const summary = parseH2loadOutput(stdout);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  for (const line of readFileSync(run.logFile, "utf8").split("\n")) {
    if (line === "") continue;
    const [, status = "", micros = ""] = line.split("\t");
    statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    const code = Number(status);
    if (code >= 200 && code < 300) latencies.push(Number(micros) / 1000);
  }
  const ok = summary.status2xx;
  return {
    tool: "h2load",
    command,
    connections: run.connections,
    durationSeconds: summary.finishedSeconds,
    sent: summary.started,
    ok,
    okPerSecond: ok / summary.finishedSeconds,
    non2xx: summary.status3xx + summary.status4xx + summary.status5xx,
    errors: summary.failed + summary.errored + summary.timeout,
    statusCodes,
    latency: latencyOf(latencies),
    loadgenCpuSeconds: cpuEnd - cpuStart,
    raw: { ...summary },
  };
}

/** The figures of h2load's summary. */
export interface H2loadSummary {
  finishedSeconds: number;
  requestsPerSecond: number;
  total: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** "time for request" min, max, mean, sd in milliseconds. */
  timeForRequestMs: { min: number; max: number; mean: number; sd: number };
}

/** Parses h2load's summary; throws when a line it needs is missing. */
export function parseH2loadOutput(output: string): H2loadSummary {
  const match = (re: RegExp, what: string) => {
    const m = re.exec(output);
    if (!m) throw new Error(`h2load output has no ${what}:\n${output}`);
    return m;
  };
  const finished = match(
    /finished in ([\d.]+\w+), ([\d.]+) req\/s/,
    "'finished in' line",
  );
  const requests = match(
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
    "'requests:' line",
  );
  const status = match(
    /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/,
    "'status codes:' line",
  );
  const time = match(
    /time for request:\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)/,
    "'time for request:' line",
  );
  const n = (m: RegExpExecArray, i: number) => Number(m[i]);
  return {
    finishedSeconds: durationMs(finished[1] ?? "") / 1000,
    requestsPerSecond: n(finished, 2),
    total: n(requests, 1),
    started: n(requests, 2),
    done: n(requests, 3),
    succeeded: n(requests, 4),
    failed: n(requests, 5),
    errored: n(requests, 6),
    timeout: n(requests, 7),
    status2xx: n(status, 1),
    status3xx: n(status, 2),
    status4xx: n(status, 3),
    status5xx: n(status, 4),
    timeForRequestMs: {
      min: durationMs(time[1] ?? ""),
      max: durationMs(time[2] ?? ""),
      mean: durationMs(time[3] ?? ""),
      sd: durationMs(time[4] ?? ""),
    },
  };
}

/** h2load's durations: `936us`, `89.14ms`, `10.00s`. */
function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not an h2load duration: ${text}`);
  const value = Number(m[1]);
  const unit = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[
    m[2] as "us" | "ms" | "s" | "m" | "h"
  ];
  return value * unit;
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word)
    ? word
    : `'${word.replace(/'/g, "'\\''")}'`;
}

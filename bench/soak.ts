/**
 * `npm run soak`: a soak test of the token service, started as a
 * production deployment would run it. A script, not a test: CI never runs
 * it. Three phases, and an optional fourth:
 *
 * 1. maximum: a short autocannon run (Connect JSON over HTTP/1.1) finds the
 *    service's tokens/s;
 * 2. soak: h2load at a fixed rate (`--rps`), a fraction of that maximum,
 *    for a fixed number of requests, every one of which must be a 2xx and
 *    counted `ok` by the service; the server's RSS and heap are sampled
 *    every second and the RSS must be flat over the second half;
 * 3. SIGTERM: the same load from a loop of our own on a fresh service,
 *    SIGTERM in the middle; the loop polls /readyz, as a load balancer
 *    would, and stops sending when it turns 503; every call it sent must
 *    succeed and the service must exit 0;
 * 4. with `--calls N`: N calls at full speed (autocannon), the RSS read
 *    every `--calls-every` calls, which must show no upward trend.
 */

import {
  closeSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  checkRequestCounts,
  type MetricsCheck,
  parseRequestCounts,
  type RequestCounts,
  type SampleCheck,
  sampleJsonHttp1,
  settledRequestCounts,
} from "./checks.js";
import {
  h2loadVersion,
  type LoadResult,
  runAutocannon,
  runH2load,
} from "./loaders.js";
import {
  type MachineLoad,
  machineInfo,
  measureMachineLoad,
  sourceState,
} from "./machine.js";
import { type PacedLoadResult, startPacedLoad } from "./paced-load.js";
import {
  childPids,
  freePort,
  type ProcessSample,
  ProcessSampler,
  processExecutable,
  readMemory,
  readyzProbe,
  type Started,
  stopProcess,
  waitReady,
} from "./processes.js";
import { fmtMB, fmtMs } from "./report.js";
import { createTokenPath, type ExpectedToken, jsonBody } from "./request.js";
import {
  type BenchCredentials,
  benchCredentials,
  buildService,
  spawnService,
} from "./service.js";
import { startSession } from "./session.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const usage = `Usage: npm run soak -- [options]

Soaks the token service (built with npm run build:dist, run with node,
NODE_ENV=production, bench/production-config.yaml, logs on) and writes
bench/results/soak-<date>.json. Exit 0 when every check passes.

Options:
  --duration S          soak seconds at the fixed rate, and length of the
                        SIGTERM run (default 60, at most 1800)
  --max-duration S      seconds of the run that finds the maximum (default 10)
  --warmup S            seconds of warm-up before it (default 2)
  --connections N       concurrent connections, all phases (default 50)
  --load PCT            soak rate, in % of the maximum (default 80)
  --max-slope MB        flat memory: RSS slope over the second half of the
                        soak below MB per minute (default 1; MB = 10^6 bytes)
  --drain S             SHUTDOWN_DRAIN_SECONDS of the service (default 3)
  --shutdown-timeout S  SHUTDOWN_TIMEOUT_SECONDS of the service (default 10)
  --sigterm-after S     SIGTERM this many seconds into the SIGTERM run
                        (default half of --duration)
  --readyz-interval MS  how often the SIGTERM run polls /readyz (default 100)
  --calls N             also N calls at full speed, RSS every --calls-every
                        calls (default 0: skipped; e.g. 1000000; at most
                        10000000)
  --calls-every N       (default 100000)
  --max-slope-calls MB  no upward trend: RSS slope over the second half of
                        the calls below MB per 100k calls (default 1)
  --no-soak             skip the fixed-rate soak (phase 2)
  --no-sigterm          skip the SIGTERM run (phase 3)
  --service-log F       where the service's logs go (default
                        bench/results/service-soak-<date>.log, one line of
                        about 550 bytes per call; /dev/null to discard
                        them, which also skips the log check of phase 3)
  -h, --help            show this help
`;

interface Options {
  duration: number;
  maxDuration: number;
  warmup: number;
  connections: number;
  loadPercent: number;
  maxSlope: number;
  drain: number;
  shutdownTimeout: number;
  sigtermAfter: number;
  readyzInterval: number;
  calls: number;
  callsEvery: number;
  maxSlopeCalls: number;
  soak: boolean;
  sigterm: boolean;
  serviceLog: string | undefined;
}

function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      "max-duration": { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      load: { type: "string" },
      "max-slope": { type: "string" },
      drain: { type: "string" },
      "shutdown-timeout": { type: "string" },
      "sigterm-after": { type: "string" },
      "readyz-interval": { type: "string" },
      calls: { type: "string" },
      "calls-every": { type: "string" },
      "max-slope-calls": { type: "string" },
      "no-soak": { type: "boolean" },
      "no-sigterm": { type: "boolean" },
      "service-log": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const num = (
    name: keyof typeof values,
    fallback: number,
    min: number,
    max: number,
    integer = true,
  ) => {
    const raw = values[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (
      typeof raw !== "string" ||
      !Number.isFinite(n) ||
      (integer && !Number.isInteger(n)) ||
      n < min ||
      n > max
    ) {
      throw new Error(`--${name} must be a number from ${min} to ${max}`);
    }
    return n;
  };
  // h2load's per-request log is read whole: about 30 bytes a request.
  const duration = num("duration", 60, 4, 1800);
  const options: Options = {
    duration,
    maxDuration: num("max-duration", 10, 1, 600),
    warmup: num("warmup", 2, 0, 600),
    connections: num("connections", 50, 1, 1000),
    loadPercent: num("load", 80, 1, 100, false),
    maxSlope: num("max-slope", 1, 0, 1e6, false),
    drain: num("drain", 3, 1, 600),
    shutdownTimeout: num("shutdown-timeout", 10, 0, 600),
    sigtermAfter: num("sigterm-after", duration / 2, 1, duration, false),
    readyzInterval: num("readyz-interval", 100, 10, 60_000),
    calls: num("calls", 0, 0, 10_000_000),
    callsEvery: num("calls-every", 100_000, 1, 100_000_000),
    maxSlopeCalls: num("max-slope-calls", 1, 0, 1e6, false),
    soak: !values["no-soak"],
    sigterm: !values["no-sigterm"],
    serviceLog: values["service-log"],
  };
  if (options.calls > 0 && options.calls < options.connections) {
    throw new Error("--calls must be at least --connections");
  }
  return options;
}

/** A check of the soak, printed as a PASS or FAIL line (INFO: no gate). */
interface Verdict {
  name: string;
  pass: boolean;
  detail: string;
  info?: boolean;
}

/** The server's memory at one moment of a run. */
interface MemoryPoint {
  /** Seconds since the run's load started. */
  t: number;
  /** Calls answered so far, when the run counts them. */
  calls?: number;
  rssBytes: number;
  /** From /metrics, when it answered (a few ms after the RSS was read). */
  heap?: HeapReading;
  /** Size of the service's log file, when it is a file. */
  logBytes?: number;
  /**
   * Log lines the service had made but not yet written, in bytes (an
   * estimate: calls counted so far times bytes per call, less the bytes
   * in the file); set at the end of the run.
   */
  logBacklogBytes?: number;
}

/** The heap figures of the service's /metrics. */
interface HeapReading {
  /** `nodejs_heap_size_used_bytes`. */
  usedBytes: number;
  /** `nodejs_heap_space_size_used_bytes{space="old"}`. */
  oldSpaceBytes: number;
  /** `nodejs_gc_duration_seconds_count{kind="major"}`: mark-compacts so far. */
  majorGcs: number;
  /** `token_service_requests_total` for CreateToken, all codes. */
  calls: number;
}

/**
 * The old space right after each major GC (the first scrape after the
 * major GC count went up): what the heap retains. A leak raises it; the
 * garbage that RSS and heap used saw-tooth with does not.
 */
interface GcFloor {
  /** Major GCs during the run. */
  majorGcs: number;
  /** Per major GC seen: x (minutes, or 100k calls) and old space in MB. */
  points: { x: number; oldSpaceMB: number; rssMB: number }[];
  /** Least-squares slope of the old space over the second half, per x. */
  slopeSecondHalf: number | undefined;
  slopeWhole: number | undefined;
}

/** Start, end, peak and the trend of a series. */
interface SeriesStats {
  start: number;
  end: number;
  peak: number;
  /** Least-squares slope over the second half, per unit of x. */
  slopeSecondHalf: number;
  /** The same over the whole run, for context. */
  slopeWhole: number;
  points: number;
}

interface Context {
  options: Options;
  serviceKey: string;
  expected: ExpectedToken;
  jsonFile: string;
  logFile: string;
  serviceLog: string;
  credentials: BenchCredentials;
  signal: AbortSignal;
  started: Started[];
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === "help") {
    process.stdout.write(usage);
    return 0;
  }
  // Fail before starting anything when a tool is missing.
  const h2load = h2loadVersion();
  const session = startSession("soak");
  const { stamp, resultsDir, tmp, started } = session;
  const serviceLog =
    options.serviceLog ?? path.join(resultsDir, `service-soak-${stamp}.log`);

  const { credentials, serviceKey } = benchCredentials("APIsoak");
  const ctx: Context = {
    options,
    serviceKey,
    expected: {
      apiKey: credentials.LIVEKIT_API_KEY,
      apiSecret: credentials.LIVEKIT_API_SECRET,
    },
    jsonFile: path.join(tmp, "request.json"),
    logFile: path.join(tmp, "h2load.log"),
    serviceLog,
    credentials,
    signal: session.signal,
    started,
  };
  writeFileSync(ctx.jsonFile, jsonBody());

  const info = machineInfo(h2load);
  const source = sourceState(root);
  const verdicts: Verdict[] = [];
  const warnings: string[] = [];
  let maximum: MaximumResult | undefined;
  let soak: SoakResult | undefined;
  let calls: CallsResult | undefined;
  let sigterm: SigtermResult | undefined;
  let firstService: ServiceRecord | undefined;
  let error: unknown;
  try {
    // Built as for production and run by node itself: its pid is the one
    // whose memory is sampled.
    buildService(root);
    const service = await startService(ctx, "service");
    firstService = describeService(service);
    const startCheck = await sample(ctx, service);
    if (!startCheck.ok) throw new Error(`sample call: ${startCheck.detail}`);

    log(
      `phase 1: maximum, ${options.warmup}+${options.maxDuration} s, ` +
        `${options.connections} connections, Connect JSON over HTTP/1.1 (autocannon)`,
    );
    maximum = await measureMaximum(ctx, service);
    log(
      `  ${Math.round(maximum.load.okPerSecond)} tokens/s, p99 ` +
        `${fmtMs(maximum.load.latency.p99)} ms` +
        (maximum.problems.length
          ? `; PROBLEMS: ${maximum.problems.join("; ")}`
          : ""),
    );
    verdicts.push({
      name: "maximum run served cleanly",
      pass: maximum.problems.length === 0,
      detail:
        maximum.problems.join("; ") ||
        `${maximum.load.ok} 2xx, 0 errors; ${maximum.metrics?.detail}`,
    });
    if (maximum.load.ok === 0) throw new Error("no token in the maximum run");
    const rate = (maximum.load.okPerSecond * options.loadPercent) / 100;

    if (options.soak) {
      log(
        `phase 2: soak, ${options.duration} s at ${Math.round(rate)} tokens/s ` +
          `(${options.loadPercent}% of the maximum), h2load --h1 --rps`,
      );
      soak = await soakAtRate(ctx, service, rate);
      verdicts.push(...soak.verdicts);
      warnings.push(...soak.warnings);
    }
    if (options.calls > 0) {
      log(
        `phase 4: ${options.calls} calls at full speed (autocannon), ` +
          `RSS every ${options.callsEvery}`,
      );
      calls = await manyCalls(ctx, service);
      verdicts.push(...calls.verdicts);
      warnings.push(...calls.warnings);
    }
    const endCheck = await sample(ctx, service);
    verdicts.push({
      name: "sample calls verified before and after",
      pass: endCheck.ok,
      detail:
        `a token verified with the API secret before the load` +
        (endCheck.ok ? " and after" : `, not after: ${endCheck.detail}`),
    });
    const stopped = await stopService(ctx, service);
    firstService.exit = stopped;

    if (options.sigterm) {
      log(
        `phase 3: SIGTERM, ${Math.round(rate)} tokens/s from ${options.connections} ` +
          `keep-alive connections, SIGTERM at ${options.sigtermAfter} s, ` +
          `drain ${options.drain} s, /readyz every ${options.readyzInterval} ms`,
      );
      sigterm = await sigtermRun(ctx, rate);
      verdicts.push(...sigterm.verdicts);
      warnings.push(...sigterm.warnings);
    }
  } catch (e) {
    error = e;
  } finally {
    await Promise.all(
      started.map((s) =>
        stopProcess(s, (options.drain + options.shutdownTimeout + 5) * 1000),
      ),
    );
    rmSync(tmp, { recursive: true, force: true });
  }

  const complete = error === undefined && !session.interrupted();
  const gates = verdicts.filter((v) => !v.info);
  const pass = complete && gates.every((v) => v.pass);
  const report = {
    date: new Date().toISOString(),
    machine: info,
    source,
    options,
    commands: {
      soak: ["npm", "run", "soak", "--", ...process.argv.slice(2)].join(" "),
      service: firstService,
      serviceLog,
    },
    pass,
    complete,
    verdicts,
    warnings,
    maximum,
    soak,
    calls,
    sigterm,
    error:
      error === undefined ? undefined : String((error as Error).stack ?? error),
    notes: [
      "MB = 10^6 bytes. RSS is VmRSS of the service's Node process (/proc/<pid>/status); heap is " +
        "nodejs_heap_size_used_bytes from its /metrics, scraped every second during the soak.",
      "Slopes are least-squares fits over the second half of the run, the first half being " +
        "warm-up (JIT, heap growth to its working size).",
      "Load generator and service share the machine's cores; the machine may be busy with " +
        "other work (see machine busy / steal per phase).",
    ],
  };
  const jsonPath = path.join(resultsDir, `soak-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

  const out: string[] = [
    "",
    `livekit-token-service soak — ${report.date}`,
    `machine: ${info.cpuModel}, ${info.cores} cores; node ${info.node}; ` +
      `${info.h2load}; autocannon ${info.autocannon}`,
    `service: commit ${source.commit.slice(0, 12)}` +
      `${source.uncommitted.length ? " + uncommitted changes" : ""}, ` +
      `${options.connections} connections`,
    "",
  ];
  if (maximum) out.push(...formatMaximum(maximum), "");
  if (soak) out.push(...formatSoak(soak, options), "");
  if (sigterm) out.push(...formatSigterm(sigterm), "");
  if (calls) out.push(...formatCalls(calls, options), "");
  out.push(
    ...verdicts.map(
      (v) =>
        `${v.info ? "INFO" : v.pass ? "PASS" : "FAIL"}  ${v.name}: ${v.detail}`,
    ),
  );
  if (warnings.length > 0) out.push("", ...warnings.map((w) => `WARN  ${w}`));
  out.push(
    "",
    `${pass ? "PASS" : "FAIL"}: ${gates.filter((v) => v.pass).length}/${gates.length} checks passed` +
      (complete ? "" : " (incomplete run)"),
    `JSON: ${path.relative(root, jsonPath)}`,
  );
  process.stdout.write(`${out.join("\n")}\n`);
  if (session.interrupted()) return 130;
  if (error !== undefined) {
    process.stderr.write(
      `\nsoak failed: ${(error as Error).stack ?? String(error)}\n`,
    );
    return 1;
  }
  return pass ? 0 : 1;
}

// ---------------------------------------------------------------------------
// The service

interface ServiceRecord {
  argv: string[];
  env: Record<string, string>;
  pid: number;
  exit?: ServiceExit;
}

interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From SIGTERM to exit. */
  afterMs: number;
}

/**
 * Starts the service as `npm run bench` does (node dist/server/main.js,
 * NODE_ENV=production, the bench config, logs on), with the soak's
 * shutdown times, and waits until /readyz answers 200.
 */
async function startService(ctx: Context, name: string): Promise<Started> {
  const port = await freePort();
  const service = spawnService({
    root,
    name,
    port,
    credentials: ctx.credentials,
    serviceKey: ctx.serviceKey,
    stdout: ctx.serviceLog,
    env: {
      SHUTDOWN_DRAIN_SECONDS: String(ctx.options.drain),
      SHUTDOWN_TIMEOUT_SECONDS: String(ctx.options.shutdownTimeout),
    },
  });
  ctx.started.push(service);
  await waitReady(service, readyzProbe(service.baseUrl));
  const exe = processExecutable(service.pid);
  if (!/node/.test(path.basename(exe))) {
    throw new Error(`${name}: pid ${service.pid} is ${exe}, not node`);
  }
  for (const pid of childPids(service.pid)) {
    if (/node/.test(path.basename(processExecutable(pid)))) {
      throw new Error(
        `${name}: pid ${service.pid} has a Node child (${pid}): ` +
          "the soak samples one process and expects it to serve alone",
      );
    }
  }
  return service;
}

function describeService(service: Started): ServiceRecord {
  return { argv: service.command, env: service.env, pid: service.pid };
}

/** SIGTERM, then SIGKILL after the drain and shutdown timeout and 5 s. */
async function stopService(
  ctx: Context,
  service: Started,
): Promise<ServiceExit> {
  const t0 = Date.now();
  await stopProcess(
    service,
    (ctx.options.drain + ctx.options.shutdownTimeout + 5) * 1000,
  );
  const { code, signal } = await service.exited;
  return { code, signal, afterMs: Date.now() - t0 };
}

function sample(ctx: Context, service: Started): Promise<SampleCheck> {
  return sampleJsonHttp1(
    `${service.baseUrl}${createTokenPath}`,
    jsonHeaders(ctx),
    jsonBody(),
    ctx.expected,
  );
}

function jsonHeaders(ctx: Context): Record<string, string> {
  return {
    "content-type": "application/json",
    authorization: `Bearer ${ctx.serviceKey}`,
  };
}

/** GET /metrics once: the heap figures. */
async function scrapeHeap(
  baseUrl: string,
  timeoutMs: number,
): Promise<HeapReading | undefined> {
  const response = await fetch(`${baseUrl}/metrics`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
  const value = (line: RegExp) => {
    const m = line.exec(text);
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  };
  const reading = {
    usedBytes: value(/^nodejs_heap_size_used_bytes\s+(\S+)$/m),
    oldSpaceBytes: value(
      /^nodejs_heap_space_size_used_bytes\{space="old"\}\s+(\S+)$/m,
    ),
    majorGcs: value(
      /^nodejs_gc_duration_seconds_count\{kind="major"\}\s+(\S+)$/m,
    ),
  };
  const calls = Object.values(parseRequestCounts(text)).reduce(
    (a, b) => a + b,
    0,
  );
  return Object.values(reading).every(Number.isFinite)
    ? { ...reading, calls }
    : undefined;
}

/**
 * Reads the server's RSS every `intervalMs`, and its heap from /metrics
 * (skipped while the previous scrape is still out).
 */
class MemorySeries {
  readonly points: MemoryPoint[] = [];
  readonly #service: Started;
  readonly #calls: (() => number) | undefined;
  readonly #logFile: string;
  readonly #timer: NodeJS.Timeout;
  readonly #t0 = performance.now();
  readonly #pending = new Set<Promise<void>>();

  constructor(
    service: Started,
    logFile: string,
    intervalMs = 1000,
    calls?: () => number,
  ) {
    this.#service = service;
    this.#logFile = logFile;
    this.#calls = calls;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const memory = readMemory(this.#service.pid);
    if (memory === undefined) return;
    const point: MemoryPoint = {
      t: (performance.now() - this.#t0) / 1000,
      ...(this.#calls && { calls: this.#calls() }),
      rssBytes: memory.rssBytes,
    };
    const logBytes = fileSize(this.#logFile);
    if (logBytes !== undefined) point.logBytes = logBytes;
    this.points.push(point);
    if (this.#pending.size > 0) return;
    const scraping = scrapeHeap(this.#service.baseUrl, 2000).then(
      (heap) => {
        if (heap) point.heap = heap;
      },
      () => {},
    );
    this.#pending.add(scraping);
    void scraping.finally(() => this.#pending.delete(scraping));
  }

  async stop(): Promise<MemoryPoint[]> {
    clearInterval(this.#timer);
    this.#sample();
    await Promise.all(this.#pending);
    return this.points;
  }
}

// ---------------------------------------------------------------------------
// Phase 1: the maximum

interface MaximumResult {
  load: LoadResult;
  server: ProcessSample;
  machine: MachineLoad;
  metrics?: MetricsCheck;
  problems: string[];
}

async function measureMaximum(
  ctx: Context,
  service: Started,
): Promise<MaximumResult> {
  const { options } = ctx;
  const run = {
    url: `${service.baseUrl}${createTokenPath}`,
    headers: jsonHeaders(ctx),
    body: jsonBody(),
    connections: options.connections,
    signal: ctx.signal,
  };
  if (options.warmup > 0) {
    await runAutocannon({ ...run, durationSeconds: options.warmup });
    await sleep(250);
  }
  const before = await settledRequestCounts(service.baseUrl);
  const machine = measureMachineLoad();
  const sampler = new ProcessSampler(service.pid, 250);
  let load: LoadResult;
  let server: ProcessSample;
  try {
    load = await runAutocannon({
      ...run,
      durationSeconds: options.maxDuration,
    });
  } finally {
    server = sampler.stop();
  }
  ctx.signal.throwIfAborted();
  const after = await settledRequestCounts(service.baseUrl);
  const metrics = checkRequestCounts(
    before,
    after,
    "connect",
    load.ok,
    options.connections,
  );
  const problems: string[] = [];
  if (load.non2xx > 0) {
    problems.push(
      `${load.non2xx} non-2xx: ${JSON.stringify(load.statusCodes)}`,
    );
  }
  if (load.errors > 0) problems.push(`${load.errors} errors or timeouts`);
  if (!metrics.ok) problems.push(`metrics: ${metrics.detail}`);
  return { load, server, machine: machine(), metrics, problems };
}

// ---------------------------------------------------------------------------
// Phase 2: the soak at a fixed rate

interface SoakResult {
  targetRate: number;
  /** `--rps` per connection. */
  rpsPerConnection: number;
  requests: number;
  load: LoadResult;
  /** Responses completed in each whole second of the run (h2load's log). */
  perSecond: { min: number; median: number; max: number; seconds: number };
  server: ProcessSample;
  machine: MachineLoad;
  countsDelta: RequestCounts;
  rss: SeriesStats;
  heap: SeriesStats | undefined;
  /** Per minute. */
  floor: GcFloor;
  logBacklog: LogBacklog | undefined;
  series: MemoryPoint[];
  verdicts: Verdict[];
  warnings: string[];
}

async function soakAtRate(
  ctx: Context,
  service: Started,
  rate: number,
): Promise<SoakResult> {
  const { options } = ctx;
  // h2load paces each connection at --rps; it takes decimals.
  const rpsPerConnection =
    Math.round((rate / options.connections) * 1000) / 1000;
  const targetRate = rpsPerConnection * options.connections;
  const requests = Math.round(targetRate * options.duration);
  const before = await settledRequestCounts(service.baseUrl);
  const machine = measureMachineLoad();
  const sampler = new ProcessSampler(service.pid, 250);
  const memory = new MemorySeries(service, ctx.serviceLog, 1000);
  let load: LoadResult;
  let server: ProcessSample;
  let series: MemoryPoint[];
  try {
    load = await runH2load({
      url: `${service.baseUrl}${createTokenPath}`,
      headers: jsonHeaders(ctx),
      bodyFile: ctx.jsonFile,
      connections: options.connections,
      requests,
      rps: rpsPerConnection,
      http1: true,
      logFile: ctx.logFile,
      // A bound on time, should the service slow to a crawl.
      signal: AbortSignal.any([
        ctx.signal,
        AbortSignal.timeout((2 * options.duration + 60) * 1000),
      ]),
    });
  } finally {
    server = sampler.stop();
    series = await memory.stop();
  }
  const machineLoad = machine();
  const after = await settledRequestCounts(service.baseUrl);
  const countsDelta = deltaOf(before, after);
  const backlog = await logBacklog(ctx.serviceLog, series, sumOf(after));
  const perSecond = completionsPerSecond(ctx.logFile);

  const rss = seriesStats(
    series.map((p) => ({ x: p.t / 60, y: p.rssBytes / 1e6 })),
  );
  const heapPoints = series.flatMap((p) =>
    p.heap ? [{ x: p.t / 60, y: p.heap.usedBytes / 1e6 }] : [],
  );
  const heap = heapPoints.length >= 4 ? seriesStats(heapPoints) : undefined;
  const floor = gcFloor(series, (p) => p.t / 60);

  const verdicts: Verdict[] = [];
  const warnings: string[] = [];
  const allOk =
    load.sent === requests &&
    load.ok === requests &&
    load.non2xx === 0 &&
    load.errors === 0;
  verdicts.push({
    name: "soak: every response 2xx",
    pass: allOk,
    detail:
      `${requests} requests, ${load.sent} sent, ${load.ok} 2xx, ` +
      `${load.non2xx} non-2xx, ${load.errors} errors` +
      (load.non2xx > 0 ? ` ${JSON.stringify(load.statusCodes)}` : ""),
  });
  const serviceOk = countsDelta["connect/ok"] ?? 0;
  const others = Object.entries(countsDelta).filter(
    ([key]) => key !== "connect/ok",
  );
  verdicts.push({
    name: "soak: service counted every request ok",
    pass: serviceOk === load.sent && others.length === 0,
    detail:
      `token_service_requests_total{code="ok"} +${serviceOk} for ${load.sent} sent` +
      (others.length
        ? `; also ${JSON.stringify(Object.fromEntries(others))}`
        : ""),
  });
  verdicts.push({
    name: `soak: flat memory (RSS slope < ${options.maxSlope} MB/min over the second half)`,
    pass: rss.points >= 4 && rss.slopeSecondHalf < options.maxSlope,
    detail:
      `${rss.slopeSecondHalf.toFixed(2)} MB/min over ${rss.points} samples; RSS ` +
      `${fmtMB(rss.start * 1e6)} -> ${fmtMB(rss.end * 1e6)} MB, peak ${fmtMB(rss.peak * 1e6)} MB` +
      (heap
        ? `; heap used slope ${heap.slopeSecondHalf.toFixed(2)} MB/min`
        : "") +
      (floor.majorGcs === 0
        ? " (no major GC during the run: the slope is V8's heap growing toward its next " +
          "mark-compact, not necessarily a leak; see the old space after major GCs with a longer --duration)"
        : ""),
  });
  verdicts.push(floorInfo("soak", floor, "MB/min"));
  backlogNote("soak", backlog, verdicts, warnings);
  const achieved = load.ok / load.durationSeconds;
  if (achieved < 0.95 * targetRate) {
    warnings.push(
      `soak: the rate was not held: ${Math.round(achieved)} tokens/s for ${Math.round(targetRate)} ` +
        `asked (the machine was busy ${Math.round(machineLoad.busy * 100)}%)`,
    );
  }
  return {
    targetRate,
    rpsPerConnection,
    requests,
    load,
    perSecond,
    server,
    machine: machineLoad,
    countsDelta,
    rss,
    heap,
    floor,
    logBacklog: backlog,
    series,
    verdicts,
    warnings,
  };
}

/** The post-major-GC old space of a series; `x` in minutes or 100k calls. */
function gcFloor(
  series: MemoryPoint[],
  x: (p: MemoryPoint) => number,
): GcFloor {
  const read = series.filter((p) => p.heap !== undefined);
  const points: GcFloor["points"] = [];
  for (let i = 1; i < read.length; i++) {
    const previous = read[i - 1]?.heap;
    const point = read[i];
    if (!previous || !point?.heap) continue;
    if (point.heap.majorGcs > previous.majorGcs) {
      points.push({
        x: x(point),
        oldSpaceMB: point.heap.oldSpaceBytes / 1e6,
        rssMB: point.rssBytes / 1e6,
      });
    }
  }
  const first = read[0]?.heap?.majorGcs ?? 0;
  const last = read[read.length - 1]?.heap?.majorGcs ?? first;
  const end = series[series.length - 1];
  const half = end ? x(end) / 2 : 0;
  const floorSlope = (p: GcFloor["points"]) =>
    p.length >= 3
      ? slope(p.map((q) => ({ x: q.x, y: q.oldSpaceMB })))
      : undefined;
  return {
    majorGcs: last - first,
    points,
    slopeSecondHalf: floorSlope(points.filter((p) => p.x >= half)),
    slopeWhole: floorSlope(points),
  };
}

/** The post-GC floor as an INFO line: evidence, not a gate. */
function floorInfo(phase: string, floor: GcFloor, unit: string): Verdict {
  const mb = floor.points.map((p) => p.oldSpaceMB);
  return {
    name: `${phase}: old space after each major GC (not a gate)`,
    pass: true,
    info: true,
    detail:
      mb.length === 0
        ? floor.majorGcs === 0
          ? "no major GC during the run: RSS and heap only grew toward V8's next mark-compact"
          : `${floor.majorGcs} major GCs, none seen by a /metrics scrape`
        : `${floor.majorGcs} major GCs, ${mb.length} seen; ${fmtList(mb)} MB ` +
          `(RSS then ${rangeOf(floor.points.map((p) => p.rssMB))} MB); slope ` +
          (floor.slopeSecondHalf === undefined
            ? "n/a in the second half (fewer than 3)"
            : `${floor.slopeSecondHalf.toFixed(2)} ${unit} over the second half`) +
          (floor.slopeWhole === undefined
            ? ""
            : `, ${floor.slopeWhole.toFixed(2)} over the whole run`),
  };
}

function rangeOf(values: number[]): string {
  return `${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)}`;
}

/** At most 12 values, first and last kept. */
function fmtList(values: number[]): string {
  const every = Math.max(1, Math.ceil(values.length / 12));
  const shown = values.filter(
    (_, i) => i % every === 0 || i === values.length - 1,
  );
  return (
    shown.map((v) => v.toFixed(1)).join(", ") +
    (shown.length < values.length ? ` (${values.length} in all)` : "")
  );
}

/** Per whole second of an h2load log, the responses that ended in it. */
function completionsPerSecond(logFile: string): SoakResult["perSecond"] {
  const ends: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (line === "") continue;
    const [start = "", , micros = ""] = line.split("\t");
    const s = Number(start);
    first = Math.min(first, s);
    ends.push(s + Number(micros));
  }
  const buckets: number[] = [];
  for (const end of ends) {
    const i = Math.floor((end - first) / 1e6);
    buckets[i] = (buckets[i] ?? 0) + 1;
  }
  // The last second is partial.
  const whole = Array.from(buckets.slice(0, -1), (n) => n ?? 0).sort(
    (a, b) => a - b,
  );
  return {
    min: whole[0] ?? 0,
    median: whole[Math.floor(whole.length / 2)] ?? 0,
    max: whole[whole.length - 1] ?? 0,
    seconds: whole.length,
  };
}

// ---------------------------------------------------------------------------
// Phase 4: many calls at full speed

interface CallsCheckpoint {
  calls: number;
  /** Seconds since the run started. */
  t: number;
  rssBytes: number;
  heapUsedBytes?: number;
}

interface CallsResult {
  calls: number;
  load: LoadResult;
  server: ProcessSample;
  machine: MachineLoad;
  countsDelta: RequestCounts;
  checkpoints: CallsCheckpoint[];
  /** RSS trend, per 100k calls (x in units of 100k calls, y in MB). */
  rss: SeriesStats;
  /** Per 100k calls. */
  floor: GcFloor;
  logBacklog: LogBacklog | undefined;
  /** Every second. */
  series: MemoryPoint[];
  verdicts: Verdict[];
  warnings: string[];
}

async function manyCalls(ctx: Context, service: Started): Promise<CallsResult> {
  const { options } = ctx;
  const checkpoints: CallsCheckpoint[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const checkpoint = (calls: number) => {
    const memory = readMemory(service.pid);
    if (memory === undefined) return;
    const point: CallsCheckpoint = {
      calls,
      t: (performance.now() - t0) / 1000,
      rssBytes: memory.rssBytes,
    };
    checkpoints.push(point);
    pending.push(
      scrapeHeap(service.baseUrl, 5000).then(
        (heap) => {
          if (heap) point.heapUsedBytes = heap.usedBytes;
        },
        () => {},
      ),
    );
    if (calls > 0) {
      log(
        `  ${calls} calls, ${((performance.now() - t0) / 1000).toFixed(0)} s: ` +
          `RSS ${fmtMB(memory.rssBytes)} MB`,
      );
    }
  };
  const before = await settledRequestCounts(service.baseUrl);
  const machine = measureMachineLoad();
  const sampler = new ProcessSampler(service.pid, 250);
  checkpoint(0);
  let responses = 0;
  const memory = new MemorySeries(
    service,
    ctx.serviceLog,
    1000,
    () => responses,
  );
  let load: LoadResult;
  let server: ProcessSample;
  let series: MemoryPoint[];
  try {
    load = await runAutocannon({
      url: `${service.baseUrl}${createTokenPath}`,
      headers: jsonHeaders(ctx),
      body: jsonBody(),
      connections: options.connections,
      durationSeconds: 0,
      amount: options.calls,
      onResponse: () => {
        responses += 1;
        if (responses % options.callsEvery === 0) checkpoint(responses);
      },
      // A bound on time: no slower than 200 calls/s.
      signal: AbortSignal.any([
        ctx.signal,
        AbortSignal.timeout((options.calls / 200 + 60) * 1000),
      ]),
    });
  } finally {
    server = sampler.stop();
    series = await memory.stop();
  }
  await Promise.all(pending);
  const floor = gcFloor(series, (p) => (p.calls ?? 0) / 1e5);
  const machineLoad = machine();
  const after = await settledRequestCounts(service.baseUrl);
  const countsDelta = deltaOf(before, after);
  const backlog = await logBacklog(ctx.serviceLog, series, sumOf(after));
  const rss = seriesStats(
    checkpoints.map((c) => ({ x: c.calls / 1e5, y: c.rssBytes / 1e6 })),
  );
  const serviceOk = countsDelta["connect/ok"] ?? 0;
  const others = Object.keys(countsDelta).filter((k) => k !== "connect/ok");
  const verdicts: Verdict[] = [
    {
      name: `calls: ${options.calls} calls, every one 2xx and counted ok`,
      pass:
        load.ok === options.calls &&
        load.non2xx === 0 &&
        load.errors === 0 &&
        serviceOk === options.calls &&
        others.length === 0,
      detail:
        `${load.sent} sent, ${load.ok} 2xx, ${load.non2xx} non-2xx, ${load.errors} errors; ` +
        `service ok +${serviceOk}` +
        (others.length ? `, others ${JSON.stringify(countsDelta)}` : "") +
        `; ${Math.round(load.okPerSecond)} tokens/s`,
    },
    {
      name: `calls: no upward RSS trend (slope < ${options.maxSlopeCalls} MB per 100k calls over the second half)`,
      pass: rss.points >= 3 && rss.slopeSecondHalf < options.maxSlopeCalls,
      detail:
        `${rss.slopeSecondHalf.toFixed(2)} MB per 100k calls (whole run ` +
        `${rss.slopeWhole.toFixed(2)}); RSS ${fmtMB(rss.start * 1e6)} -> ` +
        `${fmtMB(rss.end * 1e6)} MB, peak at checkpoints ${fmtMB(rss.peak * 1e6)} MB, ` +
        `VmHWM ${fmtMB(server.lifetimeHwmBytes)} MB`,
    },
    floorInfo("calls", floor, "MB per 100k calls"),
  ];
  const warnings: string[] = [];
  backlogNote("calls", backlog, verdicts, warnings);
  return {
    calls: options.calls,
    load,
    server,
    machine: machineLoad,
    countsDelta,
    checkpoints,
    rss,
    floor,
    logBacklog: backlog,
    series,
    verdicts,
    warnings,
  };
}

// ---------------------------------------------------------------------------
// Phase 3: SIGTERM under load

interface SigtermResult {
  targetRate: number;
  load: PacedLoadResult;
  /** Calls sent before SIGTERM, and after it until readiness was seen down. */
  sentBeforeSigterm: number;
  sentDuringDrain: number;
  /** Rate achieved before SIGTERM. */
  rateBeforeSigterm: number;
  /** Milliseconds after SIGTERM. */
  readyzDownAfterMs: number | undefined;
  readyzDownWhat: string | undefined;
  lastResponseAfterMs: number;
  exit: ServiceExit | undefined;
  countsDelta: RequestCounts | undefined;
  countsError: string | undefined;
  /** The service's `rpc` log lines by code, for this process. */
  logCounts: Record<string, number> | undefined;
  server: ProcessSample;
  machine: MachineLoad;
  verdicts: Verdict[];
  warnings: string[];
}

async function sigtermRun(ctx: Context, rate: number): Promise<SigtermResult> {
  const { options } = ctx;
  const logOffset = fileSize(ctx.serviceLog);
  const service = await startService(ctx, "service-sigterm");
  const check = await sample(ctx, service);
  if (!check.ok) throw new Error(`sample call: ${check.detail}`);
  const before = await settledRequestCounts(service.baseUrl);

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const epoch = () => performance.timeOrigin + performance.now();
  let readyzDown: { atMs: number; what: string } | undefined;
  const pollStop = new AbortController();
  const polling = (async () => {
    while (!pollStop.signal.aborted) {
      const what = await readyzState(service.baseUrl);
      if (what !== "ready") {
        readyzDown = { atMs: epoch(), what };
        stop.abort();
        return;
      }
      await sleep(options.readyzInterval, undefined, {
        signal: pollStop.signal,
      }).catch(() => {});
    }
  })();

  const bound = options.sigtermAfter + options.drain + options.shutdownTimeout;
  const machine = measureMachineLoad();
  const sampler = new ProcessSampler(service.pid, 250);
  const loading = startPacedLoad({
    url: `${service.baseUrl}${createTokenPath}`,
    headers: jsonHeaders(ctx),
    body: jsonBody(),
    connections: options.connections,
    rate,
    stop: stop.signal,
    maxSeconds: bound + 10,
    maxRequests: Math.ceil(rate * (bound + 10)),
    checkBody: (body) =>
      body.includes('"participantToken":"ey') ? undefined : "no token",
  });
  let sigtermAtMs = Number.NaN;
  let sentBeforeSigterm = 0;
  let exitedAtMs: number | undefined;
  let load: PacedLoadResult;
  try {
    await sleep(options.sigtermAfter * 1000, undefined, {
      signal: stop.signal,
    }).catch(() => {});
    ctx.signal.throwIfAborted();
    void service.exited.then(() => {
      exitedAtMs = epoch();
    });
    sentBeforeSigterm = loading.sent();
    sigtermAtMs = epoch();
    service.child.kill("SIGTERM");
    load = await loading.result;
  } finally {
    pollStop.abort();
    stop.abort();
    ctx.signal.removeEventListener("abort", onAbort);
    await loading.result.catch(() => {});
    await polling;
  }
  const server = sampler.stop();
  const machineLoad = machine();
  // Still draining: the counter can be read once more.
  let countsDelta: RequestCounts | undefined;
  let countsError: string | undefined;
  try {
    countsDelta = deltaOf(
      before,
      await settledRequestCounts(service.baseUrl, 1000),
    );
  } catch (e) {
    countsError = (e as Error).message;
  }
  const waitMs = (options.drain + options.shutdownTimeout + 5) * 1000;
  const exited = await Promise.race([
    service.exited,
    sleep(waitMs).then(() => undefined),
  ]);
  if (exited === undefined) service.child.kill("SIGKILL");
  const exit: ServiceExit | undefined = exited && {
    code: exited.code,
    signal: exited.signal,
    afterMs: (exitedAtMs ?? epoch()) - sigtermAtMs,
  };
  const logCounts = countRpcLines(ctx.serviceLog, logOffset);

  const sentDuringDrain = load.sent - sentBeforeSigterm;
  const readyzDownAfterMs = readyzDown && readyzDown.atMs - sigtermAtMs;

  const verdicts: Verdict[] = [];
  const warnings: string[] = [];
  verdicts.push({
    name: "SIGTERM: readiness dropped after SIGTERM, not before, and the load stopped on it",
    pass:
      readyzDownAfterMs !== undefined &&
      readyzDownAfterMs >= 0 &&
      load.stoppedBy === "stop",
    detail:
      readyzDown === undefined
        ? `/readyz never turned; the load stopped by ${load.stoppedBy}`
        : `/readyz ${readyzDown.what} seen ${Math.round(readyzDownAfterMs ?? 0)} ms after SIGTERM`,
  });
  verdicts.push({
    name: "SIGTERM: every accepted call succeeded",
    pass: load.sent > 0 && load.failed === 0 && load.ok === load.sent,
    detail:
      `${load.sent} accepted (${sentBeforeSigterm} before SIGTERM, ${sentDuringDrain} during the drain), ` +
      `${load.ok} ok, ${load.failed} failed` +
      (load.failed ? ` ${JSON.stringify(load.failures)}` : ""),
  });
  const serviceOk = countsDelta?.["connect/ok"];
  const others = countsDelta
    ? Object.keys(countsDelta).filter((k) => k !== "connect/ok")
    : [];
  verdicts.push({
    name: "SIGTERM: service counted every accepted call ok",
    pass: serviceOk === load.sent && others.length === 0,
    detail:
      countsDelta === undefined
        ? `/metrics not read during the drain: ${countsError}`
        : `token_service_requests_total{code="ok"} +${serviceOk} for ${load.sent} accepted` +
          (others.length ? `; also ${JSON.stringify(countsDelta)}` : ""),
  });
  if (logCounts) {
    // The log also has the sample call made before the load.
    const logOthers = Object.keys(logCounts).filter((k) => k !== "ok");
    verdicts.push({
      name: "SIGTERM: the service's log has every accepted call, ok",
      pass: logCounts.ok === load.sent + 1 && logOthers.length === 0,
      detail: `${JSON.stringify(logCounts)} rpc lines for ${load.sent} accepted + 1 sample call`,
    });
  }
  verdicts.push({
    name: "SIGTERM: the service exited 0",
    pass: exit !== undefined && exit.code === 0 && exit.signal === null,
    detail:
      exit === undefined
        ? `still running ${waitMs} ms after the load: killed`
        : `code ${exit.code}, signal ${exit.signal}, ${Math.round(exit.afterMs)} ms after SIGTERM ` +
          `(drain ${options.drain} s)`,
  });
  const rateBeforeSigterm =
    sentBeforeSigterm / ((sigtermAtMs - load.startedAtMs) / 1000);
  if (rateBeforeSigterm < 0.95 * rate) {
    warnings.push(
      `SIGTERM: the rate was not held: ${Math.round(rateBeforeSigterm)} calls/s sent before ` +
        `SIGTERM for ${Math.round(rate)} asked (the machine was busy ${Math.round(machineLoad.busy * 100)}%)`,
    );
  }
  return {
    targetRate: rate,
    load,
    sentBeforeSigterm,
    sentDuringDrain,
    rateBeforeSigterm,
    readyzDownAfterMs,
    readyzDownWhat: readyzDown?.what,
    lastResponseAfterMs: load.endedAtMs - sigtermAtMs,
    exit,
    countsDelta,
    countsError,
    logCounts,
    server,
    machine: machineLoad,
    verdicts,
    warnings,
  };
}

/** `ready`, or why not: `503`, `ECONNREFUSED`, `timeout`… */
async function readyzState(baseUrl: string): Promise<string> {
  try {
    const response = await fetch(`${baseUrl}/readyz`, {
      signal: AbortSignal.timeout(2000),
    });
    await response.arrayBuffer();
    return response.status === 200 ? "ready" : String(response.status);
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return cause?.code ?? (e as Error).name;
  }
}

function fileSize(file: string): number | undefined {
  try {
    const stat = statSync(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return 0;
  }
}

/**
 * What the service's log still had to write when the load stopped: its
 * lines go out asynchronously, and lines not yet written are held in the
 * service's memory.
 */
interface LogBacklog {
  /** Log bytes per call, from the log once it was all written. */
  bytesPerCall: number;
  /** The largest backlog sampled, and when (seconds into the run). */
  peakBytes: number;
  peakAt: number;
  /** At the last sample, just after the load stopped. */
  endBytes: number;
  /** From the end of the run until the log file stopped growing. */
  drainSeconds: number;
}

/**
 * Waits until the log file stops growing (for 1 s), then estimates, at
 * each sample of the run, the log lines made but not yet written: held in
 * the service's memory. Undefined when the log is not a file.
 */
async function logBacklog(
  file: string,
  series: MemoryPoint[],
  callsAtEnd: number,
): Promise<LogBacklog | undefined> {
  const points = series.filter(
    (p) => p.logBytes !== undefined && p.heap !== undefined,
  );
  const first = points[0];
  const sizeNow = fileSize(file);
  if (!first?.heap || first.logBytes === undefined || sizeNow === undefined) {
    return undefined;
  }
  let size: number = sizeNow;
  const t0 = performance.now();
  let stableSince = t0;
  let grownAt = t0;
  while (performance.now() - stableSince < 1000) {
    if (performance.now() - t0 > 120_000) break;
    await sleep(100);
    const next: number = fileSize(file) ?? size;
    if (next !== size) {
      size = next;
      stableSince = performance.now();
      grownAt = stableSince;
    }
  }
  const calls = callsAtEnd - first.heap.calls;
  if (calls <= 0) return undefined;
  const bytesPerCall = (size - first.logBytes) / calls;
  let peakBytes = 0;
  let peakAt = 0;
  let endBytes = 0;
  for (const p of points) {
    if (!p.heap || p.logBytes === undefined) continue;
    const backlog =
      (p.heap.calls - first.heap.calls) * bytesPerCall -
      (p.logBytes - first.logBytes);
    p.logBacklogBytes = Math.round(backlog);
    if (backlog > peakBytes) {
      peakBytes = backlog;
      peakAt = p.t;
    }
    endBytes = backlog;
  }
  return {
    bytesPerCall,
    peakBytes,
    peakAt,
    endBytes,
    drainSeconds: (grownAt - t0) / 1000,
  };
}

/** The log backlog as an INFO line, or a WARN when it passed 1 MB. */
function backlogNote(
  phase: string,
  backlog: LogBacklog | undefined,
  verdicts: Verdict[],
  warnings: string[],
): void {
  if (!backlog) return;
  const text =
    `log lines made but not yet written (held in the service's memory): up to ` +
    `${fmtMB(backlog.peakBytes)} MB (at ${backlog.peakAt.toFixed(0)} s of the run), ` +
    "all written out once the load stopped; " +
    `${backlog.bytesPerCall.toFixed(0)} bytes of log per call`;
  if (backlog.peakBytes > 1e6) warnings.push(`${phase}: ${text}`);
  else
    verdicts.push({
      name: `${phase}: log backlog`,
      pass: true,
      info: true,
      detail: text,
    });
}

/** Counts the service's `rpc` log lines by code, from `offset` on. */
function countRpcLines(
  file: string,
  offset: number | undefined,
): Record<string, number> | undefined {
  if (offset === undefined) return undefined;
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  const counts: Record<string, number> = {};
  try {
    const buffer = Buffer.alloc(1 << 20);
    let position = offset;
    let rest = "";
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) break;
      position += n;
      const lines = (rest + buffer.toString("utf8", 0, n)).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.includes('"msg":"rpc"')) continue;
        try {
          const entry = JSON.parse(line) as { method?: string; code?: string };
          if (entry.method !== "CreateToken") continue;
          const code = entry.code ?? "unknown";
          counts[code] = (counts[code] ?? 0) + 1;
        } catch {
          counts.unparsed = (counts.unparsed ?? 0) + 1;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return counts;
}

// ---------------------------------------------------------------------------
// Figures

function sumOf(counts: RequestCounts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function deltaOf(before: RequestCounts, after: RequestCounts): RequestCounts {
  const delta: RequestCounts = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[key] ?? 0) - (before[key] ?? 0);
    if (d !== 0) delta[key] = d;
  }
  return delta;
}

/** Least-squares slope of y over x; 0 with fewer than two points. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

function seriesStats(points: { x: number; y: number }[]): SeriesStats {
  const last = points[points.length - 1];
  const half = (last?.x ?? 0) / 2;
  return {
    start: points[0]?.y ?? 0,
    end: last?.y ?? 0,
    peak: Math.max(0, ...points.map((p) => p.y)),
    slopeSecondHalf: slope(points.filter((p) => p.x >= half)),
    slopeWhole: slope(points),
    points: points.length,
  };
}

function formatMaximum(m: MaximumResult): string[] {
  const l = m.load;
  return [
    "1. maximum (autocannon, Connect JSON over HTTP/1.1)",
    `   ${Math.round(l.okPerSecond)} tokens/s over ${l.durationSeconds} s; p50 ${fmtMs(l.latency.p50)} ms, ` +
      `p99 ${fmtMs(l.latency.p99)} ms; ${l.non2xx} non-2xx, ${l.errors} errors; ` +
      `server CPU ${((m.server.cpuSeconds * 1e6) / Math.max(1, l.ok)).toFixed(0)} us/token; ` +
      `machine busy ${pct(m.machine.busy)}, steal ${pct(m.machine.steal)}`,
  ];
}

function formatSoak(s: SoakResult, options: Options): string[] {
  const l = s.load;
  const rss = s.rss;
  const lines = [
    `2. soak (h2load --h1 -n ${s.requests} --rps ${s.rpsPerConnection} x ${options.connections} connections)`,
    `   asked ${Math.round(s.targetRate)} tokens/s, got ${Math.round(l.okPerSecond)} over ${l.durationSeconds.toFixed(1)} s ` +
      `(per second: min ${s.perSecond.min}, median ${s.perSecond.median}, max ${s.perSecond.max}); ` +
      `p50 ${fmtMs(l.latency.p50)} ms, p99 ${fmtMs(l.latency.p99)} ms, max ${fmtMs(l.latency.max)} ms`,
    `   ${l.sent} sent, ${l.ok} 2xx, ${l.non2xx} non-2xx, ${l.errors} errors; service counter ` +
      `${JSON.stringify(s.countsDelta)}; machine busy ${pct(s.machine.busy)}, steal ${pct(s.machine.steal)}`,
    `   RSS MB: start ${rss.start.toFixed(1)}, end ${rss.end.toFixed(1)}, peak ${rss.peak.toFixed(1)} ` +
      `(VmHWM ${fmtMB(s.server.lifetimeHwmBytes)}); slope second half ${rss.slopeSecondHalf.toFixed(2)} MB/min, ` +
      `whole run ${rss.slopeWhole.toFixed(2)} MB/min`,
  ];
  if (s.heap) {
    lines.push(
      `   heap used MB: start ${s.heap.start.toFixed(1)}, end ${s.heap.end.toFixed(1)}, peak ` +
        `${s.heap.peak.toFixed(1)}; slope second half ${s.heap.slopeSecondHalf.toFixed(2)} MB/min`,
    );
  }
  const every = Math.max(1, Math.round(s.series.length / 12));
  lines.push(
    `   RSS/heap every ${every} s: ` +
      s.series
        .filter((_, i) => i % every === 0)
        .map(
          (p) =>
            `${p.t.toFixed(0)}s ${fmtMB(p.rssBytes)}/${p.heap ? fmtMB(p.heap.usedBytes) : "-"}`,
        )
        .join(", "),
  );
  return lines;
}

function formatCalls(c: CallsResult, options: Options): string[] {
  return [
    `4. ${options.calls} calls at full speed (autocannon -a)`,
    `   ${Math.round(c.load.okPerSecond)} tokens/s over ${c.load.durationSeconds} s; p99 ` +
      `${fmtMs(c.load.latency.p99)} ms; machine busy ${pct(c.machine.busy)}`,
    "   calls      s   RSS MB  heap MB",
    ...c.checkpoints.map(
      (p) =>
        `   ${String(p.calls).padStart(8)} ${p.t.toFixed(0).padStart(5)} ${fmtMB(p.rssBytes).padStart(8)} ` +
        `${(p.heapUsedBytes === undefined ? "-" : fmtMB(p.heapUsedBytes)).padStart(8)}`,
    ),
    `   RSS slope: ${c.rss.slopeSecondHalf.toFixed(2)} MB per 100k calls over the second half, ` +
      `${c.rss.slopeWhole.toFixed(2)} over the whole run`,
  ];
}

function formatSigterm(s: SigtermResult): string[] {
  const l = s.load;
  return [
    `3. SIGTERM under load (own loop: ${l.connections} keep-alive HTTP/1.1 connections, node:http)`,
    `   asked ${Math.round(s.targetRate)} calls/s, sent ${Math.round(s.rateBeforeSigterm)}/s before SIGTERM; ` +
      `p50 ${fmtMs(l.latency.p50)} ms, p99 ${fmtMs(l.latency.p99)} ms`,
    `   /readyz ${s.readyzDownWhat ?? "never down"} seen ${s.readyzDownAfterMs === undefined ? "-" : Math.round(s.readyzDownAfterMs)} ms ` +
      `after SIGTERM; last response ${Math.round(s.lastResponseAfterMs)} ms after; ` +
      `exit ${s.exit ? `code ${s.exit.code} after ${Math.round(s.exit.afterMs)} ms` : "none (killed)"}`,
    `   accepted ${l.sent} (${s.sentBeforeSigterm} before SIGTERM + ${s.sentDuringDrain} during the drain): ` +
      `${l.ok} ok, ${l.failed} failed; service counter ${s.countsDelta ? JSON.stringify(s.countsDelta) : `unread (${s.countsError})`}`,
  ];
}

const pct = (share: number) => `${Math.round(share * 100)}%`;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `soak: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);

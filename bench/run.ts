/**
 * `npm run bench`: measures the token service, started as a production
 * deployment would run it, against the yardstick peer
 * (../shared/bench/peer-endpoint.mjs), alternating the two in rounds, and
 * reports tokens/s, latency, errors, peak RSS and the ratio to the peer.
 * A benchmark, not a test: CI never runs it.
 */
import { once } from "node:events";
import { createReadStream, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import {
  checkRequestCounts,
  type SampleCheck,
  sampleHttp2,
  sampleJsonHttp1,
  settledRequestCounts,
} from "./checks.js";
import {
  h2loadVersion,
  type LoadResult,
  runAutocannon,
  runH2load,
} from "./loaders.js";
import { machineInfo, measureMachineLoad, sourceState } from "./machine.js";
import {
  childPids,
  freePort,
  type MemoryReading,
  type ProcessSample,
  ProcessSampler,
  postProbe,
  processExecutable,
  readMemory,
  readyzProbe,
  type Started,
  stopProcess,
  waitReady,
} from "./processes.js";
import {
  checkTargets,
  fmtMB,
  formatTable,
  formatTargets,
  type RunRecord,
  type Scenario,
  summarise,
  type TargetName,
} from "./report.js";
import {
  createTokenPath,
  type ExpectedToken,
  grpcBody,
  jsonBody,
} from "./request.js";
import {
  benchCredentials,
  buildService,
  defaultPeerFile,
  benchRoot as root,
  spawnPeer,
  spawnService,
} from "./service.js";
import { startSession } from "./session.js";

const usage = `Usage: npm run bench -- [options]

Measures the token service against the peer endpoint, alternating the two
in rounds, and writes bench/results/bench-<date>.json.

Options (each also as an env variable):
  --duration S      seconds per measured run (BENCH_DURATION, default 10)
  --warmup S        seconds of warm-up before each run (BENCH_WARMUP, default 2)
  --rounds N        rounds (BENCH_ROUNDS, default 3)
  --connections N   concurrent connections (BENCH_CONNECTIONS, default 50)
  --no-cross-check  skip the h2load --h1 runs of service and peer
  --service-log F   where the service's logs go (BENCH_SERVICE_LOG, default
                    bench/results/service-<date>.log; /dev/null to discard)
  --peer FILE       the peer (BENCH_PEER, default ../shared/bench/peer-endpoint.mjs)
  --strict          exit 1 when a target fails
  -h, --help        show this help
`;

interface Options {
  duration: number;
  warmup: number;
  rounds: number;
  connections: number;
  crossCheck: boolean;
  serviceLog: string | undefined;
  peer: string;
  strict: boolean;
}

function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      connections: { type: "string" },
      "no-cross-check": { type: "boolean" },
      "service-log": { type: "string" },
      peer: { type: "string" },
      strict: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const env = process.env;
  const int = (
    name: string,
    flag: string | undefined,
    fallback: number,
    min: number,
  ) => {
    const raw = flag ?? env[`BENCH_${name.toUpperCase()}`];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name} must be an integer >= ${min}, not ${raw}`);
    }
    return n;
  };
  return {
    duration: int("duration", values.duration, 10, 1),
    warmup: int("warmup", values.warmup, 2, 0),
    rounds: int("rounds", values.rounds, 3, 1),
    connections: int("connections", values.connections, 50, 1),
    crossCheck: !values["no-cross-check"],
    serviceLog: values["service-log"] ?? (env.BENCH_SERVICE_LOG || undefined),
    peer: values.peer ? path.resolve(root, values.peer) : defaultPeerFile,
    strict: values.strict ?? false,
  };
}

const scenarios: Scenario[] = [
  {
    id: "connect-json-http1",
    title: "Connect JSON over HTTP/1.1 (autocannon)",
    tool: "autocannon",
    targets: ["service", "peer"],
    peerBaseline: "connect-json-http1",
  },
  {
    id: "grpc-h2c",
    title: "gRPC over h2c (h2load)",
    tool: "h2load",
    targets: ["service"],
    peerBaseline: "connect-json-http1",
  },
  {
    id: "connect-json-h2c",
    title: "Connect JSON over h2c (h2load)",
    tool: "h2load",
    targets: ["service"],
    peerBaseline: "connect-json-http1",
  },
  {
    id: "json-http1-h2load",
    title:
      "JSON over HTTP/1.1 (h2load --h1): cross-check of the load generator",
    tool: "h2load",
    targets: ["service", "peer"],
    peerBaseline: "json-http1-h2load",
  },
];

/** Everything a run needs to reach the two targets. */
interface Bench {
  options: Options;
  service: Started;
  peer: Started;
  serviceKey: string;
  expected: ExpectedToken;
  files: { json: string; grpc: string; tmp: string };
  signal: AbortSignal;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === "help") {
    process.stdout.write(usage);
    return 0;
  }
  // Fail before starting anything when a tool is missing.
  const h2load = h2loadVersion();
  const session = startSession("bench");
  const { stamp, resultsDir, tmp, started } = session;
  const serviceLog =
    options.serviceLog ?? path.join(resultsDir, `service-${stamp}.log`);

  const { credentials, serviceKey } = benchCredentials("APIbench");
  const expected: ExpectedToken = {
    apiKey: credentials.LIVEKIT_API_KEY,
    apiSecret: credentials.LIVEKIT_API_SECRET,
  };
  const files = {
    tmp,
    json: path.join(tmp, "request.json"),
    grpc: path.join(tmp, "request.grpc"),
  };
  writeFileSync(files.json, jsonBody());
  writeFileSync(files.grpc, grpcBody());

  const runs: RunRecord[] = [];
  let startChecks: Record<string, SampleCheck> = {};
  let serviceCalls: number | undefined;
  const children: {
    of: string;
    pid: number;
    exe: string;
    rssBytes: number;
  }[] = [];
  let idleMemory: Record<TargetName, MemoryReading | undefined> | undefined;
  let error: unknown;
  let service: Started | undefined;
  let peer: Started | undefined;
  const info = machineInfo(h2load);
  const source = sourceState(root);
  try {
    const servicePort = await freePort();
    let peerPort = await freePort();
    while (peerPort === servicePort) peerPort = await freePort();

    buildService(root);
    service = spawnService({
      root,
      name: "service",
      port: servicePort,
      credentials,
      serviceKey,
      stdout: serviceLog,
    });
    started.push(service);
    peer = spawnPeer(options.peer, peerPort, credentials);
    started.push(peer);

    const jsonHeaders = {
      "content-type": "application/json",
      authorization: `Bearer ${serviceKey}`,
    };
    await Promise.all([
      waitReady(service, readyzProbe(service.baseUrl)),
      waitReady(peer, postProbe(`${peer.baseUrl}/`, jsonBody(), jsonHeaders)),
    ]);
    for (const s of [service, peer]) {
      const exe = processExecutable(s.pid);
      if (!/node/.test(path.basename(exe))) {
        throw new Error(`${s.name}: pid ${s.pid} is ${exe}, not node`);
      }
      // Memory and CPU are sampled for this one pid: it must be the
      // process that serves, not a primary with Node workers. Other
      // children (tsx may start esbuild to transform sources) are noted.
      for (const pid of childPids(s.pid)) {
        const childExe = processExecutable(pid);
        if (/node/.test(path.basename(childExe))) {
          throw new Error(
            `${s.name}: pid ${s.pid} has a Node child process (${pid}): ` +
              "the bench samples one process and expects it to serve alone",
          );
        }
        children.push({
          of: s.name,
          pid,
          exe: childExe,
          rssBytes: readMemory(pid)?.rssBytes ?? 0,
        });
      }
    }
    const bench: Bench = {
      options,
      service,
      peer,
      serviceKey,
      expected,
      files,
      signal: session.signal,
    };
    startChecks = {
      "service connect-json-http1": await sample(
        bench,
        "service",
        scenarios[0],
      ),
      "service grpc-h2c": await sample(bench, "service", scenarios[1]),
      "service connect-json-h2c": await sample(bench, "service", scenarios[2]),
      "peer json-http1": await sample(bench, "peer", scenarios[0]),
    };
    idleMemory = {
      service: readMemory(service.pid),
      peer: readMemory(peer.pid),
    };
    for (const [name, check] of Object.entries(startChecks)) {
      if (!check.ok)
        throw new Error(`sample call failed: ${name}: ${check.detail}`);
    }

    const total =
      options.rounds *
      scenarios
        .filter((s) => options.crossCheck || s.id !== "json-http1-h2load")
        .reduce((n, s) => n + s.targets.length, 0);
    log(
      `service pid ${service.pid} on ${service.baseUrl}, peer pid ${peer.pid} on ${peer.baseUrl}; ` +
        `${total} runs of ${options.warmup}+${options.duration} s, ${options.connections} connections` +
        ` (about ${Math.ceil((total * (options.warmup + options.duration + 1.5)) / 60)} min)`,
    );
    for (let round = 1; round <= options.rounds; round++) {
      // Alternate who goes first, so that neither always runs on a machine
      // warmed (or disturbed) by the other.
      const order: TargetName[] =
        round % 2 === 1 ? ["service", "peer"] : ["peer", "service"];
      for (const scenario of scenarios) {
        if (scenario.id === "json-http1-h2load" && !options.crossCheck)
          continue;
        for (const target of order) {
          if (!scenario.targets.includes(target)) continue;
          session.signal.throwIfAborted();
          const record = await measure(bench, scenario, target, round);
          runs.push(record);
          log(describeRun(record, runs.length, total));
        }
      }
    }
    serviceCalls = sumCounts(await settledRequestCounts(service.baseUrl));
  } catch (e) {
    error = e;
  } finally {
    process.stderr.write("stopping the service and the peer…\n");
    await Promise.all(started.map((s) => stopProcess(s, 5000)));
    rmSync(tmp, { recursive: true, force: true });
  }

  const crossCheck = options.crossCheck ? "json-http1-h2load" : undefined;
  const summaries = summarise(scenarios, runs, crossCheck);
  const targets = checkTargets(summaries, options.connections);
  const problems = runs.flatMap((r) =>
    r.problems.map((p) => `${r.scenario}/${r.target}/round ${r.round}: ${p}`),
  );
  const complete = error === undefined && !session.interrupted();
  const valid = complete && problems.length === 0;
  const logStats =
    serviceLog === "/dev/null" ? undefined : await fileStats(serviceLog);
  const notes = [
    "The service ran with NODE_ENV=production and LOG_LEVEL=info: logs on, JSON lines on stdout, " +
      (logStats
        ? `written to ${path.relative(root, serviceLog)} (${logStats.lines} lines, ${(logStats.bytes / 1e6).toFixed(1)} MB` +
          (serviceCalls
            ? ` for ${serviceCalls} CreateToken calls, warm-ups included: ${(logStats.lines / serviceCalls).toFixed(2)} lines per call).`
            : ").")
        : "sent to /dev/null: produced, then discarded."),
    "Ratios of the h2c scenarios (gRPC, Connect JSON) are against the peer's HTTP/1.1 tokens/s " +
      "measured with autocannon in the same round: the peer speaks only HTTP/1.1.",
    "Load generator and servers share the machine's cores: 'loadgen CPU' is the load generator's CPU " +
      "in cores (for autocannon, this whole process), 'others CPU' the cores busy with anything but " +
      "the server under test and the load generator (other tenants, the idle server), and CPU us/token " +
      "the server's CPU time per token, less sensitive to contention than tokens/s.",
    "'tokens/CPU-s vs peer' is the service's tokens per second of its own CPU time over the peer's " +
      "(same baseline as 'ratio vs peer'): what a token costs, whatever share of the cores each got.",
    (idleMemory?.service && idleMemory.peer
      ? `RSS after start-up and four sample calls, before any load: service ${fmtMB(idleMemory.service.rssBytes)} MB, ` +
        `peer ${fmtMB(idleMemory.peer.rssBytes)} MB. `
      : "") +
      "RSS is the Node process's own (VmRSS sampled every 250 ms, VmHWM), children excluded.",
    "Latency percentiles are over successful responses, from each response's own time " +
      "(autocannon 'response' events, h2load --log-file), nearest rank.",
  ];
  for (const c of children) {
    notes.push(
      `The ${c.of} had a child process at start, not counted in its RSS or CPU: ` +
        `${c.exe} (pid ${c.pid}, ${fmtMB(c.rssBytes)} MB).`,
    );
  }
  if (source.uncommitted.length > 0) {
    notes.push(
      `The service was measured from commit ${source.commit.slice(0, 12)} WITH uncommitted changes: ${source.uncommitted.join("; ")}`,
    );
  }

  const report = {
    date: new Date().toISOString(),
    machine: info,
    source,
    options,
    commands: {
      bench: ["npm", "run", "bench", "--", ...process.argv.slice(2)].join(" "),
      service: service && {
        cwd: root,
        argv: service.command,
        env: service.env,
        pid: service.pid,
        config: "bench/production-config.yaml",
      },
      peer: peer && {
        cwd: root,
        argv: peer.command,
        env: peer.env,
        pid: peer.pid,
      },
      loads: "see runs[].load.command",
    },
    serviceLog: { path: serviceLog, ...logStats, serviceCalls },
    startChecks,
    idleMemory,
    children,
    scenarios,
    summaries,
    targets,
    valid,
    complete,
    problems,
    error:
      error === undefined ? undefined : String((error as Error).stack ?? error),
    notes,
    runs,
  };
  const jsonPath = path.join(resultsDir, `bench-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

  const out: string[] = [
    "",
    `livekit-token-service benchmark — ${report.date}`,
    `machine: ${info.cpuModel}, ${info.cores} cores, ${info.kernel}; node ${info.node}; ` +
      `${info.h2load}; autocannon ${info.autocannon}`,
    `service: commit ${source.commit.slice(0, 12)}${source.uncommitted.length ? " + uncommitted changes" : ""}; ` +
      `${options.rounds} rounds x ${options.duration} s (+${options.warmup} s warm-up), ${options.connections} connections`,
    "",
    formatTable(summaries),
    "",
    formatTargets(targets, valid),
    "",
    ...notes.map((n) => `- ${n}`),
    "",
    `JSON: ${path.relative(root, jsonPath)}`,
  ];
  if (problems.length > 0) {
    out.push("", "INVALID MEASUREMENT:", ...problems.map((p) => `  ${p}`));
  }
  process.stdout.write(`${out.join("\n")}\n`);
  if (session.interrupted()) {
    process.stderr.write(
      "\nbench interrupted: the JSON holds the runs done so far\n",
    );
    return 130;
  }
  if (error !== undefined) {
    process.stderr.write(
      `\nbench failed: ${(error as Error).stack ?? String(error)}\n`,
    );
    return 1;
  }
  if (!valid) return 1;
  if (options.strict && targets.some((t) => !t.pass)) return 1;
  return 0;
}

/** A sample call with a real client, for a scenario's protocol. */
async function sample(
  bench: Bench,
  target: TargetName,
  scenario: Scenario | undefined,
): Promise<SampleCheck> {
  const { service, peer, serviceKey, expected } = bench;
  const headers = {
    "content-type": "application/json",
    authorization: `Bearer ${serviceKey}`,
  };
  if (target === "peer") {
    return sampleJsonHttp1(`${peer.baseUrl}/`, headers, jsonBody(), expected);
  }
  switch (scenario?.id) {
    case "grpc-h2c":
      return sampleHttp2("grpc", service.baseUrl, serviceKey, expected);
    case "connect-json-h2c":
      return sampleHttp2("connect-json", service.baseUrl, serviceKey, expected);
    default:
      return sampleJsonHttp1(
        `${service.baseUrl}${createTokenPath}`,
        headers,
        jsonBody(),
        expected,
      );
  }
}

/** Runs the load of a scenario against a target, for `seconds`. */
function load(
  bench: Bench,
  scenario: Scenario,
  target: TargetName,
  seconds: number,
  logFile: string,
): Promise<LoadResult> {
  const { service, peer, serviceKey, files, options, signal } = bench;
  const url =
    target === "service"
      ? `${service.baseUrl}${createTokenPath}`
      : `${peer.baseUrl}/`;
  // The peer ignores the Authorization header; it is sent all the same, so
  // that both get the same bytes.
  const authorization = `Bearer ${serviceKey}`;
  const json = { "content-type": "application/json", authorization };
  const common = {
    connections: options.connections,
    durationSeconds: seconds,
    signal,
  };
  switch (scenario.id) {
    case "connect-json-http1":
      return runAutocannon({ ...common, url, headers: json, body: jsonBody() });
    case "grpc-h2c":
      return runH2load({
        ...common,
        url,
        headers: {
          "content-type": "application/grpc",
          te: "trailers",
          authorization,
        },
        bodyFile: files.grpc,
        logFile,
      });
    case "connect-json-h2c":
      return runH2load({
        ...common,
        url,
        headers: json,
        bodyFile: files.json,
        logFile,
      });
    case "json-http1-h2load":
      return runH2load({
        ...common,
        url,
        headers: json,
        bodyFile: files.json,
        logFile,
        http1: true,
      });
    default:
      throw new Error(`unknown scenario ${scenario.id}`);
  }
}

/**
 * One measured run: warm-up, a sample call, the service's counters, the
 * load with the server's memory and CPU sampled, the counters again, and a
 * second sample call.
 */
async function measure(
  bench: Bench,
  scenario: Scenario,
  target: TargetName,
  round: number,
): Promise<RunRecord> {
  const server = target === "service" ? bench.service : bench.peer;
  const logFile = path.join(bench.files.tmp, "h2load.log");
  if (bench.options.warmup > 0) {
    await load(bench, scenario, target, bench.options.warmup, logFile);
    // Let the requests cut off by the end of the warm-up finish.
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const before = await sample(bench, target, scenario);
  const countsBefore =
    target === "service"
      ? await settledRequestCounts(server.baseUrl)
      : undefined;
  const startedAt = new Date().toISOString();
  const machine = measureMachineLoad();
  const sampler = new ProcessSampler(server.pid, 250);
  let result: LoadResult;
  let serverSample: ProcessSample;
  try {
    result = await load(
      bench,
      scenario,
      target,
      bench.options.duration,
      logFile,
    );
  } finally {
    serverSample = sampler.stop();
  }
  // A run cut short by Ctrl-C is not a measurement.
  bench.signal.throwIfAborted();
  const machineLoad = machine();
  const countsAfter =
    target === "service"
      ? await settledRequestCounts(server.baseUrl)
      : undefined;
  const after = await sample(bench, target, scenario);

  const problems: string[] = [];
  if (result.non2xx > 0) {
    problems.push(
      `${result.non2xx} non-2xx responses: ${JSON.stringify(result.statusCodes)}`,
    );
  }
  if (result.errors > 0) problems.push(`${result.errors} errors or timeouts`);
  if (result.ok === 0) problems.push("no successful response");
  if (!before.ok) problems.push(`sample before: ${before.detail}`);
  if (!after.ok) problems.push(`sample after: ${after.detail}`);
  if (server.hasExited()) problems.push(`${server.name} exited`);
  const record: RunRecord = {
    scenario: scenario.id,
    target,
    round,
    startedAt,
    load: result,
    server: serverSample,
    serverCpuMicrosPerToken:
      result.ok > 0 ? (serverSample.cpuSeconds * 1e6) / result.ok : 0,
    machine: machineLoad,
    otherCpuCores: Math.max(
      0,
      machineLoad.busy * os.availableParallelism() -
        (serverSample.cpuSeconds + result.loadgenCpuSeconds) /
          result.durationSeconds,
    ),
    samples: { before, after },
    problems,
  };
  if (countsBefore && countsAfter) {
    const metrics = checkRequestCounts(
      countsBefore,
      countsAfter,
      scenario.id === "grpc-h2c" ? "grpc" : "connect",
      result.ok,
      bench.options.connections,
    );
    record.metrics = metrics;
    if (!metrics.ok) problems.push(`metrics: ${metrics.detail}`);
  }
  return record;
}

function describeRun(r: RunRecord, n: number, total: number): string {
  const l = r.load;
  return (
    `[${n}/${total}] round ${r.round} ${r.scenario} ${r.target}: ` +
    `${Math.round(l.okPerSecond)} tokens/s, p50 ${l.latency.p50.toFixed(2)} ms, ` +
    `p99 ${l.latency.p99.toFixed(2)} ms, non-2xx ${l.non2xx}, errors ${l.errors}, ` +
    `RSS peak ${(r.server.peakRssBytes / 1e6).toFixed(1)} MB, ` +
    `machine busy ${Math.round(r.machine.busy * 100)}% steal ${Math.round(r.machine.steal * 100)}%` +
    (r.metrics ? `; ${r.metrics.detail}` : "") +
    (r.problems.length ? `; PROBLEMS: ${r.problems.join("; ")}` : "")
  );
}

function sumCounts(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function fileStats(
  file: string,
): Promise<{ lines: number; bytes: number } | undefined> {
  try {
    const bytes = statSync(file).size;
    let lines = 0;
    const stream = createReadStream(file);
    stream.on("data", (chunk: Buffer | string) => {
      const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      for (
        let i = buffer.indexOf(10);
        i !== -1;
        i = buffer.indexOf(10, i + 1)
      ) {
        lines++;
      }
    });
    await once(stream, "end");
    return { lines, bytes };
  } catch {
    return undefined;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);

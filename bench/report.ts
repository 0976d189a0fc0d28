/**
 * Summaries of the runs (medians over rounds, ratios to the peer), the
 * targets from the project's issue, the printed table and the JSON report.
 */
import type { MetricsCheck, SampleCheck } from "./checks.js";
import type { LoadResult } from "./loaders.js";
import type { MachineLoad } from "./machine.js";
import type { ProcessSample } from "./processes.js";

export type TargetName = "service" | "peer";

/** A load scenario: one protocol, one load generator. */
export interface Scenario {
  id: string;
  title: string;
  tool: "autocannon" | "h2load";
  /** Who is measured under it. */
  targets: TargetName[];
  /** The scenario whose peer run a service run's ratio is taken against. */
  peerBaseline: string;
}

/** One measured run of one target under one scenario. */
export interface RunRecord {
  scenario: string;
  target: TargetName;
  round: number;
  startedAt: string;
  load: LoadResult;
  /** The server process (service or peer) during the run. */
  server: ProcessSample;
  /** Server CPU time per successful response, in microseconds. */
  serverCpuMicrosPerToken: number;
  machine: MachineLoad;
  /**
   * Cores busy with anything but the server under test and the load
   * generator during the run (other tenants of a shared machine).
   */
  otherCpuCores: number;
  samples: { before: SampleCheck; after: SampleCheck };
  metrics?: MetricsCheck;
  /** Why the run is not a valid measurement; empty when it is. */
  problems: string[];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  perRound: number[];
}

/** The medians of one target under one scenario. */
export interface Summary {
  scenario: string;
  title: string;
  target: TargetName;
  tool: string;
  rounds: number;
  tokensPerSecond: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  non2xx: number;
  errors: number;
  /** Highest VmRSS sampled during any of the runs, in bytes. */
  peakRssBytes: number;
  /** The server's VmHWM (lifetime peak RSS) at the end of its last run. */
  lifetimeHwmBytes: number;
  serverCpuMicrosPerToken: Spread;
  loadgenCpuShare: Spread;
  machineBusy: Spread;
  machineSteal: Spread;
  otherCpuCores: Spread;
  /** Service tokens/s over the peer's, per round, then the median. */
  ratioToPeer?: Spread & { against: string };
  /** The same against the peer under h2load --h1 (cross-check). */
  ratioToPeerSameTool?: Spread & { against: string };
  /**
   * Tokens per CPU-second of the service over the peer's (same baseline as
   * `ratioToPeer`): how much cheaper or dearer a token is, whatever share
   * of the cores each server got on a busy machine.
   */
  cpuEfficiencyToPeer?: Spread & { against: string };
  valid: boolean;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median =
    n === 0
      ? Number.NaN
      : n % 2 === 1
        ? (sorted[(n - 1) / 2] ?? Number.NaN)
        : ((sorted[n / 2 - 1] ?? 0) + (sorted[n / 2] ?? 0)) / 2;
  return {
    median,
    min: sorted[0] ?? Number.NaN,
    max: sorted[n - 1] ?? Number.NaN,
    perRound: values,
  };
}

/**
 * Per round, `measure(service run) / measure(peer run)` with the peer run
 * of `baseline` in the same round; then their spread.
 */
function ratios(
  runs: RunRecord[],
  service: RunRecord[],
  baseline: string,
  measure: (r: RunRecord) => number = (r) => r.load.okPerSecond,
): (Spread & { against: string }) | undefined {
  const values: number[] = [];
  for (const run of service) {
    const peer = runs.find(
      (r) =>
        r.scenario === baseline && r.target === "peer" && r.round === run.round,
    );
    if (peer && measure(peer) > 0) {
      values.push(measure(run) / measure(peer));
    }
  }
  if (values.length === 0) return undefined;
  return { ...spread(values), against: `peer under ${baseline}` };
}

/** Summarises the runs, scenario by scenario, service before peer. */
export function summarise(
  scenarios: Scenario[],
  runs: RunRecord[],
  crossCheck: string | undefined,
): Summary[] {
  const summaries: Summary[] = [];
  for (const scenario of scenarios) {
    for (const target of scenario.targets) {
      const mine = runs.filter(
        (r) => r.scenario === scenario.id && r.target === target,
      );
      if (mine.length === 0) continue;
      const last = mine[mine.length - 1];
      const summary: Summary = {
        scenario: scenario.id,
        title: scenario.title,
        target,
        tool: scenario.tool,
        rounds: mine.length,
        tokensPerSecond: spread(mine.map((r) => r.load.okPerSecond)),
        p50Ms: spread(mine.map((r) => r.load.latency.p50)),
        p99Ms: spread(mine.map((r) => r.load.latency.p99)),
        non2xx: sum(mine.map((r) => r.load.non2xx)),
        errors: sum(mine.map((r) => r.load.errors)),
        peakRssBytes: Math.max(...mine.map((r) => r.server.peakRssBytes)),
        lifetimeHwmBytes: last?.server.lifetimeHwmBytes ?? 0,
        serverCpuMicrosPerToken: spread(
          mine.map((r) => r.serverCpuMicrosPerToken),
        ),
        loadgenCpuShare: spread(
          mine.map((r) => r.load.loadgenCpuSeconds / r.load.durationSeconds),
        ),
        machineBusy: spread(mine.map((r) => r.machine.busy)),
        machineSteal: spread(mine.map((r) => r.machine.steal)),
        otherCpuCores: spread(mine.map((r) => r.otherCpuCores)),
        valid: mine.every((r) => r.problems.length === 0),
      };
      if (target === "service") {
        const ratio = ratios(runs, mine, scenario.peerBaseline);
        if (ratio) summary.ratioToPeer = ratio;
        const efficiency = ratios(runs, mine, scenario.peerBaseline, (r) =>
          r.serverCpuMicrosPerToken > 0 ? 1 / r.serverCpuMicrosPerToken : 0,
        );
        if (efficiency) summary.cpuEfficiencyToPeer = efficiency;
        if (crossCheck && crossCheck !== scenario.peerBaseline) {
          const same = ratios(runs, mine, crossCheck);
          if (same) summary.ratioToPeerSameTool = same;
        }
      }
      summaries.push(summary);
    }
  }
  return summaries;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** A target from the project's issue, judged on the summaries. */
export interface TargetCheck {
  name: string;
  pass: boolean;
  detail: string;
}

export const rssLimitBytes = 150e6;

export function checkTargets(
  summaries: Summary[],
  connections: number,
): TargetCheck[] {
  const find = (scenario: string, target: TargetName) =>
    summaries.find((s) => s.scenario === scenario && s.target === target);
  const checks: TargetCheck[] = [];
  const ratioTarget = (scenario: string, name: string) => {
    const s = find(scenario, "service");
    const ratio = s?.ratioToPeer;
    if (!s || !ratio) return;
    const same = s.ratioToPeerSameTool;
    const efficiency = s.cpuEfficiencyToPeer;
    checks.push({
      name,
      pass: ratio.median >= 1.5,
      detail:
        `${fmtRatio(ratio.median)} (per round ${ratio.perRound.map(fmtRatio).join(", ")}; ` +
        `against the peer's HTTP/1.1 tokens/s under autocannon, same round)` +
        (same
          ? `; cross-check against the peer under h2load --h1: ${fmtRatio(same.median)}`
          : "") +
        (efficiency
          ? `; tokens per server CPU-second: ${fmtRatio(efficiency.median)}`
          : ""),
    });
  };
  ratioTarget("connect-json-http1", "Connect JSON HTTP/1.1 >= 1.5x peer");
  ratioTarget("grpc-h2c", "gRPC h2c >= 1.5x peer");

  const service = find("connect-json-http1", "service");
  const peer = find("connect-json-http1", "peer");
  if (service && peer) {
    checks.push({
      name: `p99 latency at ${connections} connections below the peer's`,
      pass: service.p99Ms.median < peer.p99Ms.median,
      detail:
        `Connect JSON HTTP/1.1 p99 ${fmtMs(service.p99Ms.median)} ms vs peer ` +
        `${fmtMs(peer.p99Ms.median)} ms (medians over rounds, autocannon)` +
        (connections === 50 ? "" : " — NOTE: not at 50 connections"),
    });
  }
  const serviceRows = summaries.filter((s) => s.target === "service");
  if (serviceRows.length > 0) {
    const hwm = Math.max(...serviceRows.map((s) => s.lifetimeHwmBytes));
    const peak = Math.max(...serviceRows.map((s) => s.peakRssBytes));
    checks.push({
      name: "peak RSS < 150 MB",
      pass: hwm < rssLimitBytes,
      detail:
        `service VmHWM ${fmtMB(hwm)} MB over the whole benchmark ` +
        `(highest VmRSS sampled every 250 ms during runs: ${fmtMB(peak)} MB)`,
    });
  }
  return checks;
}

export const fmtRatio = (r: number) => `${r.toFixed(2)}x`;
export const fmtMs = (ms: number) =>
  ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
export const fmtMB = (bytes: number) => (bytes / 1e6).toFixed(1);
const fmtRate = (n: number) => Math.round(n).toString();

/** The summary table, as text. */
export function formatTable(summaries: Summary[]): string {
  const header = [
    "scenario",
    "target",
    "tool",
    "tokens/s median",
    "min-max",
    "p50 ms",
    "p99 ms",
    "non-2xx/err",
    "peak RSS MB",
    "CPU us/token",
    "loadgen CPU",
    "others CPU",
    "ratio vs peer",
    "tokens/CPU-s vs peer",
  ];
  const rows = summaries.map((s) => [
    s.scenario,
    s.target,
    s.tool,
    fmtRate(s.tokensPerSecond.median),
    `${fmtRate(s.tokensPerSecond.min)}-${fmtRate(s.tokensPerSecond.max)}`,
    fmtMs(s.p50Ms.median),
    fmtMs(s.p99Ms.median),
    `${s.non2xx}/${s.errors}`,
    fmtMB(s.peakRssBytes),
    s.serverCpuMicrosPerToken.median.toFixed(0),
    s.loadgenCpuShare.median.toFixed(2),
    s.otherCpuCores.median.toFixed(2),
    s.ratioToPeer
      ? fmtRatio(s.ratioToPeer.median) +
        (s.ratioToPeerSameTool
          ? ` (${fmtRatio(s.ratioToPeerSameTool.median)} same tool)`
          : "")
      : s.target === "peer"
        ? "-"
        : "n/a",
    s.cpuEfficiencyToPeer
      ? fmtRatio(s.cpuEfficiencyToPeer.median)
      : s.target === "peer"
        ? "-"
        : "n/a",
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i <= 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0),
      )
      .join("  ");
  return [
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ].join("\n");
}

/** The target lines, as text. */
export function formatTargets(checks: TargetCheck[], valid: boolean): string {
  return checks
    .map(
      (c) =>
        `${valid ? (c.pass ? "PASS" : "FAIL") : "INVALID"}  ${c.name}: ${c.detail}`,
    )
    .join("\n");
}

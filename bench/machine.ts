/** What the benchmark ran on, and how busy the machine was meanwhile. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  h2load: string;
  autocannon: string;
  loadAverageAtStart: number[];
}

export function machineInfo(h2loadVersion: string): MachineInfo {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    h2load: h2loadVersion,
    autocannon: packageVersion("autocannon"),
    loadAverageAtStart: os.loadavg(),
  };
}

function packageVersion(name: string): string {
  try {
    const url = new URL(
      `../node_modules/${name}/package.json`,
      import.meta.url,
    );
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string })
      .version;
  } catch {
    return "unknown";
  }
}

/** The git commit the service runs from, and whether its sources differ. */
export interface SourceState {
  commit: string;
  /** `git status --porcelain` lines for files the service is built from. */
  uncommitted: string[];
}

export function sourceState(root: string): SourceState {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: root, encoding: "utf8" }).trimEnd();
  try {
    return {
      commit: git("rev-parse", "HEAD"),
      uncommitted: git(
        "status",
        "--porcelain",
        "--",
        "server",
        "gen",
        "package.json",
        "package-lock.json",
      )
        .split("\n")
        .filter((line) => line !== ""),
    };
  } catch {
    return { commit: "unknown", uncommitted: [] };
  }
}

/** Jiffies from the first line of /proc/stat. */
interface CpuTimes {
  total: number;
  idle: number;
  steal: number;
}

function readCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v.map(
      (n) => n || 0,
    );
    return {
      total:
        (user ?? 0) +
        (nice ?? 0) +
        (system ?? 0) +
        (idle ?? 0) +
        (iowait ?? 0) +
        (irq ?? 0) +
        (softirq ?? 0) +
        (steal ?? 0),
      idle: (idle ?? 0) + (iowait ?? 0),
      steal: steal ?? 0,
    };
  } catch {
    return undefined;
  }
}

/** The share of the machine's CPU time that was busy, and stolen. */
export interface MachineLoad {
  /** Busy share of all cores (0 to 1), stolen time included. */
  busy: number;
  /** Share stolen by the hypervisor (0 to 1): a sign of noisy neighbours. */
  steal: number;
  loadAverage1m: number;
}

/** Starts measuring machine load; call the result to read it. */
export function measureMachineLoad(): () => MachineLoad {
  const start = readCpuTimes();
  return () => {
    const end = readCpuTimes();
    const loadAverage1m = os.loadavg()[0] ?? 0;
    if (!start || !end || end.total <= start.total) {
      return { busy: 0, steal: 0, loadAverage1m };
    }
    const total = end.total - start.total;
    return {
      busy: 1 - (end.idle - start.idle) / total,
      steal: (end.steal - start.steal) / total,
      loadAverage1m,
    };
  };
}

/**
 * Starting, watching and stopping the processes under test, and sampling
 * their memory and CPU from /proc (Linux only).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
} from "node:fs";
import * as net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A process started by the benchmark. */
export interface Started {
  /** What it is, for messages: `service` or `peer`. */
  name: string;
  child: ChildProcess;
  /** The pid to sample: the server process itself, never a wrapper. */
  pid: number;
  port: number;
  baseUrl: string;
  /** The command line, for the report. Secrets are never in it. */
  command: string[];
  /** The env variables set for it; secret values replaced by `<…>`. */
  env: Record<string, string>;
  /** The last few KB of its stderr, for error messages. */
  stderrTail(): string;
  /** Set once it has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface SpawnSpec {
  name: string;
  /** The executable and its arguments. */
  command: string[];
  cwd: string;
  /** Env variables added to a clean base env (PATH, HOME, LANG). */
  env: Record<string, string>;
  /** Names of env variables whose values must not be reported. */
  secretEnv?: string[];
  port: number;
  /** Where stdout goes: a file path, or `ignore`. */
  stdout: string;
}

/** Starts a process; stderr is kept (its tail) for error messages. */
export function startProcess(spec: SpawnSpec): Started {
  const [file, ...args] = spec.command;
  if (file === undefined) throw new Error("empty command");
  const base: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "LANG", "TMPDIR"]) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  const stdoutFd =
    spec.stdout === "ignore" ? undefined : openSync(spec.stdout, "a");
  const child = spawn(file, args, {
    cwd: spec.cwd,
    env: { ...base, ...spec.env },
    stdio: ["ignore", stdoutFd ?? "ignore", "pipe"],
  });
  // The child holds its own copy of the descriptor.
  if (stdoutFd !== undefined) closeSync(stdoutFd);
  let tail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-4096);
  });
  let done = false;
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once("error", (error) => {
      done = true;
      tail += `\nspawn failed: ${error.message}`;
      resolve({ code: null, signal: null });
    });
  });
  if (child.pid === undefined) {
    throw new Error(`${spec.name}: could not start ${file}`);
  }
  const shownEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.env)) {
    shownEnv[key] = spec.secretEnv?.includes(key) ? `<${key}>` : value;
  }
  return {
    name: spec.name,
    child,
    pid: child.pid,
    port: spec.port,
    baseUrl: `http://127.0.0.1:${spec.port}`,
    command: spec.command,
    env: shownEnv,
    stderrTail: () => tail,
    exited,
    hasExited: () => done,
  };
}

/**
 * Polls `probe` every 100 ms until it returns true, the process exits, or
 * `timeoutMs` passes.
 *
 * @throws Error with the process's stderr when it is not ready in time
 */
export async function waitReady(
  started: Started,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.hasExited()) {
      throw new Error(
        `${started.name} exited before it was ready:\n${started.stderrTail()}`,
      );
    }
    try {
      if (await probe()) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(
    `${started.name} not ready after ${timeoutMs} ms:\n${started.stderrTail()}`,
  );
}

/** `GET /readyz` answers 200. */
export function readyzProbe(baseUrl: string): () => Promise<boolean> {
  return async () => {
    const response = await fetch(`${baseUrl}/readyz`, {
      signal: AbortSignal.timeout(2000),
    });
    await response.arrayBuffer();
    return response.status === 200;
  };
}

/** A POST with `body` answers 2xx. */
export function postProbe(
  url: string,
  body: string,
  headers: Record<string, string>,
): () => Promise<boolean> {
  return async () => {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(2000),
    });
    await response.arrayBuffer();
    return response.ok;
  };
}

/**
 * Stops a process: SIGTERM, then SIGKILL when it has not exited after
 * `graceMs`. Resolves once it has exited.
 */
export async function stopProcess(
  started: Started,
  graceMs = 5000,
): Promise<void> {
  if (started.hasExited()) return;
  started.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!started.hasExited()) started.child.kill("SIGKILL");
  }, graceMs);
  await started.exited;
  clearTimeout(timer);
}

/** The executable of a running process, from /proc/<pid>/exe. */
export function processExecutable(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "unknown";
  }
}

/** The pids of a process's children, from /proc/<pid>/task/<tid>/children. */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
      for (const word of text.split(" ")) if (word) pids.push(Number(word));
    }
  } catch {
    // gone, or no /proc
  }
  return pids;
}

/** Memory of a process from /proc/<pid>/status, in bytes. */
export interface MemoryReading {
  rssBytes: number;
  /** VmHWM: the peak RSS over the process's whole life so far. */
  hwmBytes: number;
}

export function readMemory(pid: number): MemoryReading | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  };
  return { rssBytes: kib("VmRSS"), hwmBytes: kib("VmHWM") };
}

let clockTicks: number | undefined;

/** Clock ticks per second, the unit of /proc CPU times. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"]).toString());
    } catch {
      clockTicks = 100;
    }
    if (!(clockTicks > 0)) clockTicks = 100;
  }
  return clockTicks;
}

/** CPU time of a process, and of its waited-for children, in seconds. */
export interface CpuReading {
  self: number;
  children: number;
}

/** Reads utime+stime and cutime+cstime from /proc/<pid>/stat. */
export function readCpu(pid: number | "self"): CpuReading | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may hold
  // spaces: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const field = (n: number) => Number(fields[n - 3] ?? 0);
  const hz = clockTicksPerSecond();
  return {
    self: (field(14) + field(15)) / hz,
    children: (field(16) + field(17)) / hz,
  };
}

/** What a sampler saw while it ran. */
export interface ProcessSample {
  /** The highest VmRSS sampled during the window, in bytes. */
  peakRssBytes: number;
  /** VmHWM at the end of the window: the process's lifetime peak. */
  lifetimeHwmBytes: number;
  /** CPU seconds the process used during the window (user + system). */
  cpuSeconds: number;
  samples: number;
}

/**
 * Samples the memory of `pid` every `intervalMs` (VmRSS from
 * /proc/<pid>/status) and its CPU time at start and stop.
 */
export class ProcessSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  readonly #cpuStart: number;
  #peak = 0;
  #hwm = 0;
  #samples = 0;

  constructor(pid: number, intervalMs = 250) {
    this.#pid = pid;
    this.#cpuStart = readCpu(pid)?.self ?? 0;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const memory = readMemory(this.#pid);
    if (memory === undefined) return;
    this.#samples += 1;
    this.#peak = Math.max(this.#peak, memory.rssBytes);
    this.#hwm = Math.max(this.#hwm, memory.hwmBytes);
  }

  stop(): ProcessSample {
    clearInterval(this.#timer);
    this.#sample();
    const cpuEnd = readCpu(this.#pid)?.self ?? this.#cpuStart;
    return {
      peakRssBytes: this.#peak,
      lifetimeHwmBytes: this.#hwm,
      cpuSeconds: cpuEnd - this.#cpuStart,
      samples: this.#samples,
    };
  }
}

/**
 * Runs the real command line, `node bin/livekit-token-service.js`, as a
 * child process, and watches its JSON log and its exit.
 *
 * Every child starts with a clean environment (only `PATH`, `HOME` and
 * `TMPDIR` are inherited, besides what the test passes), so that the test
 * runner's own `NODE_ENV` or a developer's `LIVEKIT_*` never leak in.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The root of the clone. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The CLI's entry point, as `npx livekit-token-service` runs it. */
export const cliEntry = join(repoRoot, "bin", "livekit-token-service.js");

/** An environment for a child: variable to value. */
export type Env = Record<string, string>;

/** One parsed JSON log line of the service. */
export type LogLine = Record<string, unknown> & {
  level?: number;
  msg?: string;
};

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** `performance.now()` when the exit was seen. */
  at: number;
}

/** A running CLI child. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Whether the child leads a process group of its own. */
  readonly detached: boolean;
  /** Everything written to stdout and stderr so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** The stdout lines that are JSON, parsed. */
  lines(): LogLine[];
  /** The log lines whose `msg` is `msg` (or starts with it). */
  linesWith(msg: string): LogLine[];
  /**
   * Resolves with what `probe` returns once it returns something, checked
   * now and on each output of the child. Rejects when the child exits
   * first or after `timeoutMs` (default 20 s).
   */
  waitUntil<T>(
    probe: () => T | undefined,
    description: string,
    timeoutMs?: number,
  ): Promise<T>;
  /**
   * Resolves with the first log line, past or future, that `matches`; with
   * `after`, only from the line at that index on (see `lines().length`).
   * Rejects when the child exits first or after `timeoutMs`.
   */
  waitForLine(
    matches: (line: LogLine) => boolean,
    description: string,
    timeoutMs?: number,
    after?: number,
  ): Promise<LogLine>;
  /** Waits for `count` `"listening"` lines and returns their ports. */
  listening(count?: number, timeoutMs?: number): Promise<number[]>;
  /** Settles when the child exits. */
  readonly exited: Promise<Exit>;
  /** Whether the child has exited. */
  readonly hasExited: boolean;
  /** Sends `signal` and returns `performance.now()` just before. */
  signal(signal: NodeJS.Signals): number;
  /** Waits for the exit, rejecting after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<Exit>;
  /** stdout and stderr, for assertion messages. */
  output(): string;
}

/** Options for a child. */
export interface CliOptions {
  /** Added to the clean environment. */
  env?: Env;
  /** The working directory; the clone by default. */
  cwd?: string;
  /** The command; `node <cliEntry>` by default. */
  command?: { file: string; args: string[] };
  /** Starts the child in a process group of its own (for group signals). */
  detached?: boolean;
}

const running = new Set<CliProcess>();

/** `PATH`, `HOME` and `TMPDIR` of the test runner, and `extra`. */
export function cleanEnv(extra: Env = {}): Env {
  const env: Env = {};
  for (const key of ["PATH", "HOME", "TMPDIR"]) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Starts `livekit-token-service ...args` (or `options.command`). */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const command = options.command ?? {
    file: process.execPath,
    args: [cliEntry],
  };
  const child = spawn(command.file, [...command.args, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let stdout = "";
  let stderr = "";
  const parsed: LogLine[] = [];
  let partial = "";
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    const pieces = partial.split("\n");
    partial = pieces.pop() ?? "";
    for (const piece of pieces) {
      if (!piece.startsWith("{")) continue;
      try {
        parsed.push(JSON.parse(piece) as LogLine);
      } catch {
        // Not a log line.
      }
    }
    wake();
  });
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
    wake();
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => {
      exit = { code, signal, at: performance.now() };
      running.delete(cli);
      resolve(exit);
      wake();
    });
    child.once("error", () => {
      exit ??= { code: null, signal: null, at: performance.now() };
      running.delete(cli);
      resolve(exit);
      wake();
    });
  });
  const output = () => `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  const cli: CliProcess = {
    child,
    pid: child.pid ?? -1,
    detached: options.detached ?? false,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    lines: () => [...parsed],
    linesWith: (msg) =>
      parsed.filter((line) => String(line.msg ?? "").startsWith(msg)),
    waitUntil(probe, description, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = probe();
          if (found !== undefined) return finish(() => resolve(found));
          if (exit) {
            const how = exit.code ?? exit.signal;
            return finish(() =>
              reject(
                new Error(`exited (${how}) before ${description}\n${output()}`),
              ),
            );
          }
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new Error(
                  `no ${description} within ${timeoutMs} ms\n${output()}`,
                ),
              ),
            ),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    waitForLine(matches, description, timeoutMs, after = 0) {
      return cli.waitUntil(
        () => parsed.slice(after).find(matches),
        description,
        timeoutMs,
      );
    },
    listening(count = 1, timeoutMs = 25_000) {
      return cli.waitUntil(
        () => {
          const lines = cli.linesWith("listening");
          if (lines.length < count) return undefined;
          return lines.slice(0, count).map((line) => Number(line.port));
        },
        `${count} "listening" line(s)`,
        timeoutMs,
      );
    },
    exited,
    get hasExited() {
      return exit !== undefined;
    },
    signal(signal) {
      const at = performance.now();
      child.kill(signal);
      return at;
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`no exit within ${timeoutMs} ms\n${output()}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    output,
  };
  running.add(cli);
  return cli;
}

/** The result of a CLI run to its end. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lines: LogLine[];
}

/** Runs the CLI to its exit; kills it and rejects after `timeoutMs`. */
export async function runCli(
  args: string[],
  options: CliOptions = {},
  timeoutMs = 25_000,
): Promise<CliRun> {
  const cli = startCli(args, options);
  try {
    const exit = await cli.waitForExit(timeoutMs);
    return {
      code: exit.code,
      signal: exit.signal,
      stdout: cli.stdout,
      stderr: cli.stderr,
      lines: cli.lines(),
    };
  } finally {
    await killCli(cli);
  }
}

/**
 * Kills `cli` (its process group too, when detached) with SIGKILL unless it
 * has exited, and waits for its exit.
 */
export async function killCli(cli: CliProcess): Promise<void> {
  try {
    // A group may outlive its leader: kill it even after the leader exits.
    if (cli.detached && cli.pid > 0) process.kill(-cli.pid, "SIGKILL");
    else if (!cli.hasExited) cli.child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
  await cli.exited;
}

/**
 * The ids of the live processes whose parent is `pid` (Linux: read from
 * /proc), such as the workers of a `--workers` primary.
 */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === pid && fields[0] !== "Z") {
      children.push(Number(entry));
    }
  }
  return children;
}

/** Whether a process with id `pid` exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Kills every child still running; for `afterEach`. */
export async function killAllClis(): Promise<void> {
  await Promise.all([...running].map(killCli));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = await holdPort(0);
  const { port } = server.address() as net.AddressInfo;
  await closeServer(server);
  return port;
}

/**
 * Binds `port` on 127.0.0.1 (0 for any), as the service would.
 *
 * @throws the bind error, such as EADDRINUSE.
 */
export function holdPort(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Opens a TCP connection to 127.0.0.1:`port` and closes it: "connected",
 * or the error code, such as "ECONNREFUSED".
 */
export function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(error.code ?? error.message);
    });
  });
}

/** A temporary directory, removed by `remove`. */
export interface TempDir {
  path: string;
  /** Writes `text` to `name` in the directory and returns its path. */
  write(name: string, text: string): string;
  remove(): void;
}

export function tempDir(prefix = "lkts-cli-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    write(name, text) {
      const file = join(path, name);
      writeFileSync(file, text);
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

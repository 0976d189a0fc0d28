import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where Debian's `redis-server` package installs the server. */
export const redisServerBinary = "/usr/bin/redis-server";

/** A `redis-server` process on `127.0.0.1`, for tests. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts a real `redis-server` on `127.0.0.1` and a free port, without
 * persistence, in a temporary directory, and waits until it accepts
 * connections.
 *
 * @param port a port to listen on; default a free one.
 * @throws Error naming the Debian package `redis-server` if the binary is
 *   missing, so that a test needing Redis fails instead of being skipped.
 */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  if (!existsSync(redisServerBinary)) {
    throw new Error(
      `${redisServerBinary} not found: install the Debian package redis-server (apt-get install redis-server)`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "lkts-redis-"));
  try {
    // A free port can be taken between choosing and binding; try again.
    for (let attempt = 1; ; attempt++) {
      const chosen = port ?? (await freePort());
      try {
        const child = await launch(chosen, dir);
        return {
          url: `redis://127.0.0.1:${chosen}`,
          port: chosen,
          stop: async () => {
            await terminate(child);
            await rm(dir, { recursive: true, force: true });
          },
        };
      } catch (error) {
        if (port !== undefined || attempt >= 3) {
          throw error;
        }
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A port nothing listens on at the moment, on `127.0.0.1`. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") {
    throw new Error("no port assigned");
  }
  return address.port;
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    redisServerBinary,
    [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--daemonize",
      "no",
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-server did not start in 10 s:\n${output}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(
        new Error(
          `redis-server exited (${code ?? signal}) before it was ready:\n${output}`,
        ),
      );
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

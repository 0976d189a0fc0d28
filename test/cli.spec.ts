/**
 * The command line as an operator runs it: `livekit-token-service` in a
 * child process, its help, its refusals of bad flags and configurations
 * (before the port is bound), development mode, and `--workers`.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import {
  childPids,
  closeServer,
  type Env,
  freePort,
  holdPort,
  isAlive,
  killAllClis,
  killCli,
  runCli,
  startCli,
  tempDir,
  tryConnect,
} from "./support/cli-process.js";
import {
  bearer,
  h2cClient,
  http1Client,
  httpGet,
  newKey,
  productionEnv,
  serviceKeysConfig,
  verifyCliToken,
} from "./support/cli-service.js";

const dir = tempDir();
afterAll(async () => {
  await killAllClis();
  dir.remove();
});

/** The options `--help` must document, each with its default. */
const options = ["--config", "--dev", "--host", "--port", "--workers"];

/** The help text's option entries, by option: `--port PORT  port...`. */
function optionEntries(help: string): Map<string, string> {
  const section = help.split(/^Options:\n/m)[1]?.split(/\n\n/)[0] ?? "";
  const entries = new Map<string, string>();
  let current: string | undefined;
  for (const line of section.split("\n")) {
    const start = /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line);
    if (start?.[1]) {
      current = start[1];
      entries.set(current, line);
    } else if (current) {
      entries.set(current, `${entries.get(current)}\n${line}`);
    }
  }
  return entries;
}

// Each test runs its own processes: they all run at once.
describe.concurrent("livekit-token-service", { timeout: 60_000 }, () => {
  describe("--help", () => {
    it("prints every option with its default and exits 0, also through npx", async () => {
      const [direct, npx] = await Promise.all([
        runCli(["--help"]),
        runCli(["--help"], {
          command: {
            file: "npx",
            args: ["--no-install", "livekit-token-service"],
          },
        }),
      ]);
      expect(direct.code, direct.stderr).toBe(0);
      expect(direct.stderr).toBe("");
      expect(direct.stdout).toMatch(
        /^Usage: livekit-token-service \[options\]/,
      );
      const entries = optionEntries(direct.stdout);
      expect([...entries.keys()].sort()).toEqual([...options, "--help"].sort());
      for (const option of options) {
        expect(entries.get(option), option).toMatch(/\(default: [^)]+\)/);
      }
      expect(entries.get("--help")).toMatch(/^ {2}-h, --help/);
      // It prints help and does nothing else: no log line, no listening.
      expect(direct.lines).toEqual([]);
      // `npx livekit-token-service` in the clone runs the same CLI.
      expect(npx.code, npx.stderr).toBe(0);
      expect(npx.stdout).toBe(direct.stdout);
    });
  });

  /** A config file with one service key, read from `KEY_A`. */
  const validConfig = dir.write(
    "valid.yaml",
    serviceKeysConfig([{ name: "a", keyEnv: "KEY_A" }]),
  );
  const validEnv = productionEnv({ KEY_A: newKey() });

  interface Refusal {
    name: string;
    args: string[];
    env: Env;
    /** What stderr must say: the key at fault, then the reason. */
    message: RegExp;
  }

  const refusals: Refusal[] = [
    {
      name: "an unknown flag",
      args: ["--bogus"],
      env: validEnv,
      message: /Unknown option '--bogus'/,
    },
    {
      name: "PORT=http",
      args: ["--config", validConfig],
      env: { ...validEnv, PORT: "http" },
      message: /PORT: must be an integer from 0 to 65535/,
    },
    {
      name: "a config file naming an unknown policy",
      args: [
        "--config",
        dir.write(
          "unknown-policy.yaml",
          serviceKeysConfig([{ name: "a", keyEnv: "KEY_A" }]).replace(
            "policy: backend",
            "policy: nope",
          ),
        ),
      ],
      env: validEnv,
      message: /callers\.serviceKeys\[0\]\.policy: no policy named "nope"/,
    },
    {
      name: "a config file with an unknown key",
      args: [
        "--config",
        dir.write(
          "unknown-key.yaml",
          serviceKeysConfig(
            [{ name: "a", keyEnv: "KEY_A" }],
            ["ratelimits: {}"],
          ),
        ),
      ],
      env: validEnv,
      message: /ratelimits: unknown key/,
    },
    {
      name: "NODE_ENV=production with the development credentials",
      args: ["--config", validConfig],
      env: {
        ...validEnv,
        LIVEKIT_API_KEY: "devkey",
        LIVEKIT_API_SECRET: "secret",
      },
      message: /LIVEKIT_API_SECRET: development credentials are refused/,
    },
    {
      name: "NODE_ENV=production with --dev",
      args: ["--config", validConfig, "--dev"],
      env: validEnv,
      message: /--dev: not allowed with NODE_ENV=production/,
    },
    {
      name: "NODE_ENV=production with a secret under 32 characters",
      args: ["--config", validConfig],
      env: { ...validEnv, LIVEKIT_API_SECRET: "s".repeat(31) },
      message: /LIVEKIT_API_SECRET: must be at least 32 characters/,
    },
    {
      name: "NODE_ENV=production without callers",
      args: [],
      env: validEnv,
      message: /callers: no callers are configured/,
    },
  ];

  describe("refuses an invalid command line or configuration", () => {
    it.each(refusals)(
      "$name: names the key, exits 2, never listens",
      async ({ args, env, message }) => {
        const port = await freePort();
        // --port wins over PORT: give it unless a port is what is under test.
        const portGiven = env.PORT !== undefined || args.includes("--port");
        const portArgs = portGiven ? [] : ["--port", String(port)];
        const watch = watchPort(port);
        const run = await runCli(
          [...args, "--host", "127.0.0.1", ...portArgs],
          {
            env: { ...env, PORT: env.PORT ?? String(port) },
          },
        ).finally(() => watch.stop());
        expect(run.code, run.stdout + run.stderr).toBe(2);
        expect(run.stderr).toMatch(
          /^livekit-token-service: invalid configuration: /,
        );
        expect(run.stderr).toMatch(message);
        expect(run.stderr).toMatch(/Run with --help for the options\./);
        expect(run.stdout).not.toMatch(/"msg":"listening"/);
        expect(await watch.connected, "a connection was accepted").toBe(0);
        // And the port is still free.
        await closeServer(await holdPort(port));
      },
    );

    it("before binding: a taken port is never reached", async () => {
      // Were the port bound first, this would fail with EADDRINUSE (exit 1).
      const held = await holdPort(0);
      const { port } = held.address() as { port: number };
      try {
        const run = await runCli(
          ["--port", String(port), "--host", "127.0.0.1"],
          {
            env: {
              ...validEnv,
              CONFIG_FILE: validConfig,
              LIVEKIT_API_SECRET: "too-short",
            },
          },
        );
        expect(run.code).toBe(2);
        expect(run.stderr).toMatch(/LIVEKIT_API_SECRET: must be at least 32/);
        expect(run.stderr).not.toMatch(/EADDRINUSE/);
      } finally {
        await closeServer(held);
      }
    });

    it("a port that is taken: says so and exits 1", async () => {
      const held = await holdPort(0);
      const { port } = held.address() as { port: number };
      try {
        const run = await runCli(
          [
            "--port",
            String(port),
            "--host",
            "127.0.0.1",
            "--config",
            validConfig,
          ],
          { env: validEnv },
        );
        expect(run.code).toBe(1);
        expect(run.stderr).toMatch(/EADDRINUSE/);
        expect(run.stdout).not.toMatch(/"msg":"listening"/);
      } finally {
        await closeServer(held);
      }
    });
  });

  describe("development mode", () => {
    it("without LiveKit credentials: logs the loud warning, serves, stops on SIGTERM", async ({
      onTestFinished,
    }) => {
      const cli = startCli(["--port", "0"]);
      onTestFinished(() => killCli(cli));
      const [port] = await cli.listening();
      const warning = cli.linesWith("DEVELOPMENT MODE")[0];
      expect(warning, cli.output()).toMatchObject({
        level: 40,
        reason: "no LiveKit credentials are set and NODE_ENV is not production",
        livekitUrl: "ws://localhost:7880",
      });
      expect(warning?.msg).toMatch(/do not expose this service/);
      // Development mode binds the loopback address only.
      expect(cli.linesWith("listening")[0]).toMatchObject({
        address: "127.0.0.1",
      });
      // Anonymous callers get tokens, for the dev project.
      const client = http1Client(`http://127.0.0.1:${port}`);
      try {
        const response = await client.tokens.createToken({ roomName: "dev" });
        expect(response.serverUrl).toBe("ws://localhost:7880");
      } finally {
        client.close();
      }
      cli.signal("SIGTERM");
      expect((await cli.waitForExit(10_000)).code).toBe(0);
    });
  });

  describe("--workers 2", () => {
    it("serves on one port from two processes, reloads both on SIGHUP; SIGTERM stops them all", async ({
      onTestFinished,
    }) => {
      const key = newKey();
      const keyFile = dir.write("workers.key", key);
      const config = dir.write(
        "workers.yaml",
        serviceKeysConfig([{ name: "backend", keyFile }]),
      );
      const cli = startCli(
        [
          "--workers",
          "2",
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          "--config",
          config,
        ],
        {
          env: productionEnv({ SHUTDOWN_DRAIN_SECONDS: "0" }),
          detached: true,
        },
      );
      onTestFinished(() => killCli(cli));
      const ports = await cli.listening(2, 30_000);
      expect(cli.linesWith("starting workers")[0]).toMatchObject({
        workers: 2,
      });
      expect(ports[0]).toBeGreaterThan(0);
      expect(ports[1], "the workers share one port").toBe(ports[0]);
      const workers = childPids(cli.pid);
      expect(workers).toHaveLength(2);

      // An odd number of calls, each on a connection of its own: the workers
      // cannot have minted as many each.
      const baseUrl = `http://127.0.0.1:${ports[0]}`;
      const calls = 9;
      const callAll = (withKey: string) =>
        Promise.all(
          Array.from({ length: calls }, async (_, i) => {
            const client = i % 2 ? h2cClient(baseUrl) : http1Client(baseUrl, 1);
            try {
              const response = await client.tokens.createToken(
                { roomName: "workers", participantIdentity: `caller-${i}` },
                bearer(withKey),
              );
              const claims = await verifyCliToken(response.participantToken);
              return claims.sub === `caller-${i}` ? "ok" : `sub ${claims.sub}`;
            } catch (error) {
              return error instanceof ConnectError
                ? Code[error.code]
                : String(error);
            } finally {
              client.close();
            }
          }),
        );
      expect(await callAll(key)).toEqual(Array(calls).fill("ok"));
      const minted = await mintedPerWorker(ports[0] as number, calls);
      expect(minted, "both workers minted tokens").toHaveLength(2);

      // The primary hands SIGHUP to each worker, which reloads.
      const nextKey = newKey();
      dir.write("workers.key", nextKey);
      const before = cli.lines().length;
      cli.signal("SIGHUP");
      await cli.waitUntil(
        () =>
          cli
            .lines()
            .slice(before)
            .filter((line) => line.msg === "configuration reloaded").length ===
          2
            ? true
            : undefined,
        "two reloads",
        10_000,
      );
      expect(await callAll(nextKey)).toEqual(Array(calls).fill("ok"));
      expect(await callAll(key)).toEqual(
        Array(calls).fill(Code[Code.Unauthenticated]),
      );

      cli.signal("SIGTERM");
      const exit = await cli.waitForExit(15_000);
      expect(exit.code, cli.output()).toBe(0);
      expect(cli.linesWith("stopped"), "each worker stopped").toHaveLength(2);
      expect(cli.linesWith("worker died")).toEqual([]);
      for (const pid of workers)
        expect(isAlive(pid), `worker ${pid}`).toBe(false);
    });

    it("Ctrl-C (SIGINT to every process of the group) drains each worker once", async ({
      onTestFinished,
    }) => {
      const key = newKey();
      const config = dir.write(
        "workers-int.yaml",
        serviceKeysConfig([{ name: "backend", keyEnv: "KEY_B" }]),
      );
      const cli = startCli(
        [
          "--workers",
          "2",
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          "--config",
          config,
        ],
        {
          env: productionEnv({
            KEY_B: key,
            SHUTDOWN_DRAIN_SECONDS: "2",
            SHUTDOWN_TIMEOUT_SECONDS: "1",
          }),
          detached: true,
        },
      );
      onTestFinished(() => killCli(cli));
      const [port] = await cli.listening(2, 30_000);
      const workers = childPids(cli.pid);
      expect(workers).toHaveLength(2);
      // A worker logs "listening" a moment before it handles signals.
      await new Promise((resolve) => setTimeout(resolve, 300));
      // A terminal's Ctrl-C (or systemd's stop) signals every process of
      // the group once: each worker, and the primary. The order of arrival
      // is up to the scheduler; here the workers' signals come first, as
      // they often do (sending SIGINT to the group itself makes this test
      // depend on that race).
      for (const pid of workers) process.kill(pid, "SIGINT");
      await cli.waitUntil(
        () =>
          cli.linesWith("stopping: draining").length === 2 ? true : undefined,
        "both workers stopping",
        5000,
      );
      cli.signal("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Still inside the drain window: both workers still serve.
      const baseUrl = `http://127.0.0.1:${port}`;
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const client = http1Client(baseUrl, 1);
          try {
            await client.tokens.createToken({ roomName: `r${i}` }, bearer(key));
            return "ok";
          } catch (error) {
            return String(error);
          } finally {
            client.close();
          }
        }),
      );
      const exit = await cli.waitForExit(10_000);
      expect(exit.code, cli.output()).toBe(0);
      expect(outcomes, "calls in the drain window").toEqual(
        Array(4).fill("ok"),
      );
      // Each worker drains and stops once, rather than being killed by the
      // SIGINT the primary forwards on top of its own.
      expect(
        cli.linesWith("stopped"),
        `each worker stops\n${cli.output()}`,
      ).toHaveLength(2);
    });

    it("a port that is taken: exits non-zero instead of restarting workers", async ({
      onTestFinished,
    }) => {
      const held = await holdPort(0);
      const { port } = held.address() as { port: number };
      try {
        const cli = startCli(
          [
            "--workers",
            "2",
            "--port",
            String(port),
            "--host",
            "127.0.0.1",
            "--dev",
          ],
          { detached: true },
        );
        onTestFinished(() => killCli(cli));
        // Wait for the first worker to fail to bind, then for the outcome:
        // an exit (right), or a restart of a worker that cannot bind (wrong).
        await cli.waitUntil(
          () => (/EADDRINUSE/.test(cli.stderr) ? true : undefined),
          "a bind failure",
          30_000,
        );
        const outcome = await Promise.race([
          cli.exited.then((exit) => ({ exit })),
          cli
            .waitForLine(
              (line) => line.msg === "worker died; restarting",
              "a restart",
              30_000,
            )
            .then((line) => ({ restart: line })),
        ]);
        // The worker warned of development mode (--dev) before it failed.
        expect(cli.linesWith("DEVELOPMENT MODE")[0]).toMatchObject({
          level: 40,
          reason: "--dev was given",
        });
        expect(outcome, cli.output()).not.toHaveProperty("restart");
        expect((outcome as { exit: { code: number } }).exit.code).not.toBe(0);
      } finally {
        await closeServer(held);
      }
    });
  });
});

/**
 * The tokens each worker says it minted, read from `/metrics` over new
 * connections (which the primary deals out to the workers in turn) until
 * the counts add up to `total`: one count per worker that minted any.
 */
async function mintedPerWorker(port: number, total: number): Promise<number[]> {
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const response = await httpGet(port, "/metrics");
    if ("error" in response) throw new Error(response.error);
    const text = response.body;
    let minted = 0;
    for (const match of text.matchAll(
      /^token_service_tokens_minted_total(?:\{[^}]*\})? (\d+)$/gm,
    )) {
      minted += Number(match[1]);
    }
    seen.add(minted);
    const counts = [...seen].filter((count) => count > 0);
    if (counts.reduce((a, b) => a + b, 0) === total) return counts.sort();
  }
  return [...seen].filter((count) => count > 0).sort();
}

/**
 * Tries to connect to `port` every few milliseconds until `stop`, counting
 * the connections that were accepted.
 */
function watchPort(port: number): {
  stop(): void;
  connected: Promise<number>;
} {
  let stopped = false;
  const connected = (async () => {
    let accepted = 0;
    while (!stopped) {
      if ((await tryConnect(port)) === "connected") accepted++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return accepted;
  })();
  return {
    stop: () => {
      stopped = true;
    },
    connected,
  };
}

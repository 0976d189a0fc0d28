/**
 * The service's life as an orchestrator sees it, through the real CLI in a
 * child process: a graceful stop under load on SIGTERM and SIGINT, and a
 * configuration reload on SIGHUP.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { TokenVerifier } from "livekit-server-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import {
  type CliProcess,
  killAllClis,
  killCli,
  startCli,
  tempDir,
  tryConnect,
} from "./support/cli-process.js";
import {
  bearer,
  cliProject,
  h2cClient,
  http1Client,
  httpGet,
  newKey,
  type OpenClient,
  productionEnv,
  readyz,
  serviceKeysConfig,
  verifyCliToken,
} from "./support/cli-service.js";

const dir = tempDir("lkts-lifecycle-");
afterAll(async () => {
  await killAllClis();
  dir.remove();
});

const createTokenPath = "/tokenservice.v1.TokenService/CreateToken";

/** Starts the CLI in production mode with one service key, `key`. */
async function startProduction(
  name: string,
  key: string,
  env: Record<string, string>,
): Promise<{ cli: CliProcess; port: number; baseUrl: string }> {
  const keyFile = dir.write(`${name}.key`, key);
  const config = dir.write(
    `${name}.yaml`,
    serviceKeysConfig([{ name: "backend", keyFile }]),
  );
  const cli = startCli(
    ["--config", config, "--host", "127.0.0.1", "--port", "0"],
    { env: productionEnv(env) },
  );
  const [port = 0] = await cli.listening();
  expect(cli.linesWith("DEVELOPMENT MODE"), "production mode").toEqual([]);
  return { cli, port, baseUrl: `http://127.0.0.1:${port}` };
}

/** The outcome of one call of the load. */
interface CallRecord {
  client: string;
  startedAt: number;
  endedAt: number;
  error?: string;
}

/**
 * Calls CreateToken from `concurrency` workers in turn over `clients`
 * until `shouldStop()`; each worker issues its next call as soon as the
 * last ends.
 */
function runLoad(
  clients: { name: string; client: OpenClient }[],
  key: string,
  concurrency: number,
  shouldStop: () => boolean,
): Promise<CallRecord[]> {
  const records: CallRecord[] = [];
  const worker = async (w: number) => {
    const { name, client } = clients[w % clients.length] as (typeof clients)[0];
    for (let n = 0; !shouldStop(); n++) {
      const startedAt = performance.now();
      try {
        const response = await client.tokens.createToken(
          { roomName: "load", participantIdentity: `w${w}-${n}` },
          bearer(key),
        );
        if (response.participantIdentity !== `w${w}-${n}`) {
          throw new Error(`wrong identity ${response.participantIdentity}`);
        }
        records.push({ client: name, startedAt, endedAt: performance.now() });
      } catch (error) {
        records.push({
          client: name,
          startedAt,
          endedAt: performance.now(),
          error: String(error),
        });
      }
    }
  };
  return Promise.all(
    Array.from({ length: concurrency }, (_, w) => worker(w)),
  ).then(() => records);
}

/** One `/readyz` poll: when it was sent (epoch ms) and what it got. */
interface ReadyPoll {
  sentAt: number;
  answeredAt: number;
  status: number | string;
}

/**
 * Polls `/readyz` on new connections every 10 ms until it is not 200 and
 * returns every poll. Rejects after `timeoutMs`.
 */
async function pollUntilNotReady(
  port: number,
  timeoutMs: number,
): Promise<ReadyPoll[]> {
  const polls: ReadyPoll[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const sentAt = Date.now();
    const status = await readyz(port);
    polls.push({ sentAt, answeredAt: Date.now(), status });
    if (status !== 200) return polls;
    await sleep(10);
  }
  throw new Error(`/readyz still 200 after ${timeoutMs} ms`);
}

/**
 * Checks that readiness turned false within 200 ms of `signalAt` (epoch
 * ms), by the time the service logged that it is stopping (it turns
 * readiness false in the same tick), and that `/readyz` said 503 to every
 * poll sent after that and 200 to every poll answered before the signal.
 *
 * @returns the milliseconds from the signal to the turn, and to the first
 *   503 the poller saw.
 */
function checkReadinessTurned(
  cli: CliProcess,
  signal: NodeJS.Signals,
  signalAt: number,
  polls: ReadyPoll[],
): { turnedMs: number; seenMs: number } {
  const stopping = cli.linesWith("stopping: draining")[0];
  expect(stopping, cli.output()).toMatchObject({ signal });
  const turnedAt = Number(stopping?.time);
  for (const poll of polls) {
    if (poll.answeredAt < signalAt) expect(poll.status).toBe(200);
    if (poll.sentAt > turnedAt) expect(poll.status).toBe(503);
  }
  const last = polls.at(-1) as ReadyPoll;
  expect(last.status, "readiness turned while serving").toBe(503);
  const turnedMs = turnedAt - signalAt;
  expect.soft(turnedMs, `ms from ${signal} to not ready`).toBeLessThan(200);
  return { turnedMs, seenMs: last.answeredAt - signalAt };
}

/** A gRPC health Watch stream, recorded as it goes. */
interface WatchRecord {
  statuses: { status: ServingStatus; at: number }[];
  /** `performance.now()` when the stream ended, and how. */
  ended: Promise<{ at: number; error?: unknown }>;
}

function recordWatch(client: OpenClient, service: string): WatchRecord {
  const statuses: WatchRecord["statuses"] = [];
  const ended = (async () => {
    try {
      for await (const { status } of client.health.watch({ service })) {
        statuses.push({ status, at: performance.now() });
      }
      return { at: performance.now() };
    } catch (error) {
      return { at: performance.now(), error };
    }
  })();
  return { statuses, ended };
}

/**
 * A CreateToken call (Connect, JSON) whose body is sent in two parts: the
 * first now, the rest when `finish` is called. Over HTTP/1.1 or HTTP/2.
 */
interface SlowCall {
  finish(): void;
  result: Promise<SlowResult>;
}

/** The HTTP status and body, or the error's code. */
type SlowResult = { status: number; body: string } | { error: string };

function slowCall(
  port: number,
  key: string,
  identity: string,
  version: "1.1" | "2",
): SlowCall {
  const body = Buffer.from(
    JSON.stringify({ roomName: "slow", participantIdentity: identity }),
  );
  const half = Math.floor(body.length / 2);
  const headers = {
    "content-type": "application/json",
    "content-length": String(body.length),
    authorization: `Bearer ${key}`,
  };
  if (version === "1.1") {
    let send: () => void = () => {};
    const result = new Promise<SlowResult>((resolve) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: createTokenPath,
          headers,
          agent: false,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.once("end", () =>
            resolve({ status: res.statusCode ?? 0, body: text }),
          );
          res.once("error", (e: NodeJS.ErrnoException) =>
            resolve({ error: e.code ?? e.message }),
          );
        },
      );
      req.once("error", (e: NodeJS.ErrnoException) =>
        resolve({ error: e.code ?? e.message }),
      );
      req.flushHeaders();
      req.write(body.subarray(0, half));
      send = () => req.end(body.subarray(half));
    });
    return { finish: () => send(), result };
  }
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": createTokenPath,
    ...headers,
  });
  const result = new Promise<SlowResult>((resolve) => {
    let status = 0;
    let text = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (chunk: string) => {
      text += chunk;
    });
    stream.once("end", () => {
      resolve({ status, body: text });
      session.close();
    });
    stream.once("error", (e: NodeJS.ErrnoException) => {
      resolve({ error: e.code ?? e.message });
      session.destroy();
    });
  });
  stream.write(body.subarray(0, half));
  return { finish: () => stream.end(body.subarray(half)), result };
}

/** Expects `result` to be a 200 with a valid token for `identity`. */
async function expectToken(
  result: SlowResult | undefined,
  identity: string,
): Promise<void> {
  expect(result).toHaveProperty("status", 200);
  const body = JSON.parse((result as { body: string }).body) as {
    participantToken: string;
    participantIdentity: string;
  };
  expect(body.participantIdentity).toBe(identity);
  expect((await verifyCliToken(body.participantToken)).sub).toBe(identity);
}

describe("SIGTERM under load", { timeout: 45_000 }, () => {
  it("turns unready at once, serves through the drain window, then closes and exits 0", async ({
    onTestFinished,
  }) => {
    const drainMs = 2000;
    const timeoutMs = 5000;
    const key = newKey();
    const { cli, port, baseUrl } = await startProduction("term", key, {
      SHUTDOWN_DRAIN_SECONDS: String(drainMs / 1000),
      SHUTDOWN_TIMEOUT_SECONDS: String(timeoutMs / 1000),
    });
    const clients = [
      { name: "Connect HTTP/1.1 #1", client: http1Client(baseUrl, 8) },
      { name: "Connect HTTP/1.1 #2", client: http1Client(baseUrl, 8) },
      { name: "gRPC h2c #1", client: h2cClient(baseUrl) },
      { name: "gRPC h2c #2", client: h2cClient(baseUrl) },
    ];
    const watcher = h2cClient(baseUrl);
    onTestFinished(async () => {
      for (const { client } of clients) client.close();
      watcher.close();
      await killCli(cli);
    });

    // Every client works, and its connections are open before the stop.
    for (const { client } of clients) {
      await client.tokens.createToken({ roomName: "warm-up" }, bearer(key));
    }
    const watch = recordWatch(watcher, "");
    const serviceWatch = recordWatch(watcher, "tokenservice.v1.TokenService");
    await expect.poll(() => watch.statuses.length).toBe(1);
    await expect.poll(() => serviceWatch.statuses.length).toBe(1);
    expect(watch.statuses[0]?.status).toBe(ServingStatus.SERVING);
    expect(serviceWatch.statuses[0]?.status).toBe(ServingStatus.SERVING);
    // Two calls still sending their bodies when the drain window ends.
    const slow = [
      slowCall(port, key, "slow-h1", "1.1"),
      slowCall(port, key, "slow-h2", "2"),
    ];

    // The load: 30 workers over keep-alive connections. Like a load
    // balancer, they stop sending once /readyz says 503.
    let notReady = false;
    const load = runLoad(clients, key, 30, () => notReady);
    await sleep(300);
    const termEpoch = Date.now();
    const termAt = cli.signal("SIGTERM");
    const polls = await pollUntilNotReady(port, drainMs);
    notReady = true;

    // Within the drain window: liveness holds, and calls still succeed,
    // over the open connections and over new ones alike.
    expect(await httpGet(port, "/healthz")).toMatchObject({ status: 200 });
    const fresh = [http1Client(baseUrl, 1), h2cClient(baseUrl)];
    try {
      for (const { client } of [
        ...clients,
        ...fresh.map((c) => ({ client: c })),
      ]) {
        const response = await client.tokens.createToken(
          { roomName: "draining", participantIdentity: "late" },
          bearer(key),
        );
        await verifyCliToken(response.participantToken);
      }
    } finally {
      for (const client of fresh) client.close();
    }
    const drainingCallsDoneAt = performance.now();

    const records = await load;
    const failures = records.filter((r) => r.error !== undefined);
    expect(failures, "calls failed during the stop").toEqual([]);
    const afterTerm = records.filter((r) => r.startedAt > termAt);
    expect(records.length).toBeGreaterThan(30);
    for (const name of clients.map((c) => c.name)) {
      expect(
        records.some((r) => r.client === name),
        name,
      ).toBe(true);
    }

    // The Watch streams got NOT_SERVING as readiness turned.
    for (const w of [watch, serviceWatch]) {
      await expect.poll(() => w.statuses.length).toBe(2);
      expect(w.statuses[1]?.status).toBe(ServingStatus.NOT_SERVING);
      expect((w.statuses[1]?.at ?? 0) - termAt).toBeLessThan(drainMs);
    }

    // After the drain window: new connections are refused, while the
    // process stays up for the calls in flight, which then succeed.
    const drainEnd = termAt + drainMs;
    expect(drainingCallsDoneAt, "the test was too slow").toBeLessThan(
      drainEnd - 100,
    );
    await sleep(drainEnd - performance.now());
    await expect
      .poll(() => tryConnect(port), { timeout: 1000, interval: 20 })
      .toBe("ECONNREFUSED");
    expect(await readyz(port)).toBe("ECONNREFUSED");
    expect(cli.hasExited, "exited with calls in flight").toBe(false);
    // And the Watch streams have ended, cleanly, after the drain window.
    for (const w of [watch, serviceWatch]) {
      const end = await w.ended;
      expect(end.error).toBeUndefined();
      expect(end.at - termAt).toBeGreaterThanOrEqual(drainMs - 50);
      expect(w.statuses).toHaveLength(2);
    }
    for (const call of slow) call.finish();
    const [h1Result, h2Result] = await Promise.all(slow.map((c) => c.result));
    const lastCallAt = performance.now();
    await expectToken(h1Result, "slow-h1");
    await expectToken(h2Result, "slow-h2");

    const exit = await cli.waitForExit(drainMs + timeoutMs + 2000);
    expect(exit.code, cli.output()).toBe(0);
    expect(exit.signal).toBeNull();
    expect(exit.at - termAt).toBeLessThan(drainMs + timeoutMs + 1500);
    expect(cli.linesWith("stopped")).toHaveLength(1);
    expect(cli.stderr).toBe("");
    const readiness = checkReadinessTurned(cli, "SIGTERM", termEpoch, polls);
    // Once the last call is done, nothing is left to wait for: the idle
    // keep-alive connections are closed, not kept until the timeout.
    expect
      .soft(exit.at - lastCallAt, "ms from the last call's end to the exit")
      .toBeLessThan(1000);
    console.info(
      `SIGTERM: ${records.length} calls, ${afterTerm.length} started after ` +
        `the signal; not ready after ${readiness.turnedMs} ms (first 503 ` +
        `seen after ${readiness.seenMs} ms); exit ` +
        `${(exit.at - termAt).toFixed(0)} ms after the signal, ` +
        `${(exit.at - lastCallAt).toFixed(0)} ms after the last call`,
    );
  });
});

describe("SIGINT", { timeout: 45_000 }, () => {
  it("stops the same way; a call still open at the timeout is cut, and the exit is 0", async ({
    onTestFinished,
  }) => {
    const key = newKey();
    const { cli, port, baseUrl } = await startProduction("int", key, {
      SHUTDOWN_DRAIN_SECONDS: "1",
      SHUTDOWN_TIMEOUT_SECONDS: "1",
    });
    const client = h2cClient(baseUrl);
    onTestFinished(async () => {
      client.close();
      await killCli(cli);
    });
    await client.tokens.createToken({ roomName: "before" }, bearer(key));
    // A call whose body never completes.
    const stuck = slowCall(port, key, "stuck", "1.1");

    const intEpoch = Date.now();
    const intAt = cli.signal("SIGINT");
    const polls = await pollUntilNotReady(port, 1000);
    const response = await client.tokens.createToken(
      { roomName: "draining", participantIdentity: "late" },
      bearer(key),
    );
    expect((await verifyCliToken(response.participantToken)).sub).toBe("late");

    const exit = await cli.waitForExit(5000);
    expect(exit.code, cli.output()).toBe(0);
    // Not before drain + timeout: the stuck call held it open until then.
    expect(exit.at - intAt).toBeGreaterThanOrEqual(2000 - 50);
    expect(exit.at - intAt).toBeLessThan(2000 + 1500);
    expect(await stuck.result).toHaveProperty("error");
    expect(cli.linesWith("stopped")).toHaveLength(1);
    checkReadinessTurned(cli, "SIGINT", intEpoch, polls);
  });
});

describe("SIGHUP", { timeout: 45_000 }, () => {
  it("reloads keys and secrets; refuses an invalid configuration and keeps the old", async ({
    onTestFinished,
  }) => {
    const keyA = newKey();
    const keyB = newKey();
    const keyC = newKey();
    const keyFile = dir.write("hup.key", keyA);
    const secretFile = dir.write("hup.secret", cliProject.apiSecret);
    const config = dir.write(
      "hup.yaml",
      serviceKeysConfig([{ name: "backend", keyFile }]),
    );
    const env = productionEnv({
      LIVEKIT_API_SECRET_FILE: secretFile,
      SHUTDOWN_DRAIN_SECONDS: "0",
    });
    delete env.LIVEKIT_API_SECRET;
    const cli = startCli(
      ["--config", config, "--host", "127.0.0.1", "--port", "0"],
      { env },
    );
    const [port] = await cli.listening();
    const baseUrl = `http://127.0.0.1:${port}`;
    const clients = [http1Client(baseUrl), h2cClient(baseUrl)];
    onTestFinished(async () => {
      for (const client of clients) client.close();
      await killCli(cli);
    });
    const call = (client: OpenClient, key: string) =>
      client.tokens.createToken(
        { roomName: "hup", participantIdentity: "id" },
        bearer(key),
      );
    const expectUnauthenticated = async (client: OpenClient, key: string) => {
      const error = await call(client, key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect(Code[(error as ConnectError).code]).toBe(
        Code[Code.Unauthenticated],
      );
    };
    /** Sends SIGHUP and waits for the next line that starts with `msg`. */
    const hangUp = async (msg: string) => {
      const after = cli.lines().length;
      cli.signal("SIGHUP");
      return cli.waitForLine(
        (line) => String(line.msg).startsWith(msg),
        `a "${msg}" line`,
        10_000,
        after,
      );
    };
    for (const client of clients) {
      await call(client, keyA);
      await expectUnauthenticated(client, keyB);
    }

    // Key A becomes B in its file, key C is added, the secret rotates.
    const nextSecret = newKey().slice(0, 40);
    dir.write("hup.key", keyB);
    dir.write("hup-c.key", keyC);
    dir.write("hup.secret", nextSecret);
    dir.write(
      "hup.yaml",
      serviceKeysConfig([
        { name: "backend", keyFile },
        { name: "extra", keyFile: `${dir.path}/hup-c.key` },
      ]),
    );
    await hangUp("configuration reloaded");
    const nextVerifier = new TokenVerifier(cliProject.apiKey, nextSecret);
    for (const client of clients) {
      const response = await call(client, keyB);
      expect((await nextVerifier.verify(response.participantToken)).sub).toBe(
        "id",
      );
      await call(client, keyC);
      await expectUnauthenticated(client, keyA);
    }

    // An unknown key: refused, naming it; B still works.
    const valid = serviceKeysConfig([{ name: "backend", keyFile }]);
    dir.write("hup.yaml", `${valid}bogus: 1\n`);
    const refused = await hangUp("reload refused");
    expect(refused.level).toBe(50);
    expect(String(refused.err)).toMatch(/^bogus: unknown key/);
    // A key file too short: refused, naming its key in the file.
    dir.write("hup.yaml", valid);
    dir.write("hup.key", "short");
    const refusedKey = await hangUp("reload refused");
    expect(String(refusedKey.err)).toMatch(
      /^callers\.serviceKeys\[0\]\.keyFile: the key must be at least 32/,
    );
    expect(cli.linesWith("configuration reloaded")).toHaveLength(1);
    for (const client of clients) {
      await call(client, keyB);
      await call(client, keyC);
    }

    for (const client of clients) client.close();
    cli.signal("SIGTERM");
    expect((await cli.waitForExit(10_000)).code).toBe(0);
  });
});

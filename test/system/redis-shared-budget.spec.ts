import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/tokenservice/v1/token_service_pb.js";
import { type RedisServer, startRedisServer } from "../support/redis-server.js";

const serviceKey = "s".repeat(40);
const burst = 6;

/** Starts the real CLI and resolves with its port once it listens. */
function startCli(
  configFile: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ["bin/livekit-token-service.js", "--port", "0", "--host", "127.0.0.1"],
    {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: "production",
        LIVEKIT_URL: "wss://redis-test.livekit.example",
        LIVEKIT_API_KEY: "APIredis",
        LIVEKIT_API_SECRET: "r".repeat(40),
        SERVICE_KEY: serviceKey,
        CONFIG_FILE: configFile,
        SHUTDOWN_DRAIN_SECONDS: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk;
      const port = /"msg":"listening"/.test(output)
        ? /"port":(\d+)/.exec(output)?.[1]
        : undefined;
      if (port !== undefined) resolve({ child, port: Number(port) });
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    child.once("exit", (code) =>
      reject(new Error(`service exited with ${code}: ${output}`)),
    );
  });
}

describe("rate limits shared through Redis", () => {
  let redis: RedisServer;
  const services: { child: ChildProcess; port: number }[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    const dir = mkdtempSync(join(tmpdir(), "lkts-redis-"));
    const configFile = join(dir, "config.yaml");
    writeFileSync(
      configFile,
      [
        "policies:",
        "  backend:",
        "    rooms: ['*']",
        "    anyIdentity: true",
        "callers:",
        "  serviceKeys:",
        "    - name: backend",
        "      keyEnv: SERVICE_KEY",
        "      policy: backend",
        "rateLimits:",
        `  perCaller: { ratePerSecond: 0.01, burst: ${burst} }`,
        `  redis: { url: "redis://127.0.0.1:${redis.port}" }`,
      ].join("\n"),
    );
    services.push(await startCli(configFile), await startCli(configFile));
  });

  afterAll(async () => {
    for (const { child } of services) child.kill("SIGKILL");
    await redis?.stop();
  });

  it("gives two service processes one budget per caller", async () => {
    const clients = services.map(({ port }) =>
      createClient(
        TokenService,
        createConnectTransport({
          baseUrl: `http://127.0.0.1:${port}`,
          httpVersion: "1.1",
        }),
      ),
    );
    const headers = { authorization: `Bearer ${serviceKey}` };
    const outcomes: string[] = [];
    for (let i = 0; i < burst + 2; i++) {
      const client = clients[i % 2];
      try {
        const response = await client?.createToken(
          { roomName: "r" },
          { headers },
        );
        outcomes.push(response?.participantToken ? "token" : "none");
      } catch (error) {
        const refusal = ConnectError.from(error);
        expect(refusal.code).toBe(Code.ResourceExhausted);
        expect(refusal.metadata.get("retry-after")).toMatch(/^\d+$/);
        outcomes.push("refused");
      }
    }
    // Alternating between the processes, the budget still runs out after
    // `burst` calls in all: each process alone would have allowed `burst`.
    expect(outcomes).toEqual([
      ...Array(burst).fill("token"),
      "refused",
      "refused",
    ]);
  });
});

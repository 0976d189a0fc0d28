import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TokenVerifier } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import { loadConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { type RunningService, startTokenService } from "../server/service.js";

/** The YAML block of the README's "Securing the service" section. */
function readmeConfig(): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.split("## Securing the service")[1] ?? "";
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error("no yaml block in the section");
  return block;
}

const secret = "readme-example-secret-of-forty-characters";
const backendKey = "b".repeat(40);

describe("the README's config example", () => {
  let service: RunningService;
  let baseUrl: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "lkts-readme-"));
    const nextKeyFile = join(dir, "backend-next.key");
    writeFileSync(nextKeyFile, "n".repeat(40));
    const yaml = readmeConfig().replace(
      "/run/secrets/backend-next.key",
      nextKeyFile,
    );
    const configFile = join(dir, "config.yaml");
    writeFileSync(configFile, yaml);
    const config = loadConfig(
      { port: 0, host: "127.0.0.1" },
      {
        NODE_ENV: "production",
        LIVEKIT_URL: "wss://readme.livekit.example",
        LIVEKIT_API_KEY: "APIreadme",
        LIVEKIT_API_SECRET: secret,
        BACKEND_SERVICE_KEY: backendKey,
        CONFIG_FILE: configFile,
      },
    );
    service = await startTokenService(config, createLogger("silent"));
    baseUrl = `http://127.0.0.1:${service.address.port}`;
  });
  afterAll(() => service.close());

  it("is valid YAML with the sections the README describes", () => {
    const document = parseYaml(readmeConfig());
    expect(Object.keys(document)).toEqual([
      "policies",
      "callers",
      "rateLimits",
      "trustedProxies",
      "cors",
    ]);
  });

  it("lets the backend key mint what its policy allows", async () => {
    const client = createClient(
      TokenService,
      createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    );
    const response = await client.createToken(
      {
        roomName: "any-room",
        participantIdentity: "agent-host",
        videoGrant: { recorder: true, hidden: true },
      },
      { headers: { authorization: `Bearer ${backendKey}` } },
    );
    const claims = await new TokenVerifier("APIreadme", secret).verify(
      response.participantToken,
    );
    expect(claims.sub).toBe("agent-host");
    expect(claims.video).toMatchObject({
      room: "any-room",
      roomJoin: true,
      recorder: true,
      hidden: true,
    });
  });

  it("refuses a call without credentials", async () => {
    const response = await fetch(
      `${baseUrl}/tokenservice.v1.TokenService/CreateToken`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      },
    );
    expect(response.status).toBe(401);
    expect((await response.json()).code).toBe("unauthenticated");
  });
});

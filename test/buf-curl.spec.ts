import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenPath } from "./support/http.js";
import { startTestService, type TestService } from "./support/service.js";
import { firstAgent, verifyToken } from "./support/token.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const buf = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));
const run = promisify(execFile);

/** Runs `buf curl --schema proto` with `args` from the repository root. */
function bufCurl(args: string[]) {
  return run(buf, ["curl", "--schema", "proto", ...args], {
    cwd: repoRoot,
    timeout: 15_000,
  });
}

const body = JSON.stringify({
  room_name: "room-a",
  participant_identity: "user-1",
  participant_name: "Ada",
  room_config: { agents: [{ agent_name: "agent-x", deployment: "staging" }] },
});

describe("TokenService.CreateToken with buf curl", () => {
  let service: TestService;
  let url: string;
  beforeAll(async () => {
    service = await startTestService();
    url = `${service.baseUrl}${createTokenPath}`;
  });
  afterAll(() => service.close());

  it.each([
    ["Connect over HTTP/1.1", ["--protocol", "connect"]],
    ["gRPC over h2c", ["--protocol", "grpc", "--http2-prior-knowledge"]],
    ["gRPC-Web over HTTP/1.1", ["--protocol", "grpcweb"]],
  ])("mints a token over %s", async (_, protocol) => {
    const { stdout } = await bufCurl([...protocol, url, "-d", body]);
    const response = JSON.parse(stdout);
    expect(response.serverUrl).toBe(service.config.livekit.url);
    expect(response.participantIdentity).toBe("user-1");
    expect(response.participantName).toBe("Ada");
    expect(response.roomName).toBe("room-a");
    const claims = await verifyToken(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.name).toBe("Ada");
    expect(claims.video?.room).toBe("room-a");
    expect(firstAgent(claims)).toMatchObject({
      agentName: "agent-x",
      deployment: "staging",
    });
    expect(Date.parse(response.expiresAt) / 1000).toBe(claims.exp);
  });

  it.each([
    ["Connect", ["--protocol", "connect"]],
    ["gRPC", ["--protocol", "grpc", "--http2-prior-knowledge"]],
  ])(
    "exits with invalid_argument over %s for a ttl under 120s",
    async (_, protocol) => {
      const failure = await bufCurl([
        ...protocol,
        url,
        "-d",
        '{"room_name":"room-a","ttl":"60s"}',
      ]).then(
        () => undefined,
        (e: { code?: number; stdout: string; stderr: string }) => e,
      );
      expect(failure, "buf curl succeeded").toBeDefined();
      // buf curl exits with the gRPC code shifted left by three bits.
      expect(failure?.code).toBe(3 << 3);
      expect(failure?.stdout).toBe("");
      expect(JSON.parse(failure?.stderr ?? "").code).toBe("invalid_argument");
    },
  );
});

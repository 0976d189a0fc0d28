import { request } from "node:http";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultLimits } from "../server/config.js";
import {
  bearer,
  type CallerFixture,
  expectRefused,
  startCallerFixture,
} from "./support/callers.js";
import { createTokenPath, postJson } from "./support/http.js";

describe("CreateToken authentication before the body", () => {
  let f: CallerFixture;
  beforeAll(async () => {
    f = await startCallerFixture({
      overrides: { limits: { ...defaultLimits, requestBytes: 1024 } },
    });
  });
  afterAll(() => f.close());

  const big = { roomName: "lobby", participantMetadata: "x".repeat(4096) };

  it("refuses an unauthenticated body over the limit as unauthenticated", async () => {
    const { status, json } = await postJson(f.service.baseUrl, big);
    expect(status).toBe(401);
    expect(json.code).toBe("unauthenticated");
    expect(json).not.toHaveProperty("participantToken");
    expect(json).not.toHaveProperty("participant_token");
    const call = () => f.call(big, undefined, "gRPC");
    await expectRefused(f.log, call, Code.Unauthenticated);
  });

  it("refuses an authenticated body over the limit (the control)", async () => {
    const call = () => f.call(big, bearer(f.keys.backend), "gRPC");
    await expectRefused(f.log, call, Code.ResourceExhausted);
  });

  it("answers an unauthenticated request whose body never ends", async () => {
    const { status, body } = await postUnfinished(f.service.baseUrl);
    expect(status).toBe(401);
    expect(JSON.parse(body)).toMatchObject({ code: "unauthenticated" });
  });
});

/**
 * POSTs a Connect JSON request without credentials whose body is never
 * finished, and reads the response the service sends anyway.
 */
function postUnfinished(
  baseUrl: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${createTokenPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": 4096 },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.once("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.write('{"room_name":"lobby",');
  });
}

import * as http from "node:http";
import * as http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { userJwtConfig } from "./support/callers.js";
import {
  bodyOf,
  contentTypeOf,
  type Lane,
  lanes,
  RawClient,
  type RawReply,
  readReply,
  type Verdict,
} from "./support/hostile-rpc.js";
import { createTokenPath } from "./support/http.js";
import {
  createSigningKey,
  type SigningKey,
  signToken,
  startIdentityProvider,
  type TestIdentityProvider,
} from "./support/identity-provider.js";
import { type CapturedLog, captureLog } from "./support/log-capture.js";
import { memberPolicy } from "./support/policies.js";
import { startTestService, type TestService } from "./support/service.js";

/**
 * What test/unary-protocol.spec.ts and test/differential.spec.ts leave
 * out about deadlines and clients that go away: the deadline while the
 * caller is still being authenticated, and that abandoned calls leave no
 * connection or call behind on any protocol. (Deadlines while the body
 * arrives, tokens minted after a deadline, week-long and malformed timeout
 * headers, and reset HTTP/2 streams are tested there.)
 */

const laneNamed = (name: string) => lanes.find((l) => l.name === name) as Lane;

/** The deadline header of a lane, for `ms` milliseconds. */
function deadline(lane: Lane, ms: number): Record<string, string> {
  return lane.protocol === "connect"
    ? { "connect-timeout-ms": String(ms) }
    : { "grpc-timeout": `${ms}m` };
}

/** A request body for `lane` naming `room`. */
function requestBody(lane: Lane, room: string): Buffer {
  const message = lane.binary
    ? Buffer.concat([Buffer.from([0x0a, room.length]), Buffer.from(room)])
    : Buffer.from(JSON.stringify({ room_name: room }));
  return bodyOf(lane, message);
}

/** An in-flight call whose body is sent in parts, when the test says. */
interface HeldCall {
  reply: Promise<RawReply>;
  /** Sends more of the body; `end` finishes it. */
  send(bytes: Uint8Array, end?: boolean): void;
  /** Goes away: destroys the socket, or resets the stream. */
  abandon(): void;
}

/** Starts a call: headers now, the body when the test sends it. */
function holdCall(
  baseUrl: string,
  lane: Lane,
  headers: Record<string, string>,
): HeldCall {
  const all: Record<string, string> = {
    "content-type": contentTypeOf(lane),
    ...(lane.protocol === "grpc" && { te: "trailers" }),
    ...headers,
  };
  if (lane.http === "1.1") {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.request(`${baseUrl}${createTokenPath}`, {
      method: "POST",
      agent,
      headers: all,
    });
    const reply = new Promise<RawReply>((resolve, reject) => {
      req.on("error", reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: flat(res.headers),
            trailers: flat(res.trailers),
            body: Buffer.concat(chunks),
          }),
        );
      });
    });
    reply.catch(() => {});
    req.flushHeaders();
    return {
      reply,
      send: (bytes, end) => (end ? req.end(bytes) : req.write(bytes)),
      abandon: () => {
        req.destroy();
        agent.destroy();
      },
    };
  }
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": createTokenPath,
    ...all,
  });
  const reply = new Promise<RawReply>((resolve, reject) => {
    let status = 0;
    let responseHeaders: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = flat(h);
    });
    stream.on("trailers", (t) => {
      trailers = flat(t);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("end", () => {
      resolve({
        status,
        headers: responseHeaders,
        trailers,
        body: Buffer.concat(chunks),
      });
      session.close();
    });
  });
  reply.catch(() => {});
  return {
    reply,
    send: (bytes, end) => (end ? stream.end(bytes) : stream.write(bytes)),
    abandon: () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.destroy();
    },
  };
}

function flat(
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !name.startsWith(":")) {
      result[name] = Array.isArray(value) ? value.join(", ") : String(value);
    }
  }
  return result;
}

/** Awaits a reply and reads it, with the time it took. */
async function timed(
  reply: Promise<RawReply>,
  started: number,
): Promise<{ verdict: Verdict; ms: number }> {
  const raw = await reply;
  return { verdict: readReply(raw), ms: Date.now() - started };
}

describe("the deadline while the caller is authenticated", () => {
  let idp: TestIdentityProvider;
  let key: SigningKey;
  let service: TestService;
  beforeAll(async () => {
    key = await createSigningKey("RS256", "deadline-key");
    idp = await startIdentityProvider([key.publicJwk]);
    service = await startTestService({
      dev: false,
      auth: {
        serviceKeys: [],
        users: {
          jwt: { ...userJwtConfig(idp), jwksTimeoutMs: 2000 },
          policy: memberPolicy,
        },
      },
    });
  });
  afterAll(async () => {
    await service.close();
    await idp.close();
  });

  // The deadline runs from the first byte of the call: a hanging identity
  // provider cannot hold a call past it.
  it.each([laneNamed("Connect JSON/1.1"), laneNamed("gRPC proto/h2c")])(
    "$name: applies while the identity provider does not answer",
    async (lane) => {
      idp.mode = "hang";
      const token = await signToken(key, {
        iss: idp.issuer,
        aud: "token-service",
        sub: "alice",
      });
      const started = Date.now();
      const call = holdCall(service.baseUrl, lane, {
        ...deadline(lane, 300),
        authorization: `Bearer ${token}`,
      });
      call.send(requestBody(lane, "lobby"), true);
      try {
        const { verdict, ms } = await timed(call.reply, started);
        expect(verdict, `after ${ms} ms`).toMatchObject({
          code: "deadline_exceeded",
        });
        expect(ms).toBeLessThan(1000);
      } finally {
        call.abandon();
      }
    },
  );
});

describe("clients that go away mid-call", () => {
  let service: TestService;
  let log: CapturedLog;
  beforeAll(async () => {
    log = captureLog();
    service = await startTestService({}, { logger: log.logger });
  });
  afterAll(() => service.close());

  const rpcCodes = () =>
    log
      .lines()
      .filter((line) => line.msg === "rpc")
      .map((line) => line.code as string);

  const tcpHandles = () =>
    process.getActiveResourcesInfo().filter((name) => name === "TCPSocketWrap")
      .length;

  /** Waits until `check` holds, or `timeoutMs` passes. */
  async function eventually(check: () => boolean, timeoutMs = 1000) {
    const until = Date.now() + timeoutMs;
    while (!check() && Date.now() < until) await sleep(20);
  }

  const abandonLanes = [
    laneNamed("Connect JSON/1.1"),
    laneNamed("gRPC-Web proto/1.1"),
    laneNamed("Connect JSON/h2c"),
    laneNamed("gRPC proto/h2c"),
  ];

  /** Starts `calls` calls, each abandoned after four bytes of body. */
  async function abandonCalls(lane: Lane, calls: number): Promise<string[]> {
    const before = rpcCodes().length;
    for (let i = 0; i < calls; i++) {
      const call = holdCall(service.baseUrl, lane, {});
      call.send(requestBody(lane, `gone-${i}`).subarray(0, 4));
      await sleep(20);
      call.abandon();
    }
    await eventually(() => rpcCodes().length - before >= calls);
    return rpcCodes().slice(before);
  }

  it.each(abandonLanes)(
    "$name: ends every abandoned call and keeps nothing open",
    async (lane) => {
      const calls = 20;
      const handlesBefore = tcpHandles();
      const ended = await abandonCalls(lane, calls);
      // Each call ended: nothing is left waiting on a body.
      expect(ended).toHaveLength(calls);
      await eventually(() => tcpHandles() <= handlesBefore);
      expect(tcpHandles()).toBeLessThanOrEqual(handlesBefore);

      const client = new RawClient(service.baseUrl);
      try {
        const reply = await client.send(lane, {
          body: requestBody(lane, "after"),
        });
        expect(readReply(reply).kind).toBe("ok");
      } finally {
        client.close();
      }
    },
  );
});

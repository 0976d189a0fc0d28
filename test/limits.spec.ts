import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as tls from "node:tls";
import * as zlib from "node:zlib";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConnectionLimits,
  defaultConnectionLimits,
} from "../server/config.js";
import {
  encodeFrame,
  encodeHeaderBlock,
  Flag,
  FrameType,
  postHeaders,
  preface,
  RawH2Connection,
  Setting,
  settingOf,
} from "./support/h2-frames.js";
import {
  bodyOf,
  contentTypeOf,
  type Lane,
  lanes,
  RawClient,
  type RawReply,
  readReply,
} from "./support/hostile-rpc.js";
import { createTokenPath } from "./support/http.js";
import { startTestService, type TestService } from "./support/service.js";

/**
 * The service's limits under attack: bodies over the size limit (declared,
 * chunked, or grown by decompression), header blocks over the limit, more
 * HTTP/2 streams than allowed, too many connections, and clients that send
 * their headers or body too slowly.
 */

const laneNamed = (name: string) => lanes.find((l) => l.name === name) as Lane;
const connectJson11 = laneNamed("Connect JSON/1.1");
const connectProtoH2 = laneNamed("Connect proto/h2c");
const grpcH2 = laneNamed("gRPC proto/h2c");
const grpcWeb11 = laneNamed("gRPC-Web proto/1.1");

const MB = 1024 * 1024;

/** What became of an upload that the server refused while it was sent. */
interface Upload {
  reply: RawReply;
  /** Body bytes handed to the OS when the reply arrived. */
  sentAtReply: number;
  msToReply: number;
  /** Body bytes the server still took in the `afterMs` after the reply. */
  sentAfterReply: number;
  /** Whether the server closed the connection or reset the stream then. */
  cutOff: boolean;
}

/**
 * Uploads up to `totalBytes` in 64 KiB chunks, one every `intervalMs`
 * (so that a 50 MB body takes seconds to send), declaring its length or
 * not. Once the reply arrives it pushes as fast as the server takes bytes
 * for `afterMs` more, to see whether the server stops reading.
 */
async function upload(
  baseUrl: string,
  lane: Lane,
  {
    totalBytes,
    declare,
    afterMs = 0,
  }: { totalBytes: number; declare: boolean; afterMs?: number },
): Promise<Upload> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const intervalMs = 10;
  const headers: Record<string, string> = {
    "content-type": contentTypeOf(lane),
    ...(declare && { "content-length": String(totalBytes) }),
    ...(lane.protocol === "grpc" && { te: "trailers" }),
  };
  const start = Date.now();
  let sent = 0;
  let replied: { reply: RawReply; at: number; sent: number } | undefined;
  let cutOff = false;

  let write: (bytes: Buffer) => Promise<void> = async () => {};
  let abort: () => void = () => {};
  const reply = new Promise<RawReply>((resolve, reject) => {
    const collect = (
      status: number,
      responseHeaders: Record<string, string>,
      body: NodeJS.ReadableStream,
      trailers: () => Record<string, string>,
    ) => {
      const chunks: Buffer[] = [];
      body.on("data", (c: Buffer) => chunks.push(c));
      body.once("end", () =>
        resolve({
          status,
          headers: responseHeaders,
          trailers: trailers(),
          body: Buffer.concat(chunks),
        }),
      );
    };
    if (lane.http === "1.1") {
      // Keep-alive, as browsers and most clients: with `agent: false`
      // Node.js would send `connection: close`, and the server would close
      // after its reply anyway.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const req = http.request(`${baseUrl}${createTokenPath}`, {
        method: "POST",
        agent,
        headers,
      });
      req.on("error", (e) => {
        cutOff = true;
        reject(e);
      });
      req.on("response", (res) =>
        collect(res.statusCode ?? 0, flat(res.headers), res, () =>
          flat(res.trailers),
        ),
      );
      req.on("close", () => {
        cutOff = true;
      });
      req.flushHeaders();
      write = (bytes) =>
        new Promise((ok, fail) =>
          req.write(bytes, (e) => (e ? fail(e) : ok())),
        );
      abort = () => {
        req.destroy();
        agent.destroy();
      };
    } else {
      const session = http2.connect(baseUrl, { maxSessionMemory: 1024 });
      session.on("error", () => {});
      const stream = session.request({
        ":method": "POST",
        ":path": createTokenPath,
        ...headers,
      });
      let trailers: Record<string, string> = {};
      stream.on("trailers", (t) => {
        trailers = flat(t);
      });
      stream.on("error", () => {});
      stream.on("close", () => {
        cutOff = true;
      });
      stream.on("response", (h) =>
        collect(Number(h[":status"]), flat(h), stream, () => trailers),
      );
      write = (bytes) =>
        new Promise((ok, fail) => {
          if (stream.destroyed) fail(new Error("stream closed"));
          else stream.write(bytes, (e) => (e ? fail(e) : ok()));
        });
      abort = () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        session.destroy();
      };
    }
  });
  reply.then(
    (r) => {
      replied = { reply: r, at: Date.now(), sent };
    },
    () => {},
  );

  // Paced until the reply comes (or the whole body is sent).
  try {
    while (replied === undefined && sent < totalBytes && !cutOff) {
      await write(chunk);
      sent += chunk.length;
      await sleep(intervalMs);
    }
  } catch {
    // The server cut the upload off.
  }
  const answer = await Promise.race([reply, sleep(2000).then(() => null)]);
  if (answer === null || replied === undefined) {
    abort();
    throw new Error(`no reply after ${sent} bytes`);
  }
  // Then as fast as the server takes it, for `afterMs`.
  const sentAtReply = replied.sent;
  const until = Date.now() + afterMs;
  let after = 0;
  try {
    while (Date.now() < until && !cutOff) {
      await Promise.race([
        write(chunk),
        sleep(until - Date.now()).then(() => {
          throw new Error("stalled");
        }),
      ]);
      after += chunk.length;
    }
  } catch {
    // Stalled (the server stopped reading) or cut off.
  }
  const result = {
    reply: replied.reply,
    sentAtReply,
    msToReply: replied.at - start,
    sentAfterReply: after + (sent - sentAtReply),
    cutOff,
  };
  abort();
  return result;
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

describe("request body limit", () => {
  let service: TestService;
  let limit: number;
  beforeAll(async () => {
    service = await startTestService();
    limit = service.config.limits.requestBytes;
  });
  afterAll(() => service.close());

  const uploadLanes = [connectJson11, connectProtoH2, grpcH2, grpcWeb11];

  it.each(uploadLanes)(
    "$name: refuses a declared 50 MB body at once, before it is uploaded",
    async (lane) => {
      const heapBefore = process.memoryUsage().heapUsed;
      const result = await upload(service.baseUrl, lane, {
        totalBytes: 50 * MB,
        declare: true,
      });
      expect(readReply(result.reply)).toMatchObject({
        code: "resource_exhausted",
      });
      // 50 MB at 64 KiB per 10 ms would take 8 s.
      expect(result.msToReply).toBeLessThan(1000);
      expect(result.sentAtReply).toBeLessThan(MB);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(20 * MB);
    },
  );

  it.each(uploadLanes)(
    "$name: refuses an undeclared body once it passes the limit",
    async (lane) => {
      const result = await upload(service.baseUrl, lane, {
        totalBytes: 50 * MB,
        declare: false,
      });
      expect(readReply(result.reply)).toMatchObject({
        code: "resource_exhausted",
      });
      expect(result.sentAtReply).toBeGreaterThan(limit);
      expect(result.sentAtReply).toBeLessThan(limit + MB);
    },
  );

  // Having refused, the server takes no more of the upload: it resets the
  // HTTP/2 stream (NO_ERROR) or stops reading and closes the HTTP/1.1
  // connection after its answer.
  it.each(uploadLanes)(
    "$name: stops taking the upload after refusing it",
    async (lane) => {
      const result = await upload(service.baseUrl, lane, {
        totalBytes: 1024 * MB,
        declare: true,
        afterMs: 1000,
      });
      expect(readReply(result.reply)).toMatchObject({
        code: "resource_exhausted",
      });
      expect(
        result.sentAfterReply,
        `bytes taken in the second after the refusal (cut off: ${result.cutOff})`,
      ).toBeLessThan(16 * MB);
    },
  );

  /** A JSON request whose metadata is `size` spaces: it compresses well. */
  const inflating = (size: number) =>
    Buffer.from(`{"participant_metadata":"${" ".repeat(size)}"}`);

  it.each([
    { lane: connectJson11, encoding: "gzip" },
    { lane: laneNamed("Connect JSON/h2c"), encoding: "br" },
    { lane: laneNamed("gRPC JSON/h2c"), encoding: "gzip" },
    { lane: laneNamed("gRPC-Web JSON/1.1"), encoding: "br" },
  ] as const)(
    "$lane.name: refuses a $encoding body that grows past the limit when decompressed",
    async ({ lane, encoding }) => {
      const message = inflating(16 * MB);
      const packed =
        encoding === "gzip"
          ? gzipSync(message)
          : brotliCompressSync(message, {
              params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 },
            });
      expect(packed.length).toBeLessThan(limit);
      const client = new RawClient(service.baseUrl);
      const header =
        lane.protocol === "connect" ? "content-encoding" : "grpc-encoding";
      const started = Date.now();
      const heapBefore = process.memoryUsage().heapUsed;
      try {
        const reply = await client.send(lane, {
          headers: { [header]: encoding },
          body: bodyOf(lane, packed, 1),
        });
        expect(readReply(reply)).toMatchObject({ code: "resource_exhausted" });
      } finally {
        client.close();
      }
      expect(Date.now() - started).toBeLessThan(1000);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * MB);
    },
  );

  it("still mints for a compressed body just under the limit", async () => {
    const message = inflating(limit - 1024);
    const client = new RawClient(service.baseUrl);
    try {
      const reply = await client.send(connectJson11, {
        headers: { "content-encoding": "gzip" },
        body: gzipSync(message),
      });
      // Metadata over MAX_METADATA_BYTES: refused by the field limit, not
      // the body limit.
      expect(readReply(reply)).toMatchObject({ code: "invalid_argument" });
    } finally {
      client.close();
    }
  });
});

describe("header block limit", () => {
  let service: TestService;
  let limit: number;
  beforeAll(async () => {
    service = await startTestService();
    limit = service.config.connections.maxHeaderBytes;
  });
  afterAll(() => service.close());

  /** Headers of `total` bytes: one big one, or many of `each` bytes. */
  function bigHeaders(total: number, each?: number): Record<string, string> {
    if (each === undefined) return { "x-padding": "a".repeat(total) };
    const headers: Record<string, string> = {};
    for (let i = 0; i * each < total; i++) {
      headers[`x-padding-${i}`] = "b".repeat(each);
    }
    return headers;
  }

  const shapes = [
    ["one header", undefined],
    ["many headers", 400],
  ] as const;

  it.each(shapes)(
    "HTTP/1.1: answers 431 to %s over the limit",
    async (_, each) => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${service.baseUrl}${createTokenPath}`, {
          method: "POST",
          agent: false,
          headers: {
            "content-type": "application/json",
            ...bigHeaders(limit + 4096, each),
          },
        });
        req.on("error", reject);
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.end("{}");
      });
      expect(status).toBe(431);
    },
  );

  it("HTTP/2: advertises the limit in SETTINGS", async () => {
    const connection = await RawH2Connection.connect(service.port);
    try {
      expect(settingOf(connection, Setting.MAX_HEADER_LIST_SIZE)).toBe(limit);
    } finally {
      connection.destroy();
    }
  });

  // Over HTTP/2 the limit is advertised (SETTINGS MAX_HEADER_LIST_SIZE)
  // and enforced by the service: Node.js alone applies only its own,
  // larger one (about 64 KiB, and 128 header fields).
  it.each(shapes)("HTTP/2: refuses %s over the limit", async (_, each) => {
    const session = http2.connect(service.baseUrl);
    session.on("error", () => {});
    try {
      const outcome = await new Promise<string>((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": createTokenPath,
          "content-type": "application/json",
          ...bigHeaders(limit + 4096, each),
        });
        stream.on("response", (h) => resolve(`status ${h[":status"]}`));
        stream.on("error", (e) => resolve(`error ${e.message}`));
        stream.on("close", () => resolve(`reset ${stream.rstCode}`));
        stream.end("{}");
      });
      expect(outcome).not.toBe("status 200");
      expect(outcome).toMatch(/^(status 431|error|reset)/);
    } finally {
      session.destroy();
    }
  });
});

describe("HTTP/2 streams per connection", () => {
  let service: TestService;
  const maxStreams = 4;
  beforeAll(async () => {
    service = await startTestService({
      connections: {
        ...defaultConnectionLimits,
        maxStreamsPerConnection: maxStreams,
      },
    });
  });
  afterAll(() => service.close());

  it("advertises the limit to clients in SETTINGS", async () => {
    const session = http2.connect(service.baseUrl);
    try {
      const settings = await new Promise<http2.Settings>((resolve) =>
        session.once("remoteSettings", resolve),
      );
      expect(settings.maxConcurrentStreams).toBe(maxStreams);
    } finally {
      session.destroy();
    }
  });

  it("serves no stream over the limit to a client that ignores it", async () => {
    const connection = await RawH2Connection.connect(service.port);
    try {
      const ids = Array.from({ length: maxStreams * 2 }, (_, i) => 2 * i + 1);
      for (const id of ids) {
        connection.headers(
          id,
          postHeaders(createTokenPath, { "content-type": "application/json" }),
        );
      }
      for (const id of ids) connection.data(id, Buffer.from("{}"), true);
      await connection.waitUntil(
        () => (ids.every((id) => connection.ended(id)) ? true : undefined),
        1000,
      );
      const served = ids.filter((id) => connection.answered(id));
      expect(served.length).toBeLessThanOrEqual(maxStreams);
      for (const id of ids.slice(maxStreams)) {
        expect(connection.answered(id), `stream ${id}`).toBe(false);
      }
      // Node.js answers the excess with GOAWAY, not REFUSED_STREAM for the
      // excess streams alone: the greedy client loses its connection.
      const refused = [...connection.resets().keys()];
      expect(
        connection.closed || refused.length >= maxStreams,
        "excess streams neither refused nor the connection closed",
      ).toBe(true);
    } finally {
      connection.destroy();
    }
    // Other clients are unaffected.
    const client = new RawClient(service.baseUrl);
    try {
      const reply = await client.send(connectProtoH2, {
        body: new Uint8Array(0),
      });
      expect(readReply(reply).kind).toBe("ok");
    } finally {
      client.close();
    }
  });
});

describe("connection count limit", () => {
  let service: TestService;
  const maxConnections = 8;
  beforeAll(async () => {
    service = await startTestService({
      connections: { ...defaultConnectionLimits, maxConnections },
    });
  });
  afterAll(() => service.close());

  it("closes connections over the limit, and serves again once below", async () => {
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < maxConnections; i++) {
        const socket = net.connect(service.port, "127.0.0.1");
        socket.on("error", () => {});
        await new Promise((resolve) => socket.once("connect", resolve));
        held.push(socket);
      }
      await sleep(50);
      const extra = net.connect(service.port, "127.0.0.1");
      extra.on("error", () => {});
      const closed = await Promise.race([
        new Promise((resolve) => extra.once("close", () => resolve(true))),
        sleep(1000).then(() => false),
      ]);
      extra.destroy();
      expect(closed, "the connection over the limit stayed open").toBe(true);

      held.pop()?.destroy();
      await sleep(50);
      const client = new RawClient(service.baseUrl);
      try {
        const reply = await client.send(connectJson11, {
          body: Buffer.from("{}"),
        });
        expect(readReply(reply).kind).toBe("ok");
      } finally {
        client.close();
      }
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});

describe.concurrent("slow clients", () => {
  let service: TestService;
  const limits: ConnectionLimits = {
    ...defaultConnectionLimits,
    headersTimeoutMs: 1000,
    requestTimeoutMs: 2000,
    idleTimeoutMs: 5000,
  };
  /** How late a timeout may fire and still pass. */
  const slackMs = 2000;
  const byteEveryMs = 250;

  beforeAll(async () => {
    service = await startTestService({ connections: limits });
  });
  afterAll(() => service.close());

  /**
   * Opens a TCP connection, writes `head` at once, then `trickle` one byte
   * every 250 ms; resolves with the time the server closed it (or with
   * undefined at `waitMs`) and what it sent back.
   */
  async function trickle(
    head: Buffer,
    slow: Buffer,
    waitMs: number,
  ): Promise<{ closedAfterMs: number | undefined; received: string }> {
    const socket = net.connect(service.port, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
    });
    const start = Date.now();
    socket.write(head);
    let at = 0;
    const timer = setInterval(() => {
      if (at < slow.length) socket.write(slow.subarray(at, ++at));
    }, byteEveryMs);
    const closedAfterMs = await Promise.race([
      new Promise<number>((resolve) =>
        socket.once("close", () => resolve(Date.now() - start)),
      ),
      sleep(waitMs).then(() => undefined),
    ]);
    clearInterval(timer);
    socket.destroy();
    console.info(
      `slow client: closed after ${closedAfterMs ?? `more than ${waitMs}`} ms` +
        `, answered ${JSON.stringify(received.split("\r\n")[0])}`,
    );
    return { closedAfterMs, received };
  }

  const requestHead = (extra = "") =>
    `POST ${createTokenPath} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
    `content-type: application/json\r\n${extra}`;

  it("HTTP/1.1: disconnects a client that sends its headers a byte at a time", async ({
    expect,
  }) => {
    const { closedAfterMs } = await trickle(
      Buffer.alloc(0),
      Buffer.from(`${requestHead()}x-slow: ${"s".repeat(100)}\r\n\r\n`),
      limits.headersTimeoutMs + slackMs,
    );
    expect(
      closedAfterMs,
      `still connected ${limits.headersTimeoutMs + slackMs} ms later`,
    ).toBeDefined();
  });

  // The first bytes of a connection have a deadline, and HTTP/2 requests
  // the request timeout. KNOWN LIMIT (the `.fails` below): a small HEADERS
  // frame sent a byte at a time is not caught, since Node.js reports no
  // partial frames (see guardSlowHttp2 in server/listen.ts).
  it("h2c: disconnects a client that sends the connection preface a byte at a time", async ({
    expect,
  }) => {
    const { closedAfterMs } = await trickle(
      Buffer.alloc(0),
      preface,
      limits.headersTimeoutMs + slackMs,
    );
    expect(
      closedAfterMs,
      `still connected ${limits.headersTimeoutMs + slackMs} ms later`,
    ).toBeDefined();
  });

  it.fails("h2c: drops a stream whose HEADERS frame comes a byte at a time", async ({
    expect,
  }) => {
    const connection = await RawH2Connection.connect(service.port);
    try {
      const fields = postHeaders(createTokenPath, {
        "content-type": "application/json",
        "x-slow": "s".repeat(100),
      });
      const frame = encodeFrame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        encodeHeaderBlock(fields),
      );
      let at = 0;
      const timer = setInterval(() => {
        if (at < frame.length) connection.write(frame.subarray(at, ++at));
      }, byteEveryMs);
      const dropped = await connection.waitUntil(
        () => (connection.ended(1) || connection.goaway() ? true : undefined),
        limits.headersTimeoutMs + slackMs,
      );
      clearInterval(timer);
      expect(
        dropped || connection.closed,
        `still connected ${limits.headersTimeoutMs + slackMs} ms later`,
      ).toBe(true);
    } finally {
      connection.destroy();
    }
  });

  it("HTTP/1.1: disconnects a client that sends its body a byte at a time", async ({
    expect,
  }) => {
    const { closedAfterMs, received } = await trickle(
      Buffer.from(`${requestHead("content-length: 1000\r\n")}\r\n`),
      Buffer.from(`{"participant_metadata":"${" ".repeat(960)}"}`),
      limits.requestTimeoutMs + slackMs,
    );
    expect(
      closedAfterMs,
      `still connected ${limits.requestTimeoutMs + slackMs} ms later`,
    ).toBeDefined();
    expect(received).not.toMatch(/^HTTP\/1\.1 200/);
  });

  it("h2c: drops a stream whose body comes a byte at a time", async ({
    expect,
  }) => {
    const connection = await RawH2Connection.connect(service.port);
    try {
      connection.headers(
        1,
        postHeaders(createTokenPath, { "content-type": "application/json" }),
      );
      const body = Buffer.from(`{"participant_metadata":"${" ".repeat(960)}"}`);
      let at = 0;
      const timer = setInterval(() => {
        if (at < body.length) connection.data(1, body.subarray(at, ++at));
      }, byteEveryMs);
      const dropped = await connection.waitUntil(
        () => (connection.ended(1) || connection.goaway() ? true : undefined),
        limits.requestTimeoutMs + slackMs,
      );
      clearInterval(timer);
      expect(
        dropped || connection.closed,
        `stream still open ${limits.requestTimeoutMs + slackMs} ms later`,
      ).toBe(true);
    } finally {
      connection.destroy();
    }
  });

  it("answers normal calls promptly while 50 slow clients hold connections", async ({
    expect,
  }) => {
    const slow: { destroy(): void }[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      for (let i = 0; i < 25; i++) {
        const socket = net.connect(service.port, "127.0.0.1");
        socket.on("error", () => {});
        await new Promise((resolve) => socket.once("connect", resolve));
        const head = Buffer.from(requestHead());
        let at = 0;
        timers.push(
          setInterval(() => {
            if (at < head.length) socket.write(head.subarray(at, ++at));
          }, byteEveryMs),
        );
        slow.push(socket);
      }
      for (let i = 0; i < 25; i++) {
        const connection = await RawH2Connection.connect(service.port);
        connection.headers(
          1,
          postHeaders(createTokenPath, { "content-type": "application/json" }),
        );
        timers.push(
          setInterval(() => connection.data(1, Buffer.from(" ")), byteEveryMs),
        );
        slow.push(connection);
      }
      const timings: number[] = [];
      for (const lane of [connectJson11, connectProtoH2, grpcH2, grpcWeb11]) {
        for (let i = 0; i < 3; i++) {
          // A fresh connection each time: accepting must be prompt too.
          const client = new RawClient(service.baseUrl);
          const started = Date.now();
          try {
            const reply = await client.send(lane, {
              body: bodyOf(
                lane,
                lane.binary ? new Uint8Array(0) : Buffer.from("{}"),
              ),
            });
            timings.push(Date.now() - started);
            expect(readReply(reply).kind).toBe("ok");
          } finally {
            client.close();
          }
        }
      }
      console.info(
        `50 slow clients: ${timings.length} normal calls took ` +
          `${Math.min(...timings)}-${Math.max(...timings)} ms`,
      );
      expect(Math.max(...timings), `timings ${timings}`).toBeLessThan(500);
    } finally {
      for (const timer of timers) clearInterval(timer);
      for (const client of slow) client.destroy();
    }
  });
});

/** A self-signed certificate for 127.0.0.1, if `openssl` is installed. */
function selfSignedCertificate(): { cert: Buffer; key: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), "limits-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-nodes", "-days", "1"],
        ...["-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=127.0.0.1"],
        ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      ],
      { stdio: "ignore" },
    );
    return {
      cert: readFileSync(join(dir, "cert.pem")),
      key: readFileSync(join(dir, "key.pem")),
    };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// With TLS the port is one http2.createSecureServer with allowHTTP1; the
// HTTP/1.1 limits (header size, headers and request timeouts) must reach
// the HTTP/1.1 connections that ALPN gives it too.
describe("HTTP/1.1 over TLS", () => {
  const certificate = selfSignedCertificate();
  let service: TestService;
  const limits: ConnectionLimits = {
    ...defaultConnectionLimits,
    maxHeaderBytes: 4096,
    headersTimeoutMs: 1000,
  };
  beforeAll(async () => {
    if (certificate) {
      service = await startTestService({
        tls: certificate,
        connections: limits,
      });
    }
  });
  afterAll(() => service?.close());

  async function connectTls(): Promise<tls.TLSSocket> {
    const socket = tls.connect({
      port: service.port,
      host: "127.0.0.1",
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    });
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    expect(socket.alpnProtocol).toBe("http/1.1");
    return socket;
  }

  it.skipIf(!certificate)(
    "answers 431 to a header block over the limit",
    async () => {
      const socket = await connectTls();
      try {
        let received = "";
        socket.on("data", (d: Buffer) => {
          received += d.toString("latin1");
        });
        socket.write(
          `POST ${createTokenPath} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
            `content-type: application/json\r\ncontent-length: 2\r\n` +
            `x-padding: ${"a".repeat(limits.maxHeaderBytes * 2)}\r\n\r\n{}`,
        );
        await Promise.race([
          new Promise((resolve) => socket.once("close", resolve)),
          sleep(1000),
        ]);
        expect(received.split("\r\n")[0]).toBe(
          "HTTP/1.1 431 Request Header Fields Too Large",
        );
      } finally {
        socket.destroy();
      }
    },
  );

  it.skipIf(!certificate)(
    "disconnects a client that sends its headers a byte at a time",
    async () => {
      const socket = await connectTls();
      const head = Buffer.from(
        `POST ${createTokenPath} HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
          `x-slow: ${"s".repeat(100)}\r\n\r\n`,
      );
      let at = 0;
      const timer = setInterval(() => {
        if (at < head.length) socket.write(head.subarray(at, ++at));
      }, 250);
      const waitMs = limits.headersTimeoutMs + 1500;
      try {
        const closed = await Promise.race([
          new Promise((resolve) => socket.once("close", () => resolve(true))),
          sleep(waitMs).then(() => false),
        ]);
        expect(closed, `still connected ${waitMs} ms later`).toBe(true);
      } finally {
        clearInterval(timer);
        socket.destroy();
      }
    },
  );
});

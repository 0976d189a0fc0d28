/**
 * The dedicated unary path of CreateToken with real clients (connect-node's
 * Connect, gRPC and gRPC-Web transports, connect-web's Connect and gRPC-Web
 * transports) and with raw HTTP where a client cannot misbehave on cue:
 * deadlines, clients that go away mid-body, compression, and both
 * encodings.
 */

import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  createConnectTransport as createWebConnectTransport,
  createGrpcWebTransport as createWebGrpcWebTransport,
} from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateTokenRequestSchema,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import {
  envelope,
  parseTrailerBlock,
  splitEnvelopes,
  trailerFlag,
} from "./support/framing.js";
import { createTokenPath } from "./support/http.js";
import { h1Send } from "./support/raw-http.js";
import { startH2RecordingProxy } from "./support/recording-h2-proxy.js";
import {
  type RecordingProxy,
  startRecordingProxy,
} from "./support/recording-proxy.js";
import { startTestService, type TestService } from "./support/service.js";
import { verifyToken } from "./support/token.js";

/** One real client transport, and what it puts on the wire. */
interface ClientKind {
  name: string;
  http: "1.1" | "2";
  protocol: "connect" | "grpc" | "grpc_web";
  /** connect-web (fetch) transports have no compression options. */
  web: boolean;
  transport(
    baseUrl: string,
    options: {
      useBinaryFormat?: boolean;
      sendCompression?: Compression;
      acceptCompression?: Compression[];
    },
  ): Transport;
}

const clientKinds: ClientKind[] = [
  {
    name: "connect-node Connect over HTTP/1.1",
    http: "1.1",
    protocol: "connect",
    web: false,
    transport: (baseUrl, options) =>
      createConnectTransport({ baseUrl, httpVersion: "1.1", ...options }),
  },
  {
    name: "connect-node Connect over h2c",
    http: "2",
    protocol: "connect",
    web: false,
    transport: (baseUrl, options) =>
      createConnectTransport({ baseUrl, httpVersion: "2", ...options }),
  },
  {
    name: "connect-node gRPC",
    http: "2",
    protocol: "grpc",
    web: false,
    transport: (baseUrl, options) =>
      createGrpcTransport({ baseUrl, ...options }),
  },
  {
    name: "connect-node gRPC-Web over HTTP/1.1",
    http: "1.1",
    protocol: "grpc_web",
    web: false,
    transport: (baseUrl, options) =>
      createGrpcWebTransport({ baseUrl, httpVersion: "1.1", ...options }),
  },
  {
    name: "connect-node gRPC-Web over h2c",
    http: "2",
    protocol: "grpc_web",
    web: false,
    transport: (baseUrl, options) =>
      createGrpcWebTransport({ baseUrl, httpVersion: "2", ...options }),
  },
  {
    name: "connect-web Connect (fetch)",
    http: "1.1",
    protocol: "connect",
    web: true,
    transport: (baseUrl, { useBinaryFormat }) =>
      createWebConnectTransport({ baseUrl, useBinaryFormat }),
  },
  {
    name: "connect-web gRPC-Web (fetch)",
    http: "1.1",
    protocol: "grpc_web",
    web: true,
    transport: (baseUrl, { useBinaryFormat }) =>
      createWebGrpcWebTransport({ baseUrl, useBinaryFormat }),
  },
];

/** The response content type of `kind` in the given encoding. */
function responseContentType(kind: ClientKind, binary: boolean): string {
  const subtype = binary ? "proto" : "json";
  if (kind.protocol === "connect") return `application/${subtype}`;
  if (kind.protocol === "grpc") return `application/grpc+${subtype}`;
  return `application/grpc-web+${subtype}`;
}

const request = { roomName: "lobby", participantIdentity: "alice" };
/** Over 1024 bytes each way, so both sides compress when they may. */
const largeRequest = { ...request, participantMetadata: "m".repeat(1500) };

/** Sends a request to `kind`'s recording proxy in front of `service`. */
async function throughProxy<T>(
  kind: ClientKind,
  service: TestService,
  call: (baseUrl: string) => Promise<T>,
): Promise<{ result: T; recorded: RecordingProxy["requests"] }> {
  const proxy =
    kind.http === "2"
      ? await startH2RecordingProxy(service.baseUrl)
      : await startRecordingProxy(service.baseUrl);
  try {
    const result = await call(proxy.baseUrl);
    return { result, recorded: proxy.requests };
  } finally {
    await proxy.close();
  }
}

describe("CreateToken on the unary path with real clients", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service?.close());

  const client = (
    kind: ClientKind,
    baseUrl: string,
    options: Parameters<ClientKind["transport"]>[1] = {},
  ): Client<typeof TokenService> =>
    createClient(TokenService, kind.transport(baseUrl, options));

  const encodings = clientKinds.flatMap((kind) =>
    [true, false].map((binary) => ({ kind, binary, name: kind.name })),
  );

  it.each(encodings)(
    "mints with useBinaryFormat $binary: $name",
    async ({ kind, binary }) => {
      let contentType: string | null = null;
      const response = await client(kind, service.baseUrl, {
        useBinaryFormat: binary,
      }).createToken(request, {
        onHeader: (headers) => {
          contentType = headers.get("content-type");
        },
      });
      expect(contentType).toBe(responseContentType(kind, binary));
      expect(response).toMatchObject({
        roomName: "lobby",
        participantIdentity: "alice",
      });
      const claims = await verifyToken(response.participantToken);
      expect(claims.sub).toBe("alice");
      expect(claims.video?.room).toBe("lobby");
    },
  );

  it.each(clientKinds)(
    "sends the timeoutMs call option as the protocol's header: $name",
    async (kind) => {
      const { result, recorded } = await throughProxy(kind, service, (url) =>
        client(kind, url).createToken(request, { timeoutMs: 5000 }),
      );
      expect(result.participantIdentity).toBe("alice");
      expect(recorded).toHaveLength(1);
      const headers = recorded[0]?.headers ?? {};
      if (kind.protocol === "connect") {
        expect(Number(headers["connect-timeout-ms"])).toBeGreaterThan(4000);
        expect(Number(headers["connect-timeout-ms"])).toBeLessThanOrEqual(5000);
        expect(headers["grpc-timeout"]).toBeUndefined();
      } else {
        expect(headers["grpc-timeout"]).toMatch(/^\d{1,8}m$/);
        const ms = Number.parseInt(String(headers["grpc-timeout"]), 10);
        expect(ms).toBeGreaterThan(4000);
        expect(ms).toBeLessThanOrEqual(5000);
        expect(headers["connect-timeout-ms"]).toBeUndefined();
      }
    },
  );

  const compressions = clientKinds
    .filter((kind) => !kind.web)
    .flatMap((kind) =>
      [compressionGzip, compressionBrotli].flatMap((compression) =>
        [true, false].map((binary) => ({
          kind,
          compression,
          binary,
          name: `${kind.name}, ${compression.name}, binary ${binary}`,
        })),
      ),
    );

  it.each(compressions)(
    "round-trips compressed requests and responses: $name",
    async ({ kind, compression, binary }) => {
      const responseHeaders = new Headers();
      const { result, recorded } = await throughProxy(kind, service, (url) =>
        client(kind, url, {
          useBinaryFormat: binary,
          sendCompression: compression,
          acceptCompression: [compression],
        }).createToken(largeRequest, {
          onHeader: (headers) => {
            headers.forEach((value, name) => {
              responseHeaders.set(name, value);
            });
          },
        }),
      );
      // The request went out compressed ...
      const sent = recorded[0];
      expect(sent).toBeDefined();
      const [encodingHeader, acceptHeader] =
        kind.protocol === "connect"
          ? ["content-encoding", "accept-encoding"]
          : ["grpc-encoding", "grpc-accept-encoding"];
      expect(sent?.headers[encodingHeader]).toBe(compression.name);
      expect(String(sent?.headers[acceptHeader])).toContain(compression.name);
      let payload = sent?.body ?? Buffer.alloc(0);
      if (kind.protocol !== "connect") {
        const [only, ...rest] = splitEnvelopes(payload);
        expect(rest).toEqual([]);
        expect(only?.flags).toBe(1);
        payload = Buffer.from(only?.payload ?? []);
      }
      const inflated =
        compression.name === "gzip"
          ? gunzipSync(payload)
          : brotliDecompressSync(payload);
      const parsed = binary
        ? fromBinary(CreateTokenRequestSchema, inflated)
        : fromJsonString(CreateTokenRequestSchema, inflated.toString());
      expect(parsed.participantMetadata).toBe(largeRequest.participantMetadata);
      // ... and the response came back compressed, and decoded.
      expect(responseHeaders.get(encodingHeader)).toBe(compression.name);
      const claims = await verifyToken(result.participantToken);
      expect(claims.metadata).toBe(largeRequest.participantMetadata);
    },
  );

  it("answers connect-web's Connect calls gzip-compressed, as fetch accepts", async () => {
    const kind = clientKinds.find((k) => k.web && k.protocol === "connect");
    if (kind === undefined) throw new Error("no connect-web Connect client");
    let contentEncoding: string | null = null;
    const { result, recorded } = await throughProxy(kind, service, (url) =>
      client(kind, url).createToken(largeRequest, {
        onHeader: (headers) => {
          contentEncoding = headers.get("content-encoding");
        },
      }),
    );
    // fetch adds accept-encoding itself, and decompresses the answer.
    expect(String(recorded[0]?.headers["accept-encoding"])).toContain("gzip");
    expect(contentEncoding).toBe("gzip");
    const claims = await verifyToken(result.participantToken);
    expect(claims.metadata).toBe(largeRequest.participantMetadata);
  });
});

/** A raw request whose body trickles in slowly, and its answer. */
interface Trickled {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  trailers: Record<string, string | string[] | number | undefined>;
  body: Uint8Array;
  /** Milliseconds from sending the headers to the end of the answer. */
  elapsedMs: number;
  /** Body bytes written before the answer ended. */
  bytesSent: number;
}

/**
 * Sends the headers at once, then `body` 4 bytes every 40 ms, and stops
 * sending once the answer has ended. Over HTTP/1.1 or h2c.
 */
async function trickle(
  baseUrl: string,
  httpVersion: "1.1" | "2",
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<Trickled> {
  const everyMs = 40;
  const bytesPerWrite = 4;
  const started = Date.now();
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const drip = (stream: { write(chunk: Uint8Array): unknown; end(): void }) => {
    timer = setInterval(() => {
      if (sent >= body.length) {
        clearInterval(timer);
        stream.end();
        return;
      }
      stream.write(body.subarray(sent, sent + bytesPerWrite));
      sent += bytesPerWrite;
    }, everyMs);
  };
  const collect = (
    stream: NodeJS.ReadableStream,
    done: (body: Uint8Array) => void,
  ) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.once("end", () => done(new Uint8Array(Buffer.concat(chunks))));
  };
  try {
    if (httpVersion === "1.1") {
      return await new Promise<Trickled>((resolve, reject) => {
        const req = http.request(`${baseUrl}${createTokenPath}`, {
          method: "POST",
          agent: false,
          headers: { ...headers, "content-length": String(body.length) },
        });
        req.once("error", reject);
        req.flushHeaders();
        drip(req);
        req.once("response", (res) =>
          collect(res, (answer) => {
            const bytesSent = sent;
            req.destroy();
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              trailers: res.trailers,
              body: answer,
              elapsedMs: Date.now() - started,
              bytesSent,
            });
          }),
        );
      });
    }
    const session = http2.connect(baseUrl);
    try {
      return await new Promise<Trickled>((resolve, reject) => {
        session.once("error", reject);
        const stream = session.request({
          ":method": "POST",
          ":path": createTokenPath,
          ...headers,
        });
        stream.once("error", reject);
        drip(stream);
        let status = 0;
        let responseHeaders: Trickled["headers"] = {};
        let trailers: Trickled["trailers"] = {};
        stream.once("response", (h) => {
          status = Number(h[":status"]);
          responseHeaders = h;
        });
        stream.once("trailers", (t) => {
          trailers = t;
        });
        collect(stream, (answer) => {
          const bytesSent = sent;
          stream.close(http2.constants.NGHTTP2_CANCEL);
          resolve({
            status,
            headers: responseHeaders,
            trailers,
            body: answer,
            elapsedMs: Date.now() - started,
            bytesSent,
          });
        });
      });
    } finally {
      session.close();
    }
  } finally {
    clearInterval(timer);
  }
}

/** A binary CreateToken request naming only a room: `room_name: lobby`. */
const lobbyProto = new Uint8Array([0x0a, 0x05, ...Buffer.from("lobby")]);

/** The value of one Prometheus sample of the service, 0 when absent. */
async function metric(service: TestService, sample: string): Promise<number> {
  const response = await h1Send(service.baseUrl, {
    method: "GET",
    path: "/metrics",
  });
  const line = Buffer.from(response.body)
    .toString()
    .split("\n")
    .find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

const canceledSample =
  'token_service_requests_total{method="CreateToken",protocol="connect",code="canceled"}';
const mintedSample = 'token_service_tokens_minted_total{policy="development"}';
const deadlineSample =
  'token_service_requests_total{method="CreateToken",protocol="connect",code="deadline_exceeded"}';
const callsSample = "token_service_requests_total";

describe("CreateToken deadlines while the body arrives", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service?.close());

  // The body would take about 2 s to arrive (50 writes, 40 ms apart).
  const timeoutMs = 200;

  it.each([true, false])(
    "ends a Connect call (binary: %s) with HTTP 504 deadline_exceeded",
    async (binary) => {
      const answer = await trickle(
        service.baseUrl,
        "1.1",
        {
          "content-type": binary ? "application/proto" : "application/json",
          "connect-timeout-ms": String(timeoutMs),
        },
        new Uint8Array(200).fill(0x20), // JSON whitespace; never complete
      );
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(timeoutMs);
      expect(answer.bytesSent).toBeLessThan(200);
      expect(answer.status).toBe(504);
      expect(answer.headers["content-type"]).toBe("application/json");
      expect(JSON.parse(Buffer.from(answer.body).toString())).toEqual({
        code: "deadline_exceeded",
        message: "the operation timed out",
      });
    },
  );

  it.each(["1.1", "2"] as const)(
    "ends a gRPC-Web call over HTTP/%s with grpc-status 4 in the trailer frame",
    async (httpVersion) => {
      const answer = await trickle(
        service.baseUrl,
        httpVersion,
        {
          "content-type": "application/grpc-web+proto",
          "grpc-timeout": `${timeoutMs}m`,
        },
        envelope(new Uint8Array(195)),
      );
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(timeoutMs);
      expect(answer.bytesSent).toBeLessThan(200);
      expect(answer.status).toBe(200);
      expect(answer.headers["content-type"]).toBe("application/grpc-web+proto");
      const frames = splitEnvelopes(answer.body);
      expect(frames.map((f) => f.flags)).toEqual([trailerFlag]);
      const trailers = parseTrailerBlock(
        frames[0]?.payload ?? new Uint8Array(),
      );
      expect(Object.fromEntries(trailers)).toEqual({
        "grpc-status": "4",
        "grpc-message": "the%20operation%20timed%20out",
      });
    },
  );

  it.each(["2", "1.1"] as const)(
    "ends a gRPC call over HTTP/%s with grpc-status 4 in the trailers",
    async (httpVersion) => {
      const answer = await trickle(
        service.baseUrl,
        httpVersion,
        {
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": `${timeoutMs}m`,
        },
        envelope(new Uint8Array(195)),
      );
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(timeoutMs);
      expect(answer.bytesSent).toBeLessThan(200);
      expect(answer.status).toBe(200);
      expect(answer.headers["content-type"]).toBe("application/grpc+proto");
      expect(answer.body).toEqual(new Uint8Array(0));
      expect(answer.trailers).toMatchObject({
        "grpc-status": "4",
        "grpc-message": "the%20operation%20timed%20out",
      });
    },
  );

  it("keeps serving after a deadline passed", async () => {
    const response = await createClient(
      TokenService,
      createConnectTransport({ baseUrl: service.baseUrl, httpVersion: "1.1" }),
    ).createToken(request, { timeoutMs: 2000 });
    expect(response.participantIdentity).toBe("alice");
  });

  // KNOWN BUG: once the deadline has answered the call, the unary path
  // goes on reading the body (HTTP/2, or HTTP/1.1 with keep-alive) and
  // mints a token when it is complete: the caller never gets it, yet it
  // is audited as minted and counted in tokens_minted_total. It should
  // stop reading and mint nothing.
  it("mints nothing for a call whose deadline has passed", async () => {
    const fresh = await startTestService();
    const session = http2.connect(fresh.baseUrl);
    try {
      const body = lobbyProto;
      const stream = session.request({
        ":method": "POST",
        ":path": createTokenPath,
        "content-type": "application/proto",
        "connect-timeout-ms": "100",
      });
      stream.write(body.subarray(0, 2));
      const [headers] = await once(stream, "response");
      expect(headers[":status"]).toBe(504);
      // A client that does not stop sending: the rest of the body.
      stream.end(body.subarray(2));
      stream.resume();
      await once(stream, "close");
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await metric(fresh, mintedSample)).toBe(0);
    } finally {
      session.close();
      await fresh.close();
    }
  });
});

describe("CreateToken when the client goes away mid-body", () => {
  let service: TestService;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    service = await startTestService();
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await service?.close();
  });

  /** Polls until `sample` reaches `value`, for up to 2 s. */
  async function waitForMetric(sample: string, value: number) {
    for (let i = 0; i < 100 && (await metric(service, sample)) < value; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return metric(service, sample);
  }

  /** Every CreateToken call the service has seen end, whatever its code. */
  async function callsEnded(target: TestService): Promise<number> {
    const response = await h1Send(target.baseUrl, {
      method: "GET",
      path: "/metrics",
    });
    return Buffer.from(response.body)
      .toString()
      .split("\n")
      .filter((l) => l.startsWith(`${callsSample}{method="CreateToken"`))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  }

  /** The CreateToken calls this suite has started on `service`. */
  let started = 0;

  /** Whitespace: a body that is never a complete request. */
  const pad = new Uint8Array(100).fill(0x20);

  /** Sends headers and part of a body over HTTP/1.1, then cuts the socket. */
  async function abandonHttp1(headers: Record<string, string>) {
    started++;
    const req = http.request(`${service.baseUrl}${createTokenPath}`, {
      method: "POST",
      agent: false,
      headers: { ...headers, "content-length": "1000" },
    });
    req.on("error", () => {});
    req.write(Buffer.alloc(100, 0x20));
    await new Promise((resolve) => setTimeout(resolve, 50));
    req.destroy();
  }

  /** Sends headers and `part` of a body over h2c, then resets the stream. */
  async function abandonHttp2(
    headers: Record<string, string>,
    part: Uint8Array,
    target: TestService = service,
  ) {
    if (target === service) started++;
    const session = http2.connect(target.baseUrl);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": createTokenPath,
      ...headers,
    });
    stream.on("error", () => {});
    stream.write(part);
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((resolve) => setTimeout(resolve, 20));
    session.close();
  }

  it("ends the call as canceled when an HTTP/1.1 client disconnects", async () => {
    const before = await metric(service, canceledSample);
    await abandonHttp1({ "content-type": "application/json" });
    expect(await waitForMetric(canceledSample, before + 1)).toBe(before + 1);
    expect(unhandled).toEqual([]);
  });

  it("ends the call once, as canceled, with a deadline pending", async () => {
    const before = await metric(service, canceledSample);
    await abandonHttp1({
      "content-type": "application/json",
      "connect-timeout-ms": "150",
    });
    expect(await waitForMetric(canceledSample, before + 1)).toBe(before + 1);
    // The deadline's timer does not fire into the finished call.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await metric(service, deadlineSample)).toBe(0);
    expect(await callsEnded(service)).toBe(started);
    expect(unhandled).toEqual([]);
  });

  it("ends the call when an HTTP/2 client resets the stream", async () => {
    const before = await callsEnded(service);
    await abandonHttp2({ "content-type": "application/json" }, pad);
    for (let i = 0; i < 100 && (await callsEnded(service)) === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await callsEnded(service)).toBe(before + 1);
    expect(unhandled).toEqual([]);
  });

  // KNOWN BUG (shared with connect-node): Node.js's HTTP/2 compatibility
  // layer emits 'end' on the request before 'aborted' when the client
  // resets the stream (RST_STREAM CANCEL), so the unary path takes the
  // bytes received so far for the whole body and serves them: a Connect
  // binary request cut after its first field mints a token for that
  // prefix (a random identity here). It should end as canceled and mint
  // nothing, as it does over HTTP/1.1.
  it.fails("does not serve the truncated body of a reset HTTP/2 stream", async () => {
    const fresh = await startTestService();
    try {
      const prefix = lobbyProto; // a whole message on its own
      await abandonHttp2(
        { "content-type": "application/proto" },
        prefix,
        fresh,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await metric(fresh, mintedSample)).toBe(0);
      expect(await metric(fresh, canceledSample)).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it("keeps serving every protocol afterwards", async () => {
    started += clientKinds.length;
    for (const kind of clientKinds) {
      const response = await createClient(
        TokenService,
        kind.transport(service.baseUrl, {}),
      ).createToken(request);
      expect(response.participantIdentity).toBe("alice");
    }
    expect(unhandled).toEqual([]);
  });
});

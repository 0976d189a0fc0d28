import { gzipSync } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateTokenRequestSchema,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import { defaultLimits } from "../server/config.js";
import { expectConnectError } from "./support/errors.js";
import {
  envelope,
  h2cRequest,
  parseTrailerBlock,
  pseudoRandomBytes,
  splitEnvelopes,
  trailerFlag,
} from "./support/framing.js";
import { createTokenPath, type RawResponse, sendRaw } from "./support/http.js";
import { startTestService, type TestService } from "./support/service.js";

/** 64 bytes that are not a CreateTokenRequest (checked below). */
const garbage = pseudoRandomBytes(64, 0x5eed);
/** A JSON body of about 600 KiB, over the default 256 KiB request limit. */
const hugeJson = JSON.stringify({
  participant_metadata: "x".repeat(600 * 1024),
});
const json = { "content-type": "application/json" };

interface Case {
  what: string;
  send(baseUrl: string): Promise<RawResponse>;
  status: number;
  /** The Connect error code of the JSON body; none for an empty body. */
  code?: string;
}

const cases: Case[] = [
  {
    what: "malformed JSON",
    send: (url) => sendRaw(url, { headers: json, body: '{"room_name":' }),
    status: 400,
    code: "invalid_argument",
  },
  {
    what: "a number as an attribute value",
    send: (url) =>
      sendRaw(url, {
        headers: json,
        body: '{"participant_attributes":{"count":1}}',
      }),
    status: 400,
    code: "invalid_argument",
  },
  {
    what: "random bytes as Connect binary",
    send: (url) =>
      sendRaw(url, {
        headers: { "content-type": "application/proto" },
        body: garbage,
      }),
    status: 400,
    code: "invalid_argument",
  },
  {
    what: "a body over the request limit",
    send: (url) => sendRaw(url, { headers: json, body: hugeJson }),
    status: 429,
    code: "resource_exhausted",
  },
  {
    what: "a chunked body over the request limit",
    send: (url) =>
      sendRaw(url, { headers: json, body: hugeJson, chunked: true }),
    status: 429,
    code: "resource_exhausted",
  },
  {
    what: "a gzip body over the request limit once decompressed",
    send: (url) =>
      sendRaw(url, {
        headers: { ...json, "content-encoding": "gzip" },
        body: gzipSync(hugeJson),
      }),
    status: 429,
    code: "resource_exhausted",
  },
  {
    what: "a text/plain body",
    send: (url) =>
      sendRaw(url, { headers: { "content-type": "text/plain" }, body: "{}" }),
    status: 415,
  },
  {
    // gRPC-Web's base64 "text" mode is not served (connect-es refuses it
    // too); it must be refused as such, not decoded as if it were binary.
    what: "a gRPC-Web text body",
    send: (url) =>
      sendRaw(url, {
        headers: { "content-type": "application/grpc-web-text" },
        body: Buffer.from(envelope(new Uint8Array())).toString("base64"),
      }),
    status: 415,
  },
  {
    what: "an unknown method",
    send: (url) =>
      sendRaw(url, {
        headers: json,
        body: "{}",
        path: "/tokenservice.v1.TokenService/DeleteEverything",
      }),
    status: 404,
  },
  {
    // CreateToken has side effects, so the Connect protocol allows only
    // POST; connect-node answers 405 Method Not Allowed, with no body.
    what: "a GET",
    send: (url) => sendRaw(url, { method: "GET" }),
    status: 405,
  },
];

describe("TokenService.CreateToken with malformed requests", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());

  it("uses garbage that really is not a valid request", () => {
    expect(() => fromBinary(CreateTokenRequestSchema, garbage)).toThrow();
    expect(gzipSync(hugeJson).length).toBeLessThan(defaultLimits.requestBytes);
    expect(hugeJson.length).toBeGreaterThan(defaultLimits.requestBytes);
  });

  it.each(cases)(
    "answers $what with HTTP $status and no token",
    async ({ send, status, code }) => {
      const response = await send(service.baseUrl);
      const text = new TextDecoder().decode(response.body);
      expect(response.status).toBe(status);
      expect(text).not.toMatch(/participant_?token/i);
      if (code === undefined) {
        expect(text).toBe("");
      } else {
        expect(response.headers.get("content-type")).toBe("application/json");
        expect(JSON.parse(text).code).toBe(code);
      }
    },
  );

  it("answers random bytes over gRPC with grpc-status 3", async () => {
    const response = await h2cRequest(
      service.baseUrl,
      {
        ":path": createTokenPath,
        "content-type": "application/grpc",
        te: "trailers",
      },
      envelope(garbage),
    );
    expect(response.headers[":status"]).toBe(200);
    expect(response.trailers["grpc-status"]).toBe("3");
    expect(splitEnvelopes(response.body)).toEqual([]);
  });

  it("answers random bytes over gRPC-Web with grpc-status 3", async () => {
    const response = await sendRaw(service.baseUrl, {
      headers: { "content-type": "application/grpc-web+proto" },
      body: envelope(garbage),
    });
    expect(response.status).toBe(200);
    const envelopes = splitEnvelopes(response.body);
    expect(envelopes.map((e) => e.flags)).toEqual([trailerFlag]);
    const trailers = parseTrailerBlock(
      envelopes[0]?.payload ?? new Uint8Array(),
    );
    expect(trailers.get("grpc-status")).toBe("3");
  });

  it("rejects a too-large gzip request with ResourceExhausted", async () => {
    const client = createClient(
      TokenService,
      createConnectTransport({
        baseUrl: service.baseUrl,
        httpVersion: "1.1",
        sendCompression: compressionGzip,
      }),
    );
    await expectConnectError(
      client.createToken({ participantMetadata: "x".repeat(600 * 1024) }),
      Code.ResourceExhausted,
    );
  });

  it("rejects a too-large gRPC request with ResourceExhausted", async () => {
    const client = createClient(
      TokenService,
      createGrpcTransport({ baseUrl: service.baseUrl }),
    );
    await expectConnectError(
      client.createToken({ participantMetadata: "x".repeat(600 * 1024) }),
      Code.ResourceExhausted,
    );
  });

  it("applies a configured request limit instead of the default", async () => {
    const small = await startTestService({
      limits: { ...defaultLimits, requestBytes: 4096 },
    });
    try {
      const body = { participant_metadata: "x".repeat(5000) };
      const accepted = await sendRaw(service.baseUrl, {
        headers: json,
        body: JSON.stringify(body),
      });
      expect(accepted.status).toBe(200);
      const refused = await sendRaw(small.baseUrl, {
        headers: json,
        body: JSON.stringify(body),
      });
      expect(refused.status).toBe(429);
      const text = new TextDecoder().decode(refused.body);
      expect(JSON.parse(text).code).toBe("resource_exhausted");
    } finally {
      await small.close();
    }
  });
});

import * as http from "node:http";
import * as http2 from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  type CreateTokenResponse,
  CreateTokenResponseSchema,
} from "../../gen/tokenservice/v1/token_service_pb.js";
import { createTokenPath } from "./http.js";
import { contentTypeOf, type Lane, lanes as wireLanes } from "./wire.js";

/**
 * Raw CreateToken calls for hostile-input tests: any bytes, any headers,
 * over HTTP/1.1 (keep-alive agent) or h2c (one shared session), and a
 * strict reader that says whether the reply is a well-formed Connect,
 * gRPC or gRPC-Web answer.
 */

export { contentTypeOf, type Lane };

/**
 * Every protocol, encoding and HTTP version the service serves: the
 * differential tests' lanes without gRPC over HTTP/1.1, and with gRPC-Web
 * JSON over h2c.
 */
export const lanes: Lane[] = [
  ...wireLanes.filter((lane) => lane.name !== "gRPC proto/1.1"),
  {
    name: "gRPC-Web JSON/h2c",
    protocol: "grpc_web",
    binary: false,
    http: "2",
  },
];

/** The names of a lane's request compression headers: [encoding, accept]. */
export function encodingHeaderOf(lane: Lane): string {
  return lane.protocol === "connect" ? "content-encoding" : "grpc-encoding";
}

/** Frames one message as a gRPC or gRPC-Web length-prefixed envelope. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const framed = Buffer.alloc(5 + payload.length);
  framed[0] = flags;
  framed.writeUInt32BE(payload.length, 1);
  framed.set(payload, 5);
  return framed;
}

/** A lane's request body for one message: itself, or one envelope. */
export function bodyOf(lane: Lane, message: Uint8Array, flags = 0): Buffer {
  return lane.protocol === "connect"
    ? Buffer.from(message)
    : envelope(message, flags);
}

/** A reply as it came off the wire. */
export interface RawReply {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
}

/** One request: headers as given (plus `content-type` unless set). */
export interface RawCall {
  headers?: Record<string, string | undefined>;
  body: Uint8Array;
}

/**
 * Sends raw calls to one service and reads the whole reply. HTTP/1.1
 * calls share a keep-alive agent; h2c calls share one session, replaced
 * when the server closes it. Every call fails after `timeoutMs`: a
 * service that never answers is a failure, not a hang.
 */
export class RawClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private session: http2.ClientHttp2Session | undefined;

  constructor(
    readonly baseUrl: string,
    readonly timeoutMs = 10_000,
  ) {}

  send(lane: Lane, call: RawCall): Promise<RawReply> {
    const headers: Record<string, string> = {};
    const given = call.headers ?? {};
    if (!("content-type" in given)) {
      headers["content-type"] = contentTypeOf(lane);
    }
    if (lane.protocol === "grpc") headers.te = "trailers";
    for (const [name, value] of Object.entries(given)) {
      if (value !== undefined) headers[name] = value;
    }
    return lane.http === "2"
      ? this.sendH2(headers, call.body)
      : this.sendH1(headers, call.body);
  }

  close(): void {
    this.agent.destroy();
    this.session?.destroy();
  }

  private sendH1(
    headers: Record<string, string>,
    body: Uint8Array,
  ): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.baseUrl}${createTokenPath}`, {
        method: "POST",
        agent: this.agent,
        headers: { ...headers, "content-length": String(body.length) },
        timeout: this.timeoutMs,
      });
      req.once("timeout", () => {
        req.destroy(new Error(`no answer within ${this.timeoutMs} ms`));
      });
      req.once("error", reject);
      req.once("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.once("error", reject);
        res.once("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: flatten(res.headers),
            trailers: flatten(res.trailers),
            body: Buffer.concat(chunks),
          }),
        );
      });
      req.end(body);
    });
  }

  private h2Session(): http2.ClientHttp2Session {
    if (
      this.session === undefined ||
      this.session.closed ||
      this.session.destroyed
    ) {
      // Node.js's default of 10 MB of session memory is the client's own
      // limit: a bigger body would have this client reset its own streams
      // (ENHANCE_YOUR_CALM) and blame the server.
      const session = http2.connect(this.baseUrl, { maxSessionMemory: 1024 });
      session.on("error", () => {});
      session.on("goaway", () => {
        if (this.session === session) this.session = undefined;
      });
      this.session = session;
    }
    return this.session;
  }

  private sendH2(
    headers: Record<string, string>,
    body: Uint8Array,
  ): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      const stream = this.h2Session().request({
        ":method": "POST",
        ":path": createTokenPath,
        ...headers,
      });
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      let status = 0;
      let responseHeaders: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      stream.once("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = flatten(h);
      });
      stream.once("trailers", (t) => {
        trailers = flatten(t);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      stream.once("end", () => {
        clearTimeout(timer);
        resolve({
          status,
          headers: responseHeaders,
          trailers,
          body: Buffer.concat(chunks),
        });
      });
      stream.end(body);
    });
  }
}

function flatten(
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders,
): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    flat[name] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return flat;
}

/** What a well-formed reply says happened. */
export type Verdict =
  | { kind: "ok"; protocol: Lane["protocol"]; response: CreateTokenResponse }
  | {
      kind: "error";
      protocol: Lane["protocol"];
      code: string;
      message: string;
      status: number;
    }
  /** A bare HTTP refusal with no RPC status (415, 405, 431, ...). */
  | { kind: "http"; status: number };

const grpcCodes = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** The HTTP status of each Connect error code (Connect protocol spec). */
const connectStatus: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

/** Thrown for a reply that no client of the protocol could read. */
export class MalformedReply extends Error {}

function malformed(why: string, reply: RawReply): never {
  const body = reply.body.subarray(0, 200).toString("latin1");
  throw new MalformedReply(
    `${why} (HTTP ${reply.status}, headers ${JSON.stringify(reply.headers)}, ` +
      `trailers ${JSON.stringify(reply.trailers)}, body ${JSON.stringify(body)})`,
  );
}

function decompress(encoding: string | undefined, bytes: Buffer): Buffer {
  if (encoding === undefined || encoding === "identity") return bytes;
  if (encoding === "gzip") return gunzipSync(bytes);
  if (encoding === "br") return brotliDecompressSync(bytes);
  throw new Error(`unknown response encoding ${encoding}`);
}

/**
 * Reads a reply strictly, in the protocol its content type names (so it
 * also reads replies to requests whose content type was tampered with).
 *
 * @throws MalformedReply when the reply is not a well-formed answer of
 * that protocol: a status that does not match the error code, a body that
 * does not parse, a missing status, a success without a message.
 */
export function readReply(reply: RawReply): Verdict {
  const contentType = reply.headers["content-type"] ?? "";
  const grpcWeb = /^application\/grpc-web(\+(proto|json))?$/.exec(contentType);
  const grpc = /^application\/grpc(\+(proto|json))?$/.exec(contentType);
  if (grpcWeb || grpc) {
    const protocol = grpcWeb ? "grpc_web" : "grpc";
    const binary = (grpcWeb ?? grpc)?.[2] !== "json";
    if (reply.status !== 200) malformed("gRPC reply not HTTP 200", reply);
    let trailers = reply.trailers;
    let message: Buffer | undefined;
    const body = reply.body;
    for (let at = 0; at < body.length; ) {
      if (at + 5 > body.length) malformed("truncated envelope", reply);
      const flags = body[at] as number;
      const end = at + 5 + body.readUInt32BE(at + 1);
      if (end > body.length) malformed("truncated envelope", reply);
      let payload = body.subarray(at + 5, end);
      if (flags & 1) {
        payload = decompress(reply.headers["grpc-encoding"], payload);
      }
      if (flags & 0x80) {
        if (protocol !== "grpc_web") malformed("trailer frame in gRPC", reply);
        trailers = parseTrailerBlock(payload);
      } else {
        if (message !== undefined) malformed("two messages", reply);
        message = payload;
      }
      at = end;
    }
    const status =
      trailers["grpc-status"] ??
      (body.length === 0 ? reply.headers["grpc-status"] : undefined);
    if (status === undefined || !/^\d+$/.test(status)) {
      malformed("no grpc-status", reply);
    }
    const code = grpcCodes[Number(status)];
    if (code === undefined) malformed(`unknown grpc-status ${status}`, reply);
    if (code === "ok") {
      if (message === undefined) malformed("status 0 without message", reply);
      return { kind: "ok", protocol, response: decode(binary, message) };
    }
    if (message !== undefined) malformed("error with a message", reply);
    const raw = trailers["grpc-message"] ?? reply.headers["grpc-message"];
    return {
      kind: "error",
      protocol,
      code,
      message: raw === undefined ? "" : decodeURIComponent(raw),
      status: reply.status,
    };
  }
  if (reply.status === 200) {
    const binary = contentType === "application/proto";
    if (!binary && contentType !== "application/json") {
      malformed("Connect success with a bad content type", reply);
    }
    const body = decompress(reply.headers["content-encoding"], reply.body);
    return {
      kind: "ok",
      protocol: "connect",
      response: decode(binary, body),
    };
  }
  if (reply.body.length === 0) return { kind: "http", status: reply.status };
  if (!contentType.startsWith("application/json")) {
    malformed("Connect error body is not JSON", reply);
  }
  let json: { code?: unknown; message?: unknown };
  try {
    json = JSON.parse(reply.body.toString("utf8"));
  } catch {
    malformed("Connect error body does not parse", reply);
  }
  if (typeof json.code !== "string" || !(json.code in connectStatus)) {
    malformed("Connect error without a known code", reply);
  }
  if (connectStatus[json.code] !== reply.status) {
    malformed(`HTTP status does not match code ${json.code}`, reply);
  }
  return {
    kind: "error",
    protocol: "connect",
    code: json.code,
    message: typeof json.message === "string" ? json.message : "",
    status: reply.status,
  };
}

function decode(binary: boolean, bytes: Uint8Array): CreateTokenResponse {
  return binary
    ? fromBinary(CreateTokenResponseSchema, bytes)
    : fromJsonString(CreateTokenResponseSchema, Buffer.from(bytes).toString());
}

function parseTrailerBlock(payload: Uint8Array): Record<string, string> {
  const trailers: Record<string, string> = {};
  for (const line of Buffer.from(payload).toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      trailers[line.slice(0, colon).trim().toLowerCase()] = line
        .slice(colon + 1)
        .trim();
    }
  }
  return trailers;
}

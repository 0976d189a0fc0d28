import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { envelope, parseTrailerBlock, splitEnvelopes } from "./framing.js";
import {
  h1Send,
  h2Send,
  headerValue,
  type WireRequest,
  type WireResponse,
} from "./raw-http.js";

/** One way of carrying a unary call: protocol, encoding, HTTP version. */
export interface Lane {
  name: string;
  protocol: "connect" | "grpc" | "grpc_web";
  binary: boolean;
  http: "1.1" | "2";
}

/** Every protocol, encoding and HTTP version a client may combine. */
export const lanes: Lane[] = [
  { name: "Connect JSON/1.1", protocol: "connect", binary: false, http: "1.1" },
  { name: "Connect proto/1.1", protocol: "connect", binary: true, http: "1.1" },
  { name: "Connect JSON/h2c", protocol: "connect", binary: false, http: "2" },
  { name: "Connect proto/h2c", protocol: "connect", binary: true, http: "2" },
  { name: "gRPC proto/h2c", protocol: "grpc", binary: true, http: "2" },
  { name: "gRPC JSON/h2c", protocol: "grpc", binary: false, http: "2" },
  // gRPC needs HTTP/2, but the server answers it over HTTP/1.1 too.
  { name: "gRPC proto/1.1", protocol: "grpc", binary: true, http: "1.1" },
  {
    name: "gRPC-Web proto/1.1",
    protocol: "grpc_web",
    binary: true,
    http: "1.1",
  },
  {
    name: "gRPC-Web JSON/1.1",
    protocol: "grpc_web",
    binary: false,
    http: "1.1",
  },
  { name: "gRPC-Web proto/h2c", protocol: "grpc_web", binary: true, http: "2" },
];

/** The request content type of a lane. */
export function contentTypeOf(lane: Lane): string {
  const subtype = lane.binary ? "proto" : "json";
  switch (lane.protocol) {
    case "connect":
      return `application/${subtype}`;
    case "grpc":
      return `application/grpc+${subtype}`;
    case "grpc_web":
      return `application/grpc-web+${subtype}`;
  }
}

/** The names of the lane's compression headers: [encoding, accept]. */
export function compressionHeaders(lane: Lane): [string, string] {
  return lane.protocol === "connect"
    ? ["content-encoding", "accept-encoding"]
    : ["grpc-encoding", "grpc-accept-encoding"];
}

/**
 * The request body of a lane for one serialized message: the message
 * itself for Connect, one envelope (with `flags`) otherwise.
 */
export function bodyOf(lane: Lane, message: Uint8Array, flags = 0) {
  return lane.protocol === "connect" ? message : envelope(message, flags);
}

/**
 * Sends `request` in `lane`: over HTTP/1.1 or h2c, with the lane's content
 * type unless `request.headers` names one, and `te: trailers` for gRPC.
 */
export function sendInLane(
  baseUrl: string,
  lane: Lane,
  request: WireRequest,
): Promise<WireResponse> {
  const headers: Record<string, string> = {
    "content-type": contentTypeOf(lane),
    ...(lane.protocol === "grpc" && { te: "trailers" }),
    ...request.headers,
  };
  const send = lane.http === "2" ? h2Send : h1Send;
  return send(baseUrl, { ...request, headers });
}

/** What a response says happened. */
export interface Outcome {
  /** `ok`, a Connect code name, or `http_<status>` without an RPC status. */
  code: string;
  message?: string;
  /** The response message's bytes (decompressed), when `ok`. */
  message_bytes?: Uint8Array;
  /** gRPC and gRPC-Web: the trailers; Connect: the headers. */
  metadata: Headers;
}

/** `invalid_argument` for `Code.InvalidArgument`. */
export function codeName(code: Code): string {
  return Code[code].replace(
    /[A-Z]/g,
    (c, i) => (i ? "_" : "") + c.toLowerCase(),
  );
}

/** Decompresses `bytes` with the named encoding, if any. */
export function decompress(name: string | undefined, bytes: Uint8Array) {
  if (name === undefined || name === "identity") return bytes;
  if (name === "gzip") return new Uint8Array(gunzipSync(bytes));
  if (name === "br") return new Uint8Array(brotliDecompressSync(bytes));
  throw new Error(`unknown encoding ${name}`);
}

/** Reads the RPC outcome of a response in `lane`'s framing. */
export function outcomeOf(lane: Lane, response: WireResponse): Outcome {
  const headers = new Headers(response.headers);
  if (lane.protocol === "connect") {
    const body = decompress(
      headerValue(response.headers, "content-encoding"),
      response.body,
    );
    if (response.status === 200) {
      return { code: "ok", message_bytes: body, metadata: headers };
    }
    if (body.length === 0) {
      return { code: `http_${response.status}`, metadata: headers };
    }
    const json = JSON.parse(new TextDecoder().decode(body));
    return { code: json.code, message: json.message, metadata: headers };
  }
  if (response.status !== 200) {
    return { code: `http_${response.status}`, metadata: headers };
  }
  const encoding = headerValue(response.headers, "grpc-encoding");
  let trailers = new Headers(response.trailers);
  let message_bytes: Uint8Array | undefined;
  for (const { flags, payload } of splitEnvelopes(response.body)) {
    const data = flags & 1 ? decompress(encoding, payload) : payload;
    if (flags & 0x80) trailers = parseTrailerBlock(data);
    else message_bytes = data;
  }
  const status = trailers.get("grpc-status") ?? headers.get("grpc-status");
  const raw = trailers.get("grpc-message") ?? headers.get("grpc-message");
  const code = status === "0" ? "ok" : codeName(Number(status) as Code);
  return {
    code,
    ...(raw !== null && { message: decodeURIComponent(raw) }),
    ...(message_bytes !== undefined && { message_bytes }),
    metadata: trailers,
  };
}

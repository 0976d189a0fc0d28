import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Compression,
  compressionNegotiate,
} from "@connectrpc/connect/protocol";
import {
  contentTypeUnaryRegExp,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
import {
  parseContentType as parseGrpcContentType,
  parseTimeout as parseGrpcTimeout,
} from "@connectrpc/connect/protocol-grpc";
import { parseContentType as parseGrpcWebContentType } from "@connectrpc/connect/protocol-grpc-web";
import type { NodeRequest } from "../node-handler.js";

/** The RPC protocols, told apart by the request's content type. */
export type RpcProtocol = "connect" | "grpc" | "grpc_web";

/** How one unary request is framed and encoded. */
export interface RequestFraming {
  protocol: RpcProtocol;
  /** Protobuf binary, else JSON. */
  binary: boolean;
}

/**
 * The protocol and encoding of a unary request, from its `content-type`,
 * with the patterns connect-es itself uses; undefined when no protocol
 * serves that content type (HTTP 415).
 */
export function negotiateFraming(
  contentType: string | undefined,
): RequestFraming | undefined {
  if (contentType === undefined) return undefined;
  if (contentTypeUnaryRegExp.test(contentType)) {
    return { protocol: "connect", binary: !/json/i.test(contentType) };
  }
  const grpc = parseGrpcContentType(contentType);
  if (grpc) return { protocol: "grpc", binary: grpc.binary };
  // gRPC-Web's base64 "text" mode is refused, as connect-es refuses it.
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb && !grpcWeb.text) {
    return { protocol: "grpc_web", binary: grpcWeb.binary };
  }
  return undefined;
}

/** Compression negotiated for one request and its response. */
export interface NegotiatedCompression {
  request: Compression | null;
  response: Compression | null;
  /** `unimplemented`, for an encoding the server lacks. */
  error?: ConnectError;
}

/**
 * Negotiates compression from the protocol's headers, as connect-es does:
 * an encoding the server lacks is an `error`, and the response is still
 * compressed as the client accepts.
 */
export function negotiateCompression(
  req: NodeRequest,
  protocol: RpcProtocol,
  available: Compression[],
): NegotiatedCompression {
  const [encoding, accept] =
    protocol === "connect"
      ? ["content-encoding", "accept-encoding"]
      : ["grpc-encoding", "grpc-accept-encoding"];
  const negotiated = compressionNegotiate(
    available,
    header(req, encoding),
    header(req, accept),
    accept === "accept-encoding" ? "Accept-Encoding" : "Grpc-Accept-Encoding",
  );
  return negotiated;
}

/**
 * The call's timeout in milliseconds from `connect-timeout-ms` or
 * `grpc-timeout`: none when the client set none, and an `invalid_argument`
 * error for a malformed value, to be reported in its turn.
 */
export function parseDeadline(
  req: NodeRequest,
  protocol: RpcProtocol,
): { timeoutMs?: number; error?: ConnectError } {
  return protocol === "connect"
    ? parseConnectTimeout(
        header(req, "connect-timeout-ms"),
        Number.MAX_SAFE_INTEGER,
      )
    : parseGrpcTimeout(header(req, "grpc-timeout"), Number.MAX_SAFE_INTEGER);
}

/**
 * The one message of a gRPC or gRPC-Web unary request body.
 *
 * @throws ConnectError `resource_exhausted` for a message over
 * `readMaxBytes`, `invalid_argument` for an incomplete envelope, and
 * `unimplemented` for no message or more than one, as connect-es does.
 */
export function unwrapEnvelope(
  body: Uint8Array,
  readMaxBytes: number,
): {
  compressed: boolean;
  data: Uint8Array;
} {
  const messages: { flags: number; data: Uint8Array }[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (body.length - offset < 5) throw incompleteEnvelope();
    const flags = body[offset] as number;
    const length = new DataView(
      body.buffer,
      body.byteOffset + offset + 1,
      4,
    ).getUint32(0);
    if (length > readMaxBytes) {
      throw new ConnectError(
        `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    const end = offset + 5 + length;
    if (end > body.length) throw incompleteEnvelope();
    messages.push({ flags, data: body.subarray(offset + 5, end) });
    offset = end;
  }
  const [first, extra] = messages;
  if (first === undefined) {
    throw new ConnectError(
      "protocol error: missing input message for unary method",
      Code.Unimplemented,
    );
  }
  if (extra !== undefined) {
    throw new ConnectError(
      "protocol error: received extra input message for unary method",
      Code.Unimplemented,
    );
  }
  return { compressed: (first.flags & 0b1) === 0b1, data: first.data };
}

function incompleteEnvelope(): ConnectError {
  return new ConnectError(
    "protocol error: incomplete envelope",
    Code.InvalidArgument,
  );
}

function header(req: NodeRequest, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

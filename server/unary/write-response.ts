import { ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import type { NodeResponse } from "../node-handler.js";
import type { RequestFraming } from "./protocol.js";

/** Bodies smaller than this are sent uncompressed, as connect-es does. */
export const compressMinBytes = 1024;

const contentTypes = {
  connect: ["application/json", "application/proto"],
  grpc: ["application/grpc+json", "application/grpc+proto"],
  grpc_web: ["application/grpc-web+json", "application/grpc-web+proto"],
} as const;

const grpcOkTrailer = { "grpc-status": "0" };
const grpcWebOkTrailer = trailerEnvelope({ "grpc-status": "0" });

/**
 * Writes a successful unary response in the request's framing, compressing
 * the message when the client accepts it and it is large enough. A JSON
 * message may come as a string: a Connect response then goes out with its
 * headers in one write.
 */
export async function writeMessage(
  res: NodeResponse,
  framing: RequestFraming,
  compression: Compression | null,
  message: Uint8Array | string,
): Promise<void> {
  const contentType = contentTypes[framing.protocol][framing.binary ? 1 : 0];
  const size =
    typeof message === "string" ? Buffer.byteLength(message) : message.length;
  const compress = compression !== null && size >= compressMinBytes;
  if (framing.protocol === "connect") {
    if (compress) {
      const payload = await compression.compress(bytesOf(message));
      res.writeHead(200, {
        "content-type": contentType,
        "content-encoding": compression.name,
        "content-length": payload.length,
      });
      res.end(payload);
      return;
    }
    res.writeHead(200, {
      "content-type": contentType,
      "content-length": size,
    });
    res.end(message);
    return;
  }
  const bytes = bytesOf(message);
  const payload = compress ? await compression.compress(bytes) : bytes;
  const headers: Record<string, string> = { "content-type": contentType };
  if (compression !== null) headers["grpc-encoding"] = compression.name;
  const envelope = encodeEnvelope(compress ? 1 : 0, payload);
  res.writeHead(200, headers);
  if (framing.protocol === "grpc") {
    // The union of the two response types has no callable write().
    (res as { write(chunk: Uint8Array): boolean }).write(envelope);
    res.addTrailers(grpcOkTrailer);
    res.end();
    return;
  }
  res.end(Buffer.concat([envelope, grpcWebOkTrailer]));
}

function bytesOf(message: Uint8Array | string): Uint8Array {
  return typeof message === "string" ? Buffer.from(message) : message;
}

/**
 * Writes an error in the request's framing: a JSON body with the matching
 * HTTP status for Connect, trailers for gRPC, a trailer frame for gRPC-Web.
 * The error's metadata become headers (Connect) or trailers (gRPC), and a
 * large error body or trailer frame is compressed, as in connect-es.
 */
export async function writeError(
  res: NodeResponse,
  framing: RequestFraming,
  thrown: ConnectError,
  compression: Compression | null,
): Promise<void> {
  const error = wellFormed(thrown);
  if (framing.protocol === "connect") {
    let body: Uint8Array = errorToJsonBytes(error, {});
    const headers: Record<string, string | number> = {};
    error.metadata.forEach((value, key) => {
      headers[key] = value;
    });
    headers["content-type"] = "application/json";
    if (compression !== null && body.length >= compressMinBytes) {
      body = await compression.compress(body);
      headers["content-encoding"] = compression.name;
    }
    headers["content-length"] = body.length;
    res.writeHead(codeToHttpStatus(error.code), headers);
    res.end(body);
    return;
  }
  const trailer: Record<string, string> = {};
  setTrailerStatus(new Headers(), error).forEach((value, key) => {
    trailer[key] = value;
  });
  const headers: Record<string, string> = {
    "content-type": contentTypes[framing.protocol][framing.binary ? 1 : 0],
  };
  if (compression !== null) headers["grpc-encoding"] = compression.name;
  res.writeHead(200, headers);
  if (framing.protocol === "grpc") {
    res.addTrailers(trailer);
    res.end();
    return;
  }
  const frame = trailerSerialize(new Headers(trailer));
  if (compression !== null && frame.length >= compressMinBytes) {
    res.end(encodeEnvelope(0x81, await compression.compress(frame)));
    return;
  }
  res.end(encodeEnvelope(0x80, frame));
}

/**
 * The error with a message that is valid Unicode: a parser's message may
 * quote half of a surrogate pair from the request, which gRPC's
 * percent-encoding of `grpc-message` cannot encode.
 */
function wellFormed(error: ConnectError): ConnectError {
  const message = error.rawMessage;
  // A lone surrogate becomes U+FFFD, as String.prototype.toWellFormed does.
  const fixed = message.replace(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    "\uFFFD",
  );
  if (fixed === message) return error;
  return new ConnectError(fixed, error.code, error.metadata);
}

function trailerEnvelope(trailer: Record<string, string>): Buffer {
  return encodeEnvelope(0x80, trailerSerialize(new Headers(trailer)));
}

function encodeEnvelope(flags: number, data: Uint8Array): Buffer {
  const envelope = Buffer.allocUnsafe(5 + data.length);
  envelope[0] = flags;
  envelope.writeUInt32BE(data.length, 1);
  envelope.set(data, 5);
  return envelope;
}

import {
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  fromJsonString,
  type MessageShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import type { NodeRequest, NodeResponse } from "../node-handler.js";
import {
  negotiateCompression,
  negotiateFraming,
  parseDeadline,
  type RequestFraming,
  type RpcProtocol,
  unwrapEnvelope,
} from "./protocol.js";
import { readBody } from "./read-body.js";
import { writeError, writeMessage } from "./write-response.js";

/** How a unary route reads requests. */
export interface UnaryRouteOptions {
  /** The largest request message, after decompression, in bytes. */
  readMaxBytes: number;
  /** Compressions the server accepts and offers. */
  acceptCompression: Compression[];
}

/** What became of one call, for logs and metrics. */
export interface UnaryOutcome {
  protocol: RpcProtocol | "unknown";
  /** The Connect code name (`ok` on success), or the HTTP status refused. */
  code: string;
  error?: ConnectError;
}

/**
 * Runs the implementation of one call. `admit` runs first, on the headers
 * alone. Both receive the call's `state`, which the caller of the route
 * provides and reads afterwards (for its log line).
 */
export interface UnaryImplementation<
  I extends DescMessage,
  O extends DescMessage,
  S,
> {
  admit(req: NodeRequest, protocol: RpcProtocol, state: S): Promise<void>;
  handle(input: MessageShape<I>, state: S): Promise<MessageShape<O>>;
}

/**
 * Serves one unary method over Connect, gRPC and gRPC-Web without the
 * per-call machinery a streaming-capable router needs: the body is read
 * once into one buffer, decoded once, and the response written in one go.
 *
 * It answers as connect-es does (content types, status codes, error
 * bodies, trailers, compression, deadlines, size limits), with one
 * deliberate difference: a body that cannot be decoded (bad protobuf,
 * bad JSON, corrupt compression) is `invalid_argument`, the caller's fault,
 * where connect-es says `internal` for some of these.
 */
export function createUnaryRoute<
  I extends DescMessage,
  O extends DescMessage,
  S,
>(
  method: DescMethodUnary<I, O>,
  options: UnaryRouteOptions,
  implementation: UnaryImplementation<I, O, S>,
): (req: NodeRequest, res: NodeResponse, state: S) => Promise<UnaryOutcome> {
  const decode = (binary: boolean, bytes: Uint8Array) => {
    try {
      return binary
        ? fromBinary(method.input, bytes)
        : fromJsonString(method.input, new TextDecoder().decode(bytes), {
            ignoreUnknownFields: true,
          });
    } catch (e) {
      throw decodeError(binary, e);
    }
  };
  const encode = (binary: boolean, message: MessageShape<O>) =>
    binary
      ? toBinary(method.output, message)
      : Buffer.from(toJsonString(method.output, message));

  return async (req, res, state) => {
    const framing = negotiateFraming(req.headers["content-type"]);
    if (framing === undefined || req.method !== "POST") {
      const status = req.method !== "POST" ? 405 : 415;
      res.writeHead(status);
      res.end();
      return {
        protocol: framing?.protocol ?? "unknown",
        code: `http_${status}`,
      };
    }
    let deadline: NodeJS.Timeout | undefined;
    try {
      await implementation.admit(req, framing.protocol, state);
      const timeoutMs = parseDeadline(req, framing.protocol);
      const compression = negotiateCompression(
        req,
        framing.protocol,
        options.acceptCompression,
      );
      const work = async () => {
        const body = await readBody(req, options.readMaxBytes);
        const message = await unwrapMessage(
          framing,
          compression.request,
          body,
          options,
        );
        const output = await implementation.handle(
          decode(framing.binary, message),
          state,
        );
        return encode(framing.binary, output);
      };
      const result =
        timeoutMs === undefined
          ? await work()
          : await Promise.race([
              work(),
              new Promise<never>((_, reject) => {
                deadline = setTimeout(
                  () =>
                    reject(
                      new ConnectError(
                        "the operation timed out",
                        Code.DeadlineExceeded,
                      ),
                    ),
                  timeoutMs,
                );
              }),
            ]);
      await writeMessage(res, framing, compression.response, result);
      return { protocol: framing.protocol, code: "ok" };
    } catch (e) {
      const error =
        e instanceof ConnectError
          ? e
          : new ConnectError(
              "internal error",
              Code.Internal,
              undefined,
              undefined,
              e,
            );
      if (!res.headersSent && !res.writableEnded)
        writeError(res, framing, error);
      return {
        protocol: framing.protocol,
        code: codeName(error.code),
        error,
      };
    } finally {
      if (deadline !== undefined) clearTimeout(deadline);
    }
  };
}

/** The request message: unwrapped from its envelope, decompressed. */
async function unwrapMessage(
  framing: RequestFraming,
  compression: Compression | null,
  body: Uint8Array,
  options: UnaryRouteOptions,
): Promise<Uint8Array> {
  let message = body;
  let compressed = compression !== null && framing.protocol === "connect";
  if (framing.protocol !== "connect") {
    const envelope = unwrapEnvelope(body);
    message = envelope.data;
    compressed = envelope.compressed;
  }
  if (!compressed) return message;
  if (compression === null) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.InvalidArgument,
    );
  }
  return decompress(compression, message, options);
}

async function decompress(
  compression: Compression,
  bytes: Uint8Array,
  options: UnaryRouteOptions,
): Promise<Uint8Array> {
  try {
    return await compression.decompress(bytes, options.readMaxBytes);
  } catch (e) {
    const error = ConnectError.from(e);
    if (error.code === Code.ResourceExhausted) throw error;
    throw new ConnectError(error.rawMessage, Code.InvalidArgument);
  }
}

function decodeError(binary: boolean, e: unknown): ConnectError {
  const message = e instanceof Error ? e.message : String(e);
  return new ConnectError(
    binary ? `parse binary: ${message}` : message,
    Code.InvalidArgument,
  );
}

/** `invalid_argument` for `Code.InvalidArgument`, as Connect spells codes. */
export function codeName(code: Code): string {
  return Code[code].replace(
    /[A-Z]/g,
    (c, i) => (i ? "_" : "") + c.toLowerCase(),
  );
}

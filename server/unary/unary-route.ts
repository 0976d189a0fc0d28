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
import { endOfTurn } from "./end-of-turn.js";
import {
  negotiateCompression,
  negotiateFraming,
  parseDeadline,
  type RequestFraming,
  type RpcProtocol,
  unwrapEnvelope,
} from "./protocol.js";
import { readBody, refuseRestOfBody } from "./read-body.js";
import { writeError, writeMessage } from "./write-response.js";

/** How a unary route reads requests. */
export interface UnaryRouteOptions<O extends DescMessage = DescMessage> {
  /** The largest request message, after decompression, in bytes. */
  readMaxBytes: number;
  /** Compressions the server accepts and offers. */
  acceptCompression: Compression[];
  /**
   * Writes a response message as the JSON `toJsonString` writes, faster;
   * default `toJsonString` itself.
   */
  encodeJson?: (message: MessageShape<O>) => string;
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
  options: UnaryRouteOptions<O>,
  implementation: UnaryImplementation<I, O, S>,
): (req: NodeRequest, res: NodeResponse, state: S) => Promise<UnaryOutcome> {
  const decode = (binary: boolean, bytes: Uint8Array) => {
    try {
      return binary
        ? fromBinary(method.input, bytes)
        : fromJsonString(method.input, utf8.decode(bytes), {
            ignoreUnknownFields: true,
          });
    } catch (e) {
      throw decodeError(binary, e);
    }
  };
  const encodeJson =
    options.encodeJson ??
    ((message: MessageShape<O>) => toJsonString(method.output, message));
  const encode = (binary: boolean, message: MessageShape<O>) =>
    binary ? toBinary(method.output, message) : encodeJson(message);

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
    let compression: Compression | null = null;
    // The deadline runs from the first byte of the call, admission included
    // (an identity provider that hangs must not outlast it).
    const timeout = parseDeadline(req, framing.protocol);
    const deadline = new Deadline();
    deadline.start(timeout.error ? undefined : timeout.timeoutMs);
    try {
      const work = async () => {
        await implementation.admit(req, framing.protocol, state);
        const negotiated = negotiateCompression(
          req,
          framing.protocol,
          options.acceptCompression,
        );
        compression = negotiated.response;
        if (negotiated.error) throw negotiated.error;
        if (timeout.error) throw timeout.error;
        const body = await readBody(
          req,
          options.readMaxBytes,
          framing.protocol === "connect" ? 0 : envelopeHeaderBytes,
        );
        const message = await unwrapMessage(
          framing,
          negotiated.request,
          body,
          options,
        );
        const input = decode(framing.binary, message);
        // A call whose deadline passed while its body arrived mints nothing.
        deadline.throwIfExpired();
        return encode(
          framing.binary,
          await implementation.handle(input, state),
        );
      };
      const result = await deadline.race(work());
      await endOfTurn();
      await writeMessage(res, framing, compression, result);
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
      if (!res.headersSent && !res.writableEnded) {
        refuseRestOfBody(req, res, options.readMaxBytes);
        await writeError(res, framing, error, compression);
      }
      return {
        protocol: framing.protocol,
        code: codeName(error.code),
        error,
      };
    } finally {
      deadline.clear();
    }
  };
}

/** Decodes JSON request bodies; one for all calls. */
const utf8 = new TextDecoder();

/** The bytes before each message of gRPC and gRPC-Web: flags, length. */
const envelopeHeaderBytes = 5;

/** The longest delay `setTimeout` honours; longer ones fire at once. */
const maxTimerMs = 2_147_483_647;

/**
 * A call's deadline, from its timeout header. Only a call that sends one
 * pays for a timer.
 */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private expired = false;
  private reject: ((error: ConnectError) => void) | undefined;

  start(timeoutMs: number | undefined): void {
    if (timeoutMs === undefined || timeoutMs > maxTimerMs) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.reject?.(deadlineExceeded());
    }, timeoutMs);
  }

  /** `work`, or `deadline_exceeded` if the deadline passes first. */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.timer === undefined) return work;
    if (this.expired) return Promise.reject(deadlineExceeded());
    return Promise.race([
      work,
      new Promise<never>((_, reject) => {
        this.reject = reject;
      }),
    ]);
  }

  throwIfExpired(): void {
    if (this.expired) throw deadlineExceeded();
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

function deadlineExceeded(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

/** The request message: unwrapped from its envelope, decompressed. */
async function unwrapMessage(
  framing: RequestFraming,
  compression: Compression | null,
  body: Uint8Array,
  options: { readMaxBytes: number },
): Promise<Uint8Array> {
  let message = body;
  let compressed = compression !== null && framing.protocol === "connect";
  if (framing.protocol !== "connect") {
    const envelope = unwrapEnvelope(body, options.readMaxBytes);
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
  options: { readMaxBytes: number },
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

import type { Http2ServerRequest } from "node:http2";
import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "../node-handler.js";

/** Requests whose body {@link readBody} refused for its size. */
const oversized = new WeakSet<NodeRequest>();

/**
 * Reads a whole request body, refusing more than `readMaxBytes` (plus
 * `framingBytes` of envelope headers) as soon as it is known: from `content-length` before a byte is read, else as the
 * bytes arrive. The messages are connect-es's own for the same faults.
 *
 * @throws ConnectError `resource_exhausted` for a body over the limit;
 * `invalid_argument` for a body shorter or longer than its
 * `content-length`; `canceled` when the client goes away.
 */
export function readBody(
  req: NodeRequest,
  readMaxBytes: number,
  framingBytes = 0,
): Promise<Uint8Array> {
  const limit = readMaxBytes + framingBytes;
  const declared = parseLength(req.headers["content-length"]);
  if (declared !== undefined && declared > limit) {
    oversized.add(req);
    return Promise.reject(
      new ConnectError(
        `message size ${declared - framingBytes} is larger than configured readMaxBytes ${readMaxBytes}`,
        Code.ResourceExhausted,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (error: ConnectError) => {
      cleanup();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (declared !== undefined && received > declared) {
        fail(promised(declared, received));
      } else if (received > limit) {
        oversized.add(req);
        fail(
          new ConnectError(
            `message size is larger than configured readMaxBytes ${readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
      } else {
        chunks.push(chunk);
      }
    };
    const finish = () => {
      if (req.aborted) {
        reject(new ConnectError("client closed the request", Code.Canceled));
      } else if (declared !== undefined && received < declared) {
        reject(promised(declared, received));
      } else {
        resolve(
          chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        );
      }
    };
    const onEnd = () => {
      cleanup();
      // Node 20 ends an HTTP/2 request whose stream the client reset before
      // it reports the reset: give the report one turn to arrive, so that a
      // cut-off body is never taken for a whole one.
      if (req.httpVersionMajor === 2) setImmediate(finish);
      else finish();
    };
    const onAbort = () => {
      cleanup();
      reject(new ConnectError("client closed the request", Code.Canceled));
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("aborted", onAbort);
      req.off("error", onAbort);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("aborted", onAbort);
    req.on("error", onAbort);
  });
}

function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

function promised(declared: number, received: number): ConnectError {
  return new ConnectError(
    `protocol error: promised ${declared} bytes, received ${received}`,
    Code.InvalidArgument,
  );
}

/**
 * After an answer given before the request body was read to its end,
 * decides what becomes of the rest. A body over the size limit (declared,
 * or refused by {@link readBody} as it arrived) is not taken any further: an
 * HTTP/2 stream is reset with NO_ERROR once the answer is sent (RFC 9113,
 * section 8.1), and an HTTP/1.1 connection stops reading and closes, so
 * that a client cannot go on pushing an upload at the service. Any other
 * refusal reads and drops the rest, so that a client sending a normal body
 * reads its answer and keeps its connection; the request timeout bounds
 * how long that may take. Call it before writing the answer.
 */
export function refuseRestOfBody(
  req: NodeRequest,
  res: NodeResponse,
  readMaxBytes: number,
): void {
  if (req.complete) return;
  const declared = parseLength(req.headers["content-length"]);
  const tooLarge =
    oversized.has(req) || (declared !== undefined && declared > readMaxBytes);
  if (tooLarge) stopTaking(req, res);
  else req.resume();
}

function stopTaking(req: NodeRequest, res: NodeResponse): void {
  if (req.httpVersionMajor >= 2) {
    const { stream } = req as Http2ServerRequest;
    const reset = () => stream.close(http2.constants.NGHTTP2_NO_ERROR);
    if (res.writableFinished) reset();
    else res.once("finish", reset);
    return;
  }
  if (!res.headersSent) res.setHeader("connection", "close");
  const close = () => {
    const socket = req.socket;
    socket.pause();
    socket.end();
    // The client has this long to read the answer before the connection,
    // with its unread upload, is cut.
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  if (res.writableFinished) close();
  else res.once("finish", close);
}

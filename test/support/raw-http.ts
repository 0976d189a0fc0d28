import * as http from "node:http";
import * as http2 from "node:http2";
import { createTokenPath } from "./http.js";

/**
 * A response exactly as it came off the wire, whatever the HTTP version:
 * header and trailer names lowercase, in the order received, repeated
 * names kept; HTTP/2 pseudo-headers left out (the status is `status`).
 */
export interface WireResponse {
  httpVersion: "1.1" | "2";
  status: number;
  headers: [string, string][];
  trailers: [string, string][];
  body: Uint8Array;
}

/** One raw request: the bytes are sent exactly as given. */
export interface WireRequest {
  method?: string;
  /** Default: CreateToken. */
  path?: string;
  /** Sent as given; nothing is added but what HTTP itself needs. */
  headers?: Record<string, string>;
  /** Chunks of the body, each written as it comes. */
  body?: Uint8Array | string | Uint8Array[];
  /**
   * HTTP/1.1 only: `length` (default) sends `content-length`, `chunked`
   * sends `transfer-encoding: chunked` and no length.
   */
  framing?: "length" | "chunked";
  /** Sends the headers at once and the body this much later. */
  bodyDelayMs?: number;
}

/**
 * Writes `chunks` to `stream` and ends it: at once, or `delayMs` after
 * `connected` resolves (the headers are on the wire by then).
 */
function writeBody(
  stream: { write(chunk: Buffer): unknown; end(): unknown },
  chunks: Buffer[],
  delayMs: number | undefined,
  connected: Promise<unknown>,
): void {
  const write = () => {
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
  };
  if (delayMs === undefined) write();
  else connected.then(() => setTimeout(write, delayMs));
}

/** The first value of header `name` in `pairs`, if any. */
export function headerValue(
  pairs: [string, string][],
  name: string,
): string | undefined {
  return pairs.find(([key]) => key === name)?.[1];
}

function chunksOf(body: WireRequest["body"]): Buffer[] {
  if (body === undefined) return [];
  if (typeof body === "string") return [Buffer.from(body)];
  if (body instanceof Uint8Array) return [Buffer.from(body)];
  return body.map((chunk) => Buffer.from(chunk));
}

function pairs(raw: string[]): [string, string][] {
  const result: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    result.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  }
  return result;
}

/**
 * Sends one request over a fresh HTTP/1.1 connection (no agent, so no
 * `connection` header is added) and reads the whole response.
 */
export function h1Send(
  baseUrl: string,
  request: WireRequest,
): Promise<WireResponse> {
  const chunks = chunksOf(request.body);
  const headers: Record<string, string> = { ...request.headers };
  if (request.framing === "chunked") {
    headers["transfer-encoding"] = "chunked";
  } else if (request.method !== "GET" || chunks.length > 0) {
    headers["content-length"] = String(
      chunks.reduce((n, chunk) => n + chunk.length, 0),
    );
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${request.path ?? createTokenPath}`, {
      method: request.method ?? "POST",
      headers,
      agent: false,
      setHost: true,
    });
    req.once("error", reject);
    req.once("response", (res) => {
      const body: Buffer[] = [];
      res.on("data", (chunk: Buffer) => body.push(chunk));
      res.once("error", reject);
      res.once("end", () =>
        resolve({
          httpVersion: "1.1",
          status: res.statusCode ?? 0,
          headers: pairs(res.rawHeaders),
          trailers: pairs(res.rawTrailers),
          body: new Uint8Array(Buffer.concat(body)),
        }),
      );
    });
    const connected = new Promise((resolve) =>
      req.once("socket", (socket) => {
        if (socket.connecting) socket.once("connect", resolve);
        else resolve(undefined);
      }),
    );
    if (request.bodyDelayMs !== undefined) req.flushHeaders();
    writeBody(req, chunks, request.bodyDelayMs, connected);
  });
}

/**
 * Sends one request over a fresh HTTP/2 cleartext connection with prior
 * knowledge (h2c) and reads the whole response, trailers included.
 * `content-length` is sent only when `request.headers` has it.
 */
export async function h2Send(
  baseUrl: string,
  request: WireRequest,
): Promise<WireResponse> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise<WireResponse>((resolve, reject) => {
      session.once("error", reject);
      const stream = session.request({
        ":method": request.method ?? "POST",
        ":path": request.path ?? createTokenPath,
        ...request.headers,
      });
      let status = 0;
      let headers: [string, string][] = [];
      let trailers: [string, string][] = [];
      const body: Buffer[] = [];
      // Node passes the raw header list as a third argument, in wire order.
      stream.once("response", (...args: unknown[]) => {
        const all = pairs(args[2] as string[]);
        status = Number(headerValue(all, ":status"));
        headers = all.filter(([name]) => !name.startsWith(":"));
      });
      stream.once("trailers", (...args: unknown[]) => {
        trailers = pairs(args[2] as string[]);
      });
      stream.on("data", (chunk: Buffer) => body.push(chunk));
      stream.once("error", reject);
      stream.once("end", () =>
        resolve({
          httpVersion: "2",
          status,
          headers,
          trailers,
          body: new Uint8Array(Buffer.concat(body)),
        }),
      );
      const connected = new Promise((resolve) => stream.once("ready", resolve));
      writeBody(stream, chunksOf(request.body), request.bodyDelayMs, connected);
    });
  } finally {
    session.close();
  }
}

import * as http2 from "node:http2";

/**
 * Deterministic pseudo-random bytes (xorshift32 from `seed`), so that a
 * "random bytes" test sends the same bytes on every run.
 */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** The gRPC and gRPC-Web flag of an envelope that carries trailers. */
export const trailerFlag = 0x80;

/** Frames `payload` as one gRPC (or gRPC-Web) length-prefixed message. */
export function envelope(payload: Uint8Array, flags = 0): Uint8Array {
  const framed = new Uint8Array(5 + payload.length);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, payload.length);
  framed.set(payload, 5);
  return framed;
}

/** The envelopes of a gRPC or gRPC-Web body, in order. */
export function splitEnvelopes(
  body: Uint8Array,
): { flags: number; payload: Uint8Array }[] {
  const envelopes = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let at = 0; at < body.length; ) {
    if (at + 5 > body.length) throw new Error("truncated envelope header");
    const length = view.getUint32(at + 1);
    const end = at + 5 + length;
    if (end > body.length) throw new Error("truncated envelope");
    envelopes.push({
      flags: body[at] ?? 0,
      payload: body.subarray(at + 5, end),
    });
    at = end;
  }
  return envelopes;
}

/** Parses the trailer block of a gRPC-Web trailer envelope. */
export function parseTrailerBlock(payload: Uint8Array): Headers {
  const trailers = new Headers();
  for (const line of new TextDecoder().decode(payload).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      trailers.set(line.slice(0, colon), line.slice(colon + 1).trim());
    }
  }
  return trailers;
}

/** A gRPC response read over HTTP/2. */
export interface Http2Response {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Uint8Array;
}

/**
 * Sends one request over HTTP/2 cleartext with prior knowledge (h2c), as a
 * gRPC client does, and reads the headers, body and trailers.
 */
export async function h2cRequest(
  baseUrl: string,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array,
): Promise<Http2Response> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise<Http2Response>((resolve, reject) => {
      session.once("error", reject);
      const stream = session.request({ ":method": "POST", ...headers });
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.once("response", (h) => {
        responseHeaders = h;
      });
      stream.once("trailers", (t) => {
        trailers = t;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.once("error", reject);
      stream.once("end", () =>
        resolve({
          headers: responseHeaders,
          trailers,
          body: new Uint8Array(Buffer.concat(chunks)),
        }),
      );
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

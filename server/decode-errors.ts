import type {
  UniversalHandler,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";

/**
 * The message prefix connect-es gives a request body that is not valid
 * protobuf binary, which it reports as `internal`.
 */
const binaryParseFailure = "parse binary: ";

/** gRPC status numbers used here. */
const grpcInternal = "13";
const grpcInvalidArgument = "3";

/** The flag of a gRPC-Web envelope that carries trailers. */
const grpcWebTrailerFlag = 0x80;

/**
 * Wraps a connect-es handler so that a request body that cannot be decoded
 * as protobuf binary is `invalid_argument` (HTTP 400 for Connect), as it is
 * for JSON: a malformed body is the caller's fault, not the server's.
 *
 * connect-es reports such a body as `internal` (HTTP 500 for Connect); this
 * rewrites exactly those responses, by their message prefix, in each
 * protocol's framing, and passes every other response through untouched.
 *
 * Note that a dedicated unary path could do this at the source instead of
 * after the fact; until there is one, this is the only place it happens.
 */
export function reportDecodeErrorsAsInvalidArgument(
  handler: UniversalHandler,
): UniversalHandler {
  const wrapped = async (
    ...args: Parameters<UniversalHandler>
  ): Promise<UniversalServerResponse> => {
    const response = await handler(...args);
    const contentType = response.header?.get("content-type") ?? "";
    if (contentType.startsWith("application/grpc-web")) {
      return { ...response, body: mapChunks(response.body, fixGrpcWebTrailer) };
    }
    if (contentType.startsWith("application/grpc")) {
      return { ...response, body: fixTrailerAtEnd(response) };
    }
    if (response.status === 500 && contentType === "application/json") {
      return fixConnectError(response);
    }
    return response;
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

async function fixConnectError(
  response: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  const body = await collect(response.body);
  const error = JSON.parse(new TextDecoder().decode(body));
  const isDecodeError =
    error.code === "internal" &&
    typeof error.message === "string" &&
    error.message.startsWith(binaryParseFailure);
  if (!isDecodeError) return { ...response, body: once(body) };
  const fixed = new TextEncoder().encode(
    JSON.stringify({ ...error, code: "invalid_argument" }),
  );
  const header = new Headers(response.header);
  header.set("content-length", String(fixed.length));
  return { ...response, status: 400, header, body: once(fixed) };
}

/** gRPC trailers are complete once the body has been written. */
async function* fixTrailerAtEnd(
  response: UniversalServerResponse,
): AsyncIterable<Uint8Array> {
  if (response.body !== undefined) yield* response.body;
  if (response.trailer !== undefined) fixGrpcStatus(response.trailer);
}

function fixGrpcStatus(trailer: Headers): void {
  const message = decodeURIComponent(trailer.get("grpc-message") ?? "");
  if (
    trailer.get("grpc-status") === grpcInternal &&
    message.startsWith(binaryParseFailure)
  ) {
    trailer.set("grpc-status", grpcInvalidArgument);
  }
}

/** Rewrites the status in a gRPC-Web trailer envelope, if it is one. */
function fixGrpcWebTrailer(chunk: Uint8Array): Uint8Array {
  if (chunk.length < 5 || chunk[0] !== grpcWebTrailerFlag) return chunk;
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const length = view.getUint32(1);
  if (chunk.length !== 5 + length) return chunk;

  const trailer = new Headers();
  const text = new TextDecoder().decode(chunk.subarray(5));
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      trailer.set(line.slice(0, colon), line.slice(colon + 1).trim());
    }
  }
  const before = trailer.get("grpc-status");
  fixGrpcStatus(trailer);
  if (trailer.get("grpc-status") === before) return chunk;

  let lines = "";
  trailer.forEach((value, key) => {
    lines += `${key}: ${value}\r\n`;
  });
  const payload = new TextEncoder().encode(lines);
  const envelope = new Uint8Array(5 + payload.length);
  envelope[0] = grpcWebTrailerFlag;
  new DataView(envelope.buffer).setUint32(1, payload.length);
  envelope.set(payload, 5);
  return envelope;
}

async function* mapChunks(
  body: AsyncIterable<Uint8Array> | undefined,
  map: (chunk: Uint8Array) => Uint8Array,
): AsyncIterable<Uint8Array> {
  if (body === undefined) return;
  for await (const chunk of body) yield map(chunk);
}

async function collect(
  body: AsyncIterable<Uint8Array> | undefined,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  if (body !== undefined) for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* once(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/** The HTTP path of `TokenService.CreateToken`. */
export const createTokenPath = "/tokenservice.v1.TokenService/CreateToken";

/** A response as it came off the wire. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/**
 * Sends `body` as-is to `path` (default: CreateToken) with exactly the
 * given headers, and reads the whole response. With `chunked`, the body is
 * streamed with no `content-length`, so the server learns its size only as
 * it reads.
 */
export async function sendRaw(
  baseUrl: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: Uint8Array | string;
    path?: string;
    chunked?: boolean;
  },
): Promise<RawResponse> {
  const body = init.body === undefined ? undefined : toBodyInit(init.body);
  const response = await fetch(`${baseUrl}${init.path ?? createTokenPath}`, {
    method: init.method ?? "POST",
    headers: init.headers ?? {},
    ...(body !== undefined && {
      body: init.chunked ? new Response(body).body : body,
      duplex: "half",
    }),
  } as RequestInit);
  return {
    status: response.status,
    headers: response.headers,
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

/** A Connect JSON response: its HTTP status and its parsed body. */
export interface JsonResponse {
  status: number;
  json: Record<string, unknown>;
}

/**
 * POSTs a Connect unary JSON request to CreateToken, the way a hand-written
 * client or `curl` would. A string is sent verbatim; anything else is
 * serialized with `JSON.stringify`.
 */
export async function postJson(
  baseUrl: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const response = await sendRaw(baseUrl, {
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = new TextDecoder().decode(response.body);
  return { status: response.status, json: JSON.parse(text) };
}

/**
 * POSTs a Connect JSON request that must succeed, and returns the response
 * body.
 *
 * @throws when the status is not 200, with the body in the message.
 */
export async function mintJson(
  baseUrl: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const { status, json } = await postJson(baseUrl, body);
  if (status !== 200) {
    throw new Error(`CreateToken failed: ${status} ${JSON.stringify(json)}`);
  }
  return json;
}

/** A copy that fetch's `BodyInit` accepts, whatever buffer backs `body`. */
function toBodyInit(body: Uint8Array | string): BodyInit {
  return typeof body === "string" ? body : new Uint8Array(body);
}

/**
 * Evidence that the load was served correctly, beyond HTTP status codes:
 * sample calls with real clients whose tokens are verified, and the
 * service's own request counter by code.
 */
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import { benchRequest, checkToken, type ExpectedToken } from "./request.js";

/** The result of one sample call. */
export interface SampleCheck {
  ok: boolean;
  /** What was called, and what went wrong if anything. */
  detail: string;
  /** The verified token's claims, when it was valid. */
  claims?: Record<string, unknown>;
}

/** POSTs JSON over HTTP/1.1 (fetch) and verifies the token it returns. */
export async function sampleJsonHttp1(
  url: string,
  headers: Record<string, string>,
  body: string,
  expected: ExpectedToken,
): Promise<SampleCheck> {
  const what = `POST ${url} (HTTP/1.1, JSON)`;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) {
      return { ok: false, detail: `${what}: ${response.status} ${text}` };
    }
    const json = JSON.parse(text) as Record<string, unknown>;
    // The service answers in proto3 JSON (camelCase), the peer snake_case.
    const token = json.participantToken ?? json.participant_token;
    if (typeof token !== "string") {
      return { ok: false, detail: `${what}: no token in ${text}` };
    }
    const claims = await checkToken(token, expected);
    return { ok: true, detail: `${what}: ${response.status}`, claims };
  } catch (e) {
    return { ok: false, detail: `${what}: ${(e as Error).message}` };
  }
}

/**
 * Calls `CreateToken` with connect-node's client over HTTP/2 cleartext,
 * with the gRPC protocol or Connect JSON, and verifies the token.
 */
export async function sampleHttp2(
  protocol: "grpc" | "connect-json",
  baseUrl: string,
  serviceKey: string,
  expected: ExpectedToken,
): Promise<SampleCheck> {
  const what = `CreateToken over ${protocol} (connect-node, HTTP/2)`;
  // A session of its own, closed after the call, so that no idle
  // connection lingers during the load.
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport: Transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl, sessionManager })
      : createConnectTransport({
          baseUrl,
          httpVersion: "2",
          sessionManager,
          useBinaryFormat: false,
        });
  try {
    const client = createClient(TokenService, transport);
    const response = await client.createToken(benchRequest, {
      headers: { authorization: `Bearer ${serviceKey}` },
      timeoutMs: 10_000,
    });
    const claims = await checkToken(response.participantToken, expected);
    return { ok: true, detail: `${what}: ok`, claims };
  } catch (e) {
    return { ok: false, detail: `${what}: ${(e as Error).message}` };
  } finally {
    sessionManager.abort();
  }
}

/** `token_service_requests_total` for `CreateToken`, by `protocol/code`. */
export type RequestCounts = Record<string, number>;

/** Reads the service's request counter from `GET /metrics`. */
export async function scrapeRequestCounts(
  baseUrl: string,
): Promise<RequestCounts> {
  const response = await fetch(`${baseUrl}/metrics`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
  return parseRequestCounts(await response.text());
}

/**
 * Reads the request counter once it has stopped moving (two reads 200 ms
 * apart agree), so that calls still in flight from an earlier load are
 * not counted in the next one. Gives up waiting after `timeoutMs`.
 */
export async function settledRequestCounts(
  baseUrl: string,
  timeoutMs = 5000,
): Promise<RequestCounts> {
  const deadline = Date.now() + timeoutMs;
  let last = await scrapeRequestCounts(baseUrl);
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const next = await scrapeRequestCounts(baseUrl);
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  return last;
}

/** Parses the Prometheus text format for the request counter. */
export function parseRequestCounts(text: string): RequestCounts {
  const counts: RequestCounts = {};
  const line = /^token_service_requests_total\{([^}]*)\}\s+(\S+)$/gm;
  for (const m of text.matchAll(line)) {
    const labels: Record<string, string> = {};
    for (const l of (m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] ?? ""] = l[2] ?? "";
    }
    if (labels.method !== "CreateToken") continue;
    const key = `${labels.protocol}/${labels.code}`;
    counts[key] = (counts[key] ?? 0) + Number(m[2]);
  }
  return counts;
}

/** The service's counts during a run, set against the load generator's. */
export interface MetricsCheck {
  ok: boolean;
  detail: string;
  /** Increase of the counter over the run, by `protocol/code`. */
  delta: RequestCounts;
  /** Calls counted `ok` by the service. */
  serviceOk: number;
  /** `canceled` calls: the load generator stopping mid-request. */
  canceled: number;
  /** Calls with any other code: failures. */
  failed: number;
}

/**
 * Compares the counter's increase with what the load generator saw. Every
 * call the service counted must be `ok` and under `protocol`; the load
 * generator stops with up to one request per connection in flight, so up
 * to `connections` of them may be counted `canceled` (cut off) or `ok`
 * (served, but no longer counted by the load generator). Hence the
 * service's `ok` count must be from the load generator's 2xx count to that
 * plus `connections`. Read the counters settled (`settledRequestCounts`).
 */
export function checkRequestCounts(
  before: RequestCounts,
  after: RequestCounts,
  protocol: string,
  loadgenOk: number,
  connections: number,
): MetricsCheck {
  const delta: RequestCounts = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[key] ?? 0) - (before[key] ?? 0);
    if (d !== 0) delta[key] = d;
  }
  let serviceOk = 0;
  let canceled = 0;
  let failed = 0;
  const problems: string[] = [];
  for (const [key, n] of Object.entries(delta)) {
    const [proto, code] = key.split("/");
    if (proto !== protocol) {
      problems.push(`${n} calls over ${proto}, expected only ${protocol}`);
    }
    if (code === "ok") serviceOk += n;
    else if (code === "canceled") canceled += n;
    else failed += n;
  }
  if (failed > 0) problems.push(`${failed} calls failed`);
  if (canceled > connections) problems.push(`${canceled} calls canceled`);
  if (serviceOk < loadgenOk || serviceOk + canceled > loadgenOk + connections) {
    problems.push(
      `the service counted ${serviceOk} ok calls, the load generator ${loadgenOk} 2xx responses`,
    );
  }
  return {
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `service ok=${serviceOk} vs load generator 2xx=${loadgenOk}` +
          (canceled > 0 ? `, ${canceled} canceled at stop` : "")
        : problems.join("; "),
    delta,
    serviceOk,
    canceled,
    failed,
  };
}

/**
 * What the CLI tests run the service with: a production-like environment, a
 * config file with service keys, and clients over real connections.
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import { type Client, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { TokenVerifier } from "livekit-server-sdk";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { TokenService } from "../../gen/tokenservice/v1/token_service_pb.js";
import type { Env } from "./cli-process.js";

/** A LiveKit project fit for production: a 40-character secret. */
export const cliProject = {
  url: "wss://livekit.example.test",
  apiKey: "APIcliLifecycle",
  apiSecret: randomBytes(30).toString("base64url"),
};

/**
 * `NODE_ENV=production` with `cliProject`'s credentials, and `extra`.
 * The LiveKit URL is only returned to callers, never contacted.
 */
export function productionEnv(extra: Env = {}): Env {
  return {
    NODE_ENV: "production",
    LIVEKIT_URL: cliProject.url,
    LIVEKIT_API_KEY: cliProject.apiKey,
    LIVEKIT_API_SECRET: cliProject.apiSecret,
    ...extra,
  };
}

/** A fresh service key: 43 random characters. */
export function newKey(): string {
  return randomBytes(32).toString("base64url");
}

/** A service key entry of the config file. */
export type KeyEntry = { name: string } & (
  | { keyFile: string }
  | { keyEnv: string }
);

/**
 * A config file (YAML) with the policy `backend` (any room, any identity)
 * and `keys` under it; `extra` lines are appended at the top level.
 */
export function serviceKeysConfig(
  keys: KeyEntry[],
  extra: string[] = [],
): string {
  const lines = [
    "policies:",
    "  backend:",
    "    rooms: ['*']",
    "    anyIdentity: true",
    "callers:",
    "  serviceKeys:",
  ];
  for (const key of keys) {
    lines.push(`    - name: ${key.name}`);
    if ("keyFile" in key) lines.push(`      keyFile: ${key.keyFile}`);
    else lines.push(`      keyEnv: ${key.keyEnv}`);
    lines.push("      policy: backend");
  }
  return [...lines, ...extra, ""].join("\n");
}

const verifier = new TokenVerifier(cliProject.apiKey, cliProject.apiSecret);

/** Verifies a token with `cliProject`'s key and secret; returns its claims. */
export function verifyCliToken(token: string) {
  return verifier.verify(token);
}

/** A token client and the connections under it. */
export interface OpenClient {
  tokens: Client<typeof TokenService>;
  health: Client<typeof Health>;
  /** Closes the client's connections. */
  close(): void;
}

/**
 * Connect (JSON) over HTTP/1.1 with keep-alive connections, at most
 * `maxSockets` of them.
 */
export function http1Client(baseUrl: string, maxSockets = 8): OpenClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    nodeOptions: { agent },
  });
  return {
    tokens: createClient(TokenService, transport),
    health: createClient(Health, transport),
    close: () => agent.destroy(),
  };
}

/** gRPC over one HTTP/2 cleartext (prior knowledge) connection. */
export function h2cClient(baseUrl: string): OpenClient {
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
  });
  return {
    tokens: createClient(TokenService, transport),
    health: createClient(Health, transport),
    close: () => sessionManager.abort(),
  };
}

/** `{ authorization: "Bearer <key>" }` */
export function bearer(key: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${key}` } };
}

/**
 * `GET path` on a new connection, closed after the response: the status
 * and body, or the connection error's code (such as "ECONNREFUSED").
 */
export function httpGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: "127.0.0.1", port, path, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.once("error", (error: NodeJS.ErrnoException) =>
          resolve({ error: error.code ?? error.message }),
        );
      },
    );
    req.once("error", (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message }),
    );
  });
}

/** `GET /readyz` on a new connection: the status, or the error's code. */
export async function readyz(port: number): Promise<number | string> {
  const result = await httpGet(port, "/readyz");
  return "error" in result ? result.error : result.status;
}

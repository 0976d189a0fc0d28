import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  CreateTokenResponseSchema,
  TokenService,
} from "../../gen/tokenservice/v1/token_service_pb.js";

/** A Connect router serving over HTTP/2 cleartext on `127.0.0.1`. */
export interface H2cServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * Serves the routes that `routes` registers with connect-node over h2c
 * (prior knowledge) on an ephemeral loopback port.
 */
export async function startH2cServer(
  routes: (router: ConnectRouter) => void,
): Promise<H2cServer> {
  const server = http2.createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

/** What the stub CreateToken answers, whatever it is asked. */
export const stubResponse = create(CreateTokenResponseSchema, {
  serverUrl: "wss://stub.livekit.example",
  participantToken: "stub-token",
  participantIdentity: "stub-identity",
  participantName: "Stub",
  roomName: "stub-room",
  expiresAt: timestampFromMs(Date.UTC(2030, 0, 2, 3, 4, 5)),
});

/**
 * Registers a stub TokenService whose CreateToken records each request in
 * `requests` and answers `stubResponse`.
 */
export function registerStubTokenService(
  router: ConnectRouter,
  requests: unknown[] = [],
): void {
  router.service(TokenService, {
    createToken(request) {
      requests.push(request);
      return stubResponse;
    },
  });
}

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const buf = fileURLToPath(
  new URL("../../node_modules/.bin/buf", import.meta.url),
);
const run = promisify(execFile);

/** Runs `buf curl --http2-prior-knowledge` with `args` from the repo root. */
export function bufCurl(args: string[]) {
  return run(buf, ["curl", "--http2-prior-knowledge", ...args], {
    cwd: repoRoot,
    timeout: 15_000,
  });
}

/** Runs `bufCurl`, expecting it to fail, and returns how it failed. */
export async function bufCurlFailure(args: string[]) {
  const failure = await bufCurl(args).then(
    () => undefined,
    (e: { code?: number; stdout: string; stderr: string }) => e,
  );
  if (failure === undefined) throw new Error("buf curl succeeded");
  return failure;
}

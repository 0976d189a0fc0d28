/**
 * The service under measurement, started the same way by every script in
 * bench/: built for production (`npm run build:dist`) and run by node
 * itself (`node dist/server/main.js`, so that the pid is the server
 * process, with no TypeScript loader in it), with NODE_ENV=production,
 * the bench config and its service key, and logs on.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { type Started, startProcess } from "./processes.js";

/** The repository's root, where the service and the peer run. */
export const benchRoot = path.resolve(import.meta.dirname, "..");

/** The peer to measure against: `BENCH_PEER`, else the shared yardstick. */
export const defaultPeerFile =
  process.env.BENCH_PEER ||
  path.resolve(benchRoot, "../shared/bench/peer-endpoint.mjs");

/** LiveKit credentials for one run: random, with a 40-character secret. */
export interface BenchCredentials {
  LIVEKIT_URL: string;
  LIVEKIT_API_KEY: string;
  LIVEKIT_API_SECRET: string;
}

/** Fresh credentials and a service key, the API key starting `prefix`. */
export function benchCredentials(prefix: string): {
  credentials: BenchCredentials;
  serviceKey: string;
} {
  return {
    credentials: {
      LIVEKIT_URL: "wss://bench.livekit.invalid",
      LIVEKIT_API_KEY: `${prefix}${randomBytes(4).toString("hex")}`,
      // 30 random bytes: a 40-character secret, as LiveKit Cloud issues.
      LIVEKIT_API_SECRET: randomBytes(30).toString("base64url"),
    },
    serviceKey: randomBytes(32).toString("base64url"),
  };
}

/** Runs `npm run build:dist` in `root`. */
export function buildService(root: string): void {
  execFileSync("npm", ["run", "--silent", "build:dist"], {
    cwd: root,
    stdio: "inherit",
  });
}

/** How to start one service process. */
export interface ServiceSpec {
  root: string;
  name: string;
  port: number;
  credentials: BenchCredentials;
  serviceKey: string;
  /** Where its stdout (the logs) goes: a file path, or `ignore`. */
  stdout: string;
  /** Env variables added to or overriding the defaults (`WORKERS`: 1). */
  env?: Record<string, string>;
}

/** Starts the built service; does not wait for it to be ready. */
export function spawnService(spec: ServiceSpec): Started {
  return startProcess({
    name: spec.name,
    command: [
      process.execPath,
      "dist/server/main.js",
      "--config",
      "bench/production-config.yaml",
      "--host",
      "127.0.0.1",
      "--port",
      String(spec.port),
    ],
    cwd: spec.root,
    env: {
      NODE_ENV: "production",
      ...spec.credentials,
      BENCH_SERVICE_KEY: spec.serviceKey,
      LOG_LEVEL: "info",
      WORKERS: "1",
      ...spec.env,
    },
    secretEnv: ["LIVEKIT_API_SECRET", "BENCH_SERVICE_KEY"],
    port: spec.port,
    stdout: spec.stdout,
  });
}

/**
 * Starts the peer (`peerFile`) with the same LiveKit credentials as the
 * service; does not wait for it to be ready.
 */
export function spawnPeer(
  peerFile: string,
  port: number,
  credentials: BenchCredentials,
): Started {
  return startProcess({
    name: "peer",
    command: [process.execPath, peerFile],
    // The peer loads livekit-server-sdk from the project's node_modules.
    cwd: benchRoot,
    env: { PORT: String(port), ...credentials },
    secretEnv: ["LIVEKIT_API_SECRET"],
    port,
    stdout: "ignore",
  });
}

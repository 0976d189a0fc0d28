import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import {
  ConfigError,
  type ConfigFlags,
  loadConfig,
} from "../../server/config.js";

/** An environment as `loadConfig` reads it. */
export type Env = Record<string, string | undefined>;

/** A config file with one service key, read from `TEST_SERVICE_KEY`. */
const callersFile = join(
  mkdtempSync(join(tmpdir(), "lkts-callers-")),
  "c.yaml",
);
writeFileSync(
  callersFile,
  [
    "policies:",
    "  backend:",
    "    rooms: ['*']",
    "callers:",
    "  serviceKeys:",
    "    - name: backend",
    "      keyEnv: TEST_SERVICE_KEY",
    "      policy: backend",
  ].join("\n"),
);

/**
 * A non-development project with credentials fit for production, and a
 * config file with one service key (outside development mode, a service
 * needs callers).
 */
export const project = {
  LIVEKIT_URL: "wss://project.livekit.example",
  LIVEKIT_API_KEY: "APIprojectkey",
  LIVEKIT_API_SECRET: "s".repeat(32),
  CONFIG_FILE: callersFile,
  TEST_SERVICE_KEY: "k".repeat(32),
};

/** Returns the ConfigError that `loadConfig` throws; fails if none. */
export function configError(env: Env, flags: ConfigFlags = {}): ConfigError {
  try {
    loadConfig(flags, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("loadConfig did not throw");
}

/**
 * Creates a temporary directory, removed after the calling test file, and
 * returns its path and a function that writes a file into it.
 */
export function useTempDir(prefix: string): {
  dir: string;
  write(name: string, text: string): string;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

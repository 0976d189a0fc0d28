/**
 * What a long benchmark script sets up before it starts anything: where
 * its results go, a temporary directory, and a stop on Ctrl-C or SIGTERM
 * that aborts the load, with a second signal (or any exit) killing the
 * processes it started.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Started } from "./processes.js";
import { benchRoot } from "./service.js";

export interface BenchSession {
  /** The start time, for file names: `2026-12-04T18-10-38-289Z`. */
  stamp: string;
  /** bench/results, created. */
  resultsDir: string;
  /** A fresh temporary directory; the script removes it. */
  tmp: string;
  /** Aborted on the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** Whether a signal stopped the run. */
  interrupted(): boolean;
  /** The processes to kill should the script exit or be interrupted twice. */
  started: Started[];
}

/** Sets up a run of `name` (`bench`, `soak`: the temporary dir's prefix). */
export function startSession(name: string): BenchSession {
  const resultsDir = path.join(benchRoot, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const controller = new AbortController();
  const started: Started[] = [];
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // A second Ctrl-C: stop waiting.
      for (const s of started) s.child.kill("SIGKILL");
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping the load and the servers…\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Last resort if the script dies some other way.
  process.on("exit", () => {
    for (const s of started) if (!s.hasExited()) s.child.kill("SIGKILL");
  });
  return {
    stamp: new Date().toISOString().replace(/[:.]/g, "-"),
    resultsDir,
    tmp: mkdtempSync(path.join(os.tmpdir(), `lkts-${name}-`)),
    signal: controller.signal,
    interrupted: () => interrupted,
    started,
  };
}

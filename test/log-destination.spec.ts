/**
 * The service's log destination: the lines of one event-loop turn reach
 * stdout in one write, in order, and none is lost when the process exits
 * (by `flush`, or by `process.exit` with lines still waiting).
 */
import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { TurnWriter } from "../server/log-destination.js";

describe("TurnWriter", () => {
  it("keeps what a full non-blocking pipe refuses, up to its cap, then drops and says so", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "lkts-log-"));
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writerFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const reports: string[] = [];
    try {
      const writer = new TurnWriter(writerFd, {
        maxBacklogBytes: 256 * 1024,
        report: (message) => reports.push(message),
      });
      const line = (i: number) =>
        `${String(i).padStart(6, "0")}${"x".repeat(93)}\n`;
      // 2,000 lines of 100 bytes: more than the pipe (64 KiB) takes.
      for (let i = 0; i < 2000; i++) writer.write(line(i));
      await nextTurn();
      // 4,000 more, in a later turn: past the cap when the writer retries
      // (every 10 ms), they are dropped.
      for (let i = 2000; i < 6000; i++) writer.write(line(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(reports).toEqual([
        expect.stringMatching(
          /^stdout cannot keep up; \d+ bytes of log lines dropped so far$/,
        ),
      ]);
      // The reader catches up: what was kept arrives whole and in order.
      let received = "";
      const buffer = Buffer.alloc(64 * 1024);
      const deadline = Date.now() + 5000;
      while (!received.endsWith(line(1999)) && Date.now() < deadline) {
        try {
          const n = readSync(reader, buffer);
          received += buffer.toString("utf8", 0, n);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
      const expected = Array.from({ length: 2000 }, (_, i) => line(i)).join("");
      expect(received).toBe(expected);
    } finally {
      closeSync(writerFd);
      closeSync(reader);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes the lines of one turn when the turn ends, in order", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "lkts-log-"));
    const file = path.join(dir, "log");
    const fd = openSync(file, "w");
    try {
      const writer = new TurnWriter(fd, {
        maxBacklogBytes: 1024,
        report: () => {},
      });
      writer.write("a\n");
      writer.write("b\n");
      expect(readFileSync(file, "utf8")).toBe("");
      await nextTurn();
      expect(readFileSync(file, "utf8")).toBe("a\nb\n");
      writer.write("c\n");
      let flushed = false;
      writer.flush(() => {
        flushed = true;
      });
      expect(flushed).toBe(true);
      expect(readFileSync(file, "utf8")).toBe("a\nb\nc\n");
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Runs a script that logs `count` lines with the service's logger in one
 * turn, and one more line two turns later, then ends as `exit` says. Its
 * stdout is a pipe that nobody reads for the first `readAfterMs`, so that
 * writes are still in flight when the process ends.
 */
function logThenExit(count: number, exit: string, readAfterMs = 0): string[] {
  const script = `
    import { createLogger } from "./server/logger.ts";
    const logger = createLogger("info");
    const pad = "p".repeat(80);
    for (let i = 0; i < ${count}; i++) logger.info({ i, pad }, "line");
    setImmediate(() => setImmediate(() => {
      logger.info({ i: ${count} }, "last");
      ${exit}
    }));
  `;
  const command = [process.execPath, "--import", "tsx", "--input-type=module"]
    .map((word) => `'${word}'`)
    .join(" ");
  const stdout = execFileSync(
    "sh",
    [
      "-c",
      `${command} -e "$SCRIPT" 2>/dev/null | (sleep ${readAfterMs / 1000}; cat)`,
    ],
    {
      cwd: process.cwd(),
      encoding: "utf8",
      env: { ...process.env, SCRIPT: script },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return stdout.split("\n").filter((line) => line !== "");
}

describe("the service's logger on stdout", () => {
  const count = 5000;
  const numbers = (lines: string[]) =>
    lines.map((line) => (JSON.parse(line) as { i: number }).i);
  const all = Array.from({ length: count + 1 }, (_, i) => i);
  const endings: [string, string][] = [
    ["process.exit()", "process.exit(0);"],
    ["flush, then process.exit()", "logger.flush(() => process.exit(0));"],
    ["an uncaught exception", 'throw new Error("crash");'],
  ];

  const cases = endings.flatMap(([ending, exit]) =>
    [0, 1000].map((readAfterMs) => [ending, readAfterMs, exit] as const),
  );

  // Nothing is in flight in another thread: lines still waiting at exit
  // are written then, and a pipe read late gets 2 s to take them.
  it.each(cases)(
    "ends by %s, the pipe read after %i ms: every line, whole, in order",
    (_, readAfterMs, exit) => {
      expect(numbers(logThenExit(count, exit, readAfterMs))).toEqual(all);
    },
  );
});

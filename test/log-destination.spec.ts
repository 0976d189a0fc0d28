/**
 * The service's log destination: the lines of one event-loop turn reach
 * stdout in one write, in order, and none is lost when the process exits
 * (by `flush`, or by `process.exit` with lines still waiting).
 */
import { execFileSync } from "node:child_process";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  type FlushableDestination,
  maxHandOverBytes,
  TurnBatchedDestination,
} from "../server/log-destination.js";

/** A destination that records each write it is given. */
function recorder() {
  const writes: string[] = [];
  const flushed: number[] = [];
  const target: FlushableDestination = {
    write: (data: string) => void writes.push(data),
    flush: (callback) => {
      flushed.push(writes.length);
      callback();
    },
  };
  return { target, writes, flushed };
}

describe("TurnBatchedDestination", () => {
  it("hands the lines of one turn to its target as one write, in order", async () => {
    const { target, writes } = recorder();
    const batched = new TurnBatchedDestination(target);
    batched.write("a\n");
    batched.write("b\n");
    batched.write("c\n");
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n"]);
    batched.write("d\n");
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n", "d\n"]);
  });

  it("hands a busy turn over in writes of at most 16 KiB, in order", async () => {
    const { target, writes } = recorder();
    const batched = new TurnBatchedDestination(target);
    // 1,000 lines of 100 bytes, one with a two-byte character.
    const lines = Array.from(
      { length: 1000 },
      (_, i) =>
        `${String(i).padStart(4, "0")}${i === 7 ? "é" : "x"}${"y".repeat(93)}\n`,
    );
    for (const line of lines) batched.write(line);
    await nextTurn();
    expect(writes.join("")).toBe(lines.join(""));
    expect(writes.length).toBe(Math.ceil((1000 * 100 + 1) / maxHandOverBytes));
    for (const write of writes) {
      expect(Buffer.byteLength(write)).toBeLessThanOrEqual(maxHandOverBytes);
    }
  });

  it("hands over what waits before flushing its target", () => {
    const { target, writes, flushed } = recorder();
    const batched = new TurnBatchedDestination(target);
    batched.write("a\n");
    batched.write("b\n");
    let called = false;
    batched.flush(() => {
      called = true;
    });
    expect(writes).toEqual(["a\nb\n"]);
    expect(flushed).toEqual([1]);
    expect(called).toBe(true);
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

  // As with any asynchronous destination, one write may still be in flight
  // when the process ends, and may never reach a pipe: at most one
  // hand-over of 16 KiB, never a cut or reordered line, and never the
  // lines logged last, which are written synchronously at exit.
  it.each(cases)(
    "ends by %s, the pipe read after %i ms: whole lines, in order, the last ones all there",
    (_, readAfterMs, exit) => {
      const lines = logThenExit(count, exit, readAfterMs);
      const received = numbers(lines);
      expect(received.at(-1)).toBe(count);
      for (let k = 1; k < received.length; k++) {
        expect(received[k]).toBeGreaterThan(received[k - 1] as number);
      }
      const missing = all.filter((i) => !received.includes(i));
      const shortest = Math.min(...lines.map((line) => line.length + 1));
      expect(missing.length).toBeLessThanOrEqual(
        Math.floor(maxHandOverBytes / shortest),
      );
      if (missing.length > 0) {
        const first = missing[0] as number;
        expect(missing).toEqual(missing.map((_, k) => first + k));
      }
    },
  );
});

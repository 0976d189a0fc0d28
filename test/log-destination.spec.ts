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

/** Runs a script that logs `count` lines with the service's logger. */
function logThenExit(count: number, exit: string): string[] {
  const script = `
    import { createLogger } from "./server/logger.ts";
    const logger = createLogger("info");
    for (let i = 0; i < ${count}; i++) logger.info({ i }, "line");
    ${exit}
  `;
  const stdout = execFileSync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { cwd: process.cwd(), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout.split("\n").filter((line) => line !== "");
}

describe("the service's logger on stdout", () => {
  const count = 20_000;
  const numbers = (lines: string[]) =>
    lines.map((line) => (JSON.parse(line) as { i: number }).i);
  const all = Array.from({ length: count }, (_, i) => i);

  it("writes every line, in order, before process.exit() returns", () => {
    expect(numbers(logThenExit(count, "process.exit(0);"))).toEqual(all);
  });

  it("writes every line, in order, when flushed before exiting", () => {
    const lines = logThenExit(count, "logger.flush(() => process.exit(0));");
    expect(numbers(lines)).toEqual(all);
  });
});

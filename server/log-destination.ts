import { writeSync } from "node:fs";
import type { DestinationStream } from "pino";

/** A destination that can also be flushed, as pino's own are. */
export interface FlushableDestination extends DestinationStream {
  flush(callback: (error?: Error) => void): void;
  /** Writes what waits before returning. */
  flushSync?(): void;
}

/**
 * Collects the lines written in one turn of the event loop and hands them
 * to `target` as one string when the turn ends.
 *
 * pino's asynchronous destination (sonic-boom) measures the UTF-8 length of
 * its whole pending chunk, up to 16 KiB, on every write: at thousands of
 * lines a second that costs more than formatting the line. Handing it one
 * string per turn pays that once for all the lines the turn wrote (a busy
 * turn serves dozens of calls), and changes nothing else: lines keep their
 * order.
 *
 * Given the `fd` that `target` writes to, lines still waiting when the
 * process exits (`process.exit` in the turn that logged them, or a crash)
 * or when `flush` is called are written to it synchronously, after
 * `target` is flushed: an exiting process has no turn left to wait for.
 */
export class TurnBatchedDestination implements FlushableDestination {
  private pending: string[] = [];
  private scheduled = false;

  constructor(
    private readonly target: FlushableDestination,
    private readonly fd?: number,
  ) {
    if (fd !== undefined) process.once("exit", () => this.writeNow());
  }

  write(line: string): void {
    this.pending.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.handOver);
  }

  flush(callback: (error?: Error) => void): void {
    if (this.fd === undefined) this.handOver();
    else this.writeNow();
    this.target.flush(callback);
  }

  private readonly handOver = () => {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending.join("");
    this.pending = [];
    this.target.write(lines);
  };

  /** Writes the lines waiting, after `target`'s, synchronously to `fd`. */
  private writeNow(): void {
    if (this.pending.length === 0 || this.fd === undefined) return;
    const lines = Buffer.from(this.pending.join(""));
    this.pending = [];
    try {
      this.target.flushSync?.();
      writeFully(this.fd, lines);
    } catch {
      // Nothing more can be done for a closed or broken stdout.
    }
  }
}

/** How long an exiting process waits for a full pipe to take its lines. */
const exitWriteBudgetMs = 2000;

/**
 * Writes all of `bytes` to `fd`, waiting (synchronously) while a
 * non-blocking pipe is full, for at most `exitWriteBudgetMs`.
 */
function writeFully(fd: number, bytes: Buffer): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const giveUpAt = Date.now() + exitWriteBudgetMs;
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EAGAIN" || Date.now() > giveUpAt) throw error;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

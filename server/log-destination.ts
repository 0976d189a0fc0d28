import { writeSync } from "node:fs";
import type { DestinationStream } from "pino";

/** A destination that can also be flushed, as pino's own are. */
export interface FlushableDestination extends DestinationStream {
  flush(callback: (error?: Error) => void): void;
  /** Writes what waits before returning. */
  flushSync?(): void;
}

/** How the lines of a turn reach a {@link TurnBatchedDestination}'s target. */
export interface TurnBatchOptions {
  /**
   * The file descriptor `target` writes to. Given it, lines still waiting
   * when the process exits, or when `flush` is called, are written to it
   * synchronously after `target` is flushed: an exiting process has no
   * turn left to wait for.
   */
  fd?: number;
  /** Called before those synchronous writes begin. */
  onSyncWrite?: () => void;
  /** Called when they fail, or a full pipe outlasts `exitWriteBudgetMs`. */
  onGiveUp?: (error: unknown) => void;
}

/**
 * The most bytes handed to the target in one write: sonic-boom's own
 * largest write, so that no more than that is ever in flight.
 */
export const maxHandOverBytes = 16 * 1024;

/** How long an exiting process waits for a full pipe to take its lines. */
export const exitWriteBudgetMs = 2000;

/**
 * Collects the lines written in one turn of the event loop and hands them
 * to `target` when the turn ends, joined into strings of at most
 * `maxHandOverBytes`.
 *
 * pino's asynchronous destination (sonic-boom) measures the UTF-8 length of
 * its whole pending chunk, up to 16 KiB, on every write: at thousands of
 * lines a second that costs more than formatting the line. Handing it
 * whole chunks pays that once for dozens of lines, and changes nothing
 * else: lines keep their order, and sonic-boom still never has more than
 * 16 KiB in one write in flight.
 */
export class TurnBatchedDestination implements FlushableDestination {
  private pending: string[] = [];
  private scheduled = false;
  private gaveUp = false;

  constructor(
    private readonly target: FlushableDestination,
    private readonly options: TurnBatchOptions = {},
  ) {
    if (options.fd !== undefined) writtenAtExit.add(this);
  }

  write(line: string): void {
    this.pending.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.handOver);
  }

  flush(callback: (error?: Error) => void): void {
    if (this.options.fd === undefined) this.handOver();
    else this.writeNow();
    this.target.flush(callback);
  }

  private readonly handOver = () => {
    this.scheduled = false;
    const lines = this.pending;
    if (lines.length === 0) return;
    this.pending = [];
    let chunk = "";
    let bytes = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line);
      if (bytes + size > maxHandOverBytes && bytes > 0) {
        this.target.write(chunk);
        chunk = "";
        bytes = 0;
      }
      chunk += line;
      bytes += size;
    }
    this.target.write(chunk);
  };

  /** Writes the lines waiting, after `target`'s, synchronously to `fd`. */
  writeNow(): void {
    const { fd } = this.options;
    if (fd === undefined || this.gaveUp) return;
    this.options.onSyncWrite?.();
    const lines = this.pending.length > 0 ? this.pending.join("") : "";
    this.pending = [];
    try {
      this.target.flushSync?.();
      if (lines !== "") writeFully(fd, Buffer.from(lines));
    } catch (error) {
      // A closed, broken or stalled stdout takes nothing more.
      this.gaveUp = true;
      this.options.onGiveUp?.(error);
    }
  }
}

/** The destinations whose waiting lines are written when the process exits. */
const writtenAtExit = new Set<TurnBatchedDestination>();
process.once("exit", () => {
  for (const destination of writtenAtExit) destination.writeNow();
});

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

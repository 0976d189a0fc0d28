import { writeSync } from "node:fs";
import type { DestinationStream } from "pino";

/** A destination that can also be flushed, as pino's own are. */
export interface FlushableDestination extends DestinationStream {
  flush(callback: (error?: Error) => void): void;
}

/** What a {@link TurnWriter} does when its file cannot keep up. */
export interface TurnWriterOptions {
  /** Bytes that may wait for a full non-blocking pipe; more are dropped. */
  maxBacklogBytes: number;
  /** Told of dropped bytes and write errors, at most every 10 s. */
  report(message: string): void;
}

/** How long an exiting process waits for a full pipe to take its lines. */
const exitWriteBudgetMs = 2000;

/**
 * Writes log lines to a file descriptor (stdout) once per turn of the event
 * loop: the lines of a turn are joined and written synchronously when it
 * ends, in one `write`.
 *
 * Nothing is ever in flight in another thread, so no line is lost or cut
 * when the process exits: lines still waiting then are written at once
 * (a full pipe gets `exitWriteBudgetMs`). A regular file or a pipe whose
 * reader keeps up takes a turn's lines (some 50 KiB at full speed) in
 * microseconds. A pipe that is full holds the service back: a blocking one
 * blocks the write until its reader catches up, so that audit lines are
 * slowed down rather than lost; a non-blocking one (EAGAIN) keeps the
 * rest waiting, retried every 10 ms, up to `maxBacklogBytes`, past which
 * lines are dropped and the loss reported.
 */
export class TurnWriter implements FlushableDestination {
  private pending: string[] = [];
  private backlog: Buffer | undefined;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private broken = false;
  private dropped = 0;
  private reportedAt = 0;

  constructor(
    private readonly fd: number,
    private readonly options: TurnWriterOptions,
  ) {
    writtenAtExit.add(this);
  }

  write(line: string): void {
    if (this.broken) return;
    this.pending.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.writeTurn);
  }

  flush(callback: (error?: Error) => void): void {
    this.writeAll();
    callback();
  }

  /** Writes what waits, waiting for a full pipe up to the exit budget. */
  writeAll(): void {
    const bytes = this.take();
    if (bytes === undefined) return;
    const giveUpAt = Date.now() + exitWriteBudgetMs;
    let offset = this.writeFrom(bytes, 0);
    while (offset < bytes.length && !this.broken) {
      if (Date.now() > giveUpAt) {
        this.drop(bytes.length - offset);
        this.options.report("stdout did not take the last log lines in time");
        return;
      }
      Atomics.wait(pause, 0, 0, 5);
      offset = this.writeFrom(bytes, offset);
    }
  }

  private readonly writeTurn = () => {
    this.scheduled = false;
    if (this.retry !== undefined) return;
    const bytes = this.take();
    if (bytes === undefined) return;
    const offset = this.writeFrom(bytes, 0);
    if (offset === bytes.length || this.broken) return;
    this.backlog = bytes.subarray(offset);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.writeTurn();
    }, 10);
  };

  /** The backlog and the pending lines as one buffer, within the cap. */
  private take(): Buffer | undefined {
    const lines = this.pending.length > 0 ? this.pending.join("") : "";
    this.pending = [];
    const backlog = this.backlog;
    this.backlog = undefined;
    if (lines === "") return backlog;
    const fresh = Buffer.from(lines);
    if (backlog === undefined) return fresh;
    if (backlog.length + fresh.length > this.options.maxBacklogBytes) {
      this.drop(fresh.length);
      return backlog;
    }
    return Buffer.concat([backlog, fresh]);
  }

  /**
   * Writes `bytes` from `offset` on until all are written, a non-blocking
   * pipe is full, or the file fails; returns how far it got.
   */
  private writeFrom(bytes: Buffer, offset: number): number {
    let at = offset;
    while (at < bytes.length && !this.broken) {
      const written = this.tryWrite(bytes, at);
      if (written === 0) break;
      at += written;
    }
    return at;
  }

  /** Bytes written, 0 when a non-blocking pipe is full. */
  private tryWrite(bytes: Buffer, offset: number): number {
    try {
      return writeSync(this.fd, bytes, offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") return 0;
      // EPIPE and the like: nobody will read what follows.
      this.broken = true;
      this.pending = [];
      this.backlog = undefined;
      this.options.report(
        `stdout failed (${code ?? String(error)}); logs stop here`,
      );
      return 0;
    }
  }

  private drop(bytes: number): void {
    this.dropped += bytes;
    const now = Date.now();
    if (now - this.reportedAt < 10_000) return;
    this.reportedAt = now;
    this.options.report(
      `stdout cannot keep up; ${this.dropped} bytes of log lines dropped so far`,
    );
  }
}

/** Lets a synchronous loop wait a few milliseconds. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/** The writers whose waiting lines are written when the process exits. */
const writtenAtExit = new Set<TurnWriter>();
process.once("exit", () => {
  for (const writer of writtenAtExit) writer.writeAll();
});

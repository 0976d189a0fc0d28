import * as net from "node:net";

/**
 * A raw HTTP/2 cleartext client that writes frames byte for byte, so that a
 * test can do what well-behaved clients never do: ignore the server's
 * SETTINGS, trickle a frame one byte at a time, open more streams than
 * allowed. It reads the server's frames without decoding HPACK: a test
 * sees which frames came on which stream, never the header values.
 */

/** The first bytes of every HTTP/2 connection (RFC 9113, section 3.4). */
export const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame types (RFC 9113, section 6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags. */
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** SETTINGS parameters (RFC 9113, section 6.5.2). */
export const Setting = {
  MAX_CONCURRENT_STREAMS: 0x3,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** One frame as read off the wire. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** `Date.now()` when it arrived. */
  at: number;
}

/** Encodes one frame. */
export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = new Uint8Array(0),
): Buffer {
  const frame = Buffer.alloc(9 + payload.length);
  frame.writeUIntBE(payload.length, 0, 3);
  frame[3] = type;
  frame[4] = flags;
  frame.writeUInt32BE(streamId & 0x7fffffff, 5);
  frame.set(payload, 9);
  return frame;
}

/** An HPACK integer with an `prefixBits`-bit prefix (RFC 7541, 5.1). */
function hpackInteger(value: number, prefixBits: number, first = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const bytes = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7)), bytes]);
}

/**
 * An HPACK header block of literal fields without indexing and without
 * Huffman coding: its size is plain to see, and it leaves no state behind
 * in either side's dynamic table.
 */
export function encodeHeaderBlock(fields: [string, string][]): Buffer {
  return Buffer.concat(
    fields.flatMap(([name, value]) => [
      Buffer.from([0]),
      hpackString(name),
      hpackString(value),
    ]),
  );
}

/** The request headers of a POST to `path` on `127.0.0.1`. */
export function postHeaders(
  path: string,
  extra: Record<string, string> = {},
): [string, string][] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", "127.0.0.1"],
    [":path", path],
    ...Object.entries(extra),
  ];
}

/** A raw h2c connection, see the module comment. */
export class RawH2Connection {
  readonly frames: Frame[] = [];
  /** `Date.now()` when the server closed the connection, if it did. */
  closedAt: number | undefined;
  private buffered = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closedAt = Date.now();
      this.notify();
    });
  }

  /**
   * Connects to `port` on 127.0.0.1. Unless `handshake` is false, sends the
   * preface and an empty SETTINGS frame, and waits until the server's
   * SETTINGS has arrived and been acknowledged, so that its limits apply.
   */
  static async connect(
    port: number,
    { handshake = true }: { handshake?: boolean } = {},
  ): Promise<RawH2Connection> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const connection = new RawH2Connection(socket);
    if (handshake) {
      connection.write(
        Buffer.concat([preface, encodeFrame(FrameType.SETTINGS, 0, 0)]),
      );
      const settings = await connection.waitFor(
        (f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0,
        2000,
      );
      if (settings === undefined) throw new Error("no SETTINGS from server");
    }
    return connection;
  }

  /** Whether the server closed the connection. */
  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Sends HEADERS on `streamId` (END_HEADERS unless told otherwise). */
  headers(
    streamId: number,
    fields: [string, string][],
    { endStream = false, endHeaders = true } = {},
  ): void {
    const flags =
      (endStream ? Flag.END_STREAM : 0) | (endHeaders ? Flag.END_HEADERS : 0);
    this.write(
      encodeFrame(
        FrameType.HEADERS,
        flags,
        streamId,
        encodeHeaderBlock(fields),
      ),
    );
  }

  /** Sends DATA on `streamId`. */
  data(streamId: number, bytes: Uint8Array, endStream = false): void {
    this.write(
      encodeFrame(
        FrameType.DATA,
        endStream ? Flag.END_STREAM : 0,
        streamId,
        bytes,
      ),
    );
  }

  /** The RST_STREAM error codes the server sent, by stream. */
  resets(): Map<number, number> {
    const codes = new Map<number, number>();
    for (const f of this.frames) {
      if (f.type === FrameType.RST_STREAM) {
        codes.set(f.streamId, f.payload.readUInt32BE(0));
      }
    }
    return codes;
  }

  /** The GOAWAY the server sent, if any. */
  goaway(): { lastStreamId: number; code: number } | undefined {
    const f = this.frames.find((frame) => frame.type === FrameType.GOAWAY);
    if (f === undefined) return undefined;
    return {
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
    };
  }

  /** Whether the server answered on `streamId` (HEADERS or DATA). */
  answered(streamId: number): boolean {
    return this.frames.some(
      (f) =>
        f.streamId === streamId &&
        (f.type === FrameType.HEADERS || f.type === FrameType.DATA),
    );
  }

  /** Whether the server ended `streamId`: END_STREAM, or RST_STREAM. */
  ended(streamId: number): boolean {
    return this.frames.some(
      (f) =>
        f.streamId === streamId &&
        (f.type === FrameType.RST_STREAM ||
          ((f.type === FrameType.HEADERS || f.type === FrameType.DATA) &&
            (f.flags & Flag.END_STREAM) !== 0)),
    );
  }

  /**
   * Resolves with the first frame, received so far or later, that matches;
   * undefined after `timeoutMs` or when the connection closes first.
   */
  waitFor(
    match: (frame: Frame) => boolean,
    timeoutMs: number,
  ): Promise<Frame | undefined> {
    return this.waitUntil(() => this.frames.find(match), timeoutMs);
  }

  /** Resolves true when the server has closed the connection. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    return (
      (await this.waitUntil(() => this.closed || undefined, timeoutMs)) ?? false
    );
  }

  /**
   * Resolves with `check()` once it is defined; undefined after
   * `timeoutMs`, or when the connection has closed and it is still
   * undefined.
   */
  waitUntil<T>(check: () => T | undefined, timeoutMs: number) {
    return new Promise<T | undefined>((resolve) => {
      const attempt = () => {
        const found = check();
        if (found !== undefined || this.closed) {
          finish(found);
        }
      };
      const finish = (value: T | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
        resolve(value);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.waiters.add(attempt);
      attempt();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      const frame: Frame = {
        type: this.buffered[3] as number,
        flags: this.buffered[4] as number,
        streamId: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buffered.subarray(9, 9 + length)),
        at: Date.now(),
      };
      this.buffered = this.buffered.subarray(9 + length);
      this.frames.push(frame);
      if (frame.type === FrameType.SETTINGS && !(frame.flags & Flag.ACK)) {
        this.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
      }
      if (frame.type === FrameType.PING && !(frame.flags & Flag.ACK)) {
        this.write(encodeFrame(FrameType.PING, Flag.ACK, 0, frame.payload));
      }
    }
    this.notify();
  }
}

/** The value of SETTINGS parameter `id` in the server's first SETTINGS. */
export function settingOf(
  connection: RawH2Connection,
  id: number,
): number | undefined {
  const settings = connection.frames.find(
    (f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0,
  );
  if (settings === undefined) return undefined;
  for (let at = 0; at + 6 <= settings.payload.length; at += 6) {
    if (settings.payload.readUInt16BE(at) === id) {
      return settings.payload.readUInt32BE(at + 2);
    }
  }
  return undefined;
}

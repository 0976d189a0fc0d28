import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import type { ConnectionLimits, ServiceConfig } from "./config.js";
import type { NodeHandler, NodeRequest, NodeResponse } from "./node-handler.js";

/** The first bytes of every HTTP/2 connection (RFC 9113, section 3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A listening server, and how to change and stop it. */
export interface Listener {
  /** The bound address; the port is the real one when 0 was asked for. */
  address: AddressInfo;
  /** Serves new requests with `handler` from now on. */
  setHandler(handler: NodeHandler): void;
  /** Replaces the TLS certificate and key, when TLS is configured. */
  setTls(tls: NonNullable<ServiceConfig["tls"]>): void;
  /**
   * Stops accepting connections and closes the open ones gracefully: HTTP/2
   * sessions get a GOAWAY, HTTP/1.1 connections close after their current
   * response. Connections still open after `timeoutMs` are destroyed.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** Options of the server, besides where it listens. */
type ListenConfig = Pick<ServiceConfig, "host" | "port" | "tls"> & {
  connections: ConnectionLimits;
};

/**
 * Serves on one port: HTTP/1.1 and HTTP/2 cleartext with prior knowledge,
 * told apart by the connection's first bytes; or, when TLS is configured,
 * HTTP/2 and HTTP/1.1 chosen by ALPN. Slow and idle clients are timed out
 * and header sizes, streams and connections are bounded by `connections`.
 */
export async function listen(
  config: ListenConfig,
  initialHandler: NodeHandler,
): Promise<Listener> {
  let current = initialHandler;
  let closing = false;
  const limits = config.connections;
  const handler = (req: NodeRequest, res: NodeResponse) => {
    if (req.httpVersionMajor === 1) {
      if (closing) res.setHeader("connection", "close");
    } else if (headerListSize(req.rawHeaders) > limits.maxHeaderBytes) {
      // HTTP/2 only advertises the limit in SETTINGS; Node.js enforces its
      // own, larger one.
      res.writeHead(431);
      res.end();
      return;
    }
    current(req, res);
  };
  const h2Options: http2.ServerOptions = {
    maxSessionMemory: 10,
    settings: {
      maxConcurrentStreams: limits.maxStreamsPerConnection,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  };
  const h1Options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // How often the header and request timeouts are checked; Node's
    // default of 30 s would let a slow client outlive a shorter timeout.
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };

  let h1: http.Server | undefined;
  let h2: http2.Http2Server | http2.Http2SecureServer;
  let server: net.Server;
  if (config.tls) {
    const secure = http2.createSecureServer(
      {
        ...h2Options,
        ...config.tls,
        allowHTTP1: true,
        connectionsCheckingInterval: h1Options.connectionsCheckingInterval,
      } as http2.SecureServerOptions,
      handler,
    );
    // The HTTP/1.1 connections that ALPN gives this server read these.
    Object.assign(secure, {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: h1Options.connectionsCheckingInterval,
    });
    h2 = secure;
    server = secure;
  } else {
    h1 = http.createServer(h1Options, handler);
    h2 = http2.createServer(h2Options, handler);
    server = routeByPreface(h1, h2, limits.headersTimeoutMs);
  }
  h2.setTimeout(limits.idleTimeoutMs);
  server.maxConnections = limits.maxConnections;

  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on(config.tls ? "secureConnection" : "connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (closing) session.close();
  });
  const slowHttp2 = guardSlowHttp2(h2, limits);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // The HTTP/1.1 server never listens itself: it is handed connections.
  // Node tracks its connections (for the header and request timeouts, and
  // for closing idle connections) from its "listening" event on.
  h1?.emit("listening");

  return {
    address: server.address() as AddressInfo,
    setHandler(next) {
      current = next;
    },
    setTls(tls) {
      if ("setSecureContext" in h2) h2.setSecureContext(tls);
    },
    async close(timeoutMs = 0) {
      closing = true;
      const closed = new Promise<void>((resolve) =>
        server.close(() => resolve()),
      );
      for (const session of sessions) session.close();
      const sweep = setInterval(() => h1?.closeIdleConnections(), 50);
      h1?.closeIdleConnections();
      const deadline = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, timeoutMs);
      await closed;
      clearInterval(sweep);
      slowHttp2.stop();
      clearTimeout(deadline);
    },
  };
}

/**
 * A TCP server that hands each connection to `h2` when it opens with the
 * HTTP/2 preface, and to `h1` otherwise.
 */
function routeByPreface(
  h1: http.Server,
  h2: http2.Http2Server,
  firstBytesTimeoutMs: number,
): net.Server {
  return net.createServer((socket) => {
    socket.once("error", () => socket.destroy());
    // A deadline, not an idle timeout: a preface sent a byte at a time
    // must not hold the connection.
    const firstBytes = setTimeout(() => socket.destroy(), firstBytesTimeoutMs);
    socket.once("close", () => clearTimeout(firstBytes));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, http2Preface.length);
      const isHttp2 = seen
        .subarray(0, compared)
        .equals(http2Preface.subarray(0, compared));
      if (isHttp2 && compared < http2Preface.length) return;
      socket.off("data", onData);
      clearTimeout(firstBytes);
      socket.pause();
      socket.unshift(seen);
      (isHttp2 ? h2 : h1).emit("connection", socket);
      // The HTTP/2 session reads the put-back bytes itself; HTTP/1.1 needs
      // the stream flowing again.
      if (!isHttp2) socket.resume();
    };
    socket.on("data", onData);
  });
}

/**
 * A header block's size as HTTP/2 counts it (RFC 9113, section 6.5.2):
 * each field's name and value, plus 32 bytes.
 */
function headerListSize(rawHeaders: string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += field.length;
  return size + 16 * rawHeaders.length;
}

/**
 * Applies the header and request timeouts to HTTP/2, where Node.js has only
 * an idle timeout that every byte restarts. Checked every second:
 * - a stream whose request has not ended `requestTimeoutMs` after its
 *   headers is cancelled;
 * - a connection with no open stream that has received more than 512
 *   bytes for longer than `headersTimeoutMs` without completing one (a
 *   large header block sent slowly) is closed.
 *
 * Note that a small header block sent a byte at a time is not caught:
 * Node.js reports no partial frames, and a few control frames (PING,
 * SETTINGS) must not close an idle connection. `MAX_CONNECTIONS` bounds
 * how many such connections a client can hold.
 */
function guardSlowHttp2(
  server: http2.Http2Server | http2.Http2SecureServer,
  limits: ConnectionLimits,
): { stop(): void } {
  const streams = new Map<http2.ServerHttp2Stream, number>();
  const sessions = new Map<
    http2.Http2Session,
    { open: number; since: number; bytesRead: number }
  >();
  const bytesRead = (session: http2.Http2Session) =>
    session.socket?.bytesRead ?? 0;
  server.on("session", (session: http2.Http2Session) => {
    sessions.set(session, {
      open: 0,
      since: Date.now(),
      bytesRead: bytesRead(session),
    });
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    streams.set(stream, Date.now());
    const session = stream.session;
    const state = session && sessions.get(session);
    if (state) state.open++;
    stream.once("close", () => {
      streams.delete(stream);
      if (session && state) {
        state.open--;
        state.since = Date.now();
        state.bytesRead = bytesRead(session);
      }
    });
  });
  const timer = setInterval(() => {
    const now = Date.now();
    for (const [stream, since] of streams) {
      if (!stream.readableEnded && now - since > limits.requestTimeoutMs) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    }
    for (const [session, state] of sessions) {
      const receiving = bytesRead(session) > state.bytesRead + 512;
      if (
        state.open === 0 &&
        receiving &&
        now - state.since > limits.headersTimeoutMs
      ) {
        session.destroy();
      }
    }
  }, 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

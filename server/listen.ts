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
  const handler = (req: NodeRequest, res: NodeResponse) => {
    if (closing && req.httpVersionMajor === 1) {
      res.setHeader("connection", "close");
    }
    current(req, res);
  };
  const limits = config.connections;
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
      { ...h2Options, ...config.tls, allowHTTP1: true },
      handler,
    );
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
    socket.setTimeout(firstBytesTimeoutMs, () => socket.destroy());
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, http2Preface.length);
      const isHttp2 = seen
        .subarray(0, compared)
        .equals(http2Preface.subarray(0, compared));
      if (isHttp2 && compared < http2Preface.length) return;
      socket.off("data", onData);
      socket.setTimeout(0);
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

import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import type { ServiceConfig } from "./config.js";
import type { NodeHandler } from "./node-handler.js";

/** The first bytes of every HTTP/2 connection (RFC 9113, section 3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A listening server, and how to stop it. */
export interface Listener {
  /** The bound address; the port is the real one when 0 was asked for. */
  address: AddressInfo;
  /** Stops accepting connections and ends the open ones. */
  close(): Promise<void>;
}

/**
 * Serves `handler` on one port: HTTP/1.1 and HTTP/2 cleartext with prior
 * knowledge, told apart by the connection's first bytes; or, when TLS is
 * configured, HTTP/2 and HTTP/1.1 chosen by ALPN.
 */
export async function listen(
  config: Pick<ServiceConfig, "host" | "port" | "tls">,
  handler: NodeHandler,
): Promise<Listener> {
  const server = config.tls
    ? http2.createSecureServer({ ...config.tls, allowHTTP1: true }, handler)
    : createCleartextServer(handler);
  const sockets = new Set<net.Socket>();
  server.on(config.tls ? "secureConnection" : "connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/**
 * A TCP server that hands each connection to an HTTP/2 server when it opens
 * with the HTTP/2 preface, and to an HTTP/1.1 server otherwise.
 */
function createCleartextServer(handler: NodeHandler): net.Server {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  return net.createServer((socket) => {
    socket.once("error", () => socket.destroy());
    routeByPreface(socket, (isHttp2) => {
      (isHttp2 ? h2 : h1).emit("connection", socket);
    });
  });
}

/** Waits for enough bytes to tell HTTP/2 from HTTP/1.1, then puts them back. */
function routeByPreface(
  socket: net.Socket,
  route: (isHttp2: boolean) => void,
): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, http2Preface.length);
    const isPrefix = seen
      .subarray(0, compared)
      .equals(http2Preface.subarray(0, compared));
    if (isPrefix && compared < http2Preface.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    route(isPrefix);
    // The HTTP/2 session reads the put-back bytes itself; HTTP/1.1 needs the
    // stream flowing again.
    if (!isPrefix) socket.resume();
  };
  socket.on("data", onData);
}

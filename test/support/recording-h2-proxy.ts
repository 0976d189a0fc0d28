import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { RecordedRequest, RecordingProxy } from "./recording-proxy.js";

/**
 * Starts an HTTP/2 cleartext (h2c, prior knowledge) proxy on 127.0.0.1,
 * port 0, that records each request (method, path, headers, body) and
 * forwards it unchanged to `target` over one h2c session, relaying the
 * answer's headers, body and trailers: the HTTP/2 twin of
 * `startRecordingProxy`, for gRPC and other HTTP/2 clients.
 */
export async function startH2RecordingProxy(
  target: string,
): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const upstream = http2.connect(target);
  upstream.on("error", () => {});
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    const recorded: RecordedRequest = {
      method: String(headers[":method"]),
      path: String(headers[":path"]),
      headers: Object.fromEntries(
        Object.entries(headers).filter(([name]) => !name.startsWith(":")),
      ),
      body: Buffer.alloc(0),
    };
    requests.push(recorded);
    const chunks: Buffer[] = [];
    const forwarded = upstream.request({
      ...headers,
      ":authority": new URL(target).host,
    });
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      forwarded.write(chunk);
    });
    stream.once("end", () => {
      recorded.body = Buffer.concat(chunks);
      forwarded.end();
    });
    let trailers: http2.OutgoingHttpHeaders | undefined;
    forwarded.once("response", (answer) => {
      stream.respond(answer, { waitForTrailers: true });
    });
    forwarded.once("trailers", (received) => {
      trailers = received;
    });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
    forwarded.on("data", (chunk: Buffer) => stream.write(chunk));
    forwarded.once("end", () => stream.end());
    forwarded.once("error", () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.once("error", () => forwarded.close(http2.constants.NGHTTP2_CANCEL));
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
        upstream.destroy();
      }),
  };
}

import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** One request as it reached the proxy. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A running recording proxy. */
export interface RecordingProxy {
  /** `http://127.0.0.1:<port>`; use it in place of the service's URL. */
  baseUrl: string;
  /** Every request received so far, oldest first. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * Starts an HTTP/1.1 proxy on 127.0.0.1, port 0, that records each request
 * (method, path, headers, body) and forwards it unchanged to `target`, so
 * that a test can see what a client really put on the wire while the real
 * service answers.
 */
export async function startRecordingProxy(
  target: string,
): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? "/";
      requests.push({
        method: req.method ?? "",
        path,
        headers: req.headers,
        body,
      });
      const upstream = http.request(
        `${target}${path}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      upstream.end(body);
    });
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
        server.closeAllConnections();
      }),
  };
}

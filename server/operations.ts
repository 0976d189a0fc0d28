import type { ServiceConfig } from "./config.js";
import type { HandlerDeps } from "./handler.js";
import type { NodeRequest, NodeResponse } from "./node-handler.js";
import { isPlaygroundPath, servePlayground } from "./playground/serve.js";

/**
 * Serves the operational endpoints and returns true, or returns false for
 * any other path:
 * - `GET /healthz`: 200 while the process runs (liveness);
 * - `GET /readyz`: 200 when ready for traffic, 503 while starting or
 *   draining (readiness);
 * - `GET /metrics`: Prometheus metrics;
 * - in development mode only, `GET /` and `GET /playground.js`: a page
 *   that fetches a token through the client SDK (see `playground/`).
 */
export function serveOperations(
  path: string,
  req: NodeRequest,
  res: NodeResponse,
  config: ServiceConfig,
  deps: Pick<HandlerDeps, "metrics" | "isReady">,
): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (config.dev && isPlaygroundPath(path)) {
    servePlayground(path, req, res);
    return true;
  }
  switch (path) {
    case "/healthz":
      writeText(res, 200, "ok\n");
      return true;
    case "/readyz":
      if (deps.isReady()) writeText(res, 200, "ready\n");
      else writeText(res, 503, "not ready\n");
      return true;
    case "/metrics":
      deps.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, {
            "content-type": deps.metrics.registry.contentType,
          });
          res.end(text);
        },
        () => writeText(res, 500, "metrics unavailable\n"),
      );
      return true;
    default:
      return false;
  }
}

function writeText(res: NodeResponse, status: number, text: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
  });
  res.end(text);
}

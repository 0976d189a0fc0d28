import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { NodeRequest, NodeResponse } from "../node-handler.js";

/** The playground page's path. */
export const playgroundPagePath = "/";

/** The path of the page's script, bundled on first use. */
export const playgroundScriptPath = "/playground.js";

/** Whether `path` is one of the playground's. */
export function isPlaygroundPath(path: string): boolean {
  return path === playgroundPagePath || path === playgroundScriptPath;
}

interface Page {
  html: string;
  /** The CSP source that allows the page's one inline `<style>`. */
  styleSource: string;
}

let page: Page | undefined;
let script: Promise<string> | undefined;

function loadPage(): Page {
  if (page !== undefined) return page;
  const html = readFileSync(new URL("./page.html", import.meta.url), "utf8");
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1];
  if (style === undefined) throw new Error("page.html has no <style>");
  const hash = createHash("sha256").update(style, "utf8").digest("base64");
  page = { html, styleSource: `'sha256-${hash}'` };
  return page;
}

/**
 * Bundles `browser.ts` (the client SDK, connect-web and livekit-client)
 * with esbuild, once per process; the result stays in memory. esbuild is a
 * development dependency, loaded only here, so production never needs it.
 */
export function playgroundScript(): Promise<string> {
  script ??= bundle().catch((error: unknown) => {
    script = undefined;
    throw error;
  });
  return script;
}

/** The page's script: its TypeScript source, or what `build:dist` made of it. */
function browserEntry(): string {
  const source = fileURLToPath(new URL("./browser.ts", import.meta.url));
  return existsSync(source) ? source : source.replace(/\.ts$/, ".js");
}

async function bundle(): Promise<string> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [browserEntry()],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild wrote no output");
  return output.text;
}

/**
 * The page's Content-Security-Policy: its script from its own origin only,
 * its inline style by hash, and calls to its own origin and to the
 * `service` origin the page was opened with.
 */
export function playgroundCsp(serviceParam: string | null): string {
  const connect = ["'self'"];
  const origin = serviceOrigin(serviceParam);
  if (origin !== undefined) connect.push(origin);
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src ${loadPage().styleSource}`,
    "img-src data:",
    `connect-src ${connect.join(" ")}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** The origin of an http(s) URL, or `undefined` for anything else. */
function serviceOrigin(value: string | null): string | undefined {
  if (value === null) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  return url.origin;
}

/**
 * Serves the development-mode playground: `GET /` is the page, which
 * calls the service given by its `service` query parameter (default: its
 * own origin), and `GET /playground.js` its bundled script.
 */
export function servePlayground(
  path: string,
  req: NodeRequest,
  res: NodeResponse,
): void {
  const common = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  if (path === playgroundScriptPath) {
    playgroundScript().then(
      (text) => {
        res.writeHead(200, {
          ...common,
          "content-type": "text/javascript; charset=utf-8",
        });
        res.end(text);
      },
      (error: unknown) => {
        res.writeHead(500, {
          ...common,
          "content-type": "text/plain; charset=utf-8",
        });
        res.end(`the playground script failed to build: ${String(error)}\n`);
      },
    );
    return;
  }
  const query = new URL(req.url ?? "/", "http://playground").searchParams;
  const headers = {
    ...common,
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": playgroundCsp(query.get("service")),
    "referrer-policy": "no-referrer",
  };
  res.writeHead(200, headers);
  res.end(loadPage().html);
  // Start bundling now, so that the script is ready when the page asks.
  playgroundScript().catch(() => {});
}

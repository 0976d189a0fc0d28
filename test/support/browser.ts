import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

/** Debian's Chromium, which `.ci/run` installs (package `chromium`). */
export const chromiumPath = "/usr/bin/chromium";

/** A headless Chromium with a profile of its own. */
export interface Chromium {
  context: BrowserContext;
  /** Closes the browser and deletes its profile. */
  close(): Promise<void>;
}

/**
 * Launches Debian's Chromium headless, with a fresh temporary profile and
 * its background traffic (updates, sync, QUIC) off, so that it fetches
 * nothing but what a test points it at.
 *
 * @throws when `/usr/bin/chromium` is missing, naming the package.
 */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `${chromiumPath} is missing: install the Debian package chromium ` +
        "(apt-get install chromium); the browser tests need it",
    );
  }
  const profile = await mkdtemp(join(tmpdir(), "playground-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    });
    return {
      context,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}

/** A request that reached a {@link PageOrigin}. */
export interface OriginRequest {
  method: string;
  url: string;
}

/** A second origin that serves the service's playground. */
export interface PageOrigin {
  /** `http://<host>:<port>`, the origin the page runs on. */
  origin: string;
  /** Every request received, oldest first. */
  requests: OriginRequest[];
  close(): Promise<void>;
}

/**
 * Serves the playground of the service at `serviceUrl` from another
 * origin, `http://<host>:<port>`: `GET /` (with its query) and
 * `GET /playground.js` are fetched from the service and served as they
 * came, with their Content-Type and Content-Security-Policy; anything
 * else is a 404. A page opened there calls the service cross-origin.
 */
export async function startPageOrigin(
  serviceUrl: string,
  host = "127.0.0.2",
): Promise<PageOrigin> {
  const requests: OriginRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    requests.push({ method: req.method ?? "", url });
    const path = url.split("?", 1)[0];
    if (req.method !== "GET" || (path !== "/" && path !== "/playground.js")) {
      res.writeHead(404).end();
      return;
    }
    fetch(`${serviceUrl}${url}`).then(
      async (answer) => {
        const body = Buffer.from(await answer.arrayBuffer());
        const headers: Record<string, string> = {};
        for (const name of ["content-type", "content-security-policy"]) {
          const value = answer.headers.get(name);
          if (value !== null) headers[name] = value;
        }
        res.writeHead(answer.status, headers).end(body);
      },
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

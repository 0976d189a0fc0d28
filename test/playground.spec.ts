import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "./support/service.js";

// What the service serves for the playground; the page itself runs in a
// real browser in test/system/playground.spec.ts.

const pageHtml = readFileSync(
  new URL("../server/playground/page.html", import.meta.url),
  "utf8",
);

function cspFor(connectSrc: string): string {
  const style = /<style>([\s\S]*?)<\/style>/.exec(pageHtml)?.[1] ?? "";
  const hash = createHash("sha256").update(style).digest("base64");
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'sha256-${hash}'`,
    "img-src data:",
    `connect-src ${connectSrc}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

describe("the playground in development mode", () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  });

  afterAll(() => service?.close());

  it("serves the page, with a CSP that allows its own origin", async () => {
    const response = await fetch(`${service.baseUrl}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(
      "text/html; charset=utf-8",
    );
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("content-security-policy")).toBe(
      cspFor("'self'"),
    );
    const html = await response.text();
    expect(html).toBe(pageHtml);
    // Nothing is loaded from anywhere but the page's origin.
    expect(html).toContain('<script type="module" src="/playground.js">');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it("adds the origin of an http(s) service parameter to connect-src", async () => {
    const query = new URLSearchParams({ service: "http://127.0.0.9:1234/x/" });
    const response = await fetch(`${service.baseUrl}/?${query}`);
    expect(response.headers.get("content-security-policy")).toBe(
      cspFor("'self' http://127.0.0.9:1234"),
    );
  });

  it("ignores a service parameter that is not an http(s) URL", async () => {
    for (const value of ["javascript:alert(1)", "not a url", "data:,x"]) {
      const query = new URLSearchParams({ service: value });
      const response = await fetch(`${service.baseUrl}/?${query}`);
      expect(response.headers.get("content-security-policy")).toBe(
        cspFor("'self'"),
      );
    }
  });

  it("serves the bundled script, the client SDK in it", async () => {
    const response = await fetch(`${service.baseUrl}/playground.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(
      "text/javascript; charset=utf-8",
    );
    const script = await response.text();
    expect(script).toContain("Connect-Protocol-Version");
    expect(script).toContain("fetch-token");
    expect(script).not.toMatch(/^import /m);
  });

  it("serves the page to GET only", async () => {
    const response = await fetch(`${service.baseUrl}/`, { method: "POST" });
    expect(response.status).toBe(404);
  });
});

describe("the playground outside development mode", () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService({ dev: false });
  });

  afterAll(() => service?.close());

  it("is not there", async () => {
    for (const path of ["/", "/playground.js"]) {
      const response = await fetch(`${service.baseUrl}${path}`);
      expect(response.status).toBe(404);
      expect(await response.text()).toBe("");
    }
  });
});

import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type Chromium,
  launchChromium,
  type PageOrigin,
  startPageOrigin,
} from "../support/browser.js";
import { createTokenPath, sendRaw } from "../support/http.js";
import {
  type RecordingProxy,
  startRecordingProxy,
} from "../support/recording-proxy.js";
import {
  startTestService,
  type TestService,
  testProject,
} from "../support/service.js";

// The playground in Debian's Chromium, headless. The page is served from
// a second origin (127.0.0.2) and calls the service on 127.0.0.1 through a
// recording proxy, so every call is cross-origin and the test sees what
// the browser put on the wire, preflight included.

/** What a page did that a test checks afterwards. */
interface Watched {
  /** Every URL the browser requested, in order. */
  urls: string[];
  /** The text of every console error. */
  consoleErrors: string[];
}

function watch(page: Page): Watched {
  const watched: Watched = { urls: [], consoleErrors: [] };
  page.on("request", (request) => watched.urls.push(request.url()));
  page.on("console", (message) => {
    if (message.type() === "error") watched.consoleErrors.push(message.text());
  });
  return watched;
}

/** Opens the playground on `origin`, calling `service`; waits until ready. */
async function openPlayground(
  page: Page,
  origin: string,
  service: string,
): Promise<void> {
  await page.goto(`${origin}/?service=${encodeURIComponent(service)}`);
  await page.locator("#fetch-token:enabled").waitFor();
  expect(await page.locator("#service-url").textContent()).toBe(service);
}

async function fillForm(
  page: Page,
  fields: { room: string; identity: string; name: string; agent: string },
): Promise<void> {
  await page.fill("#room", fields.room);
  await page.fill("#identity", fields.identity);
  await page.fill("#name", fields.name);
  await page.fill("#agent-name", fields.agent);
}

/** The method and path of each request the proxy saw from `index` on. */
function callsSince(proxy: RecordingProxy, index: number): string[] {
  return proxy.requests
    .slice(index)
    .map((request) => `${request.method} ${request.path}`);
}

describe("the playground, cross-origin in a real browser", () => {
  let service: TestService;
  let proxy: RecordingProxy;
  let pageOrigin: PageOrigin;
  let browser: Chromium | undefined;

  beforeAll(async () => {
    service = await startTestService();
    proxy = await startRecordingProxy(service.baseUrl);
    pageOrigin = await startPageOrigin(service.baseUrl);
  });

  afterAll(async () => {
    await pageOrigin?.close();
    await proxy?.close();
    await service?.close();
  });

  afterEach(async () => {
    await browser?.close();
    browser = undefined;
  });

  it("fetches a token after a CORS preflight and shows its URL and grants", async () => {
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const watched = watch(page);
    const first = proxy.requests.length;
    const pageRequests = pageOrigin.requests.length;

    await openPlayground(page, pageOrigin.origin, proxy.baseUrl);
    await fillForm(page, {
      room: "playground-room",
      identity: "alice",
      name: "Alice Example",
      agent: "helper-agent",
    });
    const answer = page.waitForResponse(`${proxy.baseUrl}${createTokenPath}`);
    await page.click("#fetch-token");
    const response = await answer;
    await page.locator("#result").waitFor();

    // The browser sent the call cross-origin and the service allowed it.
    expect(response.status()).toBe(200);
    const sent = await response.request().allHeaders();
    expect(sent.origin).toBe(pageOrigin.origin);
    expect((await response.allHeaders())["access-control-allow-origin"]).toBe(
      pageOrigin.origin,
    );

    // A preflight first, then the call, and nothing else.
    expect(callsSince(proxy, first)).toEqual([
      `OPTIONS ${createTokenPath}`,
      `POST ${createTokenPath}`,
    ]);
    const [preflight, call] = proxy.requests.slice(first);
    expect(preflight?.headers.origin).toBe(pageOrigin.origin);
    expect(preflight?.headers["access-control-request-method"]).toBe("POST");
    expect(
      preflight?.headers["access-control-request-headers"]?.split(",").sort(),
    ).toEqual(["connect-protocol-version", "content-type"]);
    expect(call?.headers.origin).toBe(pageOrigin.origin);
    expect(call?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(call?.body.toString() ?? "")).toEqual({
      roomName: "playground-room",
      participantName: "Alice Example",
      participantIdentity: "alice",
      roomConfig: { agents: [{ agentName: "helper-agent" }] },
    });

    // What the page shows, from the response and the decoded token.
    const text = (id: string) => page.locator(`#${id}`).textContent();
    expect(await text("result-server-url")).toBe(testProject.url);
    expect(await text("result-identity")).toBe("alice");
    expect(await text("result-name")).toBe("Alice Example");
    expect(await text("result-room")).toBe("playground-room");
    expect(await text("result-expires")).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/,
    );
    expect(JSON.parse((await text("result-grants")) ?? "")).toEqual({
      room: "playground-room",
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
      canUpdateOwnMetadata: true,
    });
    const payload = JSON.parse((await text("result-payload")) ?? "");
    expect(payload.sub).toBe("alice");
    expect(payload.iss).toBe(testProject.apiKey);
    expect(
      payload.roomConfig.agents.map((a: { agentName: string }) => a.agentName),
    ).toEqual(["helper-agent"]);
    expect(await page.locator("#error").isHidden()).toBe(true);

    // The page came from the second origin; the browser went nowhere else.
    expect(callsSince(proxy, first)).toHaveLength(2);
    expect(pageOrigin.requests.slice(pageRequests).map((r) => r.url)).toEqual([
      `/?service=${encodeURIComponent(proxy.baseUrl)}`,
      "/playground.js",
    ]);
    for (const url of watched.urls) {
      expect([pageOrigin.origin, proxy.baseUrl]).toContain(new URL(url).origin);
    }
    expect(watched.consoleErrors).toEqual([]);
  });

  it("shows a server error with its Connect code and message", async () => {
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const watched = watch(page);
    const first = proxy.requests.length;

    await openPlayground(page, pageOrigin.origin, proxy.baseUrl);
    await fillForm(page, {
      room: "r".repeat(257),
      identity: "alice",
      name: "Alice",
      agent: "",
    });
    await page.click("#fetch-token");
    await page.locator("#error").waitFor();

    expect(await page.locator("#error").textContent()).toBe(
      "[invalid_argument] room_name is 257 bytes, over the limit of 256",
    );
    expect(await page.locator("#result").isHidden()).toBe(true);
    expect(callsSince(proxy, first)).toEqual([
      `OPTIONS ${createTokenPath}`,
      `POST ${createTokenPath}`,
    ]);
    // The 400 the service answered is the only console error.
    expect(watched.consoleErrors).toEqual([
      "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    ]);

    // The same page then fetches a token once the input is fixed.
    await page.fill("#room", "r".repeat(256));
    await page.click("#fetch-token");
    await page.locator("#result").waitFor();
    expect(await page.locator("#result-room").textContent()).toBe(
      "r".repeat(256),
    );
    expect(await page.locator("#error").isHidden()).toBe(true);
  });
});

describe("the playground on an origin the service does not allow", () => {
  let service: TestService;
  let proxy: RecordingProxy;
  let pageOrigin: PageOrigin;
  let browser: Chromium | undefined;

  beforeAll(async () => {
    service = await startTestService({
      corsOrigins: ["http://allowed.example"],
    });
    proxy = await startRecordingProxy(service.baseUrl);
    pageOrigin = await startPageOrigin(service.baseUrl);
  });

  afterAll(async () => {
    await browser?.close();
    await pageOrigin?.close();
    await proxy?.close();
    await service?.close();
  });

  it("gets no CORS headers, and the browser refuses the call", async () => {
    // The preflight the browser will send, answered without CORS headers.
    const preflight = await sendRaw(service.baseUrl, {
      method: "OPTIONS",
      headers: {
        origin: pageOrigin.origin,
        "access-control-request-method": "POST",
        "access-control-request-headers":
          "connect-protocol-version,content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(
      [...preflight.headers.keys()].filter((name) =>
        name.startsWith("access-control-"),
      ),
    ).toEqual([]);

    browser = await launchChromium();
    const page = await browser.context.newPage();
    const watched = watch(page);
    const first = proxy.requests.length;

    await openPlayground(page, pageOrigin.origin, proxy.baseUrl);
    await fillForm(page, {
      room: "room",
      identity: "mallory",
      name: "Mallory",
      agent: "",
    });
    await page.click("#fetch-token");
    await page.locator("#error").waitFor();

    expect(await page.locator("#error").textContent()).toBe(
      "[unknown] Failed to fetch",
    );
    expect(await page.locator("#result").isHidden()).toBe(true);
    // The preflight reached the service; the call itself never did.
    expect(callsSince(proxy, first)).toEqual([`OPTIONS ${createTokenPath}`]);
    expect(proxy.requests[first]?.headers.origin).toBe(pageOrigin.origin);
    expect(
      watched.consoleErrors.some(
        (text) =>
          text.includes(`from origin '${pageOrigin.origin}'`) &&
          text.includes("blocked by CORS policy"),
      ),
    ).toBe(true);
  });
});

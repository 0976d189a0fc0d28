import { beforeAll, describe, expect, it } from "vitest";
import {
  type AdapterSize,
  addedGzipBudget,
  bundleApp,
  measureAdapterSize,
  serverSideParts,
} from "../scripts/bundle-size.js";

describe("what the client SDK adds to a browser bundle", () => {
  let size: AdapterSize;

  beforeAll(async () => {
    size = await measureAdapterSize();
  });

  it("measures the adapter: in one bundle, not the other", () => {
    expect(size.withAdapter.inputs).toContain("client/token-source.ts");
    expect(size.withAdapter.inputs).toContain(
      "node_modules/@connectrpc/connect-web/dist/esm/connect-transport.js",
    );
    expect(size.base.inputs.filter((i) => i.startsWith("client/"))).toEqual([]);
    expect(size.added.minified).toBeGreaterThan(0);
    expect(size.added.gzip).toBeGreaterThan(0);
  });

  it("adds no server-side code", () => {
    expect(size.serverSide).toEqual([]);
  });

  it("adds less than 40 KiB gzipped", () => {
    expect(addedGzipBudget).toBe(40 * 1024);
    expect(size.added.gzip).toBeLessThan(addedGzipBudget);
  });

  it("would report server code, server packages and Node.js built-ins", async () => {
    const bundle = await bundleApp(
      `import { loadConfig } from "./server/config.ts";
console.log(loadConfig);
`,
    );
    const found = serverSideParts(bundle);
    expect(found).toContain("server/config.ts");
    expect(found).toContain("node:fs");
    expect(found.some((part) => part.includes("node_modules/yaml/"))).toBe(
      true,
    );
  });
});

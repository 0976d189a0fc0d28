// Measures what the client SDK adds to a browser app that already uses
// livekit-client: two minified ESM bundles, one of an app that imports only
// livekit-client and one of the same app that also uses createTokenSource.
// Checks that nothing server-side gets in, and that the adapter's added
// gzip size stays under its budget. Exits non-zero when either fails.
//
//   npm run bundle-size
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

/** The repository's root, from which the entries resolve. */
const root = fileURLToPath(new URL("..", import.meta.url));

/** The most the adapter may add to an app, gzipped. */
export const addedGzipBudget = 40 * 1024;

/** An app that uses livekit-client only. */
export const baseApp = `import { Room } from "livekit-client";
console.log(Room);
`;

/** The same app, also fetching tokens through the client SDK. */
export const adapterApp = `import { Room } from "livekit-client";
import { createTokenSource } from "./client/index.ts";
console.log(Room, createTokenSource);
`;

/** One bundle's sizes and what went into it. */
export interface Bundle {
  /** Minified, in bytes. */
  minified: number;
  /** Minified then gzipped at level 9, in bytes. */
  gzip: number;
  /** The files bundled, relative to the repository root. */
  inputs: string[];
  /** Imports left out of the bundle, such as Node.js built-ins. */
  externals: string[];
}

/**
 * Bundles `source`, an entry module resolved from the repository root,
 * minified, as ESM for browsers. Node.js built-ins are left external so
 * that the bundle still builds and {@link serverSideParts} reports them.
 */
export async function bundleApp(source: string): Promise<Bundle> {
  const builtins = builtinModules.flatMap((name) => [name, `node:${name}`]);
  const result = await esbuild.build({
    stdin: { contents: source, resolveDir: root, sourcefile: "app.ts" },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    external: builtins,
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild wrote no output");
  const externals = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (imported.external) externals.add(imported.path);
    }
  }
  return {
    minified: output.contents.byteLength,
    gzip: gzipSync(output.contents, { level: 9 }).byteLength,
    inputs: Object.keys(result.metafile.inputs).sort(),
    externals: [...externals].sort(),
  };
}

/** Packages that only the server uses. */
const serverPackages = [
  "livekit-server-sdk",
  "pino",
  "prom-client",
  "ioredis",
  "rate-limiter-flexible",
  "yaml",
  "@connectrpc/connect-node",
];

/**
 * What in `bundle` is server-side: the server's own files, the packages
 * only the server uses, Node.js built-ins, and `jose` unless the base app
 * (livekit-client, which uses it too) already had it.
 */
export function serverSideParts(bundle: Bundle, base?: Bundle): string[] {
  const found = bundle.inputs.filter(
    (input) =>
      input.startsWith("server/") ||
      serverPackages.some((name) => input.includes(`node_modules/${name}/`)) ||
      (input.includes("node_modules/jose/") &&
        !(base?.inputs.includes(input) ?? false)),
  );
  return [...found, ...bundle.externals];
}

/** The two bundles, and what the adapter adds. */
export interface AdapterSize {
  base: Bundle;
  withAdapter: Bundle;
  added: { minified: number; gzip: number };
  /** Server-side parts in the adapter's bundle; empty when clean. */
  serverSide: string[];
}

/** Bundles both apps and compares them. */
export async function measureAdapterSize(): Promise<AdapterSize> {
  const [base, withAdapter] = await Promise.all([
    bundleApp(baseApp),
    bundleApp(adapterApp),
  ]);
  return {
    base,
    withAdapter,
    added: {
      minified: withAdapter.minified - base.minified,
      gzip: withAdapter.gzip - base.gzip,
    },
    serverSide: serverSideParts(withAdapter, base),
  };
}

function kib(bytes: number): string {
  return `${bytes} B (${(bytes / 1024).toFixed(1)} KiB)`;
}

async function main(): Promise<void> {
  const size = await measureAdapterSize();
  const rows: [string, number, number][] = [
    ["livekit-client only", size.base.minified, size.base.gzip],
    [
      "with createTokenSource",
      size.withAdapter.minified,
      size.withAdapter.gzip,
    ],
    ["added by the adapter", size.added.minified, size.added.gzip],
  ];
  for (const [name, minified, gzip] of rows) {
    process.stdout.write(
      `${name.padEnd(24)} minified ${kib(minified).padEnd(24)} gzip ${kib(gzip)}\n`,
    );
  }
  let failed = false;
  if (size.serverSide.length > 0) {
    process.stderr.write(
      `server-side code in the browser bundle:\n  ${size.serverSide.join("\n  ")}\n`,
    );
    failed = true;
  }
  if (size.added.gzip >= addedGzipBudget) {
    process.stderr.write(
      `the adapter adds ${kib(size.added.gzip)} gzipped, over the budget of ${kib(addedGzipBudget)}\n`,
    );
    failed = true;
  }
  if (failed) process.exitCode = 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}

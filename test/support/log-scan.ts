import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testProject } from "./service.js";

/**
 * Vitest global setup: every service the unit tests start logs every line
 * to a file (see `suiteLogger`), and after the whole suite this scans them
 * all. It fails the run if any line holds a token or an end-user JWT
 * (anything shaped like a JWT), a bearer credential, a service key made by
 * `testKey`, or the test project's API secret, in plain or base64 forms.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "lkts-suite-log-"));
  process.env.LKTS_SUITE_LOG_DIR = dir;
  return () => {
    try {
      const leaks = scan(dir);
      if (leaks.length > 0) {
        throw new Error(
          `secrets in the service's logs:\n${leaks.slice(0, 20).join("\n")}`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const secret = testProject.apiSecret;
const forbidden: [string, RegExp][] = [
  ["a JWT", /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/],
  ["a bearer credential", /bearer\s+\S{8,}/i],
  ["a service key from testKey()", /[a-z0-9]{2,}-{8,}/],
  [
    "the API secret",
    new RegExp(
      [
        secret,
        Buffer.from(secret).toString("base64").slice(0, 24),
        Buffer.from(secret).toString("base64url").slice(0, 24),
        Buffer.from(secret).toString("hex").slice(0, 24),
      ]
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join("|"),
    ),
  ],
];

function scan(dir: string): string[] {
  const leaks: string[] = [];
  let lines = 0;
  for (const name of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      if (line === "") continue;
      lines += 1;
      for (const [what, pattern] of forbidden) {
        if (pattern.test(line))
          leaks.push(`${what} in ${name}: ${line.slice(0, 200)}`);
      }
    }
  }
  console.info(
    `log scan: ${lines} lines from the suite's services, ${leaks.length} leaks`,
  );
  return leaks;
}

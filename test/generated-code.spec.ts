import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("..", import.meta.url));
const bin = join(repo, "node_modules", ".bin");

/**
 * Runs the project's `buf` with `args` in the repository root, with the
 * local plugins (protoc-gen-es) on the PATH.
 */
function buf(...args: string[]) {
  return spawnSync(join(bin, "buf"), args, {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` },
    timeout: 15_000,
  });
}

/** Every file below `dir`, as paths relative to it, sorted. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * Returns buf.gen.yaml with its one `out: gen` replaced by `out`, so that
 * the check follows any change to the committed template.
 */
function templateWithOut(out: string): string {
  const template = readFileSync(join(repo, "buf.gen.yaml"), "utf8");
  const outLine = /^(\s*)out: gen$/gm;
  const matches = template.match(outLine) ?? [];
  if (matches.length !== 1) {
    throw new Error(`buf.gen.yaml: expected one "out: gen", got ${matches}`);
  }
  return template.replace(outLine, `$1out: ${JSON.stringify(out)}`);
}

describe("gen/", () => {
  const temp = mkdtempSync(join(tmpdir(), "token-service-gen-"));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it("is what buf generate writes from proto/, byte for byte", () => {
    const out = join(temp, "gen");
    const result = buf("generate", "--template", templateWithOut(out));
    expect({ status: result.status, stderr: result.stderr }).toEqual({
      status: 0,
      stderr: "",
    });

    const committed = join(repo, "gen");
    const generated = filesBelow(out);
    const committedFiles = filesBelow(committed);
    expect(generated).toContain("livekit/room_configuration_pb.ts");
    const drift: string[] = [];
    for (const file of new Set([...generated, ...committedFiles])) {
      if (!generated.includes(file)) {
        drift.push(`gen/${file}: committed, but not generated`);
      } else if (!committedFiles.includes(file)) {
        drift.push(`gen/${file}: generated, but not committed`);
      } else if (
        !readFileSync(join(out, file)).equals(
          readFileSync(join(committed, file)),
        )
      ) {
        drift.push(`gen/${file}: differs; run npm run generate`);
      }
    }
    expect(drift).toEqual([]);
  });
});

describe("buf lint", () => {
  it("passes on proto/", () => {
    const result = buf("lint");
    expect({
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
    }).toEqual({ status: 0, stdout: "", stderr: "" });
  });
});

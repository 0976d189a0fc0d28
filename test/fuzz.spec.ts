import * as v8 from "node:v8";
import * as vm from "node:vm";
import { brotliCompressSync } from "node:zlib";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import fc from "fast-check";
import { TokenVerifier } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateTokenRequestSchema } from "../gen/tokenservice/v1/token_service_pb.js";
import { createLogger, type Logger } from "../server/logger.js";
import { developmentPolicy } from "../server/policy/defaults.js";
import type { CallerPolicy } from "../server/policy/types.js";
import {
  badUtf16,
  contentType,
  encodingName,
  fieldPaths,
  gzip,
  invalidUtf8,
  jsonStringLiteral,
  jsonWith,
  mutation,
  stringSlots,
  toBinaryRequest,
  toJsonRequest,
  validRequest,
  wrongValuesFor,
} from "./support/fuzz-inputs.js";
import {
  bodyOf,
  encodingHeaderOf,
  type Lane,
  lanes,
  type RawCall,
  RawClient,
  readReply,
  type Verdict,
} from "./support/hostile-rpc.js";
import {
  startTestService,
  type TestService,
  testProject,
} from "./support/service.js";

/**
 * Property-based fuzzing of CreateToken over every protocol, encoding and
 * HTTP version. Every reply must be a well-formed answer of the request's
 * protocol: an error whose code is neither `internal` nor `unknown` (and so
 * never HTTP 500), or a token that LiveKit would accept. The service must
 * keep answering normal calls after every batch, log no error, and not
 * grow its heap without bound.
 *
 * Seeded: FUZZ_SEED replays a run (the seed is printed); FUZZ_RUNS
 * scales the number of cases per property.
 */

const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);
const runs = Number(process.env.FUZZ_RUNS ?? 400);
/** Each property stops early after this long; a slow machine runs fewer. */
const timeLimitMs = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 2500);

const binaryLanes = lanes.filter((lane) => lane.binary);
const jsonLanes = lanes.filter((lane) => !lane.binary);

/**
 * The most permissive policy there is: every room, identity, agent, grant
 * and room_config field, egress included, so that hostile input reaches
 * every step up to the signature.
 */
const everything: CallerPolicy = (() => {
  const base = developmentPolicy(3600);
  return {
    ...base,
    name: "fuzz-everything",
    grant: {
      ...base.grant,
      hidden: true,
      recorder: true,
      roomCreate: true,
      roomAdmin: true,
      roomList: true,
      roomRecord: true,
    },
    roomConfig: {
      ...base.roomConfig,
      fields: [...base.roomConfig.fields, "egress"],
    },
  };
})();

const sanityRequest = create(CreateTokenRequestSchema, {
  roomName: "sanity",
  participantIdentity: "still-serving",
});

const verifier = new TokenVerifier(testProject.apiKey, testProject.apiSecret);

/**
 * What the service logged, kept small so that the heap measures the
 * service and not the test: the lines at level error, and the code of
 * every call. The logger is the service's own (`createLogger`), writing to
 * a stream of the test's.
 */
function countingLogger() {
  const errors: string[] = [];
  const codes = new Map<string, number>();
  const stream = {
    write(chunk: string) {
      for (const line of chunk.split("\n")) {
        if (line === "") continue;
        const parsed = JSON.parse(line) as { level: number; msg: string };
        if (parsed.level >= 50) errors.push(line);
        if (parsed.msg === "rpc") {
          const code = (parsed as { code?: string }).code ?? "";
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    },
  };
  const logger: Logger = createLogger("info", stream);
  return { logger, errors, codes };
}

/** `global.gc`, even when node was started without --expose-gc. */
function collectGarbage(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

describe("CreateToken under fuzzing", () => {
  let service: TestService;
  let client: RawClient;
  let log: ReturnType<typeof countingLogger>;
  let gc: () => void;
  let heapBefore = 0;
  const casesPerLane = new Map<string, number>(
    lanes.map((lane) => [lane.name, 0]),
  );
  const outcomes = new Map<string, number>();
  let propertyIndex = 0;

  beforeAll(async () => {
    console.info(
      `fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} (per property, ` +
        `at most ${timeLimitMs} ms each)`,
    );
    log = countingLogger();
    service = await startTestService(
      { auth: { serviceKeys: [], anonymous: everything } },
      { logger: log.logger },
    );
    client = new RawClient(service.baseUrl);
    gc = collectGarbage();
    await expectServing();
    gc();
    heapBefore = process.memoryUsage().heapUsed;
  });

  afterAll(async () => {
    client?.close();
    await service?.close();
  });

  /**
   * Checks one reply: well-formed, never `internal`/`unknown`/HTTP 500, a
   * bare HTTP status only where `allowHttp` lists it, and a success only
   * with a token that verifies with the project's key and secret and
   * matches the response.
   */
  async function check(
    lane: Lane,
    call: RawCall,
    allowHttp: number[] = [],
  ): Promise<Verdict> {
    casesPerLane.set(lane.name, (casesPerLane.get(lane.name) ?? 0) + 1);
    const verdict = readReply(await client.send(lane, call));
    const label =
      verdict.kind === "http" ? `http_${verdict.status}` : verdict.kind;
    const key = verdict.kind === "error" ? verdict.code : label;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (verdict.kind === "http") {
      expect(allowHttp, `bare HTTP ${verdict.status}`).toContain(
        verdict.status,
      );
      return verdict;
    }
    if (verdict.kind === "error") {
      expect(
        ["internal", "unknown"],
        `${verdict.code}: ${verdict.message}`,
      ).not.toContain(verdict.code);
      expect(verdict.status).not.toBe(500);
      return verdict;
    }
    const { response } = verdict;
    const claims = await verifier.verify(response.participantToken);
    expect(claims.sub).toBe(response.participantIdentity);
    expect(claims.video?.room).toBe(response.roomName);
    expect(response.serverUrl).toBe(testProject.url);
    return verdict;
  }

  /** A normal call succeeds on every lane. */
  async function expectServing(): Promise<void> {
    for (const lane of lanes) {
      const message = lane.binary
        ? toBinaryRequest(sanityRequest)
        : Buffer.from(toJsonRequest(sanityRequest));
      const reply = await client.send(lane, { body: bodyOf(lane, message) });
      const verdict = readReply(reply);
      expect(verdict.kind, `${lane.name} after a batch`).toBe("ok");
    }
  }

  /** Runs one property with its own seed, then a normal call per lane. */
  async function fuzz<T extends unknown[]>(
    arbitraries: { [K in keyof T]: fc.Arbitrary<T[K]> },
    predicate: (...args: T) => Promise<unknown>,
    numRuns = runs,
  ): Promise<void> {
    const propertySeed = seed + propertyIndex++;
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(
          ...(arbitraries as fc.Arbitrary<unknown>[]),
        ) as fc.Arbitrary<T>,
        async (args: T) => {
          await predicate(...args);
        },
      ),
      {
        seed: propertySeed,
        numRuns,
        interruptAfterTimeLimit: timeLimitMs,
        markInterruptAsFailure: false,
      },
    );
    await expectServing();
  }

  const lane = (of: Lane[] = lanes) => fc.constantFrom(...of);
  const flags = fc.constantFrom(0, 0, 0, 1, 0x80, 0xff, 2);

  it("answers random bytes as a message, in every framing", async () => {
    await fuzz(
      [lane(), fc.uint8Array({ maxLength: 2048 }), flags, fc.boolean()],
      async (l, bytes, flag, framed) => {
        // Unframed: the random bytes are the whole body, envelope or not.
        const body = framed ? bodyOf(l, bytes, flag) : Buffer.from(bytes);
        await check(l, { body });
      },
    );
  });

  it("answers mutated valid protobuf", async () => {
    await fuzz(
      [
        lane(binaryLanes),
        validRequest,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
      ],
      async (l, request, mutations) => {
        let bytes: Buffer = Buffer.from(toBinaryRequest(request));
        for (const m of mutations) bytes = m.apply(bytes);
        await check(l, { body: bodyOf(l, bytes) });
      },
    );
  });

  it("answers valid requests with a token or a precise refusal", async () => {
    await fuzz([lane(), validRequest], async (l, request) => {
      const message = l.binary
        ? toBinaryRequest(request)
        : Buffer.from(toJsonRequest(request));
      const verdict = await check(l, { body: bodyOf(l, message) });
      if (verdict.kind === "error") {
        expect(
          ["invalid_argument", "permission_denied"],
          verdict.message,
        ).toContain(verdict.code);
      }
    });
  });

  it("answers thousands of agents, tags and attributes up to and past the size limit", async () => {
    await fuzz(
      [
        lane(),
        fc.integer({ min: 0, max: 6000 }),
        fc.integer({ min: 0, max: 6000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 48 }),
      ],
      async (l, agents, tags, attributes, width) => {
        const pad = (i: number) => String(i).padStart(width, "x");
        const json = {
          roomConfig: {
            agents: Array.from({ length: agents }, (_, i) => ({
              agentName: pad(i),
            })),
            tags: Object.fromEntries(
              Array.from({ length: tags }, (_, i) => [pad(i), pad(i)]),
            ),
          },
          participantAttributes: Object.fromEntries(
            Array.from({ length: attributes }, (_, i) => [pad(i), "v"]),
          ),
        };
        const message = l.binary
          ? toBinaryRequest(fromJson(CreateTokenRequestSchema, json))
          : Buffer.from(JSON.stringify(json));
        const verdict = await check(l, { body: bodyOf(l, message) });
        if (message.length > service.config.limits.requestBytes) {
          expect(verdict).toMatchObject({ code: "resource_exhausted" });
        }
      },
      Math.max(10, Math.round(runs / 5)),
    );
  });

  it("answers truncated and corrupted JSON", async () => {
    await fuzz(
      [
        lane(jsonLanes),
        validRequest,
        fc.nat(),
        fc.oneof(
          fc.constant(""),
          fc.constantFrom("{", "}", "[", "]", '"', ",", ":", "\\", "\u0000"),
          fc.string({ maxLength: 4, unit: "binary" }),
        ),
      ],
      async (l, request, at, insert) => {
        const json = toJsonRequest(request);
        const cut = at % (json.length + 1);
        // Truncate at `cut`, or replace one character there.
        const broken =
          insert === ""
            ? json.slice(0, cut)
            : json.slice(0, cut) + insert + json.slice(cut + 1);
        await check(l, { body: bodyOf(l, Buffer.from(broken)) });
      },
    );
  });

  it("answers JSON with a value of the wrong type in every field", async () => {
    const paths = fieldPaths();
    expect(paths.length).toBeGreaterThan(100);
    const wrong = fc
      .constantFrom(...paths)
      .chain((p) =>
        fc.tuple(
          fc.constant(p),
          fc.oneof(
            fc.constantFrom(...wrongValuesFor(p.field)),
            fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
          ),
        ),
      );
    await fuzz([lane(jsonLanes), wrong], async (l, [{ path }, value]) => {
      const json = JSON.stringify(jsonWith(path, value));
      await check(l, { body: bodyOf(l, Buffer.from(json)) });
    });
  });

  it("answers strings that are not UTF-8 (binary) or not UTF-16 (JSON)", async () => {
    await fuzz(
      [
        lane(),
        fc.constantFrom(...stringSlots),
        invalidUtf8,
        badUtf16,
        fc.boolean(),
      ],
      async (l, slot, bytes, utf16, raw) => {
        if (l.binary) {
          await check(l, { body: bodyOf(l, slot.wrap(bytes)) });
          return;
        }
        const key = slot.name.startsWith("participant_attributes")
          ? "participant_attributes"
          : "room_name";
        const literal = jsonStringLiteral(utf16, raw);
        const json =
          key === "room_name"
            ? Buffer.concat([
                Buffer.from('{"room_name":'),
                literal,
                Buffer.from("}"),
              ])
            : Buffer.concat([
                Buffer.from('{"participant_attributes":{'),
                literal,
                Buffer.from(":"),
                literal,
                Buffer.from("}}"),
              ]);
        await check(l, { body: bodyOf(l, json) });
      },
    );
  });

  it("answers wrong and missing content types", async () => {
    await fuzz(
      [lane(), contentType, validRequest],
      async (l, type, request) => {
        const message = l.binary
          ? toBinaryRequest(request)
          : Buffer.from(toJsonRequest(request));
        await check(
          l,
          { headers: { "content-type": type }, body: bodyOf(l, message) },
          [415],
        );
      },
    );
  });

  it("answers bogus encodings and corrupt compressed bodies", async () => {
    await fuzz(
      [
        lane(),
        encodingName,
        fc.option(encodingName, { nil: undefined }),
        validRequest,
        fc.constantFrom("gzip", "br", "none", "random"),
        fc.option(mutation, { nil: undefined }),
        fc.boolean(),
      ],
      async (l, encoding, accept, request, packing, corrupt, flagged) => {
        const message = l.binary
          ? toBinaryRequest(request)
          : Buffer.from(toJsonRequest(request));
        let payload: Buffer =
          packing === "gzip"
            ? gzip(message)
            : packing === "br"
              ? brotliCompressSync(message)
              : packing === "random"
                ? Buffer.from(message.map((b) => b ^ 0x5a))
                : Buffer.from(message);
        if (corrupt) payload = corrupt.apply(payload);
        const acceptHeader =
          l.protocol === "connect" ? "accept-encoding" : "grpc-accept-encoding";
        await check(l, {
          headers: {
            [encodingHeaderOf(l)]: encoding,
            ...(accept !== undefined && { [acceptHeader]: accept }),
          },
          body: bodyOf(l, payload, flagged ? 1 : 0),
        });
      },
    );
  });

  // Found by the properties above: V8's JSON.parse quotes the input around
  // the error and may cut a surrogate pair; the lone surrogate once made
  // the percent-encoding of grpc-message throw, and the call died without
  // a status.
  it.each(lanes.filter((l) => l.protocol !== "connect" && !l.binary))(
    "answers $name JSON whose parse error splits a surrogate pair",
    async (l) => {
      for (const json of [`x${"😀".repeat(20)}`, "😀".repeat(20)]) {
        const reply = await client.send(l, {
          body: bodyOf(l, Buffer.from(json)),
        });
        expect(readReply(reply)).toMatchObject({ code: "invalid_argument" });
      }
    },
  );

  it("logged no error and answered no call with internal", () => {
    expect(log.errors).toEqual([]);
    expect([...log.codes.keys()]).not.toContain("internal");
    expect([...log.codes.keys()]).not.toContain("unknown");
    expect(log.codes.get("ok")).toBeGreaterThan(0);
  });

  it("kept its heap bounded", async () => {
    await expectServing();
    gc();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    const total = [...casesPerLane.values()].reduce((a, b) => a + b, 0);
    console.info(
      `fuzz: ${total} cases, seed ${seed}; per lane ${JSON.stringify(
        Object.fromEntries(casesPerLane),
      )}; outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ` +
        `heap growth ${(growth / 1e6).toFixed(1)} MB`,
    );
    expect(growth).toBeLessThan(50e6);
  });
});

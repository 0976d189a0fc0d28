import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { TokenVerifier } from "livekit-server-sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceConfig } from "../server/config.js";
import { createLogger, type Logger } from "../server/logger.js";
import { developmentPolicy } from "../server/policy/defaults.js";
import {
  audience,
  type Protocol,
  tokenClient,
  userJwtConfig,
} from "./support/callers.js";
import {
  bodyOf,
  type Lane,
  lanes,
  RawClient,
  readReply,
} from "./support/hostile-rpc.js";
import {
  createSigningKey,
  type SigningKey,
  signToken,
  startIdentityProvider,
  type TestIdentityProvider,
} from "./support/identity-provider.js";
import {
  backendPolicy,
  kioskPolicy,
  memberPolicy,
  recorderPolicy,
  type TokenRequest,
} from "./support/policies.js";
import { startTestService, type TestService } from "./support/service.js";

/**
 * Runs the service through many scenarios (development mode, and a
 * configured mode with service keys and end users from a local JWKS;
 * successes, every kind of refusal, bad input, rate limiting) with a
 * logger that keeps every line it writes, at the lowest level, and checks
 * that no line holds a credential or a token: the API secret (also
 * base64, base64url, hex, URI- and JSON-escaped, at every base64
 * alignment), service keys, end-user JWTs, every Authorization header
 * value sent (accepted or not), every minted token and its signature, and
 * the participant data and egress credentials requests carried.
 */

/** Every line any service in this file wrote, as written. */
const written: string[] = [];

/**
 * The service's own logger (`createLogger`, so its redaction rules), at
 * the lowest level, writing to `written`: `createLogger` takes no
 * destination, so the stream is swapped through pino's public symbol, as
 * `support/log-capture.ts` does.
 */
function collectingLogger(): Logger {
  const logger = createLogger("trace");
  const stream = { write: (chunk: string) => written.push(chunk) };
  Object.assign(logger, { [pino.symbols.streamSym]: stream });
  return logger;
}

/** What must never be logged, each with a name that says what it is. */
const secrets = new Map<string, string>();

function secret(name: string, value: string): string {
  if (!secrets.has(value)) secrets.set(value, name);
  return value;
}

/**
 * `value` as it could appear in a log line: verbatim and in every encoding
 * a careless log call could apply. For base64 the middle of the encoding
 * at each of the three alignments is searched, so that the secret is
 * found inside a longer encoded string too.
 */
function encodings(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const forms = [
    value,
    bytes.toString("hex"),
    encodeURIComponent(value),
    JSON.stringify(value).slice(1, -1),
  ];
  for (let shift = 0; shift < 3; shift++) {
    const shifted = Buffer.concat([Buffer.alloc(shift, 0x20), bytes]);
    for (const alphabet of ["base64", "base64url"] as const) {
      const encoded = shifted.toString(alphabet).replace(/=+$/, "");
      // Characters that also depend on the bytes around the secret.
      const start = Math.ceil((shift * 4) / 3) + 1;
      forms.push(encoded.slice(start, encoded.length - 2));
    }
  }
  return [...new Set(forms)].filter((form) => form.length >= 12);
}

const randomSecret = (prefix: string) =>
  `${prefix}-${randomBytes(30).toString("base64url")}`;

/** A token and its signature, both secrets. */
function rememberToken(name: string, token: string): void {
  secret(name, token);
  const signature = token.split(".")[2];
  if (signature) secret(`${name} signature`, signature);
}

/** A caller of one service that remembers every credential it sends. */
function callerOf(service: TestService, verifier: TokenVerifier) {
  const raw = new RawClient(service.baseUrl);
  const clients = new Map<Protocol, ReturnType<typeof tokenClient>>();
  const headerFor = (authorization?: string): Record<string, string> => {
    if (authorization === undefined) return {};
    secret("Authorization header", authorization);
    const credential = authorization.replace(/^\S+\s+/, "");
    if (credential !== authorization && credential.length >= 12) {
      secret("Authorization credential", credential);
    }
    return { authorization };
  };
  return {
    /** Calls through a real client; resolves with the code. */
    async call(
      request: TokenRequest,
      authorization?: string,
      protocol: Protocol = "Connect JSON",
    ): Promise<string> {
      let client = clients.get(protocol);
      if (client === undefined) {
        client = tokenClient(service.baseUrl, protocol);
        clients.set(protocol, client);
      }
      try {
        const response = await client.createToken(request, {
          headers: headerFor(authorization),
        });
        rememberToken("minted token", response.participantToken);
        await verifier.verify(response.participantToken);
        return "ok";
      } catch (error) {
        if (!(error instanceof ConnectError)) throw error;
        return snakeCase(Code[error.code]);
      }
    },
    /** Sends raw bytes in `lane`; resolves with the code. */
    async raw(
      lane: Lane,
      body: Uint8Array,
      authorization?: string,
      headers: Record<string, string> = {},
    ): Promise<string> {
      const reply = await raw.send(lane, {
        headers: { ...headers, ...headerFor(authorization) },
        body,
      });
      const verdict = readReply(reply);
      if (verdict.kind === "ok") {
        rememberToken("minted token", verdict.response.participantToken);
        return "ok";
      }
      return verdict.kind === "error" ? verdict.code : `http_${verdict.status}`;
    },
    close: () => raw.close(),
  };
}

/** `invalid_argument` for `InvalidArgument`, as Connect spells codes. */
const snakeCase = (name: string) =>
  name.replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());

const laneNamed = (name: string) => lanes.find((l) => l.name === name) as Lane;
const connectJson = laneNamed("Connect JSON/1.1");
const grpcProto = laneNamed("gRPC proto/h2c");
const grpcWebJson = laneNamed("gRPC-Web JSON/h2c");

/** Participant data that the audit log promises never to hold. */
function participantData() {
  const metadata = secret("participant metadata", randomSecret("metadata"));
  const attribute = secret("attribute value", randomSecret("attribute"));
  return { metadata, attribute };
}

describe("no secret reaches the log", () => {
  const outcomes: string[] = [];
  let idp: TestIdentityProvider;
  let signingKey: SigningKey;
  const services: TestService[] = [];

  beforeAll(async () => {
    signingKey = await createSigningKey("RS256", "leak-key-1");
    idp = await startIdentityProvider([signingKey.publicJwk]);
  });
  afterAll(async () => {
    for (const service of services) await service.close();
    await idp?.close();
  });

  it("in development mode", async () => {
    const project = {
      url: "ws://127.0.0.1:7880",
      apiKey: "APIdevleaks",
      apiSecret: secret("API secret (dev)", randomSecret("dev-secret")),
    };
    const key = secret("service key (dev)", randomSecret("dev-key"));
    const service = await startTestService(
      {
        livekit: project,
        auth: {
          serviceKeys: [
            { name: "dev-backend", key, policy: developmentPolicy(3600) },
          ],
          anonymous: developmentPolicy(3600),
        },
        rateLimits: { perAddress: { ratePerSecond: 0.01, burst: 40 } },
      },
      { logger: collectingLogger() },
    );
    services.push(service);
    const c = callerOf(
      service,
      new TokenVerifier(project.apiKey, project.apiSecret),
    );
    const data = participantData();
    try {
      for (const protocol of ["Connect JSON", "gRPC", "gRPC-Web"] as const) {
        outcomes.push(
          await c.call(
            {
              roomName: "dev-room",
              participantMetadata: data.metadata,
              participantAttributes: { tier: data.attribute },
            },
            undefined,
            protocol,
          ),
          await c.call({ roomName: "dev-room" }, `Bearer ${key}`, protocol),
          await c.call({}, `Bearer ${project.apiSecret}`, protocol),
          await c.call({}, `Bearer ${key.slice(0, -1)}x`, protocol),
        );
      }
      outcomes.push(
        await c.raw(connectJson, Buffer.from('{"room_name":'), `Bearer ${key}`),
        await c.raw(
          grpcProto,
          bodyOf(grpcProto, randomBytes(64)),
          `Bearer ${key}`,
        ),
        await c.raw(
          connectJson,
          Buffer.from("{}"),
          `Basic ${Buffer.from(`devkey:${project.apiSecret}`).toString("base64")}`,
        ),
      );
      // Rate limited: the address bucket runs dry.
      for (let i = 0; i < 45; i++) {
        outcomes.push(await c.call({}, `Bearer ${key}`));
      }
    } finally {
      c.close();
    }
    for (const code of [
      "ok",
      "unauthenticated",
      "invalid_argument",
      "resource_exhausted",
    ]) {
      expect(outcomes, code).toContain(code);
    }
  });

  it("in a configured mode with service keys and end users", async () => {
    const project = {
      url: "wss://127.0.0.1:7443",
      apiKey: "APIprodleaks",
      apiSecret: secret("API secret", randomSecret("prod-secret")),
    };
    const keys = {
      backend: secret("service key backend", randomSecret("backend")),
      backendNext: secret("service key backend-next", randomSecret("next")),
      kiosk: secret("service key kiosk", randomSecret("kiosk")),
      recorder: secret("service key recorder", randomSecret("recorder")),
    };
    const config: Partial<ServiceConfig> = {
      dev: false,
      livekit: project,
      auth: {
        serviceKeys: [
          { name: "backend-2024", key: keys.backend, policy: backendPolicy },
          {
            name: "backend-2025",
            key: keys.backendNext,
            policy: backendPolicy,
          },
          { name: "kiosk", key: keys.kiosk, policy: kioskPolicy },
          { name: "recorder", key: keys.recorder, policy: recorderPolicy },
        ],
        users: {
          jwt: { ...userJwtConfig(idp), jwksCooldownMs: 0 },
          policy: memberPolicy,
        },
      },
      rateLimits: { perCaller: { ratePerSecond: 0.01, burst: 30 } },
    };
    const service = await startTestService(config, {
      logger: collectingLogger(),
    });
    services.push(service);
    const c = callerOf(
      service,
      new TokenVerifier(project.apiKey, project.apiSecret),
    );
    const jwt = async (
      claims: Record<string, unknown> = {},
      key = signingKey,
    ) =>
      secret(
        "end-user JWT",
        await signToken(key, {
          iss: idp.issuer,
          aud: audience,
          sub: "alice",
          ...claims,
        }),
      );
    const bearer = (credential: string) => `Bearer ${credential}`;
    const data = participantData();
    const egressSecret = secret("egress S3 secret", randomSecret("s3"));
    const now = Math.floor(Date.now() / 1000);
    try {
      for (const protocol of ["Connect JSON", "gRPC", "gRPC-Web"] as const) {
        outcomes.push(
          // Allowed.
          await c.call(
            {
              roomName: "support-1",
              participantIdentity: "agent-1",
              participantMetadata: data.metadata.slice(0, 200),
              participantAttributes: { role: data.attribute },
              roomConfig: { agents: [{ agentName: "support-agent" }] },
            },
            bearer(keys.backend),
            protocol,
          ),
          await c.call(
            { roomName: "lobby" },
            bearer(keys.backendNext),
            protocol,
          ),
          await c.call({ roomName: "lobby" }, bearer(await jwt()), protocol),
          await c.call(
            {
              roomName: "recorded",
              roomConfig: {
                egress: {
                  room: {
                    roomName: "recorded",
                    output: {
                      case: "file",
                      value: {
                        filepath: "out.mp4",
                        output: {
                          case: "s3",
                          value: { accessKey: "AKIA", secret: egressSecret },
                        },
                      },
                    },
                  },
                },
              },
            },
            bearer(keys.recorder),
            protocol,
          ),
          // Refused by authentication.
          await c.call({ roomName: "lobby" }, undefined, protocol),
          await c.call({}, bearer(randomSecret("unknown")), protocol),
          await c.call({}, bearer(`${keys.backend.slice(0, -1)}_`), protocol),
          await c.call({}, bearer(project.apiSecret), protocol),
          await c.call({}, `${keys.kiosk}`, protocol),
          await c.call({}, `Bearer ${keys.kiosk} trailing`, protocol),
          await c.call({}, bearer(await jwt({ exp: now - 3600 })), protocol),
          await c.call(
            {},
            bearer(await jwt({ aud: "someone-else" })),
            protocol,
          ),
          await c.call(
            {},
            bearer(await jwt({ iss: "https://evil" })),
            protocol,
          ),
          await c.call(
            {},
            bearer(
              await jwt({}, await createSigningKey("RS256", "leak-key-1")),
            ),
            protocol,
          ),
          await c.call(
            {},
            bearer(
              secret(
                "end-user JWT (HS256)",
                await new SignJWT({
                  sub: "mallory",
                  iss: idp.issuer,
                  aud: audience,
                })
                  .setProtectedHeader({ alg: "HS256" })
                  .setExpirationTime("5m")
                  .sign(Buffer.from(project.apiSecret)),
              ),
            ),
            protocol,
          ),
          // Refused by policy.
          await c.call(
            { roomName: "lobby", participantIdentity: "bob" },
            bearer(await jwt()),
            protocol,
          ),
          await c.call(
            { roomName: "secret-room" },
            bearer(await jwt()),
            protocol,
          ),
          await c.call(
            { roomName: "lobby", videoGrant: { canPublish: true } },
            bearer(await jwt()),
            protocol,
          ),
          await c.call(
            { roomName: "kiosk-1", participantIdentity: "chosen" },
            bearer(keys.kiosk),
            protocol,
          ),
          await c.call(
            {
              roomName: "x",
              roomConfig: {
                egress: { tracks: { filepath: egressSecret } },
              },
            },
            bearer(keys.backend),
            protocol,
          ),
          await c.call(
            { roomName: "x", ttl: { seconds: 10n } },
            bearer(keys.backend),
            protocol,
          ),
        );
      }
      // Bad input, sent with a valid credential.
      for (const lane of [connectJson, grpcProto, grpcWebJson]) {
        const auth = bearer(keys.backend);
        const junk = lane.binary
          ? randomBytes(48)
          : Buffer.from('{"room_name":1');
        outcomes.push(
          await c.raw(lane, bodyOf(lane, junk), auth),
          await c.raw(lane, bodyOf(lane, Buffer.alloc(300 * 1024, 0x20)), auth),
          await c.raw(lane, bodyOf(lane, Buffer.from("{}"), 1), auth, {
            [lane.protocol === "connect"
              ? "content-encoding"
              : "grpc-encoding"]: "zstd",
          }),
          await c.raw(
            lane,
            bodyOf(lane, gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)), 1),
            auth,
            {
              [lane.protocol === "connect"
                ? "content-encoding"
                : "grpc-encoding"]: "gzip",
            },
          ),
          await c.raw(lane, bodyOf(lane, Buffer.from("{}")), auth, {
            "content-type": "text/plain",
          }),
          await c.raw(lane, bodyOf(lane, Buffer.from("{}")), auth, {
            [lane.protocol === "connect"
              ? "connect-timeout-ms"
              : "grpc-timeout"]: "soon",
          }),
        );
      }
      // The identity provider fails while a token with a new key arrives.
      idp.mode = "error";
      const rotated = await createSigningKey("RS256", "leak-key-2");
      outcomes.push(
        await c.call({ roomName: "lobby" }, bearer(await jwt({}, rotated))),
      );
      idp.mode = "ok";
      // Rate limited: the kiosk's bucket runs dry.
      for (let i = 0; i < 35; i++) {
        outcomes.push(
          await c.call({ roomName: "kiosk-2" }, bearer(keys.kiosk)),
        );
      }
    } finally {
      c.close();
    }
    for (const code of [
      "ok",
      "unauthenticated",
      "permission_denied",
      "invalid_argument",
      "resource_exhausted",
      "unavailable",
      "unimplemented",
      "http_415",
    ]) {
      expect(outcomes, code).toContain(code);
    }
  });

  it("wrote many lines, and none holds a secret in any encoding", () => {
    const text = written.join("");
    const lines = text.split("\n").filter((line) => line !== "");
    const audit = lines.filter((line) => line.includes('"audit"'));
    // Sanity: the log was collected, with one audit line per decision.
    expect(lines.length).toBeGreaterThan(outcomes.length);
    expect(audit.length).toBeGreaterThan(100);
    expect(secrets.size).toBeGreaterThan(100);

    const leaks: string[] = [];
    let forms = 0;
    for (const [value, name] of secrets) {
      for (const form of encodings(value)) {
        forms++;
        const line = lines.find((l) => l.includes(form));
        if (line !== undefined) {
          leaks.push(`${name} as ${JSON.stringify(form)} in ${line}`);
          break;
        }
      }
    }
    console.info(
      `no-secret-leaks: ${lines.length} log lines (${audit.length} audit) ` +
        `from ${outcomes.length} calls searched for ${secrets.size} ` +
        `secrets in ${forms} encoded forms`,
    );
    expect(leaks).toEqual([]);
  });
});

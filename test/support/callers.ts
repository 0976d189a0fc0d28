import { randomBytes } from "node:crypto";
import {
  Code,
  ConnectError,
  createClient,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { JWTPayload } from "jose";
import { expect } from "vitest";
import { TokenService } from "../../gen/tokenservice/v1/token_service_pb.js";
import type { JwtAuthConfig } from "../../server/auth/jwt.js";
import type { ServiceConfig } from "../../server/config.js";
import type { CallerPolicy } from "../../server/policy/types.js";
import {
  createSigningKey,
  type SigningKey,
  signToken,
  startIdentityProvider,
  type TestIdentityProvider,
} from "./identity-provider.js";
import { type CapturedLog, captureLog } from "./log-capture.js";
import {
  backendPolicy,
  kioskPolicy,
  memberPolicy,
  recorderPolicy,
  type TokenRequest,
} from "./policies.js";
import { startTestService, type TestService } from "./service.js";

/** A transport per protocol, each a real connect-es client transport. */
export const protocols = {
  "Connect JSON": (baseUrl: string): Transport =>
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      useBinaryFormat: false,
    }),
  gRPC: (baseUrl: string): Transport => createGrpcTransport({ baseUrl }),
  /** connect-web's fetch transport, as a browser would call. */
  "gRPC-Web": (baseUrl: string): Transport =>
    createGrpcWebTransport({ baseUrl }),
};

export type Protocol = keyof typeof protocols;

/** A fresh service key: 43 random characters. */
export function newServiceKey(): string {
  return randomBytes(32).toString("base64url");
}

/** The audience end-user tokens must carry. */
export const audience = "token-service";

/** A running service with every kind of caller configured. */
export interface CallerFixture {
  service: TestService;
  idp: TestIdentityProvider;
  /** The key the identity provider publishes and signs with. */
  signingKey: SigningKey;
  log: CapturedLog;
  keys: {
    backend: string;
    /** A second key for `backend`, as during a rotation. */
    backendNext: string;
    kiosk: string;
    recorder: string;
  };
  /** A valid end-user JWT with `claims` over `sub`, `iss`, `aud`. */
  userToken(claims?: JWTPayload): Promise<string>;
  /** Calls CreateToken over `protocol`, with `authorization` if given. */
  call(
    request: TokenRequest,
    authorization?: string,
    protocol?: Protocol,
  ): ReturnType<ReturnType<typeof tokenClient>["createToken"]>;
  close(): Promise<void>;
}

/** A generated client for the token service over `protocol`. */
export function tokenClient(baseUrl: string, protocol: Protocol = "gRPC") {
  return createClient(TokenService, protocols[protocol](baseUrl));
}

/** The end users' JWT settings for the identity provider `idp`. */
export function userJwtConfig(idp: TestIdentityProvider): JwtAuthConfig {
  return {
    issuer: idp.issuer,
    audience,
    jwksUrl: idp.jwksUrl,
    algorithms: ["RS256"],
    clockToleranceSeconds: 30,
    requiredClaims: [],
    identityClaim: "sub",
    nameClaim: "name",
  };
}

/**
 * Starts an identity provider and a production-mode service with service
 * keys for `backend` (two keys), `kiosk` and `recorder`, end users under
 * `memberPolicy`, and anonymous callers only under `options.anonymous`;
 * `options.overrides` apply last.
 */
export async function startCallerFixture(
  options: {
    anonymous?: CallerPolicy;
    overrides?: Partial<ServiceConfig>;
  } = {},
): Promise<CallerFixture> {
  const signingKey = await createSigningKey("RS256", "idp-key-1");
  const idp = await startIdentityProvider([signingKey.publicJwk]);
  const keys = {
    backend: newServiceKey(),
    backendNext: newServiceKey(),
    kiosk: newServiceKey(),
    recorder: newServiceKey(),
  };
  const log = captureLog();
  const service = await startTestService(
    {
      dev: false,
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
        users: { jwt: userJwtConfig(idp), policy: memberPolicy },
        ...(options.anonymous && { anonymous: options.anonymous }),
      },
      ...options.overrides,
    },
    { logger: log.logger },
  );
  const clients = new Map<Protocol, ReturnType<typeof tokenClient>>();
  return {
    service,
    idp,
    signingKey,
    log,
    keys,
    userToken: (claims = {}) =>
      signToken(signingKey, {
        iss: idp.issuer,
        aud: audience,
        sub: "alice",
        ...claims,
      }),
    call(request, authorization, protocol = "gRPC") {
      let client = clients.get(protocol);
      if (client === undefined) {
        client = tokenClient(service.baseUrl, protocol);
        clients.set(protocol, client);
      }
      const headers: Record<string, string> =
        authorization === undefined ? {} : { authorization };
      return client.createToken(request, { headers });
    },
    async close() {
      await service.close();
      await idp.close();
    },
  };
}

/**
 * Checks that a call was refused with exactly `code`, with no response and
 * so no token, and that the service logged no `allowed` decision meanwhile.
 *
 * @returns the error, for further checks.
 */
export async function expectRefused(
  log: CapturedLog,
  call: () => Promise<unknown>,
  code: Code,
): Promise<ConnectError> {
  const allowedBefore = countAllowed(log);
  const result = await call().then(
    (response) => ({ response }),
    (error: unknown) => ({ error }),
  );
  expect(result, "the call succeeded").not.toHaveProperty("response");
  const error = (result as { error: unknown }).error;
  expect(error).toBeInstanceOf(ConnectError);
  expect(Code[(error as ConnectError).code]).toBe(Code[code]);
  expect(countAllowed(log), "a token was minted").toBe(allowedBefore);
  return error as ConnectError;
}

function countAllowed(log: CapturedLog): number {
  return log.auditLines().filter((line) => line.audit === "allowed").length;
}

/** `Bearer <credential>` */
export function bearer(credential: string): string {
  return `Bearer ${credential}`;
}

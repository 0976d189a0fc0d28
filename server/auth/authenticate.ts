import { Code, ConnectError } from "@connectrpc/connect";
import type { CallerPolicy } from "../policy/types.js";
import type { Caller } from "./caller.js";
import { createJwtVerifier, type JwtAuthConfig } from "./jwt.js";
import { type ServiceKey, ServiceKeyRing } from "./service-keys.js";

/** Who may call, and under which policy. */
export interface AuthSettings {
  /** Keys of backend callers; each names its policy. */
  serviceKeys: ServiceKey[];
  /** End users with JWTs from an identity provider. */
  users?: { jwt: JwtAuthConfig; policy: CallerPolicy };
  /** The policy of callers without credentials; absent: refused. */
  anonymous?: CallerPolicy;
}

/** Establishes who a caller is from its `Authorization` header. */
export interface Authenticator {
  /**
   * @throws ConnectError `unauthenticated` for a missing, malformed or
   * unknown credential; `unavailable` when the identity provider cannot be
   * reached to check one.
   */
  authenticate(authorization: string | undefined): Promise<Caller>;
}

const bearer = /^Bearer +([\x21-\x7e]+) *$/i;

/**
 * Creates the authenticator for the configured callers. A bearer
 * credential is tried as a service key first, then as an end-user JWT. A
 * credential that is sent but not accepted is refused even where anonymous
 * callers are allowed: a caller that meant to authenticate must learn that
 * it failed.
 */
export function createAuthenticator(settings: AuthSettings): Authenticator {
  const keys = new ServiceKeyRing(settings.serviceKeys);
  const users = settings.users;
  const verifier = users ? createJwtVerifier(users.jwt) : undefined;

  return {
    async authenticate(authorization) {
      if (authorization === undefined) {
        if (settings.anonymous) {
          return { kind: "anonymous", policy: settings.anonymous };
        }
        throw unauthenticated(
          "missing credentials: send Authorization: Bearer",
        );
      }
      const credential = bearer.exec(authorization)?.[1];
      if (credential === undefined) {
        throw unauthenticated("authorization must be a Bearer credential");
      }
      const service = keys.match(credential);
      if (service !== undefined) return service;
      if (verifier === undefined || users === undefined) {
        throw unauthenticated("unknown service key");
      }
      if (credential.split(".").length !== 3) {
        throw unauthenticated("unknown service key or malformed token");
      }
      const user = await verifier.verify(credential);
      return { kind: "user", ...user, policy: users.policy };
    },
  };
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

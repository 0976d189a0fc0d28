import { ConnectError } from "@connectrpc/connect";
import { type Caller, describeCaller } from "./auth/caller.js";
import type { TokenClaims } from "./mint.js";
import { PolicyError } from "./policy/policy-error.js";
import { codeName } from "./unary/unary-route.js";

/** The fields a call's log line carries about its token decision. */
export type AuditRecord = Record<string, unknown> & {
  audit: "allowed" | "refused";
};

/**
 * What was granted to whom: caller, policy, identity, room, grant, agents,
 * TTL and attribute keys. Never the token, a secret, a credential, or
 * metadata and attribute values.
 */
export function allowedRecord(
  caller: Caller,
  claims: TokenClaims,
  agents: readonly string[],
): AuditRecord {
  return {
    audit: "allowed",
    caller: describeCaller(caller),
    policy: caller.policy.name,
    identity: claims.identity,
    room: claims.room,
    grant: claims.grant,
    agents,
    ttlSeconds: claims.ttlSeconds,
    attributeKeys: Object.keys(claims.attributes ?? {}),
  };
}

/**
 * Which rule refused a caller's request: a policy rule, `request` for the
 * server's own limits and validation, or `authentication` and
 * `rate_limit` for calls refused from their headers alone (where an
 * unauthenticated caller is named `unauthenticated`).
 */
export function refusedRecord(
  caller: Caller | undefined,
  error: unknown,
  rule?: "authentication" | "rate_limit",
): AuditRecord {
  const refusal = ConnectError.from(error);
  return {
    audit: "refused",
    caller: caller ? describeCaller(caller) : "unauthenticated",
    ...(caller && { policy: caller.policy.name }),
    code: codeName(refusal.code),
    rule: rule ?? (error instanceof PolicyError ? error.rule : "request"),
    reason: refusal.rawMessage,
  };
}

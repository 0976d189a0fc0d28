import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { RoomConfigurationSchema } from "../gen/livekit/room_configuration_pb.js";
import { type Caller, describeCaller } from "./auth/caller.js";
import type { Logger } from "./logger.js";
import type { TokenClaims } from "./mint.js";
import { PolicyError } from "./policy/policy-error.js";

/**
 * Writes one structured line per token decision: who asked, what was
 * granted or which rule refused. It never holds the token, a secret, a
 * credential, metadata or attribute values.
 */
export function auditDecision(
  logger: Logger,
  caller: Caller,
  outcome: { claims: TokenClaims } | { error: unknown },
): void {
  const who = { caller: describeCaller(caller), policy: caller.policy.name };
  if ("claims" in outcome) {
    const { claims } = outcome;
    logger.info(
      {
        audit: "allowed",
        ...who,
        identity: claims.identity,
        room: claims.room,
        grant: claims.grant,
        agents: agentNames(claims.roomConfig),
        ttlSeconds: claims.ttlSeconds,
        attributeKeys: Object.keys(claims.attributes ?? {}),
      },
      "token minted",
    );
    return;
  }
  const error = ConnectError.from(outcome.error);
  logger.info(
    {
      audit: "refused",
      ...who,
      code: Code[error.code],
      rule:
        outcome.error instanceof PolicyError ? outcome.error.rule : "request",
      reason: error.rawMessage,
    },
    "token refused",
  );
}

function agentNames(roomConfig: Uint8Array): string[] {
  if (roomConfig.length === 0) return [];
  return fromBinary(RoomConfigurationSchema, roomConfig).agents.map(
    (agent) => agent.agentName,
  );
}

/**
 * Writes one structured line for a call refused before its request was
 * read: by authentication (the caller is then unknown) or by a rate limit.
 * Like every audit line, it never holds a credential.
 */
export function auditAdmission(
  logger: Logger,
  rule: "authentication" | "rate_limit",
  error: unknown,
  caller?: Caller,
): void {
  const refusal = ConnectError.from(error);
  logger.info(
    {
      audit: "refused",
      caller: caller ? describeCaller(caller) : "unauthenticated",
      ...(caller && { policy: caller.policy.name }),
      code: Code[refusal.code],
      rule,
      reason: refusal.rawMessage,
    },
    "token refused",
  );
}

import type { Duration } from "@bufbuild/protobuf/wkt";
import type { TokenLifetimes } from "../config.js";
import { PolicyError } from "./policy-error.js";
import type { CallerPolicy } from "./types.js";

/** LiveKit's shortest useful token: clients refresh 60 s before expiry. */
export const minTtlSeconds = 120;

/**
 * The TTL to mint with: the requested one, else the server's default,
 * clamped to the server's and the policy's maximum.
 *
 * @throws PolicyError (`invalid_argument`) when the request asks for less
 * than the minimum, which livekit-client could not use.
 */
export function resolveTtlSeconds(
  ttl: Duration | undefined,
  lifetimes: TokenLifetimes,
  policy: Pick<CallerPolicy, "maxTtlSeconds">,
): number {
  const max = Math.min(lifetimes.maxSeconds, policy.maxTtlSeconds);
  if (ttl === undefined) return Math.min(lifetimes.defaultSeconds, max);
  const seconds = Number(ttl.seconds) + ttl.nanos / 1e9;
  if (!(seconds >= minTtlSeconds)) {
    throw new PolicyError(
      "ttl",
      `ttl must be at least ${minTtlSeconds}s: livekit-client refreshes ` +
        "tokens 60s before they expire",
      "invalid_argument",
    );
  }
  return Math.min(Math.floor(seconds), max);
}

import { type ClaimGrants, TokenVerifier } from "livekit-server-sdk";
import { testProject } from "./service.js";

const verifier = new TokenVerifier(testProject.apiKey, testProject.apiSecret);

/**
 * Verifies a participant token with the test project's API key and secret,
 * as a LiveKit server would, and returns its claims.
 *
 * @throws when the signature, issuer or `exp` is not valid.
 */
export function verifyToken(token: string): Promise<ClaimGrants> {
  return verifier.verify(token);
}

/** The first agent dispatch of a token's `roomConfig` claim, if any. */
export function firstAgent(claims: ClaimGrants) {
  return claims.roomConfig?.agents[0];
}

/** A token's lifetime in seconds: `exp - nbf`. */
export function lifetimeSeconds(claims: ClaimGrants): number {
  if (claims.exp === undefined || claims.nbf === undefined) {
    throw new Error("token has no exp or nbf");
  }
  return claims.exp - claims.nbf;
}

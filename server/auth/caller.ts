import type { JWTPayload } from "jose";
import type { CallerPolicy } from "../policy/types.js";

/** A backend service that presented one of the configured service keys. */
export interface ServiceCaller {
  kind: "service";
  /** The key's configured name, safe to log. */
  name: string;
  policy: CallerPolicy;
}

/** An end user that presented a verified JWT from the identity provider. */
export interface UserCaller {
  kind: "user";
  /** The participant identity, read from the configured claim. */
  identity: string;
  /** The display name, read from the configured claim, if any. */
  name?: string;
  /** The verified claims, for room templates such as `team-{org}-*`. */
  claims: JWTPayload;
  policy: CallerPolicy;
}

/** A caller without credentials, where anonymous callers are allowed. */
export interface AnonymousCaller {
  kind: "anonymous";
  policy: CallerPolicy;
}

/** Who is asking for a token, as established by authentication. */
export type Caller = ServiceCaller | UserCaller | AnonymousCaller;

/** A name for the caller in logs and metrics; never a credential. */
export function describeCaller(caller: Caller): string {
  switch (caller.kind) {
    case "service":
      return `service:${caller.name}`;
    case "user":
      return `user:${caller.identity}`;
    case "anonymous":
      return "anonymous";
  }
}

import { hash, timingSafeEqual } from "node:crypto";
import type { CallerPolicy } from "../policy/types.js";
import type { ServiceCaller } from "./caller.js";

/** A configured service key. The key itself is never logged. */
export interface ServiceKey {
  /** A name for logs and metrics, such as `billing-backend`. */
  name: string;
  key: string;
  policy: CallerPolicy;
}

/** The shortest service key accepted, in characters. */
export const minServiceKeyLength = 32;

/**
 * Matches presented bearer keys against the configured service keys.
 *
 * Every comparison is over SHA-256 digests in constant time, and every key
 * is compared on every call, so neither the time taken nor an early exit
 * tells which key came close. Several keys may name the same policy, which
 * is how a key is rotated: add the new one, move callers, remove the old.
 */
export class ServiceKeyRing {
  private readonly entries: { digest: Buffer; caller: ServiceCaller }[];

  constructor(keys: readonly ServiceKey[]) {
    this.entries = keys.map(({ name, key, policy }) => ({
      digest: sha256(key),
      caller: { kind: "service", name, policy },
    }));
  }

  /** The caller whose key this is, or undefined. */
  match(presented: string): ServiceCaller | undefined {
    const digest = sha256(presented);
    let found: ServiceCaller | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest)) found ??= entry.caller;
    }
    return found;
  }

  get size(): number {
    return this.entries.length;
  }
}

function sha256(text: string): Buffer {
  return hash("sha256", text, "buffer");
}

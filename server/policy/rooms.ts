import type { JWTPayload } from "jose";

/** Characters a claim value may have to be put into a room template. */
const templateValue = /^[A-Za-z0-9_]+$/;
const placeholder = /\{([A-Za-z0-9_.:-]+)\}/g;

/**
 * Checks a room pattern from the configuration: `*`, an exact name, a
 * prefix ending in `*`, or a template with `{claim}` placeholders.
 *
 * A placeholder must be followed by the end of the pattern or by a
 * character a claim value cannot contain (such as `-`), so that one
 * tenant's prefix can never be the start of another's.
 *
 * @returns a reason when the pattern is invalid, else undefined
 */
export function checkRoomPattern(pattern: string): string | undefined {
  if (pattern === "") return "must not be empty";
  const star = pattern.indexOf("*");
  if (star !== -1 && star !== pattern.length - 1) {
    return "* may only end a pattern";
  }
  for (const match of pattern.matchAll(placeholder)) {
    const next = pattern[match.index + match[0].length];
    if (next !== undefined && /[A-Za-z0-9_*{]/.test(next)) {
      return `{${match[1]}} must be followed by a separator such as - or the end`;
    }
  }
  const stray = pattern.replace(placeholder, "");
  if (/[{}]/.test(stray)) return "has an unbalanced { or }";
  return undefined;
}

/**
 * Whether `room` matches any of `patterns`, with placeholders filled from
 * the caller's claims. A claim that is missing, not a string, or holds
 * anything but letters, digits and `_` makes its pattern match nothing.
 */
export function roomAllowed(
  room: string,
  patterns: readonly string[],
  claims: JWTPayload | undefined,
): boolean {
  return patterns.some((pattern) => {
    const filled = fillTemplate(pattern, claims);
    if (filled === undefined) return false;
    if (filled.endsWith("*")) return room.startsWith(filled.slice(0, -1));
    return room === filled;
  });
}

function fillTemplate(
  pattern: string,
  claims: JWTPayload | undefined,
): string | undefined {
  let unusable = false;
  const filled = pattern.replace(placeholder, (_, claim: string) => {
    const value = claims?.[claim];
    if (typeof value !== "string" || !templateValue.test(value)) {
      unusable = true;
      return "";
    }
    return value;
  });
  return unusable ? undefined : filled;
}

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a duration such as `600`, `90s`, `10m`, `6h` or `1d` into whole
 * seconds. A bare number is seconds.
 *
 * Returns undefined when the text is not such a duration.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (match === null) return undefined;
  const [, amount, unit] = match;
  return Number(amount) * (unitSeconds[unit || "s"] ?? 1);
}

import { ConfigError } from "./config-error.js";

/**
 * Typed reads from one object of a parsed config document, each naming the
 * full dotted path of the key in its error.
 */
export class Fields {
  private constructor(
    private readonly value: Record<string, unknown>,
    private readonly prefix: string,
  ) {}

  /**
   * Wraps `value`, which must be an object (or absent, read as empty).
   *
   * @throws ConfigError when it is anything else.
   */
  static of(value: unknown, path: string): Fields {
    if (value === undefined || value === null) return new Fields({}, path);
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new ConfigError(path || "(root)", "must be an object");
    }
    return new Fields(value as Record<string, unknown>, path);
  }

  /** The dotted path of `key` within this object. */
  path(key: string): string {
    if (key === "") return this.prefix || "(root)";
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  keys(): string[] {
    return Object.keys(this.value);
  }

  /** @throws ConfigError for a key not in `allowed`, such as a typo. */
  only(allowed: readonly string[]): void {
    for (const key of Object.keys(this.value)) {
      if (!allowed.includes(key)) {
        throw new ConfigError(
          this.path(key),
          `unknown key; expected one of ${allowed.join(", ")}`,
        );
      }
    }
  }

  object(key: string): Fields {
    return Fields.of(this.value[key], this.path(key));
  }

  list(key: string): Fields[] {
    const value = this.value[key] ?? [];
    if (!Array.isArray(value)) {
      throw new ConfigError(this.path(key), "must be a list");
    }
    return value.map((item, i) => Fields.of(item, `${this.path(key)}[${i}]`));
  }

  string(key: string): string {
    const value = this.optionalString(key);
    if (value === undefined)
      throw new ConfigError(this.path(key), "is required");
    return value;
  }

  optionalString(key: string): string | undefined {
    const value = this.value[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string" || value === "") {
      throw new ConfigError(this.path(key), "must be a non-empty string");
    }
    return value;
  }

  strings(key: string, fallback: string[] | undefined): string[] {
    const value = this.value[key];
    if (value === undefined || value === null) {
      if (fallback === undefined) {
        throw new ConfigError(this.path(key), "is required");
      }
      return fallback;
    }
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      throw new ConfigError(this.path(key), "must be a list of strings");
    }
    return value as string[];
  }

  stringOrStrings(key: string): string | string[] {
    const value = this.value[key];
    return typeof value === "string"
      ? this.string(key)
      : this.strings(key, undefined);
  }

  /** A string, or a number written as its decimal text. */
  stringOrNumber(key: string): string {
    const value = this.value[key];
    return typeof value === "number" ? String(value) : this.string(key);
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.value[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") {
      throw new ConfigError(this.path(key), "must be true or false");
    }
    return value;
  }

  number(
    key: string,
    fallback: number | undefined,
    min: number,
    max: number,
  ): number {
    const value = this.value[key];
    if (value === undefined || value === null) {
      if (fallback === undefined) {
        throw new ConfigError(this.path(key), "is required");
      }
      return fallback;
    }
    if (typeof value !== "number" || !(value >= min && value <= max)) {
      throw new ConfigError(
        this.path(key),
        `must be a number from ${min} to ${max}`,
      );
    }
    return value;
  }
}

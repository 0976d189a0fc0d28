/** A configuration value that is missing or invalid, naming its key. */
export class ConfigError extends Error {
  constructor(
    /** The key at fault: an env variable, a flag or a dotted file path. */
    readonly key: string,
    reason: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = "ConfigError";
  }
}

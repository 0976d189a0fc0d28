import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A request refused by a rule, naming the rule for the audit log.
 *
 * It is a `ConnectError`, `permission_denied` unless stated otherwise, so it
 * reaches the caller with its code and message.
 */
export class PolicyError extends ConnectError {
  constructor(
    /** The rule that refused, such as `rooms` or `room_config.egress`. */
    readonly rule: string,
    message: string,
    kind: "permission_denied" | "invalid_argument" = "permission_denied",
  ) {
    super(
      message,
      kind === "permission_denied"
        ? Code.PermissionDenied
        : Code.InvalidArgument,
    );
  }
}

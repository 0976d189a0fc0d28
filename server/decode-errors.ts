import type { UniversalHandler } from "@connectrpc/connect/protocol";

/** Placeholder: passes responses through unchanged. */
export function reportDecodeErrorsAsInvalidArgument(
  handler: UniversalHandler,
): UniversalHandler {
  return handler;
}

import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/**
 * Awaits a call that must fail, and checks that it failed with a
 * `ConnectError` of exactly `code` (so no response, and no token, came
 * back).
 *
 * @returns the error, for further checks.
 */
export async function expectConnectError(
  call: Promise<unknown>,
  code: Code,
): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "the call succeeded").toBeInstanceOf(ConnectError);
  const connectError = error as ConnectError;
  expect(Code[connectError.code]).toBe(Code[code]);
  return connectError;
}

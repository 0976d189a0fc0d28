// The playground page's script, bundled for the browser by esbuild
// (see serve.ts). It fetches tokens through the client SDK exactly as an
// app would: createTokenSource over connect-web's Connect transport.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  decodeTokenPayload,
  type TokenSourceFetchOptions,
} from "livekit-client";
import { createTokenSource } from "../../client/index.js";

/**
 * The token service to call: the `service` query parameter, an http(s)
 * URL, or else the page's own origin.
 */
function serviceBaseUrl(): string {
  const given = new URLSearchParams(location.search).get("service");
  if (given === null || given === "") return location.origin;
  const url = new URL(given);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`service must be an http(s) URL, not ${given}`);
  }
  return given.replace(/\/+$/, "");
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

/** `InvalidArgument` → `invalid_argument`, as Connect spells codes. */
function codeName(code: Code): string {
  return (Code[code] ?? String(code))
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

/** The text shown for a failed fetch: `[code] message`. */
function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  return `[${codeName(e.code)}] ${e.rawMessage}`;
}

/** The value of an input, or `undefined` when it is blank. */
function field(id: string): string | undefined {
  const value = element<HTMLInputElement>(id).value.trim();
  return value === "" ? undefined : value;
}

function main(): void {
  const form = element<HTMLFormElement>("token-form");
  const button = element<HTMLButtonElement>("fetch-token");
  const status = element("status");
  const errorBox = element("error");
  const result = element("result");

  const showError = (text: string) => {
    errorBox.textContent = text;
    errorBox.hidden = false;
  };

  let baseUrl: string;
  try {
    baseUrl = serviceBaseUrl();
  } catch (error) {
    element("service-url").textContent = "(invalid)";
    showError(error instanceof Error ? error.message : String(error));
    return;
  }
  element("service-url").textContent = baseUrl;
  const tokenSource = createTokenSource({ baseUrl });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const options: TokenSourceFetchOptions = {
      roomName: field("room"),
      participantIdentity: field("identity"),
      participantName: field("name"),
      agentName: field("agent-name"),
    };
    button.disabled = true;
    status.textContent = "Fetching…";
    errorBox.hidden = true;
    result.hidden = true;
    try {
      // force: every click asks the service, rather than the cached token.
      const response = await tokenSource.fetch(options, true);
      const payload = decodeTokenPayload(response.participantToken);
      element("result-server-url").textContent = response.serverUrl;
      element("result-identity").textContent = payload.sub ?? "";
      element("result-name").textContent = payload.name ?? "";
      element("result-room").textContent = payload.video?.room ?? "";
      element("result-expires").textContent =
        payload.exp === undefined
          ? ""
          : new Date(payload.exp * 1000).toISOString();
      element("result-grants").textContent = JSON.stringify(
        payload.video ?? {},
        null,
        2,
      );
      element("result-payload").textContent = JSON.stringify(payload, null, 2);
      result.hidden = false;
      status.textContent = "Token fetched.";
    } catch (error) {
      showError(describeError(error));
      status.textContent = "Failed.";
    } finally {
      button.disabled = false;
    }
  });
  button.disabled = false;
  status.textContent = "Ready.";
}

main();

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

/** How the test identity provider answers JWKS requests. */
export type IdentityProviderMode =
  /** 200 with the current key set. */
  | "ok"
  /** 500 with an empty body. */
  | "error"
  /** 200 with a body that is not JSON. */
  | "garbage"
  /** Accepts the request and never answers. */
  | "hang";

/** A JWKS endpoint on `127.0.0.1`, port 0, that counts its fetches. */
export interface TestIdentityProvider {
  /** `http://127.0.0.1:<port>`, also used as the tokens' issuer. */
  issuer: string;
  /** `<issuer>/.well-known/jwks.json` */
  jwksUrl: string;
  /** How many times the key set was requested. */
  readonly fetches: number;
  mode: IdentityProviderMode;
  /** The published keys; change freely to rotate. */
  keys: JWK[];
  close(): Promise<void>;
}

/** Starts a JWKS endpoint publishing `keys`. */
export async function startIdentityProvider(
  keys: JWK[],
): Promise<TestIdentityProvider> {
  let fetches = 0;
  const server: Server = createServer((request, response) => {
    if (request.url !== "/.well-known/jwks.json") {
      response.writeHead(404).end();
      return;
    }
    fetches++;
    switch (idp.mode) {
      case "ok":
        response
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ keys: idp.keys }));
        return;
      case "error":
        response.writeHead(500).end();
        return;
      case "garbage":
        response
          .writeHead(200, { "content-type": "application/json" })
          .end("<html>not a key set</html>");
        return;
      case "hang":
        return;
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const idp: TestIdentityProvider = {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    get fetches() {
      return fetches;
    },
    mode: "ok",
    keys: [...keys],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return idp;
}

/** An asymmetric signing key with its public halves. */
export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  /** The public key as a JWK carrying `kid`, `alg` and `use`. */
  publicJwk: JWK;
  /** The public key as PEM SPKI. */
  publicPem: string;
}

/** Generates a key pair for `alg` (such as `RS256` or `ES256`). */
export async function createSigningKey(
  alg: string,
  kid: string,
): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  const publicPem = await exportSPKI(publicKey);
  return { alg, kid, privateKey, publicJwk, publicPem };
}

/**
 * Signs `claims` with `key`; `exp` defaults to five minutes from now and
 * `iat` to now. `header` overrides the protected header, such as `kid`.
 */
export function signToken(
  key: SigningKey,
  claims: JWTPayload,
  header: { kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey);
}

/** Base64url of the JSON of `value`, for tokens built by hand. */
export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

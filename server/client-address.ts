import { BlockList, isIP, SocketAddress } from "node:net";

/**
 * The set of reverse proxies whose `X-Forwarded-For` entries are believed.
 */
export interface TrustedProxies {
  /**
   * Whether `address` (an IPv4 or IPv6 address, IPv4-mapped IPv6 included)
   * is a trusted proxy. Anything that is not an IP address is not trusted.
   */
  contains(address: string): boolean;
}

/**
 * Parses the trusted-proxy configuration: each entry an IPv4 or IPv6
 * address (`10.0.0.1`, `::1`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
 * Surrounding whitespace is ignored. An IPv4-mapped IPv6 entry
 * (`::ffff:10.0.0.1`, `::ffff:10.0.0.0/104`) is read as the IPv4 address
 * or range it maps. An empty list trusts nobody, which is the default:
 * without trusted proxies `X-Forwarded-For` is never read.
 *
 * @throws Error naming the first entry that is not an address or a CIDR
 *   range with a prefix length in range (0-32 for IPv4, 0-128 for IPv6).
 */
export function parseTrustedProxies(entries: string[]): TrustedProxies {
  if (entries.length === 0) return { contains: () => false };
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const slash = entry.indexOf("/");
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const prefixText = slash === -1 ? undefined : entry.slice(slash + 1);
    let family = isIP(address);
    if (family === 0 || address.includes("%")) {
      throw new Error(
        `invalid trusted proxy ${JSON.stringify(raw)}: not an IP address or CIDR range`,
      );
    }
    let base = address;
    const maxPrefix = family === 4 ? 32 : 128;
    const mapped = ipv4Mapped(address);
    if (mapped !== undefined) {
      base = mapped;
      family = 4;
    }
    if (prefixText === undefined) {
      list.addAddress(base, family === 4 ? "ipv4" : "ipv6");
      continue;
    }
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new Error(
        `invalid trusted proxy ${JSON.stringify(raw)}: prefix length must be 0-${maxPrefix}`,
      );
    }
    let prefix = Number(prefixText);
    if (mapped !== undefined) {
      // `::ffff:a.b.c.d/n` covers IPv4 addresses only when n >= 96.
      if (prefix < 96) {
        throw new Error(
          `invalid trusted proxy ${JSON.stringify(raw)}: an IPv4-mapped range needs a prefix length of 96-128`,
        );
      }
      prefix -= 96;
    }
    list.addSubnet(base, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return {
    contains(address: string): boolean {
      const normalised = normaliseAddress(address);
      if (normalised === undefined) {
        return false;
      }
      return list.check(normalised, isIP(normalised) === 4 ? "ipv4" : "ipv6");
    },
  };
}

/**
 * Resolves the address of the client a request came from, for rate limits
 * and logs.
 *
 * - The client is the socket peer, unless the peer is a trusted proxy.
 * - If it is, `X-Forwarded-For` (all header values, joined with commas) is
 *   walked from the right, skipping trusted hops, and the rightmost
 *   untrusted hop is the client. Entries left of it were written by the
 *   client itself (or by proxies nobody vouches for) and are ignored, so a
 *   client cannot spoof its address by prepending hops.
 * - If every hop is trusted, the leftmost hop is the client.
 * - An entry that is not an IP address (such as `unknown`, or `1.2.3.4:80`)
 *   stops the walk and is returned as is, trimmed: it is never skipped, so a
 *   value further left cannot be promoted past it. The result is therefore
 *   not always an IP address; treat it as an opaque key.
 * - Empty list elements (`a,,b`, a trailing comma) are ignored, as HTTP's
 *   list syntax requires (RFC 9110 §5.6.1); they are not hops.
 * - If the peer is trusted and the header is absent or empty, the client is
 *   the peer.
 *
 * Addresses are normalised: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes
 * IPv4 (`1.2.3.4`), and IPv6 is written in its canonical lowercase,
 * compressed form, without a zone index.
 *
 * @param socketAddress the TCP peer (`socket.remoteAddress`); `undefined`
 *   (a closed socket) gives `"unknown"`.
 * @param forwardedFor the `X-Forwarded-For` header value or values.
 * @param trusted from {@link parseTrustedProxies}.
 * @returns the client address; never throws.
 */
export function resolveClientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxies,
): string {
  if (socketAddress === undefined || socketAddress === "") {
    return "unknown";
  }
  const peer = normaliseAddress(socketAddress) ?? socketAddress;
  if (!trusted.contains(peer) || forwardedFor === undefined) {
    return peer;
  }
  const joined =
    typeof forwardedFor === "string" ? forwardedFor : forwardedFor.join(",");
  const hops = joined
    .split(",")
    .map((hop) => hop.trim())
    .filter((hop) => hop !== "");
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    const address = normaliseAddress(hop);
    if (address === undefined) {
      return hop;
    }
    client = address;
    if (!trusted.contains(address)) {
      return address;
    }
  }
  // Every hop was trusted: the leftmost is the best we know.
  return client;
}

/**
 * The canonical form of an IP address, IPv4-mapped IPv6 as IPv4, or
 * `undefined` if `value` is not an IP address.
 */
function normaliseAddress(value: string): string | undefined {
  const family = isIP(value);
  if (family === 4) {
    return value;
  }
  if (family !== 6) {
    return undefined;
  }
  const mapped = ipv4Mapped(value);
  if (mapped !== undefined) {
    return mapped;
  }
  return new SocketAddress({ address: value, family: "ipv6" }).address;
}

/** The IPv4 address an IPv4-mapped IPv6 address maps, if it is one. */
function ipv4Mapped(ipv6: string): string | undefined {
  if (isIP(ipv6) !== 6) {
    return undefined;
  }
  const canonical = new SocketAddress({ address: ipv6, family: "ipv6" })
    .address;
  const match = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(canonical);
  return match?.[1];
}

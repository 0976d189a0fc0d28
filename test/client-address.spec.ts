import { describe, expect, it } from "vitest";
import {
  parseTrustedProxies,
  resolveClientAddress,
} from "../server/client-address.js";

/** Our proxies: a load balancer range, one IPv6 proxy range, localhost. */
const trusted = parseTrustedProxies([
  "10.0.0.0/8",
  "127.0.0.1",
  "2001:db8:ffff::/48",
]);

describe("resolveClientAddress", () => {
  const cases: {
    name: string;
    peer: string | undefined;
    xff?: string | string[];
    want: string;
  }[] = [
    {
      name: "untrusted peer, no header",
      peer: "203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "untrusted peer: its X-Forwarded-For is ignored",
      peer: "203.0.113.7",
      xff: "198.51.100.1",
      want: "203.0.113.7",
    },
    {
      name: "untrusted peer claiming to be behind our proxy",
      peer: "203.0.113.7",
      xff: "198.51.100.1, 10.0.0.5",
      want: "203.0.113.7",
    },
    {
      name: "trusted peer, no header: the peer",
      peer: "10.0.0.5",
      want: "10.0.0.5",
    },
    {
      name: "trusted peer, empty header: the peer",
      peer: "10.0.0.5",
      xff: "",
      want: "10.0.0.5",
    },
    {
      name: "trusted peer, one hop",
      peer: "10.0.0.5",
      xff: "203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "spoofing: client prepends a fake hop",
      peer: "10.0.0.5",
      xff: "1.1.1.1, 203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "spoofing: client prepends a fake trusted hop",
      peer: "10.0.0.5",
      xff: "10.9.9.9, 203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "spoofing: fake hops in an earlier header line",
      peer: "10.0.0.5",
      xff: ["8.8.8.8, 10.1.1.1", "203.0.113.7"],
      want: "203.0.113.7",
    },
    {
      name: "chain of trusted proxies is skipped",
      peer: "10.0.0.5",
      xff: "1.1.1.1, 203.0.113.7, 10.2.0.1, 127.0.0.1",
      want: "203.0.113.7",
    },
    {
      name: "all hops trusted: the leftmost",
      peer: "10.0.0.5",
      xff: "10.3.0.1, 10.2.0.1",
      want: "10.3.0.1",
    },
    {
      name: "garbage hop stops the walk and is the client",
      peer: "10.0.0.5",
      xff: "203.0.113.7, unknown, 10.2.0.1",
      want: "unknown",
    },
    {
      name: "address with a port is garbage, not skipped",
      peer: "10.0.0.5",
      xff: "1.1.1.1, 203.0.113.7:4711",
      want: "203.0.113.7:4711",
    },
    {
      name: "leading zeros are garbage",
      peer: "10.0.0.5",
      xff: "010.0.0.1",
      want: "010.0.0.1",
    },
    {
      name: "empty list elements are not hops",
      peer: "10.0.0.5",
      xff: "1.1.1.1,, 203.0.113.7 ,",
      want: "203.0.113.7",
    },
    {
      name: "IPv4-mapped IPv6 peer is normalised and trusted",
      peer: "::ffff:10.0.0.5",
      xff: "203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "IPv4-mapped IPv6 untrusted peer is normalised",
      peer: "::ffff:203.0.113.7",
      want: "203.0.113.7",
    },
    {
      name: "IPv4-mapped IPv6 hop is normalised",
      peer: "10.0.0.5",
      xff: "::ffff:198.51.100.9",
      want: "198.51.100.9",
    },
    {
      name: "IPv4-mapped trusted hop is skipped",
      peer: "10.0.0.5",
      xff: "198.51.100.9, ::FFFF:10.1.1.1",
      want: "198.51.100.9",
    },
    {
      name: "IPv6 peer in a trusted range, IPv6 client",
      peer: "2001:db8:ffff:1::2",
      xff: "2001:DB8:0:0::abcd",
      want: "2001:db8::abcd",
    },
    {
      name: "IPv6 peer outside the trusted range",
      peer: "2001:db8:fffe::1",
      xff: "2001:db8::abcd",
      want: "2001:db8:fffe::1",
    },
    {
      name: "IPv6 hops: trusted ones are skipped",
      peer: "127.0.0.1",
      xff: "2001:db8::1, 2001:db8::2, 2001:db8:ffff::9",
      want: "2001:db8::2",
    },
    {
      name: "CIDR edges: 10.255.255.255 trusted, 11.0.0.0 not",
      peer: "10.255.255.255",
      xff: "9.9.9.9, 11.0.0.0, 10.0.0.0",
      want: "11.0.0.0",
    },
    { name: "no socket address", peer: undefined, want: "unknown" },
  ];

  it.each(cases)("$name", ({ peer, xff, want }) => {
    expect(resolveClientAddress(peer, xff, trusted)).toBe(want);
  });

  it("trusts nobody with an empty list", () => {
    const none = parseTrustedProxies([]);
    expect(resolveClientAddress("127.0.0.1", "203.0.113.7", none)).toBe(
      "127.0.0.1",
    );
  });
});

describe("parseTrustedProxies", () => {
  it("accepts addresses and ranges of both families", () => {
    const proxies = parseTrustedProxies([
      " 192.168.1.1 ",
      "172.16.0.0/12",
      "::1",
      "fd00::/8",
      "::ffff:100.64.0.0/106",
      "0.0.0.0/0",
    ]);
    expect(proxies.contains("192.168.1.1")).toBe(true);
    expect(proxies.contains("172.31.255.1")).toBe(true);
    expect(proxies.contains("::1")).toBe(true);
    expect(proxies.contains("fdab::1")).toBe(true);
    expect(proxies.contains("fe80::1")).toBe(false);
    expect(proxies.contains("::ffff:8.8.8.8")).toBe(true);
    expect(proxies.contains("not-an-ip")).toBe(false);
  });

  it("reads an IPv4-mapped range as the IPv4 range", () => {
    const proxies = parseTrustedProxies(["::ffff:100.64.0.0/106"]);
    expect(proxies.contains("100.127.1.1")).toBe(true);
    expect(proxies.contains("100.128.0.1")).toBe(false);
  });

  it.each([
    ["localhost", "not an IP address"],
    ["", "not an IP address"],
    ["10.0.0.0/33", "prefix length must be 0-32"],
    ["fd00::/129", "prefix length must be 0-128"],
    ["10.0.0.0/", "prefix length must be 0-32"],
    ["10.0.0.0/8/8", "prefix length must be 0-32"],
    ["10.0.0.0/-1", "prefix length must be 0-32"],
    ["10.0.0.0/ 8", "prefix length must be 0-32"],
    ["10.0.0.256", "not an IP address"],
    ["10.0.0", "not an IP address"],
    ["fe80::1%eth0", "not an IP address"],
    ["[::1]", "not an IP address"],
    [
      "::ffff:10.0.0.0/8",
      "an IPv4-mapped range needs a prefix length of 96-128",
    ],
  ])("rejects %j", (entry, reason) => {
    expect(() => parseTrustedProxies(["127.0.0.1", entry])).toThrow(
      `invalid trusted proxy ${JSON.stringify(entry)}: ${reason}`,
    );
  });
});

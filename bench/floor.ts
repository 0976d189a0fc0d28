/**
 * `npm run bench:floor`: what Node's HTTP layers alone cost on this
 * machine, next to the service and the peer. Servers that do no work
 * (bench/floor-server.mjs: node:http, node:http2 through its compatibility
 * API, and node:http2 streams) answer a fixed response the size of a
 * token response; the service and the peer mint tokens. Each is measured
 * in rounds, alternating, at 50 connections (autocannon for HTTP/1.1,
 * h2load with one stream per connection for HTTP/2 cleartext), and its
 * responses/s and server CPU per response are printed against the peer.
 *
 * It shows how far a target can be met at all: a server that does no work
 * over node:http2 bounds what any gRPC handler can reach.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LoadResult, runAutocannon, runH2load } from "./loaders.js";
import {
  freePort,
  readCpu,
  readyzProbe,
  type Started,
  startProcess,
  stopProcess,
  waitReady,
} from "./processes.js";
import { createTokenPath, grpcBody, jsonBody } from "./request.js";
import {
  benchCredentials,
  buildService,
  defaultPeerFile,
  benchRoot as root,
  spawnPeer,
  spawnService,
} from "./service.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_DURATION ?? 6);
const connections = 50;

/** One server under one load. */
interface Target {
  name: string;
  server: Started;
  url: string;
  protocol: "json-http1" | "grpc-h2c";
  headers: Record<string, string>;
}

async function main(): Promise<void> {
  buildService(root);
  const tmp = mkdtempSync(path.join(tmpdir(), "lkts-floor-"));
  const { credentials, serviceKey } = benchCredentials("APIbench");
  const grpcFile = path.join(tmp, "request.grpc");
  writeFileSync(grpcFile, grpcBody());
  const started: Started[] = [];
  const start = async (name: string, command: string[]) => {
    const port = await freePort();
    const server = startProcess({
      name,
      command: [process.execPath, ...command, String(port)],
      cwd: root,
      env: {},
      port,
      stdout: "ignore",
    });
    started.push(server);
    await waitReady(server, () => accepts(port));
    return server;
  };
  try {
    const port = await freePort();
    const service = spawnService({
      root,
      name: "service",
      port,
      credentials,
      serviceKey,
      stdout: "ignore",
    });
    started.push(service);
    await waitReady(service, readyzProbe(service.baseUrl));
    const peerPort = await freePort();
    const peer = spawnPeer(defaultPeerFile, peerPort, credentials);
    started.push(peer);
    await waitReady(peer, () => accepts(peerPort));
    const floor = (kind: string) =>
      start(`floor ${kind}`, ["bench/floor-server.mjs", kind]);
    const json = { "content-type": "application/json" };
    const grpc = { "content-type": "application/grpc", te: "trailers" };
    const auth = { authorization: `Bearer ${serviceKey}` };
    const serviceUrl = `${service.baseUrl}${createTokenPath}`;
    const targets: Target[] = [
      {
        name: "peer (mints)",
        server: peer,
        url: `${peer.baseUrl}/`,
        protocol: "json-http1",
        headers: json,
      },
      {
        name: "service (mints)",
        server: service,
        url: serviceUrl,
        protocol: "json-http1",
        headers: { ...json, ...auth },
      },
      {
        name: "node:http, no work",
        server: await floor("http1"),
        url: "",
        protocol: "json-http1",
        headers: json,
      },
      {
        name: "service (mints)",
        server: service,
        url: serviceUrl,
        protocol: "grpc-h2c",
        headers: { ...grpc, ...auth },
      },
      {
        name: "node:http2 compat, no work",
        server: await floor("http2-compat"),
        url: "",
        protocol: "grpc-h2c",
        headers: grpc,
      },
      {
        name: "node:http2 streams, no work",
        server: await floor("http2-stream"),
        url: "",
        protocol: "grpc-h2c",
        headers: grpc,
      },
    ];
    for (const target of targets) {
      if (target.url === "") target.url = `${target.server.baseUrl}/`;
    }
    const results = new Map<Target, { rate: number; cpuUs: number }[]>();
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const measured = await measure(target, grpcFile, tmp);
        results.set(target, [...(results.get(target) ?? []), measured]);
        console.log(
          `round ${round} ${label(target)}: ${Math.round(measured.rate)}/s, ` +
            `${Math.round(measured.cpuUs)} us CPU per response`,
        );
      }
    }
    report(targets, results);
  } finally {
    await Promise.all(started.map((s) => stopProcess(s, 5000)));
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function measure(
  target: Target,
  grpcFile: string,
  tmp: string,
): Promise<{ rate: number; cpuUs: number }> {
  const before = readCpu(target.server.pid)?.self ?? 0;
  let result: LoadResult;
  if (target.protocol === "json-http1") {
    result = await runAutocannon({
      url: target.url,
      headers: target.headers,
      body: jsonBody(),
      connections,
      durationSeconds: seconds,
    });
  } else {
    result = await runH2load({
      url: target.url,
      headers: target.headers,
      bodyFile: grpcFile,
      connections,
      durationSeconds: seconds,
      logFile: path.join(tmp, "h2load.log"),
    });
  }
  const cpu = (readCpu(target.server.pid)?.self ?? before) - before;
  if (result.non2xx > 0 || result.errors > 0 || result.ok === 0) {
    throw new Error(
      `${label(target)}: ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors`,
    );
  }
  return { rate: result.okPerSecond, cpuUs: (cpu * 1e6) / result.ok };
}

/** Whether a TCP connection to the port on 127.0.0.1 is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function label(target: Target): string {
  return `${target.name}, ${target.protocol}`;
}

function report(
  targets: Target[],
  results: Map<Target, { rate: number; cpuUs: number }[]>,
): void {
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const rateOf = (t: Target) =>
    median((results.get(t) ?? []).map((r) => r.rate));
  const peer = targets[0] as Target;
  console.log(
    `\n${new Date().toISOString()}: ${rounds} rounds x ${seconds} s, ${connections} connections; medians\n`,
  );
  console.log(
    `${"server".padEnd(30)} ${"load".padEnd(11)} ${"per s".padStart(7)} ${"CPU us".padStart(7)}  vs peer`,
  );
  for (const target of targets) {
    const rate = rateOf(target);
    const cpuUs = median((results.get(target) ?? []).map((r) => r.cpuUs));
    console.log(
      `${target.name.padEnd(30)} ${target.protocol.padEnd(11)} ${Math.round(rate).toString().padStart(7)} ${Math.round(cpuUs).toString().padStart(7)}  ${(rate / rateOf(peer)).toFixed(2)}x`,
    );
  }
}

await main();

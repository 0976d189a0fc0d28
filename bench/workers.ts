/**
 * `npm run bench:workers`: what `--workers 2` gives on this machine. Starts
 * the service built for production once with one process and once with two
 * (node:cluster on one port), and the peer, and measures Connect JSON over
 * HTTP/1.1 with h2load, alternating the three in rounds. A benchmark, not a
 * test. Note that the load generator shares the machine's cores with the
 * servers, so two workers compete with it too.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runH2load } from "./loaders.js";
import {
  freePort,
  postProbe,
  readyzProbe,
  type Started,
  stopProcess,
  waitReady,
} from "./processes.js";
import { createTokenPath, jsonBody } from "./request.js";
import {
  benchCredentials,
  buildService,
  defaultPeerFile,
  benchRoot as root,
  spawnPeer,
  spawnService,
} from "./service.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_DURATION ?? 8);

async function main(): Promise<void> {
  buildService(root);
  const tmp = mkdtempSync(path.join(tmpdir(), "lkts-workers-"));
  const { credentials, serviceKey: key } = benchCredentials("APIbench");
  const started: Started[] = [];
  const startService = async (workers: number) => {
    const port = await freePort();
    const service = spawnService({
      root,
      name: `service x${workers}`,
      port,
      credentials,
      serviceKey: key,
      stdout: "ignore",
      env: { WORKERS: String(workers) },
    });
    started.push(service);
    await waitReady(service, readyzProbe(service.baseUrl));
    return service;
  };
  try {
    const one = await startService(1);
    const two = await startService(2);
    const peerPort = await freePort();
    const peer = spawnPeer(defaultPeerFile, peerPort, credentials);
    started.push(peer);
    await waitReady(
      peer,
      postProbe(`${peer.baseUrl}/`, jsonBody(), {
        "content-type": "application/json",
      }),
    );

    const bodyFile = path.join(tmp, "body.json");
    writeFileSync(bodyFile, jsonBody());
    const targets = [
      { name: "1 worker", url: `${one.baseUrl}${createTokenPath}` },
      { name: "2 workers", url: `${two.baseUrl}${createTokenPath}` },
      { name: "peer", url: `${peer.baseUrl}/` },
    ];
    const results = new Map<string, number[]>();
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const result = await runH2load({
          url: target.url,
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${key}`,
          },
          bodyFile,
          connections: 50,
          durationSeconds: seconds,
          http1: true,
          logFile: path.join(tmp, "h2load.log"),
        });
        if (result.non2xx > 0 || result.errors > 0) {
          throw new Error(
            `${target.name}: ${result.non2xx} non-2xx, ${result.errors} errors`,
          );
        }
        results.set(target.name, [
          ...(results.get(target.name) ?? []),
          result.okPerSecond,
        ]);
        console.log(
          `round ${round} ${target.name}: ${Math.round(result.okPerSecond)} tokens/s`,
        );
      }
    }
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    const peerRate = median(results.get("peer") ?? []);
    console.log(
      `\n${new Date().toISOString()}, ${rounds} rounds x ${seconds} s, 50 connections, h2load --h1`,
    );
    for (const [name, values] of results) {
      const rate = median(values);
      console.log(
        `${name.padEnd(10)} ${Math.round(rate).toString().padStart(6)} tokens/s  ${(rate / peerRate).toFixed(2)}x peer`,
      );
    }
  } finally {
    await Promise.all(started.map((s) => stopProcess(s, 5000)));
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();

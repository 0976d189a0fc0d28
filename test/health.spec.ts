import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import {
  HealthState,
  registerHealth,
  ServingStatus,
} from "../server/health.js";
import {
  bufCurl,
  bufCurlFailure,
  type H2cServer,
  startH2cServer,
} from "./support/h2c-server.js";

const tokenService = "tokenservice.v1.TokenService";

describe("grpc.health.v1.Health", () => {
  let state: HealthState;
  let server: H2cServer;
  let client: ReturnType<typeof createClient<typeof Health>>;
  beforeEach(async () => {
    state = new HealthState();
    server = await startH2cServer((router) => registerHealth(router, state));
    client = createClient(
      Health,
      createGrpcTransport({ baseUrl: server.baseUrl }),
    );
  });
  afterEach(() => server.close());

  /** Calls a Health method with buf curl and the schema in proto/. */
  async function curl(method: string, body: object) {
    const url = `${server.baseUrl}/grpc.health.v1.Health/${method}`;
    const args = ["--schema", "proto", url, "-d", JSON.stringify(body)];
    return JSON.parse((await bufCurl(args)).stdout);
  }

  it("reports the server as SERVING to buf curl's Check", async () => {
    expect(await curl("Check", {})).toEqual({ status: "SERVING" });
  });

  it("reports a service's status once it is set", async () => {
    state.setServing(tokenService, ServingStatus.NOT_SERVING);
    expect(await curl("Check", { service: tokenService })).toEqual({
      status: "NOT_SERVING",
    });
  });

  it("fails Check with not_found for an unknown service", async () => {
    const body = JSON.stringify({ service: "no.Such" });
    const url = `${server.baseUrl}/grpc.health.v1.Health/Check`;
    const failure = await bufCurlFailure([
      "--schema",
      "proto",
      url,
      "-d",
      body,
    ]);
    // buf curl exits with the gRPC code shifted left by three bits.
    expect(failure.code).toBe(Code.NotFound << 3);
    expect(JSON.parse(failure.stderr)).toEqual({
      code: "not_found",
      message: "unknown service: no.Such",
    });
  });

  it("lists every known service with List", async () => {
    state.setServing(tokenService, ServingStatus.SERVING);
    expect(await curl("List", {})).toEqual({
      statuses: {
        "": { status: "SERVING" },
        [tokenService]: { status: "SERVING" },
      },
    });
  });

  it("sends each change to Watch, then NOT_SERVING and the end at shutdown", async () => {
    const stream = client.watch({ service: "" })[Symbol.asyncIterator]();
    const next = async () => (await stream.next()).value?.status;
    expect(await next()).toBe(ServingStatus.SERVING);
    state.setServing("", ServingStatus.NOT_SERVING);
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    state.setServing("", ServingStatus.SERVING);
    expect(await next()).toBe(ServingStatus.SERVING);
    state.shutdown();
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(await client.check({})).toMatchObject({
      status: ServingStatus.NOT_SERVING,
    });
  });

  it("watches an unknown service as SERVICE_UNKNOWN until it is set", async () => {
    const stream = client.watch({ service: tokenService });
    const statuses: ServingStatus[] = [];
    for await (const { status } of stream) {
      statuses.push(status);
      if (statuses.length === 1)
        state.setServing(tokenService, ServingStatus.SERVING);
      else state.shutdown();
    }
    expect(statuses).toEqual([
      ServingStatus.SERVICE_UNKNOWN,
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
    ]);
  });

  it("ends a Watch that starts after shutdown after its first message", async () => {
    state.shutdown();
    const statuses: ServingStatus[] = [];
    for await (const { status } of client.watch({})) statuses.push(status);
    expect(statuses).toEqual([ServingStatus.NOT_SERVING]);
  });
});

describe("HealthState", () => {
  it("ends a watch when its signal aborts", async () => {
    const state = new HealthState();
    const abort = new AbortController();
    const watch = state.watch("", abort.signal);
    expect(await watch.next()).toEqual({
      done: false,
      value: ServingStatus.SERVING,
    });
    const pending = watch.next();
    abort.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it("ignores setServing after shutdown", () => {
    const state = new HealthState();
    state.shutdown();
    state.setServing("", ServingStatus.SERVING);
    expect(state.status("")).toBe(ServingStatus.NOT_SERVING);
    expect(state.isShutDown).toBe(true);
  });

  it("refuses to set SERVICE_UNKNOWN", () => {
    const state = new HealthState();
    expect(() =>
      state.setServing("", ServingStatus.SERVICE_UNKNOWN),
    ).toThrowError(new RangeError("SERVICE_UNKNOWN is not a status to set"));
  });
});

import {
  Counter,
  collectDefaultMetrics,
  Histogram,
  Registry,
} from "prom-client";

/** The service's Prometheus metrics, in a registry of their own. */
export class ServiceMetrics {
  readonly registry = new Registry();

  /** Calls by method, protocol and Connect code (or refused HTTP status). */
  readonly requests = new Counter({
    name: "token_service_requests_total",
    help: "RPC calls by method, protocol and code",
    labelNames: ["method", "protocol", "code"] as const,
    registers: [this.registry],
  });

  /** Call latency, from the first byte of headers to the last byte sent. */
  readonly latency = new Histogram({
    name: "token_service_request_duration_seconds",
    help: "RPC call latency in seconds",
    labelNames: ["method", "protocol"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });

  /** Tokens minted, by the policy they were minted under. */
  readonly tokensMinted = new Counter({
    name: "token_service_tokens_minted_total",
    help: "Participant tokens minted, by policy",
    labelNames: ["policy"] as const,
    registers: [this.registry],
  });

  /** Calls refused for their credentials, by code. */
  readonly authFailures = new Counter({
    name: "token_service_auth_failures_total",
    help: "Calls refused by authentication, by code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  /** Calls refused by a rate limit, by bucket. */
  readonly rateLimited = new Counter({
    name: "token_service_rate_limited_total",
    help: "Calls refused by a rate limit, by bucket",
    labelNames: ["bucket"] as const,
    registers: [this.registry],
  });

  private readonly children = new Map<
    string,
    { count: { inc(): void }; latency: { observe(v: number): void } }
  >();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Counts one call and observes its latency. The labelled children are
   * looked up once per label set, not for every call.
   */
  observeCall(
    method: string,
    protocol: string,
    code: string,
    seconds: number,
  ): void {
    const key = `${method} ${protocol} ${code}`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = {
        count: this.requests.labels(method, protocol, code),
        latency: this.latency.labels(method, protocol),
      };
      this.children.set(key, child);
    }
    child.count.inc();
    child.latency.observe(seconds);
  }
}

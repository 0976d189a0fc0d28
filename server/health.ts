/**
 * The gRPC health checking protocol (grpc.health.v1.Health), which load
 * balancers, Kubernetes probes and grpc-health-probe ask whether the server
 * can take calls.
 */
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";

/**
 * The serving status of a service, grpc.health.v1's ServingStatus enum,
 * re-exported for the callers of `HealthState.setServing`.
 */
export { ServingStatus };

/** One open Watch stream, woken when its status changes or it must end. */
interface Watcher {
  service: string;
  /** The latest status not yet sent; older unsent ones are dropped. */
  pending: ServingStatus | undefined;
  ended: boolean;
  wake: () => void;
}

/**
 * The serving status of the server ("") and of each of its services, by
 * fully-qualified service name, as the Health service reports it.
 */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #watchers = new Set<Watcher>();
  #shutDown = false;

  /**
   * Starts with `initial`; by default the server as a whole ("") is
   * SERVING and no service is known.
   *
   * @throws RangeError for SERVICE_UNKNOWN, as `setServing` does.
   */
  constructor(
    initial: Record<string, ServingStatus> = { "": ServingStatus.SERVING },
  ) {
    for (const [service, status] of Object.entries(initial)) {
      this.setServing(service, status);
    }
  }

  /** Whether `shutdown()` was called. */
  get isShutDown(): boolean {
    return this.#shutDown;
  }

  /**
   * The status of `service` ("" for the server), or undefined when the
   * service is unknown.
   */
  status(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Every known service ("" included) with its status. */
  statuses(): ReadonlyMap<string, ServingStatus> {
    return new Map(this.#statuses);
  }

  /**
   * Sets the status of `service` ("" for the server) and tells its
   * watchers. Ignored after `shutdown()`, which has the last word.
   *
   * @throws RangeError for SERVICE_UNKNOWN, which only Watch may send.
   */
  setServing(service: string, status: ServingStatus): void {
    if (status === ServingStatus.SERVICE_UNKNOWN) {
      throw new RangeError("SERVICE_UNKNOWN is not a status to set");
    }
    if (this.#shutDown) return;
    this.#set(service, status);
  }

  /**
   * Sets every known service to NOT_SERVING, tells the watchers, then ends
   * every open Watch stream once it has sent that. Later `setServing` calls
   * are ignored, and later Watch calls send the current status and end.
   */
  shutdown(): void {
    this.#shutDown = true;
    for (const service of this.#statuses.keys())
      this.#set(service, ServingStatus.NOT_SERVING);
    for (const watcher of this.#watchers) {
      watcher.ended = true;
      watcher.wake();
    }
  }

  /**
   * The status of `service` now, then each change, until `signal` aborts or
   * `shutdown()` is called. An unknown service is SERVICE_UNKNOWN. A reader
   * slower than the changes gets the latest status, not every one.
   */
  async *watch(
    service: string,
    signal: AbortSignal,
  ): AsyncGenerator<ServingStatus> {
    const watcher: Watcher = {
      service,
      pending: undefined,
      ended: this.#shutDown,
      wake: () => {},
    };
    const onAbort = () => watcher.wake();
    this.#watchers.add(watcher);
    signal.addEventListener("abort", onAbort);
    try {
      let last = this.#statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
      yield last;
      while (!signal.aborted) {
        const next = watcher.pending;
        if (next !== undefined) {
          watcher.pending = undefined;
          if (next !== last) {
            last = next;
            yield next;
          }
        } else if (watcher.ended) {
          return;
        } else {
          await new Promise<void>((resolve) => {
            watcher.wake = resolve;
          });
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#watchers.delete(watcher);
    }
  }

  /** Stores `status` and hands it to the watchers of `service`. */
  #set(service: string, status: ServingStatus): void {
    this.#statuses.set(service, status);
    for (const watcher of this.#watchers) {
      if (watcher.service !== service) continue;
      watcher.pending = status;
      watcher.wake();
    }
  }
}

/**
 * Registers `grpc.health.v1.Health` on `router`, answering from `state`:
 * Check (NOT_FOUND for an unknown service), List, and the server-streaming
 * Watch, which ends when the call is cancelled or `state` shuts down.
 */
export function registerHealth(
  router: ConnectRouter,
  state: HealthState,
): void {
  router.service(Health, {
    check(request) {
      const status = state.status(request.service);
      if (status === undefined) {
        throw new ConnectError(
          `unknown service: ${request.service}`,
          Code.NotFound,
        );
      }
      return { status };
    },
    list() {
      const statuses = Object.fromEntries(
        [...state.statuses()].map(([service, status]) => [service, { status }]),
      );
      return { statuses };
    },
    async *watch(request, context) {
      for await (const status of state.watch(request.service, context.signal)) {
        yield { status };
      }
    },
  });
}

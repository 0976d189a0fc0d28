/**
 * Resolves once the event loop has run the callbacks of its current poll
 * phase: every request whose bytes arrived in this turn has then been
 * served as far as it can be without waiting for I/O.
 *
 * Responses that wait for it go out together, back to back, instead of
 * one at a time between the handling of the next requests. A receiver on
 * the same host (a load balancer, a sidecar proxy, a client on loopback)
 * is then woken once for all of them rather than once for each, and the
 * kernel work of waking it, which the sender pays on loopback, is paid
 * once per turn. A response waits at most for the rest of its turn; with
 * one request in a turn, for nothing but one `setImmediate`.
 */
export function endOfTurn(): Promise<void> {
  return new Promise((resolve) => {
    if (waiting.push(resolve) === 1) setImmediate(release);
  });
}

let waiting: (() => void)[] = [];

function release(): void {
  const released = waiting;
  waiting = [];
  for (const resolve of released) resolve();
}

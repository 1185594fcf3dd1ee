// The WebSocket the Neon client's pooled sessions talk through (client.ts): ws's, with the
// Postgres protocol messages of one statement sent as one WebSocket message.
//
// Without the driver's coalesceWrites, its socket shim sends each Postgres protocol message as
// a WebSocket message of its own. A statement's Parse, Bind, Describe, Execute, Flush and Sync
// were six messages: six socket writes in this process, six packets to the proxy (the socket
// does not delay small writes), and six writes from the proxy to Postgres. The driver's own
// coalescing joins what is written before a setTimeout(0), which is at least a millisecond in
// Node on every statement, which is why client.ts leaves it off.
//
// Here the messages a statement sends before its Sync (Parse, Bind, Describe, Execute, Close
// and Flush: node-postgres sends a Flush just before each Sync) are held until the Sync, and go
// with it as one WebSocket message, in the same call. Postgres sends its replies at a Sync or a
// Flush, so holding the Flush to go with its Sync delays nothing. Any other message (a simple
// query, Terminate, the startup, TLS records) goes at once, after whatever is held. What is
// held without a Sync to follow (a portal read in parts ends with a Flush alone) goes at the
// next microtask. The proxy relays a byte stream (Postgres' protocol frames its own messages),
// so where the WebSocket messages are cut means nothing to it.
//
// As with the driver's coalescing, a buffer is held rather than copied: node-postgres does not
// write into a message's buffer once it has handed it over.

import WebSocket from "ws";

type SendOptions = Parameters<WebSocket["send"]>[1];
type SendCallback = (err?: Error) => void;

/** Frontend message types held for the Sync that follows them: Parse, Bind, Describe, Execute, Close and Flush. */
const BEFORE_SYNC = new Set(["P", "B", "D", "E", "C", "H"].map((c) => c.charCodeAt(0)));

export class BurstWebSocket extends WebSocket {
  #held: Uint8Array[] = [];

  override send(data: unknown, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    // Only binary messages of an open socket, with no options nor callback, are held or joined;
    // anything else goes as ws sends it, after what is held.
    if (options === undefined && cb === undefined && data instanceof Uint8Array && this.readyState === WebSocket.OPEN) {
      if (data.length > 0 && BEFORE_SYNC.has(data[0]!)) {
        if (this.#held.length === 0) queueMicrotask(() => this.#flush());
        this.#held.push(data);
        return;
      }
      if (this.#held.length > 0) {
        this.#held.push(data);
        this.#flush();
        return;
      }
    } else this.#flush();
    super.send(data as Buffer, options as SendOptions, cb);
  }

  override close(code?: number, reason?: string | Buffer): void {
    this.#flush();
    super.close(code, reason);
  }

  #flush(): void {
    const parts = this.#held;
    if (parts.length === 0) return;
    this.#held = [];
    super.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }
}

/**
 * Fewer, larger writes to NATS. nats.js (2.x) buffers what a connection publishes and writes it to the socket in a
 * microtask after the first publish of a batch: every HTTP request the gateway answers (each arrives in its own I/O
 * callback) and every reply a backend sends costs one socket write, and one wake-up of nats-server. On the 2-core
 * bench machine those writes were the gateway's largest self time (`writeBuffer`, a quarter of its busy time, see
 * bench/REPORT.md).
 *
 * This flushes with `setImmediate` instead: after every I/O callback of the current event-loop turn has run, so the
 * requests and replies of one turn leave in one write. Under light load a turn carries one message and the extra
 * delay is the rest of that turn (microseconds); a batch past nats.js's pending limit is still written at once.
 * Order is unchanged (one buffer, drained in order). Applied once per process, on the nats.js version it was
 * written against: if the method does not look as expected, nothing is changed.
 */
import { createRequire } from "node:module";

interface ProtocolHandlerLike {
	outbound: {
		length(): number;
		size(): number;
		fill(buf: Uint8Array, ...payloads: Uint8Array[]): void;
	};
	pendingLimit: number;
	flushPending(): void;
	sendCommand(cmd: string | Uint8Array, ...payloads: Uint8Array[]): void;
}

let applied: boolean | null = null;

/** Patches nats.js's ProtocolHandler (see above); true when done (now or before), false when left as it was. */
export function coalesceNatsWrites(): boolean {
	if (applied !== null) return applied;
	applied = false;
	try {
		const load = createRequire(require.resolve("nats"));
		const { ProtocolHandler } = load("./lib/nats-base-client/protocol") as {
			ProtocolHandler: { prototype: ProtocolHandlerLike };
		};
		const { encode } = load("./lib/nats-base-client/encoders") as {
			encode(s: string): Uint8Array;
		};
		const proto = ProtocolHandler.prototype;
		const original = String(proto.sendCommand);
		if (!original.includes("queueMicrotask") || !original.includes("pendingLimit")) return false;
		proto.sendCommand = function (this: ProtocolHandlerLike, cmd, ...payloads) {
			const len = this.outbound.length();
			this.outbound.fill(typeof cmd === "string" ? encode(cmd) : cmd, ...payloads);
			if (len === 0) setImmediate(() => this.flushPending());
			else if (this.outbound.size() >= this.pendingLimit) this.flushPending();
		};
		applied = true;
	} catch {
		// Another nats.js layout: its own flushing stays.
	}
	return applied;
}

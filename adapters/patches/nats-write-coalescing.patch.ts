/**
 * Fewer, larger writes to NATS. nats.js flushes what a connection publishes in a microtask after the first publish
 * of a batch, so every HTTP request the gateway answers and every reply a backend sends costs a socket write and a
 * wake-up of nats-server; those writes were the gateway's largest self time under load (bench/REPORT.md).
 *
 * This flushes with `setImmediate` instead: after every I/O callback of the current event-loop turn, so the messages
 * of one turn leave in one write, in order; a batch past nats.js's pending limit is still written at once.
 */
import { createRequire } from "node:module";
import { type PatchTarget, outOfRange, replacing, unpatched, warnSkipped } from "./target";

/** nats.js's ProtocolHandler is internal (lib/nats-base-client/protocol.js): any minor release may reshape it. */
export const TARGET: PatchTarget = { package: "nats", range: "~2.29.3" };

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

interface Internals {
	proto: ProtocolHandlerLike;
	encode(s: string): Uint8Array;
}

/** The internals the patch replaces, or why they are not what it was written against. */
export function probe(): Internals | string {
	try {
		const load = createRequire(require.resolve(TARGET.package));
		const { ProtocolHandler } = load("./lib/nats-base-client/protocol") as {
			ProtocolHandler?: { prototype: ProtocolHandlerLike };
		};
		const { encode } = load("./lib/nats-base-client/encoders") as {
			encode?(s: string): Uint8Array;
		};
		if (typeof ProtocolHandler?.prototype?.sendCommand !== "function") {
			return "ProtocolHandler.prototype.sendCommand is missing";
		}
		if (typeof ProtocolHandler.prototype.flushPending !== "function") {
			return "ProtocolHandler.prototype.flushPending is missing";
		}
		if (typeof encode !== "function") return "encoders.encode is missing";
		// The replaced method must be the one this mirrors: fill the buffer, flush in a microtask or past the limit.
		const source = String(unpatched(ProtocolHandler.prototype.sendCommand));
		for (const part of ["this.outbound.fill", "queueMicrotask", "pendingLimit", "flushPending"]) {
			if (!source.includes(part)) return `sendCommand no longer uses ${part}`;
		}
		return { proto: ProtocolHandler.prototype, encode };
	} catch (err) {
		return `nats.js internals not found (${(err as Error).message})`;
	}
}

let applied: boolean | null = null;

/** Patches nats.js's ProtocolHandler (see above); true when done (now or before), false when left as it was. */
export function coalesceNatsWrites(): boolean {
	if (applied !== null) return applied;
	applied = false;
	const found = outOfRange(TARGET) ?? probe();
	if (typeof found === "string") {
		warnSkipped("nats-write-coalescing", found);
		return applied;
	}
	const { proto, encode } = found;
	// Another copy of this module (a test's isolated registry) patched it already.
	applied = unpatched(proto.sendCommand) !== proto.sendCommand;
	if (applied) return applied;
	proto.sendCommand = replacing(
		function (this: ProtocolHandlerLike, cmd, ...payloads) {
			const len = this.outbound.length();
			this.outbound.fill(typeof cmd === "string" ? encode(cmd) : cmd, ...payloads);
			if (len === 0) setImmediate(() => this.flushPending());
			else if (this.outbound.size() >= this.pendingLimit) this.flushPending();
		} as ProtocolHandlerLike["sendCommand"],
		proto.sendCommand
	);
	applied = true;
	return applied;
}

/**
 * The NATS connection's real state. Moleculer's NATS transporter reads the client's status events only to log them,
 * so while nats.js reconnects `moleculer_transit_connected` stays 1 and the node looks connected for as long as NATS
 * is down. This sets the gauge from the status events (0 on `disconnect`, 1 on `reconnect`) and marks the transporter,
 * so a node's `/ready` says `transporter` (adapters/health) and `FlashMartNatsDisconnected` can fire. Moleculer's
 * own `connected` flag is left alone: it makes Moleculer drop packets, while nats.js buffers them across a blip.
 */
import { Transporters } from "moleculer";
import { type PatchTarget, outOfRange, replacing, unpatched, warnSkipped } from "./target";

/** The transporter's `connect` and `client.status()` are not public API. */
export const TARGET: PatchTarget = { package: "moleculer", range: "~0.15.2" };

const GAUGE = "moleculer.transit.connected";
/** Set on a transporter while its NATS client is disconnected. */
const DOWN = Symbol.for("flashmart.nats.down");

interface NatsTransporterLike {
	client?: { status(): AsyncIterable<{ type: string }> };
	transit?: { metrics?: { set(name: string, value: number): void } };
	broker?: { broadcastLocal(event: string, payload?: unknown): void };
	connect(): Promise<unknown>;
	[DOWN]?: boolean;
}

/** Why the transporter is not what this was written against, or null when it is. */
export function probe(): string | null {
	const proto = (Transporters as unknown as { NATS?: { prototype: NatsTransporterLike } }).NATS
		?.prototype;
	if (!proto || typeof proto.connect !== "function") return "Transporters.NATS.connect is missing";
	const source = String(unpatched(proto.connect));
	if (!source.includes("this.client.status()")) return "connect no longer reads client.status()";
	return null;
}

/** Whether this broker's NATS client is disconnected right now (false without a transporter). */
export function natsDisconnected(transporter: unknown): boolean {
	return !!(transporter as NatsTransporterLike | undefined)?.[DOWN];
}

async function follow(tx: NatsTransporterLike): Promise<void> {
	if (!tx.client) return;
	for await (const status of tx.client.status()) {
		if (status.type === "disconnect" && !tx[DOWN]) {
			tx[DOWN] = true;
			tx.transit?.metrics?.set(GAUGE, 0);
			tx.broker?.broadcastLocal("$transporter.nats.disconnected");
		} else if (status.type === "reconnect" && tx[DOWN]) {
			tx[DOWN] = false;
			tx.transit?.metrics?.set(GAUGE, 1);
			tx.broker?.broadcastLocal("$transporter.nats.reconnected");
		}
	}
}

let applied: boolean | null = null;

/** Applies the patch once a process; false when the installed Moleculer is not its target. */
export function trackNatsConnection(): boolean {
	if (applied !== null) return applied;
	const reason = outOfRange(TARGET) ?? probe();
	applied = reason === null;
	if (reason !== null) {
		warnSkipped("nats-connection-state", reason);
		return applied;
	}
	const proto = (Transporters as unknown as { NATS: { prototype: NatsTransporterLike } }).NATS
		.prototype;
	if (unpatched(proto.connect) !== proto.connect) return applied;
	const connect = proto.connect;
	proto.connect = replacing(async function (this: NatsTransporterLike) {
		const result = await connect.call(this);
		this[DOWN] = false;
		void follow(this).catch(() => undefined);
		return result;
	}, connect);
	return applied;
}

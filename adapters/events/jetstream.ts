/**
 * Durable events in the cluster mode: @moleculer/channels' NATS JetStream adapter, with dead letters counted, a
 * channel's stream created on its first publish (so an event is stored before any consumer subscribed), publishing
 * refused while stopping (the outbox keeps the message) and `working()` deferred.
 */
import type { AppConfig } from "../../config";
import { Adapters, type Chan, countDeadLetter } from "./channels";

/** nats.js's code for a request nobody answered: a JetStream publish to a subject no stream stores. */
const NO_RESPONDERS = "503";

/** The parts of a JetStream message (nats.js JsMsg) the library's consumer handler acts on. */
interface JsMessage {
	working(): void;
	ack(): void;
	nak(millis?: number): void;
	term(): void;
}

/**
 * The message as the library's consumer handler sees it, except that its `working()` (which the library sends before
 * every handler: one more NATS message per delivery) only goes out if the handler still runs `after` ms later, and
 * again every `after` ms while it runs. A quick handler's ack is then the only answer; a slow one is still kept from
 * redelivery, as before.
 */
export function deferWorking<M extends JsMessage>(message: M, after: number): M {
	let timer: NodeJS.Timeout | undefined = setInterval(() => message.working(), after);
	timer.unref();
	const settle = () => {
		if (timer) clearInterval(timer);
		timer = undefined;
	};
	return new Proxy(message, {
		get(target, prop) {
			if (prop === "working") return () => undefined;
			const value = Reflect.get(target, prop, target) as unknown;
			if (prop === "ack" || prop === "nak" || prop === "term") {
				return (...args: unknown[]) => {
					settle();
					return (value as (...a: unknown[]) => unknown).apply(target, args);
				};
			}
			return typeof value === "function" ? value.bind(target) : value;
		}
	});
}

/** JetStream: the library's adapter, with dead letters counted, streams made on publish and `working()` deferred. */
export class JetStreamAdapter extends Adapters.NATS {
	private readonly streams = new Set<string>();

	constructor(
		opts: object,
		private readonly ackWaitMs: number
	) {
		super(opts);
	}

	createConsumerHandler(chan: Chan) {
		const handle = (
			Adapters.NATS.prototype as unknown as {
				createConsumerHandler(c: Chan): (err: unknown, message: JsMessage | null) => Promise<void>;
			}
		).createConsumerHandler.call(this, chan);
		const after = Math.max(1, Math.floor(this.ackWaitMs / 2));
		return (err: unknown, message: JsMessage | null) =>
			handle(err, message ? deferWorking(message, after) : message);
	}

	async moveToDeadLetter(chan: Chan, message: { data: Uint8Array }): Promise<void> {
		await (
			Adapters.NATS.prototype as unknown as { moveToDeadLetter: Function }
		).moveToDeadLetter.call(this, chan, message);
		let payload: unknown = null;
		try {
			payload = JSON.parse(Buffer.from(message.data).toString("utf8"));
		} catch {
			// not JSON: count it all the same
		}
		countDeadLetter(this.broker, chan, payload);
	}

	/**
	 * Creates the channel's stream and remembers it only once it exists. The library's `createStream` logs and
	 * swallows every failure (NATS 503 while JetStream starts, a timeout), so its answer is checked: remembered after a
	 * failure, the stream would never be made and every publish would fail until the node restarted. Throwing
	 * instead leaves the event in the outbox, and the next relay tries the creation again.
	 */
	private async ensureStream(channel: string): Promise<void> {
		const self = this as unknown as {
			createStream(name: string, subjects: string[], cfg: object): Promise<unknown>;
			manager: { streams: { info(name: string): Promise<unknown> } };
		};
		const name = channel.split(".").join("_");
		// undefined: failed, or already there ("stream name already in use", also swallowed): ask which.
		const created = await self.createStream(name, [channel], {});
		if (created === undefined) {
			try {
				await self.manager.streams.info(name);
			} catch (err) {
				throw new Error(
					`The stream ${name} of ${channel} could not be created (${(err as Error).message}); ` +
						"the message stays in the outbox"
				);
			}
		}
		this.streams.add(channel);
	}

	override async publish(channel: string, payload: unknown, opts: Record<string, unknown> = {}) {
		if (this.stopping)
			throw new Error("The event adapter is stopping; the message stays in the outbox");
		if (!this.streams.has(channel)) await this.ensureStream(channel);
		try {
			return await super.publish(channel, payload, opts);
		} catch (err) {
			// 503 (no responders): no stream stores the subject any more (deleted, or NATS back with an empty store).
			// Forgotten, it is made again before the next attempt, instead of every publish failing until a restart.
			if ((err as { code?: unknown }).code === NO_RESPONDERS) this.streams.delete(channel);
			throw err;
		}
	}
}

/**
 * nats.js connection options for `TRANSPORTER` (one URL or several, comma-separated): the servers, and the user and
 * password of a `nats://user:pass@host:port` URL (the library's own URL handling keeps only the hosts).
 */
export function natsConnection(transporter: string): {
	servers: string[];
	user?: string;
	pass?: string;
} {
	const urls = transporter.split(",").map(u => new URL(u.trim()));
	const withUser = urls.find(u => u.username);
	return {
		servers: urls.map(u => u.host),
		...(withUser
			? { user: decodeURIComponent(withUser.username), pass: decodeURIComponent(withUser.password) }
			: {})
	};
}

/** The options of a node's JetStream connection for durable events (nats.js `connect`). */
export function eventsConnectionOptions(transporter: string, nodeID: string) {
	return {
		...natsConnection(transporter),
		// Ride out a NATS restart, like the transporter does; and one that happens while the node starts: without
		// this the first connection fails at once, the node's start fails and the process exits.
		maxReconnectAttempts: -1,
		reconnectTimeWait: 500,
		waitOnFirstConnect: true,
		name: `${nodeID}-events`,
		// No Error (with its stack) made up front for every publish's acknowledgement.
		noAsyncTraces: true
	};
}

/** The JetStream adapter for this node's `TRANSPORTER`. */
export function jetStreamAdapter(cfg: AppConfig, common: object): JetStreamAdapter {
	const transporter = cfg.transporter!;
	return new JetStreamAdapter(
		{
			...common,
			nats: {
				connectionOptions: eventsConnectionOptions(transporter, cfg.nodeID),
				streamConfig: {
					max_age: cfg.events.retention * 1e9,
					num_replicas: cfg.events.streamReplicas
				},
				consumerOptions: {
					config: {
						// A consumer group that subscribes for the first time gets what is already stored.
						deliver_policy: "all",
						ack_wait: cfg.events.ackWait * 1e6
					}
				}
			}
		},
		cfg.events.ackWait
	);
}

/**
 * Durable events (API.md "Events"): the @moleculer/channels middleware on NATS JetStream in the cluster mode and on
 * an in-process adapter in the embedded mode. Services never publish directly: they write events to their outbox
 * (mixins/outbox.mixin.ts) in the same store write as the state change, and the outbox relay publishes them here.
 *
 * Both adapters are the library's, extended in three small ways:
 * - a message a consumer keeps failing goes to the dead-letter destination `<namespace>.FAILED_MESSAGES` and counts
 *   in `flashmart_events_dead_lettered_total{channel}` (the in-process adapter also retries, which the library's
 *   event-based adapter does not);
 * - publishing while the adapter stops fails instead of dropping the message silently, so the outbox keeps it;
 * - publishing creates the channel's stream first, so an event is stored before any consumer ever subscribed;
 * - once every consumer of the node is subscribed, a local `$channels.ready` event tells services that publishing
 *   works (an outbox written at start need not wait for the relay interval).
 */
import type { Middleware, ServiceBroker } from "moleculer";
import ChannelsModule from "@moleculer/channels";
import type { AppConfig } from "../../config";
import { METRIC } from "../../lib/metric-names";

/** A published event's payload: API.md says each carries `eventId`, the entity id and `occurredAt`. */
export interface EventPayload {
	eventId: string;
	occurredAt: string;
	[field: string]: unknown;
}

/** Where poison messages go (after `EVENT_MAX_RETRIES` failed deliveries), prefixed with the namespace. */
export const DEAD_LETTER_QUEUE = "FAILED_MESSAGES";

interface Chan {
	name: string;
	group: string;
	maxRetries: number;
	deadLettering: { enabled: boolean; queueName: string };
	handler(payload: unknown, raw: unknown): Promise<unknown>;
}
interface AdapterBase {
	broker: ServiceBroker;
	logger: { warn(...a: unknown[]): void; error(...a: unknown[]): void };
	opts: { prefix: string | null };
	stopping?: boolean;
	addPrefixTopic(topic: string): string;
	publish(channel: string, payload: unknown, opts?: Record<string, unknown>): Promise<void>;
}
type AdapterClass = new (opts?: object) => AdapterBase;

const { Middleware: ChannelsMiddleware, Adapters } = ChannelsModule as unknown as {
	Middleware: (opts: object) => Middleware;
	Adapters: { Fake: AdapterClass; NATS: AdapterClass };
};

function countDeadLetter(broker: ServiceBroker, chan: Chan, payload: unknown) {
	if (broker.isMetricsEnabled()) {
		broker.metrics.increment(METRIC.EVENTS_DEAD_LETTERED, { channel: chan.name });
	}
	const eventId = (payload as { eventId?: unknown } | null)?.eventId;
	broker.logger.error(
		`Event dead-lettered: '${chan.name}' failed in consumer '${chan.group}' too many times`,
		{ eventId, channel: chan.name, group: chan.group }
	);
}

/** The parts of a JetStream message (nats.js JsMsg) the library's consumer handler acts on. */
interface JsMessage {
	working(): void;
	ack(): void;
	nak(millis?: number): void;
	term(): void;
}

/**
 * The message as the library's consumer handler sees it, except that its `working()` (which the library sends before
 * every handler: one more NATS message per delivery, a fifth of the purchase flow's JetStream traffic) only goes out
 * if the handler still runs `after` ms later, and again every `after` ms while it runs. A quick handler's ack is then
 * the only answer; a slow one is still kept from redelivery, as before.
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
class JetStreamAdapter extends Adapters.NATS {
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

	override async publish(channel: string, payload: unknown, opts: Record<string, unknown> = {}) {
		if (this.stopping)
			throw new Error("The event adapter is stopping; the message stays in the outbox");
		if (!this.streams.has(channel)) {
			const self = this as unknown as {
				createStream(name: string, subjects: string[], cfg: object): Promise<unknown>;
			};
			await self.createStream(channel.split(".").join("_"), [channel], {});
			this.streams.add(channel);
		}
		return super.publish(channel, payload, opts);
	}
}

/**
 * In-process (embedded mode): Moleculer's local events, with retries and a dead-letter destination added, and a
 * publish that resolves once the consumers are done (the outbox keeps an event until then).
 */
class InProcessAdapter extends Adapters.Fake {
	/** Set once the consumers are subscribed: an event emitted before would reach nobody and be lost. */
	subscribed = false;

	override async publish(channel: string, payload: unknown, opts: Record<string, unknown> = {}) {
		if (this.stopping)
			throw new Error("The event adapter is stopping; the message stays in the outbox");
		if (!this.subscribed)
			throw new Error("The event adapter is not started yet; the message stays in the outbox");
		await this.broker.emit(`channels.${channel}`, { payload, headers: opts.headers });
	}

	async disconnect(): Promise<void> {
		this.stopping = true;
	}

	async processMessage(chan: Chan, ctx: { params: { payload: unknown } }): Promise<void> {
		const { payload } = ctx.params;
		const attempts = Math.max(1, (chan.maxRetries ?? 0) + 1);
		for (let attempt = 1; ; attempt++) {
			try {
				await chan.handler(payload, ctx.params);
				return;
			} catch (err) {
				if (attempt >= attempts) {
					this.logger.warn(`Consumer '${chan.group}' failed on '${chan.name}'`, err);
					await this.publish(this.addPrefixTopic(DEAD_LETTER_QUEUE), payload, {
						headers: { "x-original-channel": chan.name, "x-original-group": chan.group }
					}).catch(() => undefined);
					countDeadLetter(this.broker, chan, payload);
					return;
				}
				await new Promise(resolve => setTimeout(resolve, Math.min(50 * 2 ** attempt, 2000)));
			}
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

/** The channels middleware for this node: JetStream when a transporter is configured, else in-process. */
export function eventsMiddleware(cfg: AppConfig): Middleware {
	const common = {
		prefix: cfg.namespace,
		maxRetries: cfg.events.maxRetries,
		maxInFlight: 10,
		deadLettering: { enabled: true, queueName: DEAD_LETTER_QUEUE }
	};
	const adapter = cfg.transporter
		? new JetStreamAdapter(
				{
					...common,
					nats: {
						connectionOptions: eventsConnectionOptions(cfg.transporter, cfg.nodeID),
						streamConfig: { max_age: cfg.events.retention * 1e9 },
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
			)
		: new InProcessAdapter(common);
	const middleware = ChannelsMiddleware({ adapter, context: true }) as Middleware & {
		started(broker: ServiceBroker): Promise<void>;
	};
	const started = middleware.started;
	// The library connects and subscribes in its `started` hook, after every service's `started`.
	middleware.started = async function (this: unknown, broker: ServiceBroker) {
		await started.call(this, broker);
		if (adapter instanceof InProcessAdapter) adapter.subscribed = true;
		broker.broadcastLocal("$channels.ready");
	};
	return middleware;
}

/** `broker.sendToChannel`, which the channels middleware adds. */
export type SendToChannel = (
	channel: string,
	payload: EventPayload,
	opts?: { headers?: Record<string, string>; msgID?: string }
) => Promise<void>;

/**
 * What both durable-event adapters share: the parts of @moleculer/channels they extend (its adapters are subclassed,
 * its typings do not cover them) and the dead-letter count.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import ChannelsModule from "@moleculer/channels";
import { METRIC } from "../../lib/metric-names";

/** Where poison messages go (after `EVENT_MAX_RETRIES` failed deliveries), prefixed with the namespace. */
export const DEAD_LETTER_QUEUE = "FAILED_MESSAGES";

export interface Chan {
	name: string;
	group: string;
	maxRetries: number;
	deadLettering: { enabled: boolean; queueName: string };
	handler(payload: unknown, raw: unknown): Promise<unknown>;
}
export interface AdapterBase {
	broker: ServiceBroker;
	logger: { warn(...a: unknown[]): void; error(...a: unknown[]): void };
	opts: { prefix: string | null };
	stopping?: boolean;
	addPrefixTopic(topic: string): string;
	publish(channel: string, payload: unknown, opts?: Record<string, unknown>): Promise<void>;
}

/**
 * A publish before the adapter can deliver anything (its consumers not subscribed yet, at start): the outbox keeps
 * the event and publishes it once `$channels.ready` says so, which is the normal course of a start, not a warning.
 */
export class EventsNotReadyError extends Error {
	readonly code = "EVENTS_NOT_READY";
	constructor() {
		super("The event adapter is not started yet; the message stays in the outbox");
	}
}

export type AdapterClass = new (opts?: object) => AdapterBase;

export const { Middleware: ChannelsMiddleware, Adapters } = ChannelsModule as unknown as {
	Middleware: (opts: object) => Middleware;
	Adapters: { Fake: AdapterClass; NATS: AdapterClass };
};

/** Counts and logs a message given up on, whichever adapter gave up. */
export function countDeadLetter(broker: ServiceBroker, chan: Chan, payload: unknown) {
	if (broker.isMetricsEnabled()) {
		broker.metrics.increment(METRIC.EVENTS_DEAD_LETTERED, { channel: chan.name });
	}
	const eventId = (payload as { eventId?: unknown } | null)?.eventId;
	broker.logger.error(
		`Event dead-lettered: '${chan.name}' failed in consumer '${chan.group}' too many times`,
		{ eventId, channel: chan.name, group: chan.group }
	);
}

/**
 * Durable events (API.md "Events"): the @moleculer/channels middleware on NATS JetStream in the cluster mode and on
 * an in-process adapter in the embedded mode. Services never publish directly: they write events to their outbox
 * (mixins/outbox.mixin.ts) in the same store write as the state change, and the outbox relay publishes them here.
 */
import type { Middleware } from "moleculer";
import type { AppConfig } from "../../config";
import { type AdapterBase, ChannelsMiddleware, DEAD_LETTER_QUEUE } from "./channels";
import { InProcessAdapter } from "./in-process";
import { jetStreamAdapter } from "./jetstream";

export { DEAD_LETTER_QUEUE } from "./channels";
export { deferWorking, eventsConnectionOptions, natsConnection } from "./jetstream";

/** A published event's payload: API.md says each carries `eventId`, the entity id and `occurredAt`. */
export interface EventPayload {
	eventId: string;
	occurredAt: string;
	[field: string]: unknown;
}

/** The channel adapter for this node: JetStream when a transporter is configured, else in-process. */
export function resolveEventsAdapter(cfg: AppConfig): AdapterBase {
	const common = {
		prefix: cfg.namespace,
		maxRetries: cfg.events.maxRetries,
		maxInFlight: 10,
		deadLettering: { enabled: true, queueName: DEAD_LETTER_QUEUE }
	};
	return cfg.transporter ? jetStreamAdapter(cfg, common) : new InProcessAdapter(common);
}

/** The channels middleware for this node, on the adapter resolveEventsAdapter picks. */
export function eventsMiddleware(cfg: AppConfig): Middleware {
	return ChannelsMiddleware({ adapter: resolveEventsAdapter(cfg), context: true });
}

/** `broker.sendToChannel`, which the channels middleware adds. */
export type SendToChannel = (
	channel: string,
	payload: EventPayload,
	opts?: { headers?: Record<string, string>; msgID?: string }
) => Promise<void>;

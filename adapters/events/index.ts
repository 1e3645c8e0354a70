/**
 * Durable events (API.md "Events"): the @moleculer/channels middleware on NATS JetStream in the cluster mode and on
 * an in-process adapter in the embedded mode. Services never publish directly: they write events to their outbox
 * (mixins/outbox.mixin.ts) in the same store write as the state change, and the outbox relay publishes them here.
 * Once every consumer of the node is subscribed, a local `$channels.ready` event tells services that publishing
 * works (an outbox written at start need not wait for the relay interval).
 */
import type { Middleware, ServiceBroker } from "moleculer";
import type { AppConfig } from "../../config";
import { type AdapterBase, ChannelsMiddleware, DEAD_LETTER_QUEUE } from "./channels";
import { InProcessAdapter } from "./in-process";
import { jetStreamAdapter } from "./jetstream";

export { DEAD_LETTER_QUEUE, EventsNotReadyError } from "./channels";
export { type DeadLetter, type DeadLetterStore, deadLetterStore } from "./dead-letters";
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
	const adapter = resolveEventsAdapter(cfg);
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

/**
 * The headers an event is published with: `$requestID` (the channels library gives the consumer's context that
 * request id) and the W3C `traceparent`/`tracestate` stored with it, which the tracing middleware reads off the
 * message (NATS message headers in JetStream, the emitted packet in-process). None: undefined.
 */
export function eventHeaders(
	requestId: string | undefined,
	trace: { traceparent?: string; tracestate?: string } | undefined
): Record<string, string> | undefined {
	const headers: Record<string, string> = {};
	if (requestId) headers.$requestID = requestId;
	if (trace?.traceparent) headers.traceparent = trace.traceparent;
	if (trace?.tracestate) headers.tracestate = trace.tracestate;
	return Object.keys(headers).length > 0 ? headers : undefined;
}

/** `broker.sendToChannel`, which the channels middleware adds. */
export type SendToChannel = (
	channel: string,
	payload: EventPayload,
	opts?: { headers?: Record<string, string>; msgID?: string }
) => Promise<void>;

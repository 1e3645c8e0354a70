/**
 * The transactional outbox: a service writes the events of a state change into the same document, in the same
 * store write, as the change itself (`withEvents(update, events)` or `outboxFields(events)` on insert), so a crash
 * between the write and the publish loses nothing. The relay then publishes each pending event to its channel
 * (adapters/events/) and only afterwards removes it from the document: at least once, never lost. Consumers dedupe by
 * `eventId` (JetStream also drops a re-publish of the same `eventId` within its duplicate window).
 *
 * The relay runs right after a write (`this.relayOutbox(id)`, not awaited by the request) and every
 * OUTBOX_RELAY_INTERVAL on every node of the service, which picks up what a crashed node or a NATS outage left.
 * MongoDB without a replica set and NeDB have no multi-document transactions, hence one document: the entity's own.
 */
import { randomUUID } from "node:crypto";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import type { AppConfig } from "../config";
import {
	type EventPayload,
	EventsNotReadyError,
	type SendToChannel,
	eventHeaders
} from "../adapters/events";
import { type TraceHeaders, currentTraceHeaders } from "../adapters/tracing";
import { currentScope } from "../lib/request-context";
import { METRIC } from "../lib/metric-names";
import type { DbAdapter, IndexSpec } from "../adapters/store";

export interface OutboxEntry {
	eventId: string;
	event: string;
	payload: EventPayload;
	/** The request that caused the event, so the consumers' log lines carry its id too. */
	requestId?: string;
	/**
	 * The W3C context of the span that wrote the event (tracing on, and the write part of a trace): the publish and
	 * every consumer join that trace however late and on whichever node the relay runs.
	 */
	trace?: TraceHeaders;
}

interface OutboxDoc {
	_id: string;
	_outbox?: OutboxEntry[];
	_outboxPending?: number;
}

/** Index for the relay's query; add it to the service's DbMixin indexes. */
export const OUTBOX_INDEX: IndexSpec = { fields: { _outboxPending: 1 }, sparse: true };

/** An event of API.md: `eventId`, the entity's fields, `occurredAt`. */
export function outboxEvent(event: string, fields: Record<string, unknown>): OutboxEntry {
	const eventId = randomUUID();
	const requestId = currentScope()?.requestId;
	const trace = currentTraceHeaders();
	return {
		eventId,
		event,
		payload: { eventId, ...fields, occurredAt: new Date().toISOString() },
		...(requestId ? { requestId } : {}),
		...(trace.traceparent ? { trace } : {})
	};
}

type Update = { $push?: Record<string, unknown>; $inc?: Record<string, number> } & Record<
	string,
	unknown
>;

/** `update` plus the events: pushed onto the document's outbox, its pending count raised, in the same write. */
export function withEvents<U extends Update>(update: U, events: OutboxEntry[]): U {
	if (events.length === 0) return update;
	return {
		...update,
		$push: { ...update.$push, _outbox: { $each: events } },
		$inc: { ...update.$inc, _outboxPending: events.length }
	};
}

/** The outbox fields of a document inserted together with its events. */
export function outboxFields(events: OutboxEntry[]) {
	return { _outbox: events, _outboxPending: events.length };
}

/**
 * Takes a published event out of its document. The last one also takes the pending count away (instead of leaving
 * 0), so the sparse relay index only holds documents with events to publish: a 0 shared by every document would make
 * each of their writes walk all the others in NeDB's index. If an event was added meanwhile, the count goes down by
 * one instead.
 */
async function clearRelayed(adapter: DbAdapter, doc: OutboxDoc, entry: OutboxEntry): Promise<void> {
	const match = { _id: doc._id, "_outbox.eventId": entry.eventId };
	const pull = { $pull: { _outbox: { eventId: entry.eventId } } };
	const outbox = doc._outbox ?? [];
	if (outbox[outbox.length - 1] === entry) {
		const cleared = await adapter.updateMany(
			{ ...match, _outboxPending: 1 },
			{ ...pull, $unset: { _outboxPending: true } }
		);
		if (cleared === 1) return;
	}
	await adapter.updateMany(match, { ...pull, $inc: { _outboxPending: -1 } });
}

interface OutboxThis {
	name: string;
	broker: ServiceBroker & { sendToChannel?: SendToChannel };
	adapter: DbAdapter;
	logger: { warn(...a: unknown[]): void; debug(...a: unknown[]): void };
	relaying: Set<string>;
	relayTimer?: NodeJS.Timeout;
	/** Test hook (TEST_CRASH_BEFORE_PUBLISH): exit just before publishing this event. */
	crashBeforePublish: AppConfig["events"]["crashBeforePublish"];
	relayOutbox(id?: string): Promise<number>;
	measureOutbox(): Promise<void>;
}

/** Documents the backlog gauges read at most; past that the count is a lower bound (still far above any alert). */
const MEASURE_LIMIT = 1000;

/**
 * Sets `flashmart_outbox_pending_events{service}` and `flashmart_outbox_oldest_pending_seconds{service}` from the
 * documents that still hold events, after each periodic relay: an outbox that stops emptying (the stream refused,
 * NATS down) shows as a growing age, whatever the logs say.
 */
async function measureOutbox(this: OutboxThis): Promise<void> {
	if (!this.broker.isMetricsEnabled()) return;
	const docs = (await this.adapter.find({
		query: { _outboxPending: { $gt: 0 } },
		limit: MEASURE_LIMIT
	})) as OutboxDoc[];
	let pending = 0;
	let oldest = Infinity;
	for (const doc of docs) {
		for (const entry of doc._outbox ?? []) {
			pending++;
			const at = Date.parse(String(entry.payload.occurredAt));
			if (at < oldest) oldest = at;
		}
	}
	const labels = { service: this.name };
	this.broker.metrics.set(METRIC.OUTBOX_PENDING, pending, labels);
	this.broker.metrics.set(
		METRIC.OUTBOX_OLDEST_PENDING,
		pending > 0 && Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0,
		labels
	);
}

/**
 * Publishes the pending events of document `id` (or of every document with pending events, a batch at a time) and
 * removes each from its document once published. Answers how many it published.
 */
async function relayOutbox(this: OutboxThis, id?: string): Promise<number> {
	const send = this.broker.sendToChannel;
	if (!send) return 0;
	const docs = (
		id
			? [await this.adapter.findById(id)]
			: await this.adapter.find({ query: { _outboxPending: { $gt: 0 } }, limit: 100 })
	) as Array<OutboxDoc | null>;
	const crashPoint = this.crashBeforePublish;
	let published = 0;
	for (const doc of docs) {
		for (const entry of doc?._outbox ?? []) {
			if (this.relaying.has(entry.eventId)) continue;
			this.relaying.add(entry.eventId);
			try {
				if (crashPoint === entry.event) {
					// Test hook: die between the state write and the publish, as a power cut would.
					process.kill(process.pid, "SIGKILL");
				}
				const headers = eventHeaders(entry.requestId, entry.trace);
				await send(entry.event, entry.payload, {
					msgID: entry.eventId,
					...(headers ? { headers } : {})
				});
				await clearRelayed(this.adapter, doc!, entry);
				this.broker.metrics.increment(METRIC.EVENTS_PUBLISHED, { event: entry.event });
				published++;
			} catch (err) {
				// NATS down, stream unavailable, store hiccup: the event stays; the next relay retries it. Before the
				// adapter is up (a start's own writes: the demo catalog) that is expected, and not worth a warning.
				const notReady = err instanceof EventsNotReadyError;
				this.logger[notReady ? "debug" : "warn"](
					`Event ${entry.event} not published yet; it stays in the outbox`,
					{ eventId: entry.eventId, error: (err as Error).message }
				);
				break; // keep a document's events in order
			} finally {
				this.relaying.delete(entry.eventId);
			}
		}
	}
	return published;
}

export function OutboxMixin(cfg: Pick<AppConfig, "events">): Partial<ServiceSchema> {
	return {
		methods: { relayOutbox: relayOutbox as never, measureOutbox: measureOutbox as never },
		created(this: OutboxThis) {
			this.relaying = new Set();
			this.crashBeforePublish = cfg.events.crashBeforePublish;
		},
		started(this: OutboxThis) {
			// Measured after each periodic relay, and once now, so the series exist from the start.
			const relayAndMeasure = async () => {
				await this.relayOutbox().catch(() => undefined);
				await this.measureOutbox().catch(() => undefined);
			};
			void this.measureOutbox().catch(() => undefined);
			this.relayTimer = setInterval(() => void relayAndMeasure(), cfg.events.relayInterval);
			this.relayTimer.unref();
		},
		stopped(this: OutboxThis) {
			if (this.relayTimer) clearInterval(this.relayTimer);
		}
	} as unknown as Partial<ServiceSchema>;
}

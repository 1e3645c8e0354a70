/**
 * Catalog invalidation in one place (after kantab's cache-cleaner): on the given broadcasts, a service drops what it
 * keeps of some services' answers, in Moleculer's cacher (`<service>.**`) and in caller-side ReadCaches
 * (lib/read-cache.ts). The owner announces its changes; every node that keeps its answers mixes this in.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import type { ReadCache } from "../lib/read-cache";

/** Cacher key patterns for the entities an event names (e.g. the products whose stock changed). */
type EntityKeys<TThis> = (this: TThis, ids: string[]) => string[] | Promise<string[]>;

export interface CacheCleanerOptions<TThis> {
	/** Broadcasts after which everything kept of `services` goes. */
	events: string[];
	/** Services whose cached answers (`<name>.**` in the broker's cacher) the events drop. */
	services?: string[];
	/** Properties of this service holding a ReadCache of another service's answers, emptied on the same events. */
	readCaches?: string[];
	/**
	 * Events naming changed entities: event → the payload field with their ids and the cacher keys that show them.
	 * A payload without a list of string ids drops everything, as the `events` do.
	 */
	entities?: Record<string, { field: string; keys: EntityKeys<TThis> }>;
}

interface CacheCleanerThis {
	broker: ServiceBroker;
	[property: string]: unknown;
}

/** `TThis`: the service the `entities` key functions run on. */
export function CacheCleanerMixin<TThis = CacheCleanerThis>(
	opts: CacheCleanerOptions<TThis>
): Partial<ServiceSchema> {
	const patterns = (opts.services ?? []).map(name => `${name}.**`);

	async function cleanAll(this: CacheCleanerThis): Promise<void> {
		for (const name of opts.readCaches ?? []) (this[name] as ReadCache | undefined)?.invalidate();
		if (patterns.length > 0) await this.broker.cacher?.clean(patterns);
	}

	const events: Record<string, (this: CacheCleanerThis, ctx: Context) => Promise<void>> = {};
	for (const name of opts.events) {
		events[name] = function () {
			return cleanAll.call(this);
		};
	}
	for (const [name, { field, keys }] of Object.entries(opts.entities ?? {})) {
		events[name] = async function (ctx) {
			const ids = (ctx.params as Record<string, unknown> | null)?.[field];
			if (!Array.isArray(ids) || !ids.every(id => typeof id === "string")) {
				return cleanAll.call(this);
			}
			const cacher = this.broker.cacher;
			if (cacher) await cacher.clean(await keys.call(this as TThis, ids));
		};
	}
	return { events: events as ServiceSchema["events"] };
}

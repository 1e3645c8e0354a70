/**
 * The gateway's read cache: answers of the operations services/api/contract.ts marks `cached` (the public catalog reads) are
 * kept in this gateway's memory (lib/read-cache.ts), so a hit answers without a round trip over NATS.
 *
 * What is cached and under which key is the owner's decision: only actions that declare Moleculer `cache` keys are
 * cached, keyed by exactly those parameters (the owner ignores every other one), never longer than the owner's own
 * `ttl` nor `ttlSeconds`. Announced changes drop entries at once on every gateway: a `cleanAll` event drops
 * everything (the catalog changed); a `cleanEntities` event names the entities whose state changed (stock) and drops
 * the answers that show one of them (an answer with that `id`) and every page (an answer with `rows`, which may
 * gain or lose any entity). The lifetime bounds what a raced or lost announcement can leave stale.
 */
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { ReadCache } from "../../lib/read-cache";

export interface ReadCacheOptions {
	/** Longest an answer is kept, in seconds; 0 turns the cache off. */
	ttlSeconds: number;
	/** Events after which every kept answer goes. */
	cleanAll: string[];
	/** Events naming changed entities: event name → the payload fields holding their ids. */
	cleanEntities: Record<string, string[]>;
	maxEntries?: number;
	/** Bytes of encoded answers held at most (pages are keyed by what clients send: a search is a new key). */
	maxBytes?: number;
}

/** 32 MiB of answers: the whole demo catalog, by id and by slug, is under 1 MiB. */
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

/** A kept answer: its JSON as sent (encoded once, on the miss), and the entities it shows. */
interface Kept {
	body: Buffer;
	tags: string[];
}

const JSON_TYPE = "application/json; charset=utf-8";

/** The tag of every page: any entity change may change what a page lists. */
const PAGES = "\0pages";

/** What an answer shows: its own id, or (a page) any entity. */
function tagsOf(answer: unknown): string[] {
	if (answer === null || typeof answer !== "object") return [];
	const { id, rows } = answer as { id?: unknown; rows?: unknown };
	if (Array.isArray(rows)) return [PAGES];
	return typeof id === "string" ? [id] : [];
}

interface CacheableRequest {
	$ctx: Context;
	$alias?: { cached?: boolean };
	$endpoint?: { action?: { cache?: { keys?: unknown; ttl?: unknown } | boolean } };
}

type CallAction = (
	this: unknown,
	route: { callOptions?: object },
	actionName: string,
	req: CacheableRequest,
	res: unknown,
	params: Record<string, unknown>,
	isStream?: boolean
) => Promise<unknown>;

const gatewayCallAction = (ApiGateway as unknown as { methods: { callAction: CallAction } }).methods
	.callAction;

interface ReadCacheThis {
	readCache: ReadCache;
	sendResponse(req: unknown, res: unknown, data: unknown, action: unknown): void;
	encodeResponse(req: unknown, res: unknown, data: unknown): string | undefined;
}

/** Mixed into the moleculer-web service, before moleculer-web (a mixin listed first wins). */
export function ReadCacheMixin(opts: ReadCacheOptions): Partial<ServiceSchema> {
	const ttlMs = opts.ttlSeconds * 1000;
	const events: Record<string, (this: ReadCacheThis, ctx: Context) => void> = {};
	for (const name of opts.cleanAll) {
		events[name] = function () {
			this.readCache.invalidate();
		};
	}
	for (const [name, fields] of Object.entries(opts.cleanEntities)) {
		events[name] = function (ctx) {
			const params = ctx.params as Record<string, unknown> | null;
			const lists = fields.map(field => params?.[field]);
			// A payload without any of its id lists says nothing precise: everything goes.
			if (!lists.some(Array.isArray)) return this.readCache.invalidate();
			const ids = lists.flatMap(ids => (Array.isArray(ids) ? ids.map(String) : []));
			this.readCache.invalidate([PAGES, ...ids]);
		};
	}

	return {
		events: events as ServiceSchema["events"],
		methods: {
			/** moleculer-web's call of an alias's action: from the cache when the operation and its owner allow it. */
			async callAction(this: ReadCacheThis, ...args: Parameters<CallAction>) {
				const [route, actionName, req, res, params, isStream] = args;
				const declared = req.$endpoint?.action?.cache;
				const keys = typeof declared === "object" ? declared.keys : undefined;
				if (ttlMs <= 0 || isStream || !req.$alias?.cached || !Array.isArray(keys)) {
					return gatewayCallAction.apply(this, args);
				}
				const ownTtl = typeof declared === "object" ? Number(declared.ttl) : NaN;
				const ttl = ownTtl > 0 ? Math.min(ttlMs, ownTtl * 1000) : ttlMs;
				const key = `${actionName}:${JSON.stringify(keys.map(k => params[String(k)] ?? null))}`;
				const endpoint = req.$endpoint;
				const kept = await this.readCache.get<Kept>(
					key,
					ttl,
					async () => {
						const data = await req.$ctx.call(endpoint as never, params, { ...route.callOptions });
						// `?? "null"`: an action that answers nothing (none of the cached ones does) is kept as JSON null.
						const json = this.encodeResponse(req, res, data) ?? "null";
						return { body: Buffer.from(json), tags: tagsOf(data) };
					},
					k => ({ tags: k.tags, size: k.body.length })
				);
				(req.$ctx.meta as { $responseType?: string }).$responseType = JSON_TYPE;
				this.sendResponse(req, res, kept.body, endpoint?.action);
				return true;
			}
		},
		created(this: Record<string, unknown>) {
			this.readCache = new ReadCache(opts.maxEntries, opts.maxBytes ?? DEFAULT_MAX_BYTES);
		}
	};
}

/**
 * Idempotency keys (API.md "Orders"), reusable by any service with a store: `this.idempotent(ctx, scope, run)`.
 *
 * A key is scoped per user and operation and kept at least 24 h, with a hash of the request and, once done, the
 * response. The first request claims the key with one insert under a unique index, so of two concurrent requests
 * exactly one runs; the other gets 409 IDEMPOTENCY_KEY_IN_USE while the first is running, the same response with
 * `Idempotent-Replayed: true` once it is done, and 422 IDEMPOTENCY_KEY_REUSED if its body differs. A run that failed
 * (or whose node died) can be retried with the same key: the retry gets the same `operationId`, so the work it
 * repeats (reserving stock for that order id, charging that order) is idempotent too.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context } from "moleculer";
import type { AppConfig } from "../config";
import { BadRequestError, ConflictError, UnprocessableError } from "../lib/errors";
import type { AppMeta } from "../types/meta";
import type { ServiceSchema } from "moleculer";
import { METRIC } from "../lib/metric-names";
import { type DbAdapter, type IndexSpec, isDuplicateKeyError } from "../adapters/store";

export interface IdempotencyRecord {
	_id: string;
	/** `<scope>:<userId>:<key>`, unique. */
	scopeKey: string;
	requestHash: string;
	/** The id the operation works under (e.g. the order id), the same for every retry with this key. */
	operationId: string;
	state: "running" | "done" | "failed";
	/** While running: when a claim is considered abandoned (its node died) and may be taken over. */
	lockedUntil: number;
	response?: { status: number; body: unknown };
	createdAt: number;
	expiresAt: Date;
}

/** API.md: 1-255 visible characters. */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
const RETENTION_MS = 25 * 60 * 60 * 1000;

export const IDEMPOTENCY_STORE: { collection: string; indexes: IndexSpec[] } = {
	collection: "idempotency_keys",
	indexes: [
		{ fields: { scopeKey: 1 }, unique: true },
		{ fields: { expiresAt: 1 }, expireAfterSeconds: 0 }
	]
};

/** The key the gateway put in `ctx.meta`, validated: 400 IDEMPOTENCY_KEY_REQUIRED when missing or malformed. */
export function idempotencyKeyOf(ctx: Context<unknown, AppMeta>): string {
	const key = ctx.meta.idempotencyKey;
	if (typeof key !== "string" || !KEY_PATTERN.test(key)) {
		throw new BadRequestError(
			"IDEMPOTENCY_KEY_REQUIRED",
			"An Idempotency-Key header of 1-255 visible characters is required"
		);
	}
	return key;
}

/** A stable hash of a request body (keys sorted at every level). */
export function requestHash(body: unknown): string {
	const canonical = (v: unknown): unknown =>
		Array.isArray(v)
			? v.map(canonical)
			: v && typeof v === "object"
				? Object.fromEntries(
						Object.keys(v as object)
							.sort()
							.map(k => [k, canonical((v as Record<string, unknown>)[k])])
					)
				: v;
	return createHash("sha256")
		.update(JSON.stringify(canonical(body)))
		.digest("hex");
}

export interface IdempotencyThis {
	stores: Record<string, DbAdapter>;
	/** How long a running attempt keeps its key before a retry may take it over. */
	idempotencyLease: number;
	broker: Context["broker"];
}

export interface IdempotentRun<T> {
	/** The id the work runs under: the same for every attempt with this key. */
	operationId: string;
	result: T;
}

/**
 * Runs `run(operationId)` at most once per (scope, user, key) to completion, as described above. `status` is the
 * HTTP status a successful run answers with (stored for replays). The service needs a `idempotency` store
 * (`stores: { idempotency: IDEMPOTENCY_STORE }` in its DbMixin).
 */
export async function idempotent<T>(
	this: IdempotencyThis,
	ctx: Context<unknown, AppMeta>,
	opts: { scope: string; body: unknown; status: number },
	run: (operationId: string) => Promise<T>
): Promise<T> {
	const store = this.stores.idempotency;
	const key = idempotencyKeyOf(ctx);
	const scopeKey = `${opts.scope}:${ctx.meta.user?.id ?? "anonymous"}:${key}`;
	const hash = requestHash(opts.body);
	const now = Date.now();
	const lease = this.idempotencyLease;

	let record: IdempotencyRecord | null = null;
	try {
		record = (await store.insert({
			// An id of our own: NeDB would draw one from crypto.randomBytes, synchronously, per insert.
			_id: randomUUID(),
			scopeKey,
			requestHash: hash,
			operationId: randomUUID().replace(/-/g, ""),
			state: "running",
			lockedUntil: now + lease,
			createdAt: now,
			expiresAt: new Date(now + RETENTION_MS)
		})) as IdempotencyRecord;
	} catch (err) {
		if (!isDuplicateKeyError(err)) throw err;
	}

	if (!record) {
		const existing = (await store.findOne({ scopeKey })) as IdempotencyRecord | null;
		if (!existing)
			throw new ConflictError("IDEMPOTENCY_KEY_IN_USE", "A request with this key is in progress");
		if (existing.requestHash !== hash) {
			throw new UnprocessableError(
				"IDEMPOTENCY_KEY_REUSED",
				"This Idempotency-Key was used with a different request",
				[
					{
						field: "Idempotency-Key",
						type: "reused",
						message: "The key belongs to another request body"
					}
				]
			);
		}
		if (existing.state === "done" && existing.response) {
			this.broker.metrics.increment(METRIC.IDEMPOTENT_REPLAYS, { scope: opts.scope });
			ctx.meta.$statusCode = existing.response.status;
			ctx.meta.$responseHeaders = { ...ctx.meta.$responseHeaders, "Idempotent-Replayed": "true" };
			return existing.response.body as T;
		}
		if (existing.state === "running" && existing.lockedUntil > now) {
			throw new ConflictError(
				"IDEMPOTENCY_KEY_IN_USE",
				"A request with this key is still in progress"
			);
		}
		// A failed attempt, or one whose node died: take it over, with one conditional write so one retry wins.
		const claimed = await store.updateMany(
			{ scopeKey, state: existing.state, lockedUntil: existing.lockedUntil },
			{ $set: { state: "running", lockedUntil: now + lease } }
		);
		if (claimed !== 1)
			throw new ConflictError("IDEMPOTENCY_KEY_IN_USE", "A request with this key is in progress");
		record = { ...existing, state: "running" };
	}

	try {
		const result = await run(record.operationId);
		await store.updateMany(
			{ scopeKey },
			{ $set: { state: "done", response: { status: opts.status, body: result }, lockedUntil: 0 } }
		);
		return result;
	} catch (err) {
		// Let a retry with this key run again (under the same operation id).
		await store
			.updateMany({ scopeKey }, { $set: { state: "failed", lockedUntil: 0 } })
			.catch(() => undefined);
		throw err;
	}
}

/** The mixin: `this.idempotent(ctx, opts, run)` in the service. */
export function IdempotencyMixin(cfg: Pick<AppConfig, "requestTimeout">): Partial<ServiceSchema> {
	return {
		methods: { idempotent: idempotent as never },
		created(this: IdempotencyThis) {
			this.idempotencyLease = cfg.requestTimeout * 2;
		}
	} as unknown as Partial<ServiceSchema>;
}

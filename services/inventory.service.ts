/**
 * Stock levels per product: `onHand`, `reserved` and `available = onHand - reserved`, kept in one document per
 * product and changed only by single conditional updates, never read-then-write, so `available >= 0` holds at every
 * moment on NeDB and on MongoDB alike. The only writer of the `stock` collection, and the owner of its lifecycle: a
 * product's stock is made here from the durable `products.created` event (with the stock it was created with), so
 * products and inventory never call each other; a product inventory has no stock for is unknown to it (404).
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../config";
import { ConflictError, NotFoundError } from "../lib/errors";
import { ThrottledBatch } from "../lib/throttled-batch";
import { METRIC } from "../lib/metric-names";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { isDuplicateKeyError } from "../adapters/store";
import { OUTBOX_INDEX, OutboxMixin, outboxEvent, withEvents } from "../mixins/outbox.mixin";
import type { AppMeta } from "../types/meta";
import type { AppAction, WithChannels } from "../types/moleculer-ext";

/**
 * One product's stock. `holds` maps an order id to the units reserved for it: a reservation lives in the same
 * document as the counters it changes, so taking, releasing and selling a line are each one atomic conditional
 * update, and each is idempotent per order (a retried call finds the hold already there, or already gone).
 */
interface StockDoc {
	_id: string;
	productId: string;
	onHand: number;
	reserved: number;
	available: number;
	/** Units sold: committed reservations. Never more than the units ever put on hand. */
	sold: number;
	holds?: Record<string, number>;
	/**
	 * A refunded order whose units went back on the shelf, by order id: when (ms), which makes the return idempotent.
	 * Kept RETURN_MARKER_TTL_MS, longer than orders retries a return, then pruned by the sweep, so a product's
	 * document does not grow with its refunds. Written before markers had a time: the units (a small number).
	 */
	returns?: Record<string, number>;
	/** Set when inventory.low was written for the current dip below the threshold; cleared when stock recovers. */
	lowNotified?: boolean;
	updatedAt: string;
}

export interface StockLine {
	productId: string;
	quantity: number;
}

export interface StockLevel {
	productId: string;
	onHand: number;
	reserved: number;
	available: number;
}

interface ProductParams {
	productId: string;
}
interface SetParams {
	productId: string;
	onHand: number;
}
/** What inventory reads of `products.created` (the event carries more). */
interface ProductCreatedPayload {
	productId?: unknown;
	stock?: unknown;
}
interface AvailabilityParams {
	productIds: string[];
}
interface OrderLinesParams {
	orderId: string;
	lines: StockLine[];
}
interface ShortLine {
	productId: string;
	requested: number;
	available: number;
}

interface InventoryMethods {
	findStock(productId: string): Promise<StockDoc | null>;
	createStock(productId: string, onHand: number): Promise<void>;
	takeLine(orderId: string, line: StockLine): Promise<boolean>;
	releaseLines(orderId: string, lines: StockLine[]): Promise<number>;
	changed(productIds: string[]): Promise<void>;
	checkLow(productIds?: string[]): Promise<void>;
	pruneReturns(now?: number): Promise<number>;
	relayOutbox(id?: string): Promise<number>;
}

interface InventoryVars {
	lowTimer?: NodeJS.Timeout;
	/** inventory.changed, at most once per CHANGE_WINDOW_MS (lib/throttled-batch.ts). */
	announcer: ThrottledBatch;
}

type InventoryThis = Service & DbServiceThis & InventoryMethods & InventoryVars;

const PRODUCT_ID = { type: "string", min: 1, max: 64 } as const;
/** How long a return marker is kept: far beyond how long orders retries a refund's return (until it is recorded). */
export const RETURN_MARKER_TTL_MS = 24 * 60 * 60 * 1000;
/** A marker value below this is a unit count from before markers had a time (ms since 1970 are far larger). */
const LEGACY_MARKER_BELOW = 1e12;
/** Order ids become field names (`holds.<orderId>`): no dots, no dollar signs. */
const ORDER_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{1,64}$/ } as const;
const LINES = {
	type: "array",
	min: 1,
	max: 100,
	items: {
		type: "object",
		strict: "remove",
		props: {
			productId: PRODUCT_ID,
			quantity: { type: "number", integer: true, min: 1, max: 10_000 }
		}
	}
} as const;
const QUANTITY_ON_HAND = {
	type: "number",
	integer: true,
	min: 0,
	max: 10_000_000,
	convert: false
} as const;
/** Optimistic retries of a set racing other stock changes before giving up with 503. */
const MAX_SET_ATTEMPTS = 10;

/**
 * Stock changes are announced (inventory.changed: catalog caches carry `available`) at once when they are isolated and
 * at most once per this window under load, where every reservation and sale changes stock: two broadcasts per
 * purchase to every products node and gateway, and as many cache drops, otherwise.
 */
const CHANGE_WINDOW_MS = 50;

/** One line per product (two lines of the same product in one order become one). */
function mergeLines(lines: StockLine[]): StockLine[] {
	const byProduct = new Map<string, number>();
	for (const l of lines) byProduct.set(l.productId, (byProduct.get(l.productId) ?? 0) + l.quantity);
	return [...byProduct.entries()]
		.sort(([a], [b]) => a.localeCompare(b))
		.map(([productId, quantity]) => ({ productId, quantity }));
}

function levelOf(doc: StockDoc): StockLevel {
	return {
		productId: doc.productId,
		onHand: doc.onHand,
		reserved: doc.reserved,
		available: doc.available
	};
}

const actions = {
	/** Admin: the stock of a product. */
	get: {
		permissions: ["admin"],
		params: { $$strict: "remove", productId: PRODUCT_ID },
		async handler(this: InventoryThis, ctx: Context<ProductParams, AppMeta>): Promise<StockLevel> {
			const doc = await this.findStock(ctx.params.productId);
			if (!doc) throw new NotFoundError("Product");
			return levelOf(doc);
		}
	},

	/** Admin: sets the units on hand; refuses to go below the units reserved (409). */
	set: {
		permissions: ["admin"],
		params: { $$strict: "remove", productId: PRODUCT_ID, onHand: QUANTITY_ON_HAND },
		async handler(this: InventoryThis, ctx: Context<SetParams, AppMeta>): Promise<StockLevel> {
			const { productId, onHand } = ctx.params;
			for (let attempt = 0; attempt < MAX_SET_ATTEMPTS; attempt++) {
				// Stock exists for every product whose products.created came in; none means inventory does not know it.
				const doc = await this.findStock(productId);
				if (!doc) throw new NotFoundError("Product");
				if (onHand < doc.reserved) {
					throw new ConflictError(
						"STOCK_BELOW_RESERVED",
						"onHand cannot drop below the units reserved",
						{
							onHand,
							reserved: doc.reserved
						}
					);
				}
				// Conditional on what was read: a reservation in between makes this match nothing, and we read again.
				const updated = await this.adapter.updateMany(
					{ productId, onHand: doc.onHand, reserved: doc.reserved },
					{
						$set: {
							onHand,
							available: onHand - doc.reserved,
							updatedAt: new Date().toISOString()
						}
					}
				);
				if (updated === 1) {
					await this.changed([productId]);
					return { productId, onHand, reserved: doc.reserved, available: onHand - doc.reserved };
				}
			}
			throw new ConflictError("STOCK_CHANGED", "Stock is changing too fast, please retry");
		}
	},

	/**
	 * Internal (orders): reserves every line of an order, all or nothing. Each line is one conditional update
	 * (`available >= quantity` and no hold of this order yet, in the filter); when a line is short, the lines already
	 * taken are released before answering 409 OUT_OF_STOCK with the short lines. Retrying with the same order id
	 * takes nothing twice. Never retried blindly by the broker.
	 */
	reserve: {
		params: { $$strict: "remove", orderId: ORDER_ID, lines: LINES },
		async handler(
			this: InventoryThis,
			ctx: Context<OrderLinesParams>
		): Promise<{ orderId: string; lines: StockLine[] }> {
			const { orderId } = ctx.params;
			const lines = mergeLines(ctx.params.lines);
			const short: ShortLine[] = [];
			for (const line of lines) {
				if (!(await this.takeLine(orderId, line))) {
					const doc = await this.findStock(line.productId);
					short.push({
						productId: line.productId,
						requested: line.quantity,
						available: doc?.available ?? 0
					});
				}
			}
			if (short.length > 0) {
				await this.releaseLines(orderId, lines);
				this.broker.metrics.increment(METRIC.RESERVATION_FAILURES, {
					reason: "out_of_stock"
				});
				throw new ConflictError("OUT_OF_STOCK", "Not enough stock for some lines", {
					lines: short
				});
			}
			await this.changed(lines.map(l => l.productId));
			return { orderId, lines };
		}
	},

	/** Internal (orders): gives an order's reserved units back. Idempotent: a second call changes nothing. */
	release: {
		params: { $$strict: "remove", orderId: ORDER_ID, lines: LINES },
		async handler(
			this: InventoryThis,
			ctx: Context<OrderLinesParams>
		): Promise<{ released: number }> {
			const lines = mergeLines(ctx.params.lines);
			const released = await this.releaseLines(ctx.params.orderId, lines);
			if (released > 0) await this.changed(lines.map(l => l.productId));
			return { released };
		}
	},

	/** Internal (orders, when paid): turns an order's reserved units into sold ones. Idempotent. */
	commit: {
		params: { $$strict: "remove", orderId: ORDER_ID, lines: LINES },
		async handler(
			this: InventoryThis,
			ctx: Context<OrderLinesParams>
		): Promise<{ committed: number }> {
			const { orderId } = ctx.params;
			let committed = 0;
			for (const line of mergeLines(ctx.params.lines)) {
				const hold = `holds.${orderId}`;
				committed += await this.adapter.updateMany(
					{ productId: line.productId, [hold]: line.quantity },
					{
						$inc: { reserved: -line.quantity, onHand: -line.quantity, sold: line.quantity },
						$unset: { [hold]: true },
						$set: { updatedAt: new Date().toISOString() }
					}
				);
			}
			return { committed };
		}
	},

	/**
	 * Internal (orders, refunds): puts a refunded order's sold units back on hand. Idempotent per order and line
	 * (the return is recorded in the same write); orders commits first, so only units that were sold come back.
	 */
	restock: {
		params: { $$strict: "remove", orderId: ORDER_ID, lines: LINES },
		async handler(
			this: InventoryThis,
			ctx: Context<OrderLinesParams>
		): Promise<{ restocked: number }> {
			const { orderId } = ctx.params;
			const lines = mergeLines(ctx.params.lines);
			const returned = `returns.${orderId}`;
			let restocked = 0;
			for (const line of lines) {
				restocked += await this.adapter.updateMany(
					{ productId: line.productId, [returned]: { $exists: false } },
					{
						$inc: { onHand: line.quantity, available: line.quantity, sold: -line.quantity },
						$set: { [returned]: Date.now(), updatedAt: new Date().toISOString() }
					}
				);
			}
			if (restocked > 0) await this.changed(lines.map(l => l.productId));
			return { restocked };
		}
	},

	/**
	 * Internal (orders' sweeper): the order ids holding stock and their lines (in product order), a page at a time in
	 * id order (`after` the last id of the page before; `next` while there are more), to find holds whose order is
	 * gone.
	 */
	holders: {
		params: {
			$$strict: "remove",
			after: { ...ORDER_ID, optional: true },
			limit: { type: "number", integer: true, min: 1, max: 10_000, default: 500 }
		},
		async handler(
			this: InventoryThis,
			ctx: Context<{ after?: string; limit: number }>
		): Promise<{ holders: Record<string, StockLine[]>; next?: string }> {
			const { after, limit } = ctx.params;
			// Only stock with something reserved has holds (reserved is the sum of its holds).
			const docs = (await this.adapter.find({
				query: { reserved: { $gt: 0 } },
				sort: ["productId"]
			})) as StockDoc[];
			const all = new Map<string, StockLine[]>();
			for (const doc of docs) {
				for (const [orderId, quantity] of Object.entries(doc.holds ?? {})) {
					if (after !== undefined && orderId <= after) continue;
					let lines = all.get(orderId);
					if (!lines) all.set(orderId, (lines = []));
					lines.push({ productId: doc.productId, quantity });
				}
			}
			const ids = [...all.keys()].sort();
			const page = ids.slice(0, limit);
			return {
				holders: Object.fromEntries(page.map(id => [id, all.get(id)!])),
				...(ids.length > limit ? { next: page[page.length - 1] } : {})
			};
		}
	},

	/** Internal: units available now for each product (0 for unknown ones), one call for a whole page. */
	availability: {
		params: { $$strict: "remove", productIds: { type: "array", items: PRODUCT_ID, max: 500 } },
		async handler(
			this: InventoryThis,
			ctx: Context<AvailabilityParams>
		): Promise<Record<string, number>> {
			const ids = [...new Set(ctx.params.productIds)];
			const out: Record<string, number> = Object.fromEntries(ids.map(id => [id, 0]));
			if (ids.length === 0) return out;
			const docs = (await this.adapter.find({ query: { productId: { $in: ids } } })) as StockDoc[];
			for (const d of docs) out[d.productId] = d.available;
			return out;
		}
	},

	/** Internal: ids of the products with stock available, for the catalog's `inStock` filter. */
	inStock: {
		params: { $$strict: "remove" },
		async handler(this: InventoryThis): Promise<string[]> {
			const docs = (await this.adapter.find({ query: { available: { $gt: 0 } } })) as StockDoc[];
			return docs.map(d => d.productId);
		}
	}
} satisfies Record<string, AppAction<InventoryThis>>;

export function createInventoryService(
	cfg: AppConfig
): WithChannels<
	ServiceSchema<ServiceSettingSchema, InventoryMethods, DbServiceThis & InventoryVars>,
	InventoryThis
> {
	return {
		name: "inventory",
		mixins: [
			DbMixin(cfg, {
				collection: "stock",
				indexes: [
					{ fields: { productId: 1 }, unique: true },
					{ fields: { available: 1 } },
					OUTBOX_INDEX
				]
			}),
			OutboxMixin(cfg)
		],
		actions,

		// Durable: a product created while no inventory node ran gets its stock when one starts.
		channels: {
			"products.created": {
				group: "inventory",
				async handler(this: InventoryThis, ctx: Context<ProductCreatedPayload>) {
					const { productId, stock } = ctx.params ?? {};
					const valid =
						typeof productId === "string" &&
						productId.length > 0 &&
						productId.length <= PRODUCT_ID.max &&
						Number.isInteger(stock) &&
						(stock as number) >= 0 &&
						(stock as number) <= QUANTITY_ON_HAND.max;
					if (!valid) {
						// Redelivering a malformed event cannot fix it: acknowledged, and said.
						this.logger.warn("products.created without a usable productId and stock: ignored", {
							eventId: (ctx.params as { eventId?: unknown } | null)?.eventId
						});
						return;
					}
					await this.createStock(productId, stock as number);
				}
			}
		},

		methods: {
			async findStock(this: InventoryThis, productId: string): Promise<StockDoc | null> {
				return (await this.adapter.findOne({ productId })) as StockDoc | null;
			},

			/**
			 * A new product's stock; idempotent (the unique productId index turns a redelivery into nothing). Announced
			 * either way, so a create waiting for it answers even when the first delivery died before announcing.
			 */
			async createStock(this: InventoryThis, productId: string, onHand: number): Promise<void> {
				try {
					await this.adapter.insert({
						productId,
						onHand,
						reserved: 0,
						available: onHand,
						sold: 0,
						holds: {},
						updatedAt: new Date().toISOString()
					});
				} catch (err) {
					if (!isDuplicateKeyError(err)) throw err;
				}
				await this.changed([productId]);
			},

			/** Takes one line for an order; true when it is held (now or by an earlier try of the same order). */
			async takeLine(this: InventoryThis, orderId: string, line: StockLine): Promise<boolean> {
				const hold = `holds.${orderId}`;
				const taken = await this.adapter.updateMany(
					{
						productId: line.productId,
						available: { $gte: line.quantity },
						[hold]: { $exists: false }
					},
					{
						$inc: { available: -line.quantity, reserved: line.quantity },
						$set: { [hold]: line.quantity, updatedAt: new Date().toISOString() }
					}
				);
				if (taken === 1) return true;
				return (
					(await this.adapter.count({
						query: { productId: line.productId, [hold]: line.quantity }
					})) === 1
				);
			},

			/** Releases whatever this order holds of these lines; answers how many lines it released. */
			async releaseLines(
				this: InventoryThis,
				orderId: string,
				lines: StockLine[]
			): Promise<number> {
				const hold = `holds.${orderId}`;
				let released = 0;
				for (const line of lines) {
					released += await this.adapter.updateMany(
						{ productId: line.productId, [hold]: line.quantity },
						{
							$inc: { available: line.quantity, reserved: -line.quantity },
							$unset: { [hold]: true },
							$set: { updatedAt: new Date().toISOString() }
						}
					);
				}
				return released;
			},

			/**
			 * After any stock change: tell every node (catalog caches carry `available`), and write `inventory.low` for
			 * products whose available stock fell below the threshold.
			 */
			async changed(this: InventoryThis, productIds: string[]): Promise<void> {
				this.announcer.add(productIds);
				await this.checkLow(productIds);
			},

			/**
			 * `inventory.low` once per dip below LOW_STOCK_THRESHOLD: the flag and the event are one conditional write
			 * (the outbox), so concurrent changes write it once; the flag clears when the stock recovers. Also run on a
			 * timer, which catches a dip whose check a crash interrupted.
			 */
			/**
			 * Prunes return markers older than RETURN_MARKER_TTL_MS (each with a write conditional on its value, so a marker
			 * written meanwhile is kept). A marker from before markers had a time gets one now, and goes a TTL later.
			 */
			async pruneReturns(this: InventoryThis, now = Date.now()): Promise<number> {
				const docs = (await this.adapter.find({
					query: { returns: { $exists: true } }
				})) as StockDoc[];
				let pruned = 0;
				for (const doc of docs) {
					for (const [orderId, value] of Object.entries(doc.returns ?? {})) {
						const field = `returns.${orderId}`;
						if (value < LEGACY_MARKER_BELOW) {
							await this.adapter.updateMany(
								{ _id: doc._id, [field]: value },
								{ $set: { [field]: now } }
							);
						} else if (value < now - RETURN_MARKER_TTL_MS) {
							pruned += await this.adapter.updateMany(
								{ _id: doc._id, [field]: value },
								{ $unset: { [field]: true } }
							);
						}
					}
				}
				return pruned;
			},

			async checkLow(this: InventoryThis, productIds?: string[]): Promise<void> {
				const threshold = cfg.inventory.lowStockThreshold;
				const scope = productIds ? { productId: { $in: productIds } } : {};
				// One read finds both kinds (usually none): recovered since notified, and dipped and not notified yet.
				const due = (await this.adapter.find({
					query: {
						...scope,
						$or: [
							{ lowNotified: true, available: { $gte: threshold } },
							{ lowNotified: { $ne: true }, available: { $lt: threshold } }
						]
					},
					limit: 500
				})) as StockDoc[];
				const recovered = due.filter(d => d.available >= threshold).map(d => d._id);
				if (recovered.length > 0) {
					await this.adapter.updateMany(
						{ _id: { $in: recovered }, lowNotified: true, available: { $gte: threshold } },
						{ $set: { lowNotified: false } }
					);
				}
				for (const doc of due.filter(d => d.available < threshold)) {
					const won = await this.adapter.updateMany(
						{ _id: doc._id, available: { $lt: threshold }, lowNotified: { $ne: true } },
						withEvents({ $set: { lowNotified: true } }, [
							outboxEvent("inventory.low", {
								productId: doc.productId,
								available: doc.available,
								threshold
							})
						])
					);
					if (won === 1) {
						this.broker.metrics.increment(METRIC.INVENTORY_LOW);
						void this.relayOutbox(doc._id).catch(() => undefined);
					}
				}
			}
		},

		created(this: InventoryThis) {
			this.announcer = new ThrottledBatch(CHANGE_WINDOW_MS, productIds => {
				void this.broker.broadcast("inventory.changed", { productIds });
			});
		},

		started(this: InventoryThis) {
			this.lowTimer = setInterval(
				() =>
					void this.checkLow()
						.then(() => this.pruneReturns())
						.catch(() => undefined),
				cfg.inventory.sweepInterval
			);
			this.lowTimer.unref();
		},

		stopped(this: InventoryThis) {
			if (this.lowTimer) clearInterval(this.lowTimer);
			this.announcer.flush();
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createInventoryService(configOf(broker));

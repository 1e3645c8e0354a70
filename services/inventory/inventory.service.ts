/**
 * Stock levels per product: `onHand`, `reserved` and `available = onHand - reserved`, kept in one document per
 * product and changed only by single conditional updates, never read-then-write, so `available >= 0` holds at every
 * moment on NeDB and on MongoDB alike. The only writer of its stores (stock, holds, sales, customers' sale counts) and
 * the owner of their lifecycle: a product's stock is made here from the durable `products.created` event (with the
 * stock it was created with), so products and inventory never call each other; a product inventory has no stock for
 * is unknown to it (404). Reservations are hold records (holds.ts); sales are inventory's too (sales.ts).
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../../config";
import { ConflictError, NotFoundError, variantRequired } from "../../lib/errors";
import { ThrottledBatch } from "../../lib/throttled-batch";
import { METRIC } from "../../lib/metric-names";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import { isDuplicateKeyError } from "../../adapters/store";
import { OUTBOX_INDEX, OutboxMixin, outboxEvent, withEvents } from "../../mixins/outbox.mixin";
import type { AppMeta } from "../../types/meta";
import type { AppAction, WithChannels } from "../../types/moleculer-ext";
import {
	type Refusal,
	clearStaleMarkers,
	commitLines,
	migrateLegacyHolds,
	releaseLines,
	sellable,
	sweepHolds,
	takeLine
} from "./holds";
import { applyPendingSales, saleActions, saleGauges } from "./sales";
import type {
	HeldLine,
	HoldDoc,
	InventoryMethods,
	InventoryThis,
	InventoryVars,
	StockDoc,
	StockLevel,
	StockLine
} from "./types";

export type { StockLevel, StockLine } from "./types";

interface ProductParams {
	productId: string;
}
interface SetParams {
	productId: string;
	onHand: number;
}
/** What inventory reads of `products.created` and `products.variants.created` (the events carry more). */
interface ProductCreatedPayload {
	productId?: unknown;
	stock?: unknown;
	variantId?: unknown;
	variants?: unknown;
}
interface VariantParams {
	variantId: string;
}
interface AvailabilityParams {
	productIds: string[];
}
interface OrderLinesParams {
	orderId: string;
	/** `variantId` absent: the product's default variant, whose id is the product's. */
	lines: Array<StockLine & { variantId?: string }>;
}
interface ReserveParams extends OrderLinesParams {
	userId?: string;
	ttlMs?: number;
}

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
			/** The variant; absent: the product's default variant, whose id is the product's. */
			variantId: { ...PRODUCT_ID, optional: true },
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

/** The hold sweep looks for markers a crash left behind on one pass in this many. */
const MARKER_SWEEP_EVERY = 12;

/**
 * Broadcasts `inventory.changed` with what each product can be bought of now (`levels`, see holds.ts `sellable`) and
 * the sales whose units changed; a failed read still announces the ids, so caches drop what they hold.
 */
async function announce(
	svc: InventoryThis,
	productIds: string[],
	saleIds: string[]
): Promise<void> {
	const levels: Record<string, number> = {};
	// Stock ids are variant ids; the catalog's caches and waiters want the products they belong to as well.
	const owners = new Set(productIds);
	try {
		const now = Date.now();
		const docs = (await svc.adapter.find({
			query: { productId: { $in: productIds } }
		})) as StockDoc[];
		for (const doc of docs) {
			const level = sellable(doc, now);
			if (level !== null) levels[doc.productId] = level;
			if (doc.ofProduct) owners.add(doc.ofProduct);
		}
	} catch (err) {
		svc.logger.warn("Could not read the stock levels to announce", err);
	}
	// The sale answers the cacher keeps (getSale declares its keys for the gateways' read caches) go first.
	if (saleIds.length > 0) await svc.broker.cacher?.clean("inventory.getSale:**");
	await svc.broker.broadcast("inventory.changed", {
		productIds: [...owners],
		variantIds: productIds,
		saleIds,
		levels
	});
}

/**
 * One line per stock, keyed by the stock's id (the variant's; a line naming only its product means the default
 * variant, whose id is the product's); two lines of the same variant in one order become one.
 */
function mergeLines(lines: OrderLinesParams["lines"]): StockLine[] {
	const byProduct = new Map<string, number>();
	for (const l of lines) {
		const key = l.variantId ?? l.productId;
		byProduct.set(key, (byProduct.get(key) ?? 0) + l.quantity);
	}
	return [...byProduct.entries()]
		.sort(([a], [b]) => a.localeCompare(b))
		.map(([productId, quantity]) => ({ productId, quantity }));
}

function levelOf(doc: StockDoc): StockLevel {
	return {
		productId: doc.ofProduct ?? doc.productId,
		variantId: doc.productId,
		onHand: doc.onHand,
		reserved: doc.reserved,
		available: doc.available
	};
}

function inventoryActions(cfg: AppConfig) {
	return {
		/** Admin: the stock of a product's default variant; 409 VARIANT_REQUIRED for a product with options. */
		get: {
			permissions: ["admin"],
			params: { $$strict: "remove", productId: PRODUCT_ID },
			async handler(
				this: InventoryThis,
				ctx: Context<ProductParams, AppMeta>
			): Promise<StockLevel> {
				return levelOf(await this.defaultStock(ctx.params.productId));
			}
		},

		/** Admin: sets the units on hand of a product's default variant; refuses to go below the units reserved (409). */
		set: {
			permissions: ["admin"],
			params: { $$strict: "remove", productId: PRODUCT_ID, onHand: QUANTITY_ON_HAND },
			async handler(this: InventoryThis, ctx: Context<SetParams, AppMeta>): Promise<StockLevel> {
				await this.defaultStock(ctx.params.productId);
				return this.setOnHand(ctx.params.productId, ctx.params.onHand);
			}
		},

		/** Admin: the stock of one variant. */
		getVariant: {
			permissions: ["admin"],
			params: { $$strict: "remove", variantId: PRODUCT_ID },
			async handler(
				this: InventoryThis,
				ctx: Context<VariantParams, AppMeta>
			): Promise<StockLevel> {
				const doc = await this.findStock(ctx.params.variantId);
				if (!doc) throw new NotFoundError("Variant");
				return levelOf(doc);
			}
		},

		/** Admin: sets the units on hand of one variant; refuses to go below the units reserved (409). */
		setVariant: {
			permissions: ["admin"],
			params: { $$strict: "remove", variantId: PRODUCT_ID, onHand: QUANTITY_ON_HAND },
			async handler(
				this: InventoryThis,
				ctx: Context<VariantParams & { onHand: number }, AppMeta>
			): Promise<StockLevel> {
				return this.setOnHand(ctx.params.variantId, ctx.params.onHand);
			}
		},

		/**
		 * Internal (orders): reserves every line of an order, all or nothing, as hold records (holds.ts). A line of a
		 * product in a live sale is taken from the sale's units at the sale price, within the buyer's limit (`userId`);
		 * one kept back for a sale that has not started is refused. When a line cannot be taken, the lines already taken
		 * are released before answering 409 (OUT_OF_STOCK with the short lines, PURCHASE_LIMIT_EXCEEDED or
		 * SALE_NOT_STARTED). Retrying with the same order id takes nothing twice. Never retried blindly by the broker.
		 * Answers the lines as held and when the order's hold ends (`ttlMs`, or a sale's shorter hold time).
		 */
		reserve: {
			params: {
				$$strict: "remove",
				orderId: ORDER_ID,
				lines: LINES,
				userId: { type: "string", min: 1, max: 64, optional: true },
				ttlMs: {
					type: "number",
					integer: true,
					min: 1000,
					max: 7 * 24 * 3600 * 1000,
					optional: true
				}
			},
			async handler(
				this: InventoryThis,
				ctx: Context<ReserveParams>
			): Promise<{ orderId: string; lines: HeldLine[]; expiresAt: string }> {
				const { orderId, userId } = ctx.params;
				const ttlMs = ctx.params.ttlMs ?? cfg.orders.ttl * 1000;
				const lines = mergeLines(ctx.params.lines);
				const held: HeldLine[] = [];
				const refused: Refusal[] = [];
				let expiresAt = Date.now() + ttlMs;
				for (const line of lines) {
					const taken = await takeLine(this, cfg, orderId, userId, line, ttlMs);
					if ("refused" in taken) {
						refused.push(taken.refused);
						// Past the first refusal only short lines are worth finding: the answer lists them all.
						if (taken.refused.reason !== "out_of_stock") break;
						continue;
					}
					held.push(taken.held);
					expiresAt = Math.min(expiresAt, taken.expiresAt);
				}
				for (const line of [...held, ...refused]) {
					if (line.saleId) {
						const outcome = "reason" in line ? line.reason : "admitted";
						this.broker.metrics.increment(METRIC.SALE_CHECKOUTS, { sale: line.saleId, outcome });
					}
				}
				if (refused.length > 0) {
					if (held.length > 0) await releaseLines(this, cfg, orderId, lines);
					// The stock ids are variant ids: the answer names each line's product as the caller did.
					const productOf = new Map(
						ctx.params.lines.map(l => [l.variantId ?? l.productId, l.productId])
					);
					throw refusalError(refused, this, key => productOf.get(key) ?? key);
				}
				await this.changed(
					lines.map(l => l.productId),
					held.flatMap(l => (l.saleId ? [l.saleId] : []))
				);
				return { orderId, lines: held, expiresAt: new Date(expiresAt).toISOString() };
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
				const released = await releaseLines(this, cfg, ctx.params.orderId, lines);
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
				const lines = mergeLines(ctx.params.lines);
				const committed = await commitLines(this, cfg, ctx.params.orderId, lines);
				if (committed > 0) await this.changed(lines.map(l => l.productId));
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

		/** Admin (the REPL's `stock` and `order`): the holds of an order or of a product, oldest first. */
		holds: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				orderId: { ...ORDER_ID, optional: true },
				productId: { ...PRODUCT_ID, optional: true }
			},
			async handler(this: InventoryThis, ctx: Context<{ orderId?: string; productId?: string }>) {
				const { orderId, productId } = ctx.params;
				const query = { ...(orderId ? { orderId } : {}), ...(productId ? { productId } : {}) };
				const found = (await this.stores.holds.find({
					query,
					sort: ["createdAt"],
					limit: 1000
				})) as HoldDoc[];
				return found.map(h => ({
					orderId: h.orderId,
					productId: h.productId,
					quantity: h.quantity,
					state: h.state,
					...(h.saleId ? { saleId: h.saleId } : {}),
					expiresAt: new Date(h.expiresAt).toISOString()
				}));
			}
		},

		/**
		 * Internal: units available now of every variant of some products (0 for unknown products), by variant id, one
		 * call for a whole page. A default variant's id is its product's, so it answers what it did before variants.
		 */
		availability: {
			params: { $$strict: "remove", productIds: { type: "array", items: PRODUCT_ID, max: 500 } },
			async handler(
				this: InventoryThis,
				ctx: Context<AvailabilityParams>
			): Promise<Record<string, number>> {
				const ids = [...new Set(ctx.params.productIds)];
				const out: Record<string, number> = Object.fromEntries(ids.map(id => [id, 0]));
				if (ids.length === 0) return out;
				// By variant: a default variant's stock is under its product's id, the others' under theirs.
				const docs = (await this.adapter.find({
					query: { $or: [{ productId: { $in: ids } }, { ofProduct: { $in: ids } }] }
				})) as StockDoc[];
				for (const d of docs) out[d.productId] = d.available;
				return out;
			}
		},

		/** Internal: ids of the variants with stock available, for the catalog's `inStock` filter. */
		inStock: {
			params: { $$strict: "remove" },
			async handler(this: InventoryThis): Promise<string[]> {
				const docs = (await this.adapter.find({ query: { available: { $gt: 0 } } })) as StockDoc[];
				return docs.map(d => d.productId);
			}
		}
	} satisfies Record<string, AppAction<InventoryThis>>;
}

/** A stock event names the stock (variant) and its product by id and carries a count inventory can keep. */
function usableStockEvent(e: ProductCreatedPayload): boolean {
	const id = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= PRODUCT_ID.max;
	return (
		id(e.productId) &&
		id(e.variantId) &&
		Number.isInteger(e.stock) &&
		(e.stock as number) >= 0 &&
		(e.stock as number) <= QUANTITY_ON_HAND.max
	);
}

/** The contract's 409 for the first refusal that is not a short line, else OUT_OF_STOCK listing the short lines. */
function refusalError(
	refused: Refusal[],
	svc: InventoryThis,
	productOf: (stockId: string) => string
): ConflictError {
	const other = refused.find(r => r.reason !== "out_of_stock");
	if (other?.reason === "limit_exceeded") {
		return new ConflictError(
			"PURCHASE_LIMIT_EXCEEDED",
			"This would take you over the sale's limit per customer",
			{
				saleId: other.saleId,
				productId: productOf(other.productId),
				variantId: other.productId,
				perCustomerLimit: other.perCustomerLimit,
				alreadyHeld: other.held
			}
		);
	}
	if (other?.reason === "not_started") {
		return new ConflictError("SALE_NOT_STARTED", "This product is in a sale that has not started", {
			saleId: other.saleId,
			productId: productOf(other.productId),
			variantId: other.productId,
			startsAt: other.startsAt
		});
	}
	svc.broker.metrics.increment(METRIC.RESERVATION_FAILURES, { reason: "out_of_stock" });
	return new ConflictError("OUT_OF_STOCK", "Not enough stock for some lines", {
		lines: refused.map(r => ({
			productId: productOf(r.productId),
			variantId: r.productId,
			requested: (r as { requested: number }).requested,
			available: (r as { available: number }).available,
			...(r.saleId ? { saleId: r.saleId } : {})
		}))
	});
}

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
					{ fields: { ofProduct: 1 }, sparse: true },
					{ fields: { available: 1 } },
					OUTBOX_INDEX
				],
				stores: {
					holds: {
						collection: "holds",
						indexes: [{ fields: { expiresAt: 1 } }, { fields: { saleId: 1 }, sparse: true }]
					},
					customers: { collection: "sale_customers" },
					sales: { collection: "sales", indexes: [{ fields: { endsAt: 1 } }] }
				}
			}),
			OutboxMixin(cfg)
		],
		actions: { ...inventoryActions(cfg), ...saleActions(cfg) },

		// Durable: a product created while no inventory node ran gets its stock when one starts.
		channels: {
			"products.created": {
				group: "inventory",
				async handler(this: InventoryThis, ctx: Context<ProductCreatedPayload>) {
					const { productId, stock, variants } = ctx.params ?? {};
					// A product with options has stock per variant and none of its own.
					const wanted = Array.isArray(variants)
						? variants.map((v: ProductCreatedPayload) => ({
								productId,
								variantId: v?.variantId,
								stock: v?.stock
							}))
						: [{ productId, variantId: productId, stock }];
					for (const one of wanted) {
						if (!usableStockEvent(one)) {
							// Redelivering a malformed event cannot fix it: acknowledged, and said.
							this.logger.warn("products.created without a usable productId and stock: ignored", {
								eventId: (ctx.params as { eventId?: unknown } | null)?.eventId
							});
							return;
						}
					}
					for (const one of wanted) {
						await this.createStock(
							one.variantId as string,
							one.stock as number,
							one.productId as string
						);
					}
				}
			},
			"products.variants.created": {
				group: "inventory",
				async handler(this: InventoryThis, ctx: Context<ProductCreatedPayload>) {
					const event = ctx.params ?? {};
					if (!usableStockEvent(event)) {
						this.logger.warn("products.variants.created without usable ids and stock: ignored", {
							eventId: (ctx.params as { eventId?: unknown } | null)?.eventId
						});
						return;
					}
					await this.createStock(
						event.variantId as string,
						event.stock as number,
						event.productId as string
					);
				}
			}
		},

		methods: {
			async findStock(this: InventoryThis, productId: string): Promise<StockDoc | null> {
				return (await this.adapter.findOne({ productId })) as StockDoc | null;
			},

			/** The stock of a product's default variant: 404 when unknown, 409 when the product has options. */
			async defaultStock(this: InventoryThis, productId: string): Promise<StockDoc> {
				const doc = await this.findStock(productId);
				if (doc) return doc;
				const variants = (await this.adapter.find({
					query: { ofProduct: productId },
					limit: 100
				})) as StockDoc[];
				if (variants.length > 0) {
					throw variantRequired(
						productId,
						variants.map(v => v.productId)
					);
				}
				throw new NotFoundError("Product");
			},

			/** Sets the units on hand of one stock, conditional on what was read (a reservation in between: read again). */
			async setOnHand(this: InventoryThis, productId: string, onHand: number): Promise<StockLevel> {
				for (let attempt = 0; attempt < MAX_SET_ATTEMPTS; attempt++) {
					// Stock exists for every variant whose event came in; none means inventory does not know it.
					const doc = await this.findStock(productId);
					if (!doc) throw new NotFoundError("Variant");
					if (onHand < doc.reserved) {
						throw new ConflictError(
							"STOCK_BELOW_RESERVED",
							"onHand cannot drop below the units reserved",
							{ onHand, reserved: doc.reserved }
						);
					}
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
						return levelOf({ ...doc, onHand, available: onHand - doc.reserved });
					}
				}
				throw new ConflictError("STOCK_CHANGED", "Stock is changing too fast, please retry");
			},

			/**
			 * A new product's stock; idempotent (the unique productId index turns a redelivery into nothing). Announced
			 * either way, so a create waiting for it answers even when the first delivery died before announcing.
			 */
			async createStock(
				this: InventoryThis,
				productId: string,
				onHand: number,
				ofProduct?: string
			): Promise<void> {
				try {
					await this.adapter.insert({
						productId,
						...(ofProduct && ofProduct !== productId ? { ofProduct } : {}),
						onHand,
						reserved: 0,
						available: onHand,
						sold: 0,
						updatedAt: new Date().toISOString()
					});
				} catch (err) {
					if (!isDuplicateKeyError(err)) throw err;
				}
				await this.changed([productId]);
			},

			/**
			 * After any stock change: tell every node (catalog caches carry `available`, sale answers their units left,
			 * orders nodes keep what is sold out), and write `inventory.low` for products whose available stock fell
			 * below the threshold.
			 */
			async changed(
				this: InventoryThis,
				productIds: string[],
				saleIds: string[] = []
			): Promise<void> {
				for (const id of saleIds) this.changedSales.add(id);
				const announced = this.announcer.add(productIds);
				await this.checkLow(productIds);
				// An isolated change is broadcast before the caller answers, so the client's next read, on any gateway,
				// sees it; under load the changes of a window go out together, at most CHANGE_WINDOW_MS later.
				await announced;
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
								productId: doc.ofProduct ?? doc.productId,
								variantId: doc.productId,
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
			this.changedSales = new Set();
			this.sweepingHolds = false;
			this.announcer = new ThrottledBatch(CHANGE_WINDOW_MS, productIds => {
				const saleIds = [...this.changedSales];
				this.changedSales.clear();
				return announce(this, productIds, saleIds).catch((err: unknown) =>
					this.logger.warn(
						"Could not announce a stock change; caches show the old stock until their entries expire",
						err
					)
				);
			});
		},

		async started(this: InventoryThis) {
			const moved = await migrateLegacyHolds(this, cfg);
			if (moved > 0)
				this.logger.info(`Moved ${moved} holds stored in stock documents to hold records`);
			this.lowTimer = setInterval(
				() =>
					void this.checkLow()
						.then(() => this.pruneReturns())
						.catch(() => undefined),
				cfg.inventory.sweepInterval
			);
			this.lowTimer.unref();
			let passes = 0;
			this.holdsTimer = setInterval(() => {
				if (this.sweepingHolds) return;
				this.sweepingHolds = true;
				// Markers a crash left behind are rare: looked for once every MARKER_SWEEP_EVERY passes.
				const markers = passes++ % MARKER_SWEEP_EVERY === 0;
				void sweepHolds(this, cfg)
					.then(() => applyPendingSales(this))
					.then(() => (markers ? clearStaleMarkers(this, cfg) : 0))
					.then(() => saleGauges(this))
					.catch(err => this.logger.warn("Hold sweep did not finish; the next one carries on", err))
					.finally(() => (this.sweepingHolds = false));
			}, cfg.inventory.sweepInterval);
			this.holdsTimer.unref();
		},

		stopped(this: InventoryThis) {
			if (this.lowTimer) clearInterval(this.lowTimer);
			if (this.holdsTimer) clearInterval(this.holdsTimer);
			this.announcer.flush();
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createInventoryService(configOf(broker));

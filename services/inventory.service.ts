/**
 * Stock levels per product: `onHand`, `reserved` and `available = onHand - reserved`, kept in one document per
 * product and changed only by single conditional updates, never read-then-write, so `available >= 0` holds at every
 * moment on NeDB and on MongoDB alike. The only writer of the `stock` collection.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { randomUUID } from "node:crypto";
import { config } from "../config";
import { ConflictError, NotFoundError } from "../lib/errors";
import { DbMixin, type DbServiceThis, isDuplicateKeyError } from "../mixins/db.mixin";
import type { AppMeta } from "../types/meta";
import type { AppAction } from "../types/moleculer-ext";

interface StockDoc {
	_id: string;
	productId: string;
	onHand: number;
	reserved: number;
	available: number;
	updatedAt: string;
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
interface AvailabilityParams {
	productIds: string[];
}

interface InventoryMethods {
	findStock(productId: string): Promise<StockDoc | null>;
	changed(productIds: string[], ctx: Context): Promise<void>;
}

type InventoryThis = Service & DbServiceThis & InventoryMethods;

const PRODUCT_ID = { type: "string", min: 1, max: 64 } as const;
const QUANTITY_ON_HAND = {
	type: "number",
	integer: true,
	min: 0,
	max: 10_000_000,
	convert: false
} as const;
/** Optimistic retries of a set racing other stock changes before giving up with 503. */
const MAX_SET_ATTEMPTS = 10;

const cfg = config();

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
				let doc = await this.findStock(productId);
				if (!doc) {
					// A product whose stock was never initialised (e.g. inventory was down when it was created).
					await ctx.call("products.exists", { id: productId });
					await ctx.call("inventory.init", { productId, onHand: 0 });
					doc = await this.findStock(productId);
					if (!doc) continue;
				}
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
					await this.changed([productId], ctx);
					return { productId, onHand, reserved: doc.reserved, available: onHand - doc.reserved };
				}
			}
			throw new ConflictError("STOCK_CHANGED", "Stock is changing too fast, please retry");
		}
	},

	/** Internal: creates the stock record of a new product (idempotent). */
	init: {
		params: { $$strict: "remove", productId: PRODUCT_ID, onHand: QUANTITY_ON_HAND },
		async handler(this: InventoryThis, ctx: Context<SetParams>): Promise<StockLevel> {
			const { productId, onHand } = ctx.params;
			try {
				await this.adapter.insert({
					productId,
					onHand,
					reserved: 0,
					available: onHand,
					updatedAt: new Date().toISOString()
				});
				await this.changed([productId], ctx);
			} catch (err) {
				if (!isDuplicateKeyError(err)) throw err;
			}
			return levelOf((await this.findStock(productId))!);
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

const InventoryService: ServiceSchema<ServiceSettingSchema, InventoryMethods, DbServiceThis> = {
	name: "inventory",
	mixins: [
		DbMixin({
			collection: "stock",
			indexes: [{ fields: { productId: 1 }, unique: true }, { fields: { available: 1 } }]
		})
	],
	actions,

	methods: {
		async findStock(this: InventoryThis, productId: string): Promise<StockDoc | null> {
			return (await this.adapter.findOne({ productId })) as StockDoc | null;
		},

		/**
		 * After any stock change: tell every node (catalog caches carry `available`), and emit `inventory.low` for
		 * products whose available stock fell below the threshold.
		 */
		async changed(this: InventoryThis, productIds: string[], ctx: Context): Promise<void> {
			ctx.broadcast("inventory.changed", { productIds });
			const docs = (await this.adapter.find({
				query: { productId: { $in: productIds } }
			})) as StockDoc[];
			for (const doc of docs) {
				if (doc.available < cfg.inventory.lowStockThreshold) {
					ctx.emit("inventory.low", {
						eventId: randomUUID(),
						productId: doc.productId,
						available: doc.available,
						threshold: cfg.inventory.lowStockThreshold,
						occurredAt: new Date().toISOString()
					});
				}
			}
		}
	}
};

export default InventoryService;

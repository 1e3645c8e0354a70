/**
 * Sales: a window in which some products are sold at a sale price, from units allotted to the sale, at most a number
 * per customer. Inventory owns them because every limit of a sale moves with the stock: each item's terms and
 * counters live in its product's stock document (`sales.<saleId>`), so one conditional update takes the stock and
 * the sale's units together, and the per-customer counts are records of inventory's too (holds.ts). The sale record
 * itself is the definition clients read. From its creation until its start a sale keeps its products back (409
 * SALE_NOT_STARTED); after its end they sell at their normal price again.
 */
import { randomUUID } from "node:crypto";
import type { Context } from "moleculer";
import type { AppConfig } from "../../config";
import { ConflictError, NotFoundError, UnprocessableError } from "../../lib/errors";
import { METRIC } from "../../lib/metric-names";
import { timestampRule } from "../../lib/validation";
import type { AppMeta } from "../../types/meta";
import type { AppAction } from "../../types/moleculer-ext";
import {
	type InventoryThis,
	type Sale,
	type SaleDoc,
	type SaleItem,
	type SaleStatus,
	type SaleTerms,
	type StockDoc,
	holdsOf,
	salesOf
} from "./types";

const PRODUCT_ID = { type: "string", min: 1, max: 64 } as const;
/** Sale ids become field names (`sales.<saleId>`): no dots, no dollar signs. */
const SALE_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{1,64}$/ } as const;
const item = () =>
	({
		type: "object",
		strict: "remove",
		props: {
			productId: {
				...PRODUCT_ID,
				optional: true,
				description:
					"The product: alone, its default variant (409 VARIANT_REQUIRED when it has options)"
			},
			variantId: { ...PRODUCT_ID, optional: true, description: "The variant on sale" },
			salePrice: { type: "number", integer: true, min: 1, max: 100_000_000, convert: false },
			units: { type: "number", integer: true, min: 1, max: 10_000_000, convert: false },
			perCustomerLimit: { type: "number", integer: true, min: 1, max: 10_000, convert: false }
		}
	}) as const;
/** New rule objects per action: fastest-validator compiles a rule object in place (see lib/validation.ts). */
const fields = () =>
	({
		name: { type: "string", min: 1, max: 200, trim: true },
		startsAt: timestampRule(),
		endsAt: timestampRule(),
		holdSeconds: {
			type: "number",
			integer: true,
			min: 10,
			max: 86_400,
			convert: false,
			optional: true
		},
		items: { type: "array", min: 1, max: 50, items: item() }
	}) as const;
const optional = <T extends object>(rule: T) => ({ ...rule, optional: true }) as const;

interface SaleInput {
	name: string;
	startsAt: string;
	endsAt: string;
	holdSeconds?: number;
	items: SaleItem[];
}

export function statusOf(sale: Pick<SaleDoc, "startsAt" | "endsAt">, now = Date.now()): SaleStatus {
	if (now < Date.parse(sale.startsAt)) return "scheduled";
	return now < Date.parse(sale.endsAt) ? "live" : "ended";
}

function termsOf(sale: SaleDoc, item: SaleItem): SaleTerms {
	return {
		startsAt: Date.parse(sale.startsAt),
		endsAt: Date.parse(sale.endsAt),
		price: item.salePrice,
		perCustomerLimit: item.perCustomerLimit,
		holdMs: sale.holdSeconds * 1000,
		units: item.units,
		left: item.units,
		held: 0,
		sold: 0
	};
}

/** The 422 of a sale whose fields are each valid but do not fit together. */
function checkShape(input: SaleInput, now: number): void {
	const fields: Array<{ field: string; type: string; message: string }> = [];
	if (Date.parse(input.endsAt) <= Date.parse(input.startsAt)) {
		fields.push({ field: "endsAt", type: "saleWindow", message: "endsAt must be after startsAt" });
	}
	if (Date.parse(input.endsAt) <= now) {
		fields.push({ field: "endsAt", type: "salePast", message: "endsAt must be in the future" });
	}
	const seen = new Set<string>();
	input.items.forEach((item, i) => {
		if (seen.has(item.productId)) {
			fields.push({
				field: `items[${i}].productId`,
				type: "duplicate",
				message: "A product appears once per sale"
			});
		}
		seen.add(item.productId);
		if (item.perCustomerLimit > item.units) {
			fields.push({
				field: `items[${i}].perCustomerLimit`,
				type: "limitOverUnits",
				message: "perCustomerLimit cannot exceed units"
			});
		}
	});
	if (fields.length > 0) throw new UnprocessableError("VALIDATION_ERROR", "Invalid sale", fields);
}

/**
 * Each item names its stock by `productId` (the stock's id: the variant's, see types.ts) and, for a variant that is
 * not its product's default one, the product as `ofProduct`. An item may name a variant, or a product alone, which
 * means its default variant (409 VARIANT_REQUIRED when it has options); a variant of another product is 404.
 */
async function resolveItems(
	svc: InventoryThis,
	items: Array<Omit<SaleItem, "productId"> & { productId?: string; variantId?: string }>
): Promise<SaleItem[]> {
	const out: SaleItem[] = [];
	for (const [i, { variantId, productId, ...terms }] of items.entries()) {
		if (variantId) {
			const doc = await svc.findStock(variantId);
			const owner = doc?.ofProduct ?? doc?.productId;
			if (!doc || (productId && productId !== owner)) {
				throw new NotFoundError("Variant", { variantId });
			}
			out.push({ ...terms, productId: variantId, ...(doc.ofProduct ? { ofProduct: owner } : {}) });
		} else if (productId) {
			if (!(await svc.findStock(productId))) await svc.defaultStock(productId);
			out.push({ ...terms, productId });
		} else {
			throw new UnprocessableError("VALIDATION_ERROR", "An item names a productId or a variantId", [
				{ field: `items[${i}].productId`, type: "required", message: "productId or variantId" }
			]);
		}
	}
	return out;
}

/**
 * Every product must be known to inventory (404) and in no other sale whose window overlaps this one's (409
 * SALE_OVERLAP). An admin operation: two overlapping sales created in the same instant are not prevented.
 */
async function checkProducts(svc: InventoryThis, input: SaleInput, saleId: string): Promise<void> {
	const start = Date.parse(input.startsAt);
	const end = Date.parse(input.endsAt);
	const ids = input.items.map(i => i.productId);
	const docs = (await svc.adapter.find({ query: { productId: { $in: ids } } })) as StockDoc[];
	const known = new Map(docs.map(d => [d.productId, d]));
	const unknown = ids.filter(id => !known.has(id));
	if (unknown.length > 0) throw new NotFoundError("Product", { productIds: unknown });
	for (const doc of docs) {
		for (const [other, terms] of Object.entries(doc.sales ?? {})) {
			if (other === saleId || terms.startsAt === undefined) continue;
			if (terms.startsAt < end && start < terms.endsAt) {
				throw new ConflictError("SALE_OVERLAP", "A product is already in a sale at that time", {
					productId: doc.productId,
					saleId: other
				});
			}
		}
	}
}

/** Writes each item's terms into its product's stock document (idempotent), then marks the sale applied. */
export async function applySale(svc: InventoryThis, sale: SaleDoc): Promise<void> {
	for (const item of sale.items) {
		await svc.adapter.updateMany(
			{ productId: item.productId, [`sales.${sale._id}`]: { $exists: false } },
			{ $set: { [`sales.${sale._id}`]: termsOf(sale, item) } }
		);
	}
	await salesOf(svc).updateMany({ _id: sale._id }, { $set: { applied: true } });
	void svc.broker.broadcast("inventory.sales.changed", { saleIds: [sale._id] });
	await svc.changed(
		sale.items.map(i => i.productId),
		[sale._id]
	);
}

/** Sales a crash left unapplied (created, terms not all written): the sweep finishes them. */
export async function applyPendingSales(svc: InventoryThis): Promise<void> {
	const pending = (await salesOf(svc).find({ query: { applied: false } })) as SaleDoc[];
	for (const sale of pending) await applySale(svc, sale);
}

/** The sale as clients see it, with what is left of each item (its stock document's counter). */
async function toSale(svc: InventoryThis, sale: SaleDoc): Promise<Sale> {
	const terms = await termsById(svc, sale);
	return {
		id: sale._id,
		name: sale.name,
		startsAt: sale.startsAt,
		endsAt: sale.endsAt,
		holdSeconds: sale.holdSeconds,
		status: statusOf(sale),
		items: sale.items.map(({ ofProduct, ...item }) => ({
			...item,
			productId: ofProduct ?? item.productId,
			variantId: item.productId,
			unitsLeft: Math.max(0, terms.get(item.productId)?.left ?? item.units)
		})),
		createdAt: sale.createdAt,
		updatedAt: sale.updatedAt
	};
}

async function termsById(svc: InventoryThis, sale: SaleDoc): Promise<Map<string, SaleTerms>> {
	const docs = (await svc.adapter.find({
		query: { productId: { $in: sale.items.map(i => i.productId) } }
	})) as StockDoc[];
	const out = new Map<string, SaleTerms>();
	for (const d of docs) {
		const t = d.sales?.[sale._id];
		if (t) out.set(d.productId, t);
	}
	return out;
}

async function findSale(svc: InventoryThis, id: string): Promise<SaleDoc> {
	const sale = (await salesOf(svc).findById(id)) as SaleDoc | null;
	if (!sale) throw new NotFoundError("Sale");
	return sale;
}

/** Changes and removal are for sales that have not started: a live sale's units and counts stay as sold. */
function assertNotStarted(sale: SaleDoc): void {
	const status = statusOf(sale);
	if (status !== "scheduled") {
		throw new ConflictError("SALE_STARTED", `The sale is ${status}: it can no longer be changed`, {
			status
		});
	}
}

/** Takes a sale's terms off the products it no longer names (nothing can be held before it starts). */
async function dropTerms(svc: InventoryThis, saleId: string, productIds: string[]): Promise<void> {
	for (const productId of productIds) {
		await svc.adapter.updateMany(
			{ productId, [`sales.${saleId}.held`]: 0, [`sales.${saleId}.sold`]: 0 },
			{ $unset: { [`sales.${saleId}`]: true } }
		);
	}
}

interface IdParams {
	id: string;
}
interface ListParams {
	page: number;
	pageSize: number;
}

export function saleActions(cfg: AppConfig) {
	return {
		/** Admin: a new sale (see the file's comment for what it does to its products). */
		createSale: {
			permissions: ["admin"],
			params: { $$strict: "remove", ...fields() },
			async handler(this: InventoryThis, ctx: Context<SaleInput, AppMeta>): Promise<Sale> {
				const input = { ...ctx.params, items: await resolveItems(this, ctx.params.items) };
				const now = Date.now();
				checkShape(input, now);
				const id = randomUUID().replace(/-/g, "");
				await checkProducts(this, input, id);
				const at = new Date(now).toISOString();
				const sale: SaleDoc = {
					_id: id,
					name: input.name,
					startsAt: input.startsAt,
					endsAt: input.endsAt,
					holdSeconds: input.holdSeconds ?? cfg.inventory.saleHoldSeconds,
					items: input.items,
					applied: false,
					createdAt: at,
					updatedAt: at
				};
				await salesOf(this).insert(sale);
				await applySale(this, sale);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/sales/${id}`;
				return toSale(this, { ...sale, applied: true });
			}
		},

		/** Admin: changes a sale that has not started (409 SALE_STARTED after); the fields not sent stay. */
		updateSale: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				id: SALE_ID,
				name: optional(fields().name),
				startsAt: optional(timestampRule()),
				endsAt: optional(timestampRule()),
				holdSeconds: fields().holdSeconds,
				items: optional(fields().items)
			},
			async handler(
				this: InventoryThis,
				ctx: Context<IdParams & Partial<SaleInput>, AppMeta>
			): Promise<Sale> {
				const { id, ...changes } = ctx.params;
				const sale = await findSale(this, id);
				assertNotStarted(sale);
				if (changes.items) changes.items = await resolveItems(this, changes.items);
				const next: SaleDoc = {
					...sale,
					...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
					updatedAt: new Date().toISOString()
				};
				checkShape(next, Date.now());
				await checkProducts(this, next, id);
				const kept = new Set(next.items.map(i => i.productId));
				await dropTerms(
					this,
					id,
					sale.items.map(i => i.productId)
				);
				await salesOf(this).updateMany({ _id: id }, { $set: { ...next, applied: false } });
				await applySale(this, next);
				await this.changed(
					sale.items.map(i => i.productId).filter(p => !kept.has(p)),
					[id]
				);
				return toSale(this, next);
			}
		},

		/** Admin: removes a sale that has not started (409 SALE_STARTED after); its products sell as before. */
		removeSale: {
			permissions: ["admin"],
			params: { $$strict: "remove", id: SALE_ID },
			async handler(this: InventoryThis, ctx: Context<IdParams, AppMeta>): Promise<null> {
				const sale = await findSale(this, ctx.params.id);
				assertNotStarted(sale);
				const productIds = sale.items.map(i => i.productId);
				await dropTerms(this, sale._id, productIds);
				await salesOf(this).removeMany({ _id: sale._id });
				void this.broker.broadcast("inventory.sales.changed", { saleIds: [sale._id] });
				await this.changed(productIds, [sale._id]);
				ctx.meta.$statusCode = 204;
				return null;
			}
		},

		/** Public: one sale with its units left; cached by the gateway, dropped when its stock changes. */
		getSale: {
			params: { $$strict: "remove", id: SALE_ID },
			cache: { keys: ["id"], ttl: 5 },
			async handler(this: InventoryThis, ctx: Context<IdParams>): Promise<Sale> {
				return toSale(this, await findSale(this, ctx.params.id));
			}
		},

		/** Public: the sales, latest start first. */
		listSales: {
			params: {
				$$strict: "remove",
				page: { type: "number", integer: true, min: 1, max: 10_000, default: 1, convert: true },
				pageSize: { type: "number", integer: true, min: 1, max: 100, default: 20, convert: true }
			},
			async handler(this: InventoryThis, ctx: Context<ListParams>) {
				const { page, pageSize } = ctx.params;
				const sales = salesOf(this);
				const [docs, total] = await Promise.all([
					sales.find({ sort: ["-startsAt"], offset: (page - 1) * pageSize, limit: pageSize }),
					sales.count({})
				]);
				return {
					rows: await Promise.all((docs as SaleDoc[]).map(d => toSale(this, d))),
					total,
					page,
					pageSize,
					totalPages: Math.ceil(total / pageSize)
				};
			}
		},

		/** Admin (the REPL's `sale`): a sale's counters per item and its open holds. */
		saleStats: {
			permissions: ["admin"],
			params: { $$strict: "remove", id: SALE_ID },
			async handler(this: InventoryThis, ctx: Context<IdParams>) {
				const sale = await findSale(this, ctx.params.id);
				const terms = await termsById(this, sale);
				return {
					sale: await toSale(this, sale),
					items: sale.items.map(item => {
						const t = terms.get(item.productId);
						return {
							productId: item.productId,
							unitsLeft: Math.max(0, t?.left ?? item.units),
							held: t?.held ?? 0,
							sold: t?.sold ?? 0
						};
					}),
					holdsOpen: await holdsOf(this).count({
						query: { saleId: sale._id, state: { $ne: "taking" } }
					})
				};
			}
		},

		/**
		 * Internal (carts): the sale price of each product in a live sale, and the products kept back for one that has
		 * not started, so a cart shows what checkout will charge.
		 */
		saleTerms: {
			params: { $$strict: "remove" },
			async handler(this: InventoryThis): Promise<SaleTermsView> {
				const now = Date.now();
				const sales = (await salesOf(this).find({
					query: { endsAt: { $gt: new Date(now).toISOString() } }
				})) as SaleDoc[];
				const out: SaleTermsView = {};
				for (const sale of sales) {
					const status = statusOf(sale, now);
					for (const item of sale.items) {
						out[item.productId] = {
							saleId: sale._id,
							salePrice: item.salePrice,
							status,
							startsAt: sale.startsAt,
							endsAt: sale.endsAt
						};
					}
				}
				return out;
			}
		}
	} satisfies Record<string, AppAction<InventoryThis>>;
}

/** What carts reads of the sales: by product id. */
export type SaleTermsView = Record<
	string,
	{ saleId: string; salePrice: number; status: SaleStatus; startsAt: string; endsAt: string }
>;

/** Sales whose live state moves the gauges: live ones count, each item's units left is read. */
export async function saleGauges(svc: InventoryThis): Promise<void> {
	const now = Date.now();
	const sales = (await salesOf(svc).find({
		query: { endsAt: { $gt: new Date(now - 60_000).toISOString() } }
	})) as SaleDoc[];
	let live = 0;
	for (const sale of sales) {
		if (statusOf(sale, now) === "live") live++;
		const terms = await termsById(svc, sale);
		for (const item of sale.items) {
			svc.broker.metrics.set(
				METRIC.SALE_UNITS_LEFT,
				Math.max(0, terms.get(item.productId)?.left ?? item.units),
				{ sale: sale._id, product: item.productId }
			);
		}
	}
	svc.broker.metrics.set(METRIC.SALES_LIVE, live);
	svc.broker.metrics.set(
		METRIC.HOLDS_OPEN,
		await holdsOf(svc).count({ query: { state: { $ne: "taking" } } })
	);
}

/**
 * The catalog: products and their categories. Public reads (list with exactly API.md's filters, get by id or slug,
 * categories) are cached with Moleculer's cacher and invalidated on every change, here and on every other node;
 * `available` comes from the inventory owner, one call per page. Admins create, change and archive products; a new
 * product's initial stock goes to inventory as the durable `products.created` event, written with the product.
 * The only writer of the `products` collection.
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { randomBytes } from "node:crypto";
import { type AppConfig, configOf } from "../../config";
import { type DemoProduct, demoCatalog } from "../../lib/demo-catalog";
import {
	ConflictError,
	NotFoundError,
	ServiceUnavailableError,
	variantRequired
} from "../../lib/errors";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../../lib/pagination";
import { currencyRule, enumRule, invalidField } from "../../lib/validation";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import { CacheCleanerMixin } from "../../mixins/cache-cleaner.mixin";
import {
	OUTBOX_INDEX,
	type OutboxEntry,
	OutboxMixin,
	outboxEvent,
	outboxFields,
	withEvents
} from "../../mixins/outbox.mixin";
import { isDuplicateKeyError } from "../../adapters/store";
import type { ProductOption, ProductSummary, VariantSummary } from "../../types/catalog";
import type { AppMeta } from "../../types/meta";
import type { AppAction } from "../../types/moleculer-ext";
import {
	MAX_OPTIONS,
	MAX_VALUES,
	MAX_VARIANTS,
	type VariantDoc,
	type VariantHolder,
	checkCombination,
	checkOptions,
	checkUnique,
	liveVariants,
	newVariant,
	optionsOf,
	priceFields,
	skusOf,
	variantsOf,
	withOptions
} from "./variants";

export interface ProductImage {
	id: string;
	url: string;
}

interface ProductDoc extends VariantHolder {
	slug: string;
	name: string;
	description: string;
	currency: string;
	category: string;
	images: ProductImage[];
	archived: boolean;
	/** The highest price of a variant on sale (`price` is the lowest), for the price filters. */
	priceMax?: number;
	/** Every sku of the product and its variants: unique across the catalog (a sparse multikey index). */
	skus?: string[];
	/** Raised by every change of the options or variants, which writes only when nothing changed them meanwhile. */
	rev?: number;
}

/** A variant as clients see it. */
export interface Variant {
	id: string;
	sku: string;
	options: Record<string, string>;
	price: number;
	currency: string;
	available: number;
	images: ProductImage[];
}

export interface Product {
	id: string;
	sku: string;
	slug: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	category: string;
	images: ProductImage[];
	available: number;
	options: ProductOption[];
	variants: Variant[];
	priceRange: { min: number; max: number };
	createdAt: string;
	updatedAt: string;
}

export type { ProductSummary, VariantSummary } from "../../types/catalog";

interface ListParams {
	q?: string;
	category?: string;
	minPrice?: number;
	maxPrice?: number;
	inStock?: boolean;
	sort: (typeof SORTS)[number];
	page: number;
	pageSize: number;
}
interface GetParams {
	idOrSlug: string;
}
interface IdParams {
	id: string;
}
interface NewVariant {
	sku: string;
	options: Record<string, string>;
	price?: number;
	stock?: number;
	imageIds?: string[];
}
interface CreateParams {
	sku: string;
	name: string;
	description?: string;
	price: number;
	currency: string;
	category: string;
	stock?: number;
	options?: ProductOption[];
	variants?: NewVariant[];
}
type UpdateParams = IdParams &
	Partial<Omit<CreateParams, "stock" | "variants">> & { options?: ProductOption[] };
type AddVariantParams = IdParams & NewVariant;
interface VariantIdParams extends IdParams {
	variantId: string;
}
type UpdateVariantParams = VariantIdParams & Partial<Omit<NewVariant, "stock">>;
interface ImageParams {
	id: string;
	image: ProductImage;
}
interface RemoveImageParams {
	id: string;
	imageId: string;
}
interface SummariesParams {
	ids?: string[];
	variantIds?: string[];
}

/** A change of a product's options or variants, computed from the product as read (variants.ts). */
type VariantChange = (
	doc: ProductDoc,
	now: string
) => { set: Partial<ProductDoc>; events?: OutboxEntry[]; result?: string };

interface ProductsMethods {
	toProduct(doc: ProductDoc, available: Record<string, number>): Product;
	toVariant(doc: ProductDoc, v: VariantDoc, available: Record<string, number>): Variant;
	changeVariants(ctx: Context, id: string, change: VariantChange): Promise<ProductDoc>;
	migrateVariants(): Promise<number>;
	withAvailability(ctx: Context, docs: ProductDoc[]): Promise<Product[]>;
	findLive(idOrSlug: string): Promise<ProductDoc | null>;
	insertProduct(ctx: Context, params: CreateParams): Promise<ProductDoc>;
	invalidate(ctx: Context): Promise<void>;
	seedDemo(ctx?: Context): Promise<{ created: number; existing: number }>;
	stockAnnounced(productId: string, timeoutMs: number): Promise<boolean>;
	announcedStock(ctx: Context, doc: ProductDoc): Promise<void>;
	relayAll(): Promise<void>;
	publishSeeded(): Promise<void>;
	relayOutbox(id?: string): Promise<number>;
}

interface ProductsVars {
	/** Waiting for inventory to announce the stock of these new products (inventory.changed). */
	stockWaiters: Map<string, () => void>;
	/** The stock announcements of the demo catalog seeded at start: /ready waits for them. */
	seededPending?: Array<Promise<boolean>>;
	seeding?: Promise<void>;
	channelsReady: Promise<void>;
	channelsUp(): void;
}

type ProductsThis = Service & DbServiceThis & ProductsMethods & ProductsVars;

const ID = { type: "string", min: 1, max: 64 } as const;
const SKU = { type: "string", pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/ } as const;
const NAME = { type: "string", trim: true, min: 1, max: 200 } as const;
const DESCRIPTION = { type: "string", trim: true, max: 5000 } as const;
/** Integer minor units, at least 1 (a free product would give an order nobody can pay): a float is 422, never rounded. */
const PRICE = { type: "number", integer: true, min: 1, max: 100_000_000, convert: false } as const;
/** Categories are case-insensitive names: stored, answered and matched lower-cased, so `Garden` is `garden`. */
const CATEGORY = {
	type: "string",
	trim: true,
	lowercase: true,
	min: 1,
	max: 64,
	pattern: /^[a-z0-9][a-z0-9 &'-]*$/,
	description:
		"Case-insensitive: trimmed and lower-cased (`Garden Tools` is stored and answered as `garden tools`)"
} as const;
const SORTS = ["price", "-price", "name", "-createdAt"] as const;
/** Option names become field names of stored documents: no `$`, `.` or `__proto__` (letters, digits, space, `_`, `-`). */
const OPTION_NAME = {
	type: "string",
	trim: true,
	pattern: /^[A-Za-z0-9][A-Za-z0-9 _-]{0,31}$/
} as const;
const OPTION_VALUE = { type: "string", trim: true, min: 1, max: 64 } as const;
const optionsRule = () => ({
	type: "array",
	max: MAX_OPTIONS,
	optional: true,
	description:
		'The product\'s options, each with its values (`[{ name: "size", values: ["S", "M"] }]`); every ' +
		"variant names one value of each. Names are unique whatever their case, values unique in their option",
	items: {
		type: "object",
		strict: "remove",
		props: {
			name: { ...OPTION_NAME },
			values: { type: "array", min: 1, max: MAX_VALUES, items: { ...OPTION_VALUE } }
		}
	}
});
const combinationRule = (optional = false) => ({
	type: "record",
	key: { ...OPTION_NAME },
	value: { ...OPTION_VALUE },
	...(optional ? { optional: true } : {}),
	description:
		'One value of each of the product\'s options, by option name (`{ "size": "M", "colour": "red" }`)'
});
const imageIdsRule = () => ({
	type: "array",
	max: 20,
	items: { ...ID },
	optional: true,
	description: "Which of the product's images this variant shows (all of them when absent)"
});
const STOCK = { type: "number", integer: true, min: 0, max: 10_000_000, convert: false } as const;
const newVariantProps = () => ({
	sku: { ...SKU },
	options: combinationRule(),
	price: {
		...PRICE,
		optional: true,
		description: "Integer minor units, at least 1; the product's price when absent"
	},
	stock: { ...STOCK, optional: true, description: "Units on hand (0 when absent)" },
	imageIds: imageIdsRule()
});

/**
 * A product as stored, with what an earlier version let through as `null` (optional fields sent as null) read as
 * the documented schema says: a stored value never breaks an answer.
 */
function fromStore(doc: ProductDoc): ProductDoc {
	const str = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);
	const variants = variantsOf(doc);
	return {
		...doc,
		name: str(doc.name, doc.sku),
		description: str(doc.description, ""),
		currency: str(doc.currency, "USD"),
		category: str(doc.category, "uncategorized"),
		images: Array.isArray(doc.images) ? doc.images : [],
		options: optionsOf(doc),
		variants,
		priceMax: doc.priceMax ?? priceFields(variants, doc.price).priceMax
	};
}

/** The fields a product's variants decide, written with every change of them. */
function variantFields(sku: string, variants: VariantDoc[], fallbackPrice: number) {
	return { variants, skus: skusOf(sku, variants), ...priceFields(variants, fallbackPrice) };
}

function variantSummary(doc: ProductDoc, v: VariantDoc): VariantSummary {
	return {
		id: v.id,
		sku: v.sku,
		options: v.options,
		price: v.price,
		currency: doc.currency,
		archived: doc.archived || v.archived
	};
}

function summaryOf(doc: ProductDoc): ProductSummary {
	const options = optionsOf(doc);
	return {
		id: doc._id,
		sku: doc.sku,
		name: doc.name,
		price: doc.price,
		currency: doc.currency,
		category: doc.category,
		archived: doc.archived,
		options,
		variants: Object.fromEntries(variantsOf(doc).map(v => [v.id, variantSummary(doc, v)])),
		defaultVariantId: options.length === 0 ? doc._id : null
	};
}

/** Stored as paths: a changed PUBLIC_URL changes every answer, not only new images. */
function publicImage(img: ProductImage, publicUrl: string): ProductImage {
	return { id: img.id, url: img.url.startsWith("/") ? publicUrl + img.url : img.url };
}

/** A variant shows some of its product's images, never another product's. */
function checkImages(doc: ProductDoc, imageIds: string[]): void {
	const known = new Set((doc.images ?? []).map(i => i.id));
	imageIds.forEach((id, i) => {
		if (!known.has(id))
			throw invalidField(`imageIds[${i}]`, "enumValue", "Not an image of this product");
	});
}

/** `q` is plain text: every regex metacharacter is escaped, so no pattern (and no regex bomb) reaches the store. */
function escapeRegExp(text: string): string {
	return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/**
 * How long a create waits for inventory to announce the new product's stock, so that a read or checkout right after
 * the 201 sees it (the stock comes by event, not by a call). Past it the 201 goes anyway: the event waits in
 * JetStream or the outbox and the stock appears when inventory takes it.
 */
const STOCK_WAIT_MS = 2000;
/** The same for the demo catalog seeded at start; /ready stays 503 meanwhile. */
const SEED_STOCK_WAIT_MS = 30_000;
/** How long after publishing the demo catalog's stock events /ready waits for inventory's announcements at most. */
const SEED_SETTLE_MS = 5000;

/** Shaped like the ids NeDB makes (16 letters and digits); not an ObjectId's shape, so MongoDB keeps it a string. */
function newProductId(): string {
	return randomBytes(24).toString("base64").replace(/[+/=]/g, "").slice(0, 16);
}

function slugify(name: string): string {
	const slug = name
		.normalize("NFKD")
		.replace(/[\u0300-\u036f]/g, "")
		.toLowerCase()
		.replace(/[^a-z0-9]+/g, "-")
		.replace(/^-+|-+$/g, "")
		.slice(0, 80);
	return slug || "product";
}

function productsActions(cfg: AppConfig) {
	const CACHE = { ttl: cfg.catalog.cacheTtl };
	return {
		/** Products on sale, filtered, sorted and paged exactly as API.md says. */
		list: {
			cache: {
				...CACHE,
				keys: ["q", "category", "minPrice", "maxPrice", "inStock", "sort", "page", "pageSize"]
			},
			params: {
				$$strict: "remove",
				q: { type: "string", trim: true, max: 100, optional: true },
				category: { ...CATEGORY, optional: true },
				minPrice: { type: "number", convert: true, integer: true, min: 0, optional: true },
				maxPrice: { type: "number", convert: true, integer: true, min: 0, optional: true },
				inStock: {
					type: "boolean",
					convert: true,
					optional: true,
					description:
						"`true`: only products with units available now; `false`: only products with none available " +
						"(sold out or all reserved); absent: both"
				},
				sort: {
					...enumRule("sort", SORTS),
					default: "-createdAt",
					description:
						"`price` ascending, `-price` descending, `name` A-Z, `-createdAt` newest first; any other " +
						"value is 422 naming the value and the allowed ones"
				},
				...PAGE_PARAMS
			},
			async handler(this: ProductsThis, ctx: Context<ListParams>): Promise<Page<Product>> {
				const { q, category, minPrice, maxPrice, inStock, sort, page, pageSize } = ctx.params;
				const query: Record<string, unknown> = { archived: false };
				if (category) query.category = category;
				// The price filters match a product when one of its variants on sale has a price in the range.
				if (minPrice !== undefined || maxPrice !== undefined) {
					query.variants = {
						$elemMatch: {
							archived: false,
							price: {
								...(minPrice !== undefined ? { $gte: minPrice } : {}),
								...(maxPrice !== undefined ? { $lte: maxPrice } : {})
							}
						}
					};
				}
				if (q) {
					const pattern = new RegExp(escapeRegExp(q), "i");
					query.$or = [
						{ name: { $regex: pattern } },
						{ description: { $regex: pattern } },
						{ sku: { $regex: pattern } },
						{ skus: { $regex: pattern } }
					];
				}
				if (inStock !== undefined) {
					// In stock: a variant on sale has units available. A variant inventory has no stock for has none.
					const variantIds = (await ctx.call("inventory.inStock", {})) as string[];
					const stocked = (await this.adapter.find({
						query: { variants: { $elemMatch: { id: { $in: variantIds }, archived: false } } }
					})) as ProductDoc[];
					const ids = stocked.map(d => d._id);
					query._id = inStock ? { $in: ids } : { $nin: ids };
				}

				const [docs, total] = await Promise.all([
					this.adapter.find({ query, sort: [sort, "_id"], ...pageWindow(page, pageSize) }),
					this.adapter.count({ query })
				]);
				return pageOf(
					await this.withAvailability(ctx, docs as ProductDoc[]),
					total,
					page,
					pageSize
				);
			}
		},

		/** One product on sale, by id or slug. */
		get: {
			cache: { ...CACHE, keys: ["idOrSlug"] },
			params: { $$strict: "remove", idOrSlug: { type: "string", min: 1, max: 100 } },
			async handler(this: ProductsThis, ctx: Context<GetParams>): Promise<Product> {
				const doc = await this.findLive(ctx.params.idOrSlug);
				if (!doc) throw new NotFoundError("Product");
				return (await this.withAvailability(ctx, [doc]))[0];
			}
		},

		/** Categories with the number of products on sale in each. */
		categories: {
			cache: { ...CACHE, keys: [] },
			params: { $$strict: "remove" },
			async handler(this: ProductsThis): Promise<Array<{ name: string; count: number }>> {
				const docs = (await this.adapter.find({ query: { archived: false } })) as ProductDoc[];
				const counts = new Map<string, number>();
				for (const { category } of docs.map(fromStore))
					counts.set(category, (counts.get(category) ?? 0) + 1);
				return [...counts.entries()]
					.map(([name, count]) => ({ name, count }))
					.sort((a, b) => a.name.localeCompare(b.name));
			}
		},

		/** Admin: creates a product, with its options and variants if it has any; their stock goes to inventory by event. */
		create: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				sku: SKU,
				name: NAME,
				description: { ...DESCRIPTION, optional: true },
				price: PRICE,
				currency: { ...currencyRule(), default: "USD" },
				category: CATEGORY,
				stock: {
					...STOCK,
					optional: true,
					description:
						"Units on hand of a product without options; with options each variant has its own"
				},
				options: optionsRule(),
				variants: {
					type: "array",
					max: MAX_VARIANTS,
					optional: true,
					description: "The variants of a product with options, one per combination of values",
					items: { type: "object", strict: "remove", props: newVariantProps() }
				}
			},
			async handler(this: ProductsThis, ctx: Context<CreateParams, AppMeta>): Promise<Product> {
				const doc = await this.insertProduct(ctx, ctx.params);
				await this.announcedStock(ctx, doc);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/products/${doc._id}`;
				// Nothing can be reserved before the product exists: what is available is the stock it was created with.
				// Variants given are the product's own only with options (an empty list without options means none).
				const stock =
					optionsOf(doc).length > 0 && ctx.params.variants
						? Object.fromEntries(
								doc.variants!.map((v, i) => [v.id, ctx.params.variants![i].stock ?? 0])
							)
						: { [doc._id]: ctx.params.stock ?? 0 };
				return this.toProduct(doc, stock);
			}
		},

		/**
		 * Admin: changes a product's fields (the slug stays, so links keep working). `price` and `sku` of a product
		 * without options are its default variant's; a product with options has a price per variant.
		 */
		update: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				id: ID,
				sku: { ...SKU, optional: true },
				name: { ...NAME, optional: true },
				description: { ...DESCRIPTION, optional: true },
				price: { ...PRICE, optional: true },
				currency: { ...currencyRule(), optional: true },
				category: { ...CATEGORY, optional: true },
				options: optionsRule()
			},
			async handler(this: ProductsThis, ctx: Context<UpdateParams, AppMeta>): Promise<Product> {
				const { id, options, price, sku, ...changes } = ctx.params;
				const updated = await this.changeVariants(ctx, id, (doc, now) => {
					let variants = variantsOf(doc);
					const events: OutboxEntry[] = [];
					if (options !== undefined) {
						const next = withOptions(doc, options, now);
						variants = next.variants;
						if (next.defaultAdded) {
							events.push(
								outboxEvent("products.variants.created", {
									productId: doc._id,
									variantId: doc._id,
									sku: sku ?? doc.sku,
									stock: 0
								})
							);
						}
					}
					const hasOptions = (options ?? optionsOf(doc)).length > 0;
					if (price !== undefined && hasOptions) {
						throw variantRequired(
							doc._id,
							variants.filter(v => !v.archived).map(v => v.id)
						);
					}
					if (price !== undefined || sku !== undefined) {
						variants = variants.map(v =>
							v.id === doc._id
								? { ...v, price: price ?? v.price, sku: sku ?? v.sku, updatedAt: now }
								: v
						);
					}
					if (sku !== undefined && variants.some(v => v.id !== doc._id && v.sku === sku)) {
						throw new ConflictError("SKU_TAKEN", "A variant of this product has this sku", {
							field: "sku"
						});
					}
					const newSku = sku ?? doc.sku;
					return {
						set: {
							...changes,
							...(options !== undefined ? { options } : {}),
							...(sku !== undefined ? { sku } : {}),
							...variantFields(newSku, variants, price ?? doc.price)
						},
						events
					};
				});
				return (await this.withAvailability(ctx, [updated]))[0];
			}
		},

		/** Admin: archives a product: gone from listings and reads, kept for existing orders. */
		archive: {
			permissions: ["admin"],
			params: { $$strict: "remove", id: ID },
			async handler(this: ProductsThis, ctx: Context<IdParams, AppMeta>): Promise<null> {
				const archived = await this.adapter.updateMany(
					{ _id: ctx.params.id, archived: false },
					{ $set: { archived: true, updatedAt: new Date().toISOString() } }
				);
				if (archived !== 1) throw new NotFoundError("Product");
				await this.invalidate(ctx);
				ctx.meta.$statusCode = 204;
				return null;
			}
		},

		/** Admin: adds a variant to a product with options; its stock goes to inventory by event. */
		addVariant: {
			permissions: ["admin"],
			params: { $$strict: "remove", id: ID, ...newVariantProps() },
			async handler(this: ProductsThis, ctx: Context<AddVariantParams, AppMeta>): Promise<Variant> {
				const { id, ...spec } = ctx.params;
				const variantId = newProductId();
				const updated = await this.changeVariants(ctx, id, (doc, now) => {
					const options = optionsOf(doc);
					if (options.length === 0) {
						throw new ConflictError(
							"OPTIONS_REQUIRED",
							"A product without options has only its default variant: give it options first",
							{ field: "options" }
						);
					}
					const variants = variantsOf(doc);
					if (variants.length >= MAX_VARIANTS) {
						throw invalidField("id", "arrayMax", `A product has at most ${MAX_VARIANTS} variants`);
					}
					const variant = newVariant(doc, variantId, spec, now);
					checkUnique(doc, variants, variant);
					const all = [...variants, variant];
					return {
						set: variantFields(doc.sku, all, doc.price),
						events: [
							outboxEvent("products.variants.created", {
								productId: doc._id,
								variantId,
								sku: variant.sku,
								stock: spec.stock ?? 0
							})
						]
					};
				});
				await this.announcedStock(ctx, updated);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/products/${id}`;
				const variant = updated.variants!.find(v => v.id === variantId)!;
				return this.toVariant(updated, variant, { [variantId]: spec.stock ?? 0 });
			}
		},

		/** Admin: changes a variant's sku, option values, price or images. */
		updateVariant: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				id: ID,
				variantId: ID,
				sku: { ...SKU, optional: true },
				options: combinationRule(true),
				price: { ...PRICE, optional: true },
				imageIds: imageIdsRule()
			},
			async handler(
				this: ProductsThis,
				ctx: Context<UpdateVariantParams, AppMeta>
			): Promise<Variant> {
				const { id, variantId, ...changes } = ctx.params;
				const updated = await this.changeVariants(ctx, id, (doc, now) => {
					const variants = variantsOf(doc);
					const current = variants.find(v => v.id === variantId && !v.archived);
					if (!current) throw new NotFoundError("Variant");
					if (changes.options !== undefined) checkCombination(optionsOf(doc), changes.options);
					if (changes.imageIds) checkImages(doc, changes.imageIds);
					const variant = { ...current, ...changes, updatedAt: now };
					checkUnique(doc, variants, variant);
					const all = variants.map(v => (v.id === variantId ? variant : v));
					// The default variant's sku and price are the product's own.
					const own = variantId === doc._id;
					return {
						set: {
							...(own && changes.sku ? { sku: changes.sku } : {}),
							...variantFields(own ? variant.sku : doc.sku, all, doc.price)
						}
					};
				});
				const variant = updated.variants!.find(v => v.id === variantId)!;
				return (await this.withAvailability(ctx, [updated]))[0].variants.find(
					v => v.id === variant.id
				)!;
			}
		},

		/** Admin: archives a variant: gone from the product and new carts, kept for existing orders. */
		archiveVariant: {
			permissions: ["admin"],
			params: { $$strict: "remove", id: ID, variantId: ID },
			async handler(this: ProductsThis, ctx: Context<VariantIdParams, AppMeta>): Promise<null> {
				const { id, variantId } = ctx.params;
				await this.changeVariants(ctx, id, (doc, now) => {
					const variants = variantsOf(doc);
					if (!variants.some(v => v.id === variantId && !v.archived)) {
						throw new NotFoundError("Variant");
					}
					if (optionsOf(doc).length === 0) {
						throw new ConflictError(
							"DEFAULT_VARIANT",
							"A product without options keeps its one variant: archive the product instead",
							{ variantId }
						);
					}
					const all = variants.map(v =>
						v.id === variantId ? { ...v, archived: true, updatedAt: now } : v
					);
					return { set: variantFields(doc.sku, all, doc.price) };
				});
				ctx.meta.$statusCode = 204;
				return null;
			}
		},

		/**
		 * Internal: what carts and orders need of some products, archived ones included (unknown ids are absent):
		 * by product id, and the products of some variant ids.
		 */
		summaries: {
			params: {
				$$strict: "remove",
				ids: { type: "array", items: ID, max: 500, optional: true },
				variantIds: { type: "array", items: ID, max: 500, optional: true }
			},
			async handler(
				this: ProductsThis,
				ctx: Context<SummariesParams>
			): Promise<Record<string, ProductSummary>> {
				const { ids = [], variantIds = [] } = ctx.params;
				const byId = { _id: { $in: [...new Set(ids)] } };
				const query =
					variantIds.length === 0
						? byId
						: {
								$or: [
									byId,
									// A product stored before variants has its default one, whose id is its own.
									{ _id: { $in: [...new Set(variantIds)] } },
									{ "variants.id": { $in: [...new Set(variantIds)] } }
								]
							};
				const docs = (await this.adapter.find({ query })) as ProductDoc[];
				return Object.fromEntries(docs.map(fromStore).map(d => [d._id, summaryOf(d)]));
			}
		},

		/** Internal (media): lists an uploaded image on a product on sale. */
		addImage: {
			params: {
				$$strict: "remove",
				id: ID,
				image: {
					type: "object",
					strict: "remove",
					props: { id: ID, url: { type: "string", min: 1, max: 500 } }
				}
			},
			async handler(this: ProductsThis, ctx: Context<ImageParams>): Promise<ProductImage> {
				const added = await this.adapter.updateMany(
					{ _id: ctx.params.id, archived: false },
					{ $push: { images: ctx.params.image }, $set: { updatedAt: new Date().toISOString() } }
				);
				if (added !== 1) throw new NotFoundError("Product");
				await this.invalidate(ctx);
				return ctx.params.image;
			}
		},

		/** Internal (media): takes an image off a product; 404 when it is not that product's. */
		removeImage: {
			params: { $$strict: "remove", id: ID, imageId: ID },
			async handler(this: ProductsThis, ctx: Context<RemoveImageParams>): Promise<true> {
				const removed = await this.adapter.updateMany(
					{ _id: ctx.params.id, "images.id": ctx.params.imageId },
					{
						$pull: { images: { id: ctx.params.imageId } },
						$set: { updatedAt: new Date().toISOString() }
					}
				);
				if (removed !== 1) throw new NotFoundError("Image");
				await this.invalidate(ctx);
				return true;
			}
		},

		/** Internal (npm run seed): adds the demo catalog's products that are not there yet; idempotent. */
		seedDemo: {
			params: { $$strict: "remove" },
			timeout: 120_000,
			async handler(
				this: ProductsThis,
				ctx: Context
			): Promise<{ created: number; existing: number }> {
				return this.seedDemo(ctx);
			}
		}
	} satisfies Record<string, AppAction<ProductsThis>>;
}

export function createProductsService(
	cfg: AppConfig
): ServiceSchema<ServiceSettingSchema, ProductsMethods, DbServiceThis & ProductsVars> {
	return {
		name: "products",
		mixins: [
			DbMixin(cfg, {
				collection: "products",
				indexes: [
					{ fields: { sku: 1 }, unique: true },
					{ fields: { slug: 1 }, unique: true },
					{ fields: { category: 1, archived: 1, price: 1 } },
					{ fields: { archived: 1, createdAt: -1 } },
					{ fields: { price: 1 } },
					// A product stored before variants has no skus until it is migrated at start.
					{ fields: { skus: 1 }, unique: true, sparse: true },
					{ fields: { "variants.id": 1 } },
					OUTBOX_INDEX
				]
			}),
			OutboxMixin(cfg),
			CacheCleanerMixin<ProductsThis>({
				// A products node changed the catalog: every node's cached reads go.
				events: ["products.cache.clean"],
				services: ["products"],
				entities: {
					// Stock changed: the cached reads that carry those products' `available` go (each product by id and by
					// slug, and every page); the rest of the catalog stays cached. Categories carry no stock.
					"inventory.changed": {
						field: "productIds",
						async keys(this: ProductsThis, ids: string[]) {
							// The cacher's key holds the parameter as it formats it (quoted, in 0.15): match around it. Ids
							// and slugs have no dots, which a `*` does not cross; a slug inside another one only costs a miss.
							const keyOf = (idOrSlug: string) => `products.get:*${idOrSlug}*`;
							const docs = (await this.adapter.find({
								query: { _id: { $in: ids } }
							})) as ProductDoc[];
							return [
								"products.list:**",
								...ids.map(keyOf),
								...docs.flatMap(d => (d.slug ? [keyOf(d.slug)] : []))
							];
						}
					}
				}
			})
		],
		actions: productsActions(cfg),

		hooks: {
			before: {
				/** /ready waits for the stock of the demo catalog seeded at start. */
				health(this: ProductsThis) {
					if (this.seededPending) {
						throw new ServiceUnavailableError("The demo catalog's stock is not there yet");
					}
				}
			}
		},

		events: {
			/** Inventory made (or changed) these products' stock: creates waiting for it may answer. */
			"inventory.changed"(this: ProductsThis, ctx: Context<{ productIds?: unknown }>) {
				const ids = ctx.params?.productIds;
				if (!Array.isArray(ids) || this.stockWaiters.size === 0) return;
				// Inventory names the product of every variant whose stock it made or changed.
				for (const id of ids) this.stockWaiters.get(String(id))?.();
			},
			/**
			 * Durable events are up (adapters/events): publish the demo catalog's stock events written while they
			 * were not, rather than a relay interval later.
			 */
			"$channels.ready"(this: ProductsThis) {
				this.channelsUp();
			}
		},

		methods: {
			toProduct(stored: ProductDoc, available: Record<string, number>): Product {
				const doc = fromStore(stored);
				const variants = liveVariants(doc).map(v => this.toVariant(doc, v, available));
				return {
					id: doc._id,
					sku: doc.sku,
					slug: doc.slug,
					name: doc.name,
					description: doc.description,
					price: doc.price,
					currency: doc.currency,
					category: doc.category,
					images: doc.images.map(img => publicImage(img, cfg.gateway.publicUrl)),
					available: variants.reduce((sum, v) => sum + v.available, 0),
					options: optionsOf(doc),
					variants,
					priceRange: { min: doc.price, max: doc.priceMax ?? doc.price },
					createdAt: doc.createdAt,
					updatedAt: doc.updatedAt
				};
			},

			toVariant(doc: ProductDoc, v: VariantDoc, available: Record<string, number>): Variant {
				const images = v.imageIds
					? (doc.images ?? []).filter(img => v.imageIds!.includes(img.id))
					: (doc.images ?? []);
				return {
					id: v.id,
					sku: v.sku,
					options: v.options,
					price: v.price,
					currency: doc.currency,
					available: available[v.id] ?? 0,
					images: images.map(img => publicImage(img, cfg.gateway.publicUrl))
				};
			},

			/** One inventory call for the whole page: the units available of every variant. */
			async withAvailability(
				this: ProductsThis,
				ctx: Context,
				docs: ProductDoc[]
			): Promise<Product[]> {
				if (docs.length === 0) return [];
				const available = await ctx.call<Record<string, number>, { productIds: string[] }>(
					"inventory.availability",
					{ productIds: docs.map(d => d._id) }
				);
				return docs.map(d => this.toProduct(d, available));
			},

			/**
			 * Applies a change of a product's options or variants, computed from the product as read, in one update that
			 * lands only if nothing changed them meanwhile (else it reads again): two admins adding the same combination
			 * at once get one variant and one 409.
			 */
			async changeVariants(
				this: ProductsThis,
				ctx: Context,
				id: string,
				change: VariantChange
			): Promise<ProductDoc> {
				for (let attempt = 0; attempt < 10; attempt++) {
					const stored = (await this.adapter.findById(id)) as ProductDoc | null;
					if (!stored || stored.archived) throw new NotFoundError("Product");
					const doc = fromStore(stored);
					const now = new Date().toISOString();
					const { set, events = [] } = change(doc, now);
					const update = withEvents({ $set: { ...set, updatedAt: now }, $inc: { rev: 1 } }, events);
					let written: number;
					try {
						written = await this.adapter.updateMany(
							{ _id: id, archived: false, rev: stored.rev ?? 0 },
							update
						);
					} catch (err) {
						if (isDuplicateKeyError(err)) {
							throw new ConflictError("SKU_TAKEN", "Another product or variant has this sku", {
								field: "sku"
							});
						}
						throw err;
					}
					if (written === 1) {
						await this.invalidate(ctx);
						if (events.length > 0) void this.relayOutbox(id).catch(() => undefined);
						return fromStore((await this.adapter.findById(id)) as ProductDoc);
					}
				}
				throw new ServiceUnavailableError("The product keeps changing: try again");
			},

			/**
			 * Read-your-write without calling inventory: waits (bounded) until it announces the stock it made from the
			 * product's events; with no inventory node at all there is nothing to wait for (the events wait for it).
			 */
			async announcedStock(this: ProductsThis, ctx: Context, doc: ProductDoc): Promise<void> {
				// (0.15's typings make hasService's nodeID required; without one it means any node.)
				const stocked =
					this.broker.registry.hasService("inventory", undefined as never) &&
					liveVariants(doc).length > 0
						? this.stockAnnounced(doc._id, STOCK_WAIT_MS)
						: Promise.resolve(true);
				void this.relayOutbox(doc._id).catch(() => undefined);
				if (!(await stocked)) {
					this.logger.warn("The product's stock is not announced yet; it comes with its event", {
						productId: doc._id
					});
				}
			},

			/**
			 * Products stored before variants existed get their default variant written, so that the filters on
			 * variants find them. Idempotent: only a product without `variants` is changed, and only once.
			 */
			async migrateVariants(this: ProductsThis): Promise<number> {
				let migrated = 0;
				for (;;) {
					const docs = (await this.adapter.find({
						query: { variants: { $exists: false } },
						limit: 200
					})) as ProductDoc[];
					if (docs.length === 0) return migrated;
					for (const stored of docs) {
						const doc = fromStore(stored);
						migrated += await this.adapter.updateMany(
							{ _id: doc._id, variants: { $exists: false } },
							{
								$set: {
									options: [],
									...variantFields(doc.sku, variantsOf(doc), doc.price),
									rev: 0
								}
							}
						);
					}
				}
			},

			async findLive(this: ProductsThis, idOrSlug: string): Promise<ProductDoc | null> {
				const doc = ((await this.adapter.findOne({ _id: idOrSlug })) ??
					(await this.adapter.findOne({ slug: idOrSlug }))) as ProductDoc | null;
				return doc && !doc.archived ? doc : null;
			},

			/**
			 * Inserts with a unique slug made from the name. `products.created` carries the initial stock to inventory
			 * and is written in the same insert (the outbox), so no product ever lacks its stock event.
			 */
			async insertProduct(
				this: ProductsThis,
				ctx: Context,
				params: CreateParams
			): Promise<ProductDoc> {
				const base = slugify(params.name);
				const now = new Date().toISOString();
				// The id is made here, not by the store, so the event written in the same insert can name it.
				const _id = newProductId();
				const options = params.options ?? [];
				checkOptions(options);
				if (options.length === 0 && params.variants?.length) {
					throw invalidField("variants", "forbidden", "Variants need the product's options");
				}
				if (options.length > 0 && params.stock !== undefined) {
					throw invalidField("stock", "forbidden", "A product with options has stock per variant");
				}
				const holder = {
					_id,
					sku: params.sku,
					price: params.price,
					options,
					createdAt: now,
					updatedAt: now
				};
				const variants: VariantDoc[] = [];
				if (options.length === 0) variants.push(...variantsOf(holder));
				(params.variants ?? []).forEach((spec, i) => {
					const variant = newVariant(holder, newProductId(), spec, now, `variants[${i}].options`);
					checkUnique(holder, variants, variant);
					variants.push(variant);
				});
				const created = outboxEvent("products.created", {
					productId: _id,
					sku: params.sku,
					stock: params.stock ?? 0,
					...(options.length > 0
						? {
								variants: variants.map((v, i) => ({
									variantId: v.id,
									sku: v.sku,
									stock: params.variants![i].stock ?? 0
								}))
							}
						: {})
				});
				let doc: ProductDoc | null = null;
				for (let n = 1; !doc; n++) {
					const slug = n === 1 ? base : `${base}-${n}`;
					try {
						doc = (await this.adapter.insert({
							_id,
							sku: params.sku,
							slug,
							name: params.name,
							description: params.description ?? "",
							currency: params.currency ?? "USD",
							category: params.category,
							images: [],
							archived: false,
							options,
							...variantFields(params.sku, variants, params.price),
							rev: 0,
							createdAt: now,
							updatedAt: now,
							...outboxFields([created])
						})) as ProductDoc;
					} catch (err) {
						if (!isDuplicateKeyError(err)) throw err;
						const taken = variants.map(v => v.sku);
						if (
							await this.adapter.findOne({
								$or: [{ sku: { $in: taken } }, { skus: { $in: taken } }]
							})
						) {
							throw new ConflictError("SKU_TAKEN", "A product or variant with this sku exists", {
								field: "sku"
							});
						}
						if (n > 50)
							throw new ConflictError("SLUG_TAKEN", "Could not make a unique slug", {
								field: "name"
							});
					}
				}
				await this.invalidate(ctx);
				return doc;
			},

			/**
			 * Resolves true once inventory announces the stock of `productId`, false after `timeoutMs`. Asked for right
			 * after the product's insert, before its event can have been relayed, so the announcement cannot come first.
			 */
			stockAnnounced(this: ProductsThis, productId: string, timeoutMs: number): Promise<boolean> {
				return new Promise<boolean>(resolve => {
					const timer = setTimeout(() => {
						this.stockWaiters.delete(productId);
						resolve(false);
					}, timeoutMs);
					timer.unref();
					this.stockWaiters.set(productId, () => {
						clearTimeout(timer);
						this.stockWaiters.delete(productId);
						resolve(true);
					});
				});
			},

			/** Publishes the stock events of the demo catalog seeded at start, then lets /ready through. */
			async publishSeeded(this: ProductsThis): Promise<void> {
				// Bounded: a broker without adapters/events (some tests) never says so; a hot reload finds them up.
				const ready = this.broker.started
					? Promise.resolve()
					: new Promise(resolve => setTimeout(resolve, 5000).unref());
				await Promise.race([this.channelsReady, ready]);
				// Not needed for the stock (the events wait for inventory), only so that /ready means it is there.
				await this.broker.waitForServices(["inventory"], SEED_STOCK_WAIT_MS).catch(() => undefined);
				await this.relayAll();
				// Announcements from an inventory node that has not discovered this one yet reach nobody: bounded.
				const settled = await Promise.race([
					Promise.all(this.seededPending ?? []).then(announced => announced.every(Boolean)),
					new Promise<false>(resolve => setTimeout(() => resolve(false), SEED_SETTLE_MS).unref())
				]);
				this.logger.info(
					settled
						? "Demo catalog's stock announced by inventory"
						: "Demo catalog's stock events published; not every stock announced by inventory"
				);
				// Reads answered meanwhile may be cached with a stock that was not there yet.
				await this.invalidate(
					this.broker.ContextFactory.create(this.broker, null as never, {}, {})
				);
				this.seededPending = undefined;
			},

			/** Relays every pending event now, a batch at a time; the interval relay is the safety net. */
			async relayAll(this: ProductsThis): Promise<void> {
				while ((await this.relayOutbox()) > 0);
			},

			/** Drops cached catalog reads here at once (read-after-write), and on every other node. */
			async invalidate(this: ProductsThis, ctx: Context): Promise<void> {
				await this.broker.cacher?.clean("products.**");
				ctx.broadcast("products.cache.clean", {});
			},

			async seedDemo(
				this: ProductsThis,
				ctx?: Context
			): Promise<{ created: number; existing: number }> {
				const context =
					ctx ?? (this.broker.ContextFactory.create(this.broker, null as never, {}, {}) as Context);
				let created = 0;
				let existing = 0;
				const stocked: Array<Promise<boolean>> = [];
				for (const p of demoCatalog() as DemoProduct[]) {
					if (await this.adapter.findOne({ sku: p.sku })) {
						existing++;
						continue;
					}
					try {
						const doc = await this.insertProduct(context, p);
						stocked.push(this.stockAnnounced(doc._id, SEED_STOCK_WAIT_MS));
						created++;
					} catch (err) {
						if ((err as { type?: string }).type !== "SKU_TAKEN") throw err;
						existing++;
					}
					if ((created + existing) % 40 === 0) {
						this.logger.info(
							`Demo catalog: ${created + existing} products checked, ${created} created`
						);
					}
				}
				if (ctx) {
					// Asked for (npm run seed): durable events are up, so the stock goes out now, and the answer waits for it.
					await this.relayAll();
					await Promise.all(stocked);
				} else {
					// At start durable events are not up yet: publishSeeded waits for them.
					this.seededPending = stocked;
				}
				this.logger.info(`Demo catalog ready: ${created} created, ${existing} already there`);
				return { created, existing };
			}
		},

		created(this: ProductsThis) {
			this.stockWaiters = new Map();
			this.channelsReady = new Promise(resolve => (this.channelsUp = resolve));
		},

		async started(this: ProductsThis) {
			const migrated = await this.migrateVariants();
			if (migrated > 0)
				this.logger.info(`Variants: ${migrated} products got their default variant`);
			// Seeded before this service answers; inventory makes the stock from the events, whenever it runs.
			if (!cfg.catalog.seedDemo || (await this.adapter.count()) > 0) return;
			await this.seedDemo();
			if (this.seededPending) this.seeding = this.publishSeeded();
		},

		async stopped(this: ProductsThis) {
			await this.seeding;
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createProductsService(configOf(broker));

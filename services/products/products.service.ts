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
import { ConflictError, NotFoundError, ServiceUnavailableError } from "../../lib/errors";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../../lib/pagination";
import { enumRule } from "../../lib/validation";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import { CacheCleanerMixin } from "../../mixins/cache-cleaner.mixin";
import { OUTBOX_INDEX, OutboxMixin, outboxEvent, outboxFields } from "../../mixins/outbox.mixin";
import { isDuplicateKeyError } from "../../adapters/store";
import type { AppMeta } from "../../types/meta";
import type { AppAction } from "../../types/moleculer-ext";

export interface ProductImage {
	id: string;
	url: string;
}

interface ProductDoc {
	_id: string;
	sku: string;
	slug: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	category: string;
	images: ProductImage[];
	archived: boolean;
	createdAt: string;
	updatedAt: string;
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
	createdAt: string;
	updatedAt: string;
}

/** What other services (carts, orders) need of a product, archived ones included. */
export interface ProductSummary {
	id: string;
	sku: string;
	name: string;
	price: number;
	currency: string;
	category: string;
	archived: boolean;
}

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
interface CreateParams {
	sku: string;
	name: string;
	description?: string;
	price: number;
	currency: string;
	category: string;
	stock?: number;
}
type UpdateParams = IdParams & Partial<Omit<CreateParams, "stock">>;
interface ImageParams {
	id: string;
	image: ProductImage;
}
interface RemoveImageParams {
	id: string;
	imageId: string;
}
interface SummariesParams {
	ids: string[];
}

interface ProductsMethods {
	toProduct(doc: ProductDoc, available: number): Product;
	withAvailability(ctx: Context, docs: ProductDoc[]): Promise<Product[]>;
	findLive(idOrSlug: string): Promise<ProductDoc | null>;
	insertProduct(ctx: Context, params: CreateParams): Promise<ProductDoc>;
	invalidate(ctx: Context): Promise<void>;
	seedDemo(ctx?: Context): Promise<{ created: number; existing: number }>;
	stockAnnounced(productId: string, timeoutMs: number): Promise<boolean>;
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
const CURRENCY = { type: "string", pattern: /^[A-Z]{3}$/ } as const;
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

/**
 * A product as stored, with what an earlier version let through as `null` (optional fields sent as null) read as
 * the documented schema says: a stored value never breaks an answer.
 */
function fromStore(doc: ProductDoc): ProductDoc {
	const str = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);
	return {
		...doc,
		name: str(doc.name, doc.sku),
		description: str(doc.description, ""),
		currency: str(doc.currency, "USD"),
		category: str(doc.category, "uncategorized"),
		images: Array.isArray(doc.images) ? doc.images : []
	};
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
				if (minPrice !== undefined || maxPrice !== undefined) {
					query.price = {
						...(minPrice !== undefined ? { $gte: minPrice } : {}),
						...(maxPrice !== undefined ? { $lte: maxPrice } : {})
					};
				}
				if (q) {
					const pattern = new RegExp(escapeRegExp(q), "i");
					query.$or = [
						{ name: { $regex: pattern } },
						{ description: { $regex: pattern } },
						{ sku: { $regex: pattern } }
					];
				}
				if (inStock !== undefined) {
					// A product inventory has no stock for has none available: it counts as out of stock.
					const available = (await ctx.call("inventory.inStock", {})) as string[];
					query._id = inStock ? { $in: available } : { $nin: available };
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

		/** Admin: creates a product; its initial stock goes to inventory by event. */
		create: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				sku: SKU,
				name: NAME,
				description: { ...DESCRIPTION, optional: true },
				price: PRICE,
				currency: { ...CURRENCY, default: "USD" },
				category: CATEGORY,
				stock: {
					type: "number",
					integer: true,
					min: 0,
					max: 10_000_000,
					convert: false,
					optional: true
				}
			},
			async handler(this: ProductsThis, ctx: Context<CreateParams, AppMeta>): Promise<Product> {
				const doc = await this.insertProduct(ctx, ctx.params);
				// Read-your-write without calling inventory: wait (bounded) until it announces the stock it made from
				// the event; with no inventory node at all there is nothing to wait for (the event waits for it).
				// (0.15's typings make hasService's nodeID required; without one it means any node.)
				const stocked = this.broker.registry.hasService("inventory", undefined as never)
					? this.stockAnnounced(doc._id, STOCK_WAIT_MS)
					: Promise.resolve(true);
				void this.relayOutbox(doc._id).catch(() => undefined);
				if (!(await stocked)) {
					this.logger.warn(
						"The new product's stock is not announced yet; it comes with its event",
						{
							productId: doc._id
						}
					);
				}
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/products/${doc._id}`;
				// Nothing can be reserved before the product exists: what is available is the stock it was created with.
				return this.toProduct(doc, ctx.params.stock ?? 0);
			}
		},

		/** Admin: changes a product's fields (the slug stays, so links keep working). */
		update: {
			permissions: ["admin"],
			params: {
				$$strict: "remove",
				id: ID,
				sku: { ...SKU, optional: true },
				name: { ...NAME, optional: true },
				description: { ...DESCRIPTION, optional: true },
				price: { ...PRICE, optional: true },
				currency: { ...CURRENCY, optional: true },
				category: { ...CATEGORY, optional: true }
			},
			async handler(this: ProductsThis, ctx: Context<UpdateParams, AppMeta>): Promise<Product> {
				const { id, ...changes } = ctx.params;
				const doc = (await this.adapter.findById(id)) as ProductDoc | null;
				if (!doc || doc.archived) throw new NotFoundError("Product");
				let updated: ProductDoc;
				try {
					updated = (await this.adapter.updateById(id, {
						$set: { ...changes, updatedAt: new Date().toISOString() }
					})) as ProductDoc;
				} catch (err) {
					if (isDuplicateKeyError(err))
						throw new ConflictError("SKU_TAKEN", "Another product has this sku", { field: "sku" });
					throw err;
				}
				await this.invalidate(ctx);
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

		/** Internal: what carts and orders need of some products, archived ones included (unknown ids are absent). */
		summaries: {
			params: { $$strict: "remove", ids: { type: "array", items: ID, max: 500 } },
			async handler(
				this: ProductsThis,
				ctx: Context<SummariesParams>
			): Promise<Record<string, ProductSummary>> {
				const docs = (await this.adapter.find({
					query: { _id: { $in: [...new Set(ctx.params.ids)] } }
				})) as ProductDoc[];
				return Object.fromEntries(
					docs.map(fromStore).map(d => [
						d._id,
						{
							id: d._id,
							sku: d.sku,
							name: d.name,
							price: d.price,
							currency: d.currency,
							category: d.category,
							archived: d.archived
						}
					])
				);
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
			toProduct(stored: ProductDoc, available: number): Product {
				const doc = fromStore(stored);
				return {
					id: doc._id,
					sku: doc.sku,
					slug: doc.slug,
					name: doc.name,
					description: doc.description,
					price: doc.price,
					currency: doc.currency,
					category: doc.category,
					// Stored as paths: a changed PUBLIC_URL changes every answer, not only new images.
					images: (doc.images ?? []).map(img => ({
						id: img.id,
						url: img.url.startsWith("/") ? cfg.gateway.publicUrl + img.url : img.url
					})),
					available,
					createdAt: doc.createdAt,
					updatedAt: doc.updatedAt
				};
			},

			/** One inventory call for the whole page. */
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
				return docs.map(d => this.toProduct(d, available[d._id] ?? 0));
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
				const created = outboxEvent("products.created", {
					productId: _id,
					sku: params.sku,
					stock: params.stock ?? 0
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
							price: params.price,
							currency: params.currency ?? "USD",
							category: params.category,
							images: [],
							archived: false,
							createdAt: now,
							updatedAt: now,
							...outboxFields([created])
						})) as ProductDoc;
					} catch (err) {
						if (!isDuplicateKeyError(err)) throw err;
						if (await this.adapter.findOne({ sku: params.sku })) {
							throw new ConflictError("SKU_TAKEN", "A product with this sku already exists", {
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

/**
 * Shopping carts: one per user, priced at every answer from the catalog's current prices (one `products.summaries`
 * call for the products this node has not seen since the catalog last changed: lib/read-cache.ts, emptied by the
 * products service's `products.cache.clean` broadcast through mixins/cache-cleaner.mixin.ts), never from anything a client sent. Lines of products
 * archived (or gone) since they were added drop out of every answer and out of the stored cart at its next write. Every change is one read and one write conditional on
 * the cart's `version` (optimistic, retried on a lost race), so two racing requests never lose each other's lines.
 * The only writer of the `carts` collection.
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../config";
import {
	ConflictError,
	NotFoundError,
	variantRequired,
	ServiceUnavailableError,
	UnauthorizedError,
	UnprocessableError
} from "../lib/errors";
import { ReadCache } from "../lib/read-cache";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { CacheCleanerMixin } from "../mixins/cache-cleaner.mixin";
import { isDuplicateKeyError } from "../adapters/store";
import type { AppMeta } from "../types/meta";
import type { AppAction } from "../types/moleculer-ext";
import type { ProductSummary, VariantSummary } from "../types/catalog";
import type { SaleTermsView } from "./inventory/sales";
import type { Quote, QuoteParams } from "./pricing/pricing.service";

/** A line as stored: never a price. Stored before variants, a line has no `variantId`: its product's default one. */
interface CartLine {
	productId: string;
	variantId?: string;
	quantity: number;
}

/** The variant a line holds (a default variant's id is its product's). */
const variantOf = (line: CartLine) => line.variantId ?? line.productId;

/** A cart as stored. */
interface CartDoc {
	_id: string;
	userId: string;
	items: CartLine[];
	/** Bumped by every write; writes are conditional on the version they read. */
	version: number;
	/** The discount code the customer applied (upper-cased); priced again at every answer. */
	discountCode?: string | null;
	/** The lines (and code) a checkout took (`carts.claim`), kept until it is placed or gives them back. */
	claim?: {
		orderId: string;
		items: CartLine[];
		version: number;
		discountCode?: string | null;
	} | null;
	updatedAt: string;
}

export interface CartItem {
	productId: string;
	variantId: string;
	sku: string;
	name: string;
	/** The variant's option values, `{}` for a product without options. */
	options: Record<string, string>;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
	/** The live sale whose price this is. */
	saleId?: string;
}

/** The lines at their prices, before pricing adds discount, shipping and tax. */
interface LinesView {
	items: CartItem[];
	subtotal: number;
	currency: string;
}

/** What clients see (API.md "Cart", with the round 2 totals): every amount computed by pricing. */
export interface Cart extends LinesView {
	discountTotal: number;
	shippingTotal: number;
	taxTotal: number;
	total: number;
	/** The applied code; `reason` when it cannot be used on the cart as it is now (then it takes nothing off). */
	discount?: { code: string; amount: number; reason?: string };
}

/** What checkout needs: the lines with their skus, the applied code, and the version the orders service clears at. */
export interface CheckoutView {
	/** `listPrice`: a sale line's catalog price, charged if the sale is over by the time its stock is held. */
	items: Array<CartItem & { sku: string; listPrice?: number }>;
	subtotal: number;
	currency: string;
	version: number;
	discountCode?: string;
}

/** A variant as a cart prices it: in a live sale, at the sale price (`listPrice` keeps the catalog's). */
type PricedVariant = VariantSummary & { saleId?: string; listPrice?: number };
/** Products by id, each variant priced as a cart prices it. */
type Summaries = Record<string, ProductSummary & { variants: Record<string, PricedVariant> }>;

/** The lines a client sees: of live variants, in the cart's currency (that of its first live line). */
interface LiveCart {
	lines: Array<{ line: CartLine; product: Summaries[string]; variant: PricedVariant }>;
	currency: string | null;
}

interface AddParams {
	productId?: string;
	variantId?: string;
	quantity: number;
}
/** `productId`: the path's item id, a variant's id or a product's (its one line in the cart). */
interface UpdateParams {
	productId: string;
	quantity: number;
}
interface RemoveParams {
	productId: string;
}
interface ClearIfVersionParams {
	version: number;
}
interface ClaimParams {
	version: number;
	orderId: string;
}
interface GiveBackParams {
	userId: string;
	orderId: string;
}
interface DiscountParams {
	code: string;
}

/** Computes the lines to store from the cart as the client sees it; throws to refuse the change. */
type Change = (live: LiveCart, summaries: Summaries) => CartLine[];

/** What a change writes: the lines, and the code when it changes that too. */
type Next = { items: CartLine[]; discountCode?: string | null };

interface CartsMethods {
	ownerOf(ctx: Context<unknown, AppMeta>): string;
	findCart(userId: string): Promise<CartDoc | null>;
	summaries(ctx: Context, ids: string[]): Promise<Summaries>;
	productOf(ctx: Context, params: AddParams): Promise<string>;
	liveSales(ctx: Context): Promise<SaleTermsView>;
	change(
		ctx: Context<unknown, AppMeta>,
		productIds: string[],
		compute: Change,
		code?: (lines: LinesView) => Promise<string | null>
	): Promise<Cart>;
	priced(ctx: Context<unknown, AppMeta>, lines: LinesView, code?: string | null): Promise<Cart>;
}

interface CartsVars {
	/** Product summaries by id, as products last answered them (see the top of this file). */
	catalog: ReadCache;
	/** Inventory's sale terms by product, read at most once per SALE_TERMS_TTL_MS (dropped when a sale changes). */
	saleTerms?: { at: number; view: Promise<SaleTermsView> };
	/**
	 * The product of each variant seen: a variant never changes product, so this is never stale (a variant archived or
	 * gone since is refused by the product's summary, read as before). At most VARIANT_PRODUCTS_MAX, then emptied.
	 */
	variantProducts: Map<string, string>;
}

type CartsThis = Service & DbServiceThis & CartsMethods & CartsVars;

const PRODUCT_ID = { type: "string", min: 1, max: 64 } as const;
/** Entries of the variant → product map before it is emptied (an id and a product id each: about 2 MB). */
const VARIANT_PRODUCTS_MAX = 20_000;
const MAX_QUANTITY = 99;
/** Units of one product in a cart: an integer 1..99; "2" and 1.5 are 422, never converted or rounded. */
const QUANTITY = {
	type: "number",
	integer: true,
	min: 1,
	max: MAX_QUANTITY,
	convert: false
} as const;
/** Distinct products in one cart: bounds the document and the pricing call. */
const MAX_LINES = 100;
/** Optimistic retries of a write racing other writes to the same cart before giving up with 503. */
const MAX_ATTEMPTS = 10;
/**
 * How long a carts node prices from the sale terms it read: a sale starting or ending shows in carts within this,
 * and checkout charges what inventory held the line at in any case.
 */
const SALE_TERMS_TTL_MS = 1000;
/** The currency of a cart with no lines. */
const DEFAULT_CURRENCY = "USD";

/** The lines given back by a checkout that failed, added to what the cart holds now (within the cart's bounds). */
function mergeLines(current: CartLine[], back: CartLine[]): CartLine[] {
	const merged = current.map(l => ({ ...l }));
	for (const line of back) {
		const existing = merged.find(l => variantOf(l) === variantOf(line));
		if (existing) existing.quantity = Math.min(MAX_QUANTITY, existing.quantity + line.quantity);
		else if (merged.length < MAX_LINES) merged.push({ ...line });
	}
	return merged;
}

const emptyCart = (): LinesView => ({ items: [], subtotal: 0, currency: DEFAULT_CURRENCY });

function liveCart(items: CartLine[], summaries: Summaries): LiveCart {
	let currency: string | null = null;
	const lines: LiveCart["lines"] = [];
	for (const line of items) {
		const product = summaries[line.productId];
		const variant = product?.variants[variantOf(line)];
		if (!product || product.archived || !variant || variant.archived) continue;
		currency ??= product.currency;
		// A product whose currency an admin changed after it was added cannot be summed with the rest.
		if (product.currency === currency) lines.push({ line, product, variant });
	}
	return { lines, currency };
}

function toCart(live: LiveCart): LinesView {
	const items = live.lines.map(({ line, product, variant }) => ({
		productId: line.productId,
		variantId: variant.id,
		sku: variant.sku,
		name: product.name,
		options: variant.options,
		unitPrice: variant.price,
		quantity: line.quantity,
		lineTotal: variant.price * line.quantity,
		...(variant.saleId ? { saleId: variant.saleId } : {})
	}));
	return {
		items,
		subtotal: items.reduce((sum, i) => sum + i.lineTotal, 0),
		currency: live.currency ?? DEFAULT_CURRENCY
	};
}

function notInCart(): NotFoundError {
	return new NotFoundError("Cart item");
}

/**
 * The line a path's item id names: a variant's line, or the one line of a product (409 VARIANT_REQUIRED when the
 * cart holds several of its variants; 404 when none).
 */
function lineNamed(lines: CartLine[], id: string): CartLine {
	const own = lines.find(l => variantOf(l) === id);
	if (own) return own;
	const ofProduct = lines.filter(l => l.productId === id);
	if (ofProduct.length > 1) throw variantRequired(id, ofProduct.map(variantOf));
	if (ofProduct.length === 0) throw notInCart();
	return ofProduct[0];
}

function tooMany(quantity: number, inCart: number): UnprocessableError {
	return new UnprocessableError(
		"VALIDATION_ERROR",
		`A cart line holds at most ${MAX_QUANTITY} units`,
		[
			{
				field: "quantity",
				type: "numberMax",
				message: `A line holds at most ${MAX_QUANTITY} units; ${inCart} already in the cart, ${quantity} more asked`
			}
		]
	);
}

const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

const actions = {
	/** The caller's cart at current catalog prices. */
	get: {
		permissions: "authenticated",
		params: { $$strict: "remove" },
		async handler(this: CartsThis, ctx: Context<unknown, AppMeta>): Promise<Cart> {
			const doc = await this.findCart(this.ownerOf(ctx));
			if (!doc || doc.items.length === 0) return this.priced(ctx, emptyCart(), doc?.discountCode);
			const summaries = await this.summaries(
				ctx,
				doc.items.map(l => l.productId)
			);
			return this.priced(ctx, toCart(liveCart(doc.items, summaries)), doc.discountCode);
		}
	},

	/** Adds units of a product on sale, to its existing line if any (a line holds 1..99 units). */
	add: {
		permissions: "authenticated",
		params: {
			$$strict: "remove",
			productId: {
				...PRODUCT_ID,
				optional: true,
				description:
					"The product: alone, its default variant (409 VARIANT_REQUIRED when it has options); with " +
					"`variantId`, the variant's product (404 when it is another's)"
			},
			variantId: { ...PRODUCT_ID, optional: true, description: "The variant to add" },
			quantity: QUANTITY
		},
		errors: [
			{
				status: 422,
				type: "CURRENCY_MISMATCH",
				description:
					"the product is priced in another currency than the cart's lines (a cart holds one currency); " +
					"`data[0]` names `expected` (the cart's) and `actual` (the product's)"
			}
		],
		async handler(this: CartsThis, ctx: Context<AddParams, AppMeta>): Promise<Cart> {
			const { quantity } = ctx.params;
			const productId = await this.productOf(ctx, ctx.params);
			return this.change(ctx, [productId], (live, summaries) => {
				const product = summaries[productId];
				if (!product || product.archived) throw new NotFoundError("Product");
				const variantId = ctx.params.variantId ?? product.defaultVariantId;
				if (!variantId) {
					throw variantRequired(
						productId,
						Object.values(product.variants)
							.filter(v => !v.archived)
							.map(v => v.id)
					);
				}
				const variant = product.variants[variantId];
				if (!variant || variant.archived) throw new NotFoundError("Variant");
				if (live.currency !== null && product.currency !== live.currency) {
					throw new UnprocessableError(
						"CURRENCY_MISMATCH",
						`The cart is in ${live.currency}; this product is priced in ${product.currency}`,
						[
							{
								field: "productId",
								type: "currency",
								message: "A cart holds products of one currency",
								expected: live.currency,
								actual: product.currency
							}
						]
					);
				}
				const lines = live.lines.map(l => l.line);
				const existing = lines.find(l => variantOf(l) === variantId);
				const added: CartLine =
					variantId === productId ? { productId, quantity } : { productId, variantId, quantity };
				if (!existing) {
					if (lines.length >= MAX_LINES) {
						throw new UnprocessableError(
							"VALIDATION_ERROR",
							`A cart holds at most ${MAX_LINES} different products`,
							[
								{
									field: "productId",
									type: "cartFull",
									message: `A cart holds at most ${MAX_LINES} different products`
								}
							]
						);
					}
					return [...lines, added];
				}
				if (existing.quantity + quantity > MAX_QUANTITY) throw tooMany(quantity, existing.quantity);
				return lines.map(l => (l === existing ? { ...added, quantity: l.quantity + quantity } : l));
			});
		}
	},

	/** Sets the units of a line, named by its variant or its product (404 when not in the cart). */
	update: {
		permissions: "authenticated",
		params: { $$strict: "remove", productId: { ...PRODUCT_ID }, quantity: QUANTITY },
		async handler(this: CartsThis, ctx: Context<UpdateParams, AppMeta>): Promise<Cart> {
			const { productId, quantity } = ctx.params;
			return this.change(ctx, [], live => {
				const lines = live.lines.map(l => l.line);
				const line = lineNamed(lines, productId);
				return lines.map(l => (l === line ? { ...l, quantity } : l));
			});
		}
	},

	/** Removes a line, named by its variant or its product (404 when not in the cart). */
	remove: {
		permissions: "authenticated",
		params: { $$strict: "remove", productId: { ...PRODUCT_ID } },
		async handler(this: CartsThis, ctx: Context<RemoveParams, AppMeta>): Promise<Cart> {
			const { productId } = ctx.params;
			return this.change(ctx, [], live => {
				const lines = live.lines.map(l => l.line);
				const line = lineNamed(lines, productId);
				return lines.filter(l => l !== line);
			});
		}
	},

	/** Empties the caller's cart (204). */
	clear: {
		permissions: "authenticated",
		params: { $$strict: "remove" },
		async handler(this: CartsThis, ctx: Context<unknown, AppMeta>): Promise<null> {
			// One unconditional write: no read, and the version still moves so a racing checkout does not clear twice.
			await this.adapter.updateMany(
				{ userId: this.ownerOf(ctx) },
				{
					$set: { items: [], discountCode: null, updatedAt: new Date().toISOString() },
					$inc: { version: 1 }
				}
			);
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/**
	 * Applies a discount code to the caller's cart (one code per cart: it replaces any other), checked against the cart
	 * as it is: 422 DISCOUNT_INVALID with `data.reason` when it cannot be used. Later changes price it again.
	 */
	applyDiscount: {
		permissions: "authenticated",
		params: { $$strict: "remove", code: { type: "string", trim: true, min: 1, max: 64 } },
		async handler(this: CartsThis, ctx: Context<DiscountParams, AppMeta>): Promise<Cart> {
			const code = ctx.params.code.toUpperCase();
			return this.change(
				ctx,
				[],
				live => live.lines.map(l => l.line),
				async lines => {
					await ctx.call<Quote, QuoteParams>("pricing.quote", {
						currency: lines.currency,
						items: lines.items.map(i => ({ productId: i.productId, lineTotal: i.lineTotal })),
						code,
						userId: this.ownerOf(ctx),
						strict: true
					});
					return code;
				}
			);
		}
	},

	/** Takes the applied discount code off the caller's cart (a cart without one answers as it is). */
	removeDiscount: {
		permissions: "authenticated",
		params: { $$strict: "remove" },
		async handler(this: CartsThis, ctx: Context<unknown, AppMeta>): Promise<Cart> {
			return this.change(
				ctx,
				[],
				live => live.lines.map(l => l.line),
				async () => null
			);
		}
	},

	/** Internal (orders, with the customer's meta): the cart priced for checkout, with skus and its version. */
	checkoutView: {
		params: { $$strict: "remove" },
		async handler(this: CartsThis, ctx: Context<unknown, AppMeta>): Promise<CheckoutView> {
			const doc = await this.findCart(this.ownerOf(ctx));
			const version = doc?.version ?? 0;
			if (!doc || doc.items.length === 0) return { ...emptyCart(), items: [], version };
			const live = liveCart(
				doc.items,
				await this.summaries(
					ctx,
					doc.items.map(l => l.productId)
				)
			);
			const cart = toCart(live);
			return {
				items: cart.items.map((item, i) => {
					const { listPrice } = live.lines[i].variant;
					return { ...item, ...(listPrice !== undefined ? { listPrice } : {}) };
				}),
				subtotal: cart.subtotal,
				currency: cart.currency,
				version,
				...(doc.discountCode ? { discountCode: doc.discountCode } : {})
			};
		}
	},

	/** Internal (orders): empties the caller's cart only if it is still at `version` (later additions survive). */
	clearIfVersion: {
		params: {
			$$strict: "remove",
			version: { type: "number", integer: true, min: 0, convert: false }
		},
		async handler(
			this: CartsThis,
			ctx: Context<ClearIfVersionParams, AppMeta>
		): Promise<{ cleared: boolean }> {
			const cleared = await this.adapter.updateMany(
				{ userId: this.ownerOf(ctx), version: ctx.params.version },
				{
					$set: { items: [], discountCode: null, updatedAt: new Date().toISOString() },
					$inc: { version: 1 }
				}
			);
			return { cleared: cleared === 1 };
		}
	},

	/**
	 * Internal (orders, with the customer's meta): a checkout takes the cart's lines, once. One write conditional on
	 * the version its view read, so of two checkouts of one cart content (on any nodes) exactly one wins; the other,
	 * and one racing a change of the cart, is 409 CART_CHANGED before any stock is held.
	 */
	claim: {
		params: {
			$$strict: "remove",
			version: { type: "number", integer: true, min: 0, convert: false },
			orderId: { type: "string", min: 1, max: 255 }
		},
		async handler(this: CartsThis, ctx: Context<ClaimParams, AppMeta>): Promise<{ claimed: true }> {
			const userId = this.ownerOf(ctx);
			const { version, orderId } = ctx.params;
			const doc = await this.findCart(userId);
			const changed = () =>
				new ConflictError(
					"CART_CHANGED",
					"The cart changed or was checked out meanwhile; review it and retry"
				);
			if (!doc || doc.version !== version || doc.items.length === 0) throw changed();
			const written = await this.adapter.updateMany(
				{ userId, version },
				{
					$set: {
						items: [],
						discountCode: null,
						claim: {
							orderId,
							items: doc.items,
							version: version + 1,
							discountCode: doc.discountCode ?? null
						},
						updatedAt: new Date().toISOString()
					},
					$inc: { version: 1 }
				}
			);
			if (written !== 1) throw changed();
			return { claimed: true };
		}
	},

	/**
	 * Internal (orders and its sweeper): a checkout that failed gives the lines it took back, added to whatever the
	 * cart holds now. Only the claiming order can, and only once.
	 */
	giveBack: {
		params: {
			$$strict: "remove",
			userId: { type: "string", min: 1, max: 64 },
			orderId: { type: "string", min: 1, max: 255 }
		},
		async handler(this: CartsThis, ctx: Context<GiveBackParams>): Promise<{ restored: boolean }> {
			const { userId, orderId } = ctx.params;
			for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
				if (attempt > 1) await pause(Math.random() * 2 * attempt);
				const doc = await this.findCart(userId);
				if (!doc?.claim || doc.claim.orderId !== orderId) return { restored: false };
				const written = await this.adapter.updateMany(
					{ userId, version: doc.version },
					{
						$set: {
							items: mergeLines(doc.items, doc.claim.items),
							// The code comes back with the lines unless the customer applied another meanwhile.
							discountCode: doc.discountCode ?? doc.claim.discountCode ?? null,
							claim: null,
							updatedAt: new Date().toISOString()
						},
						$inc: { version: 1 }
					}
				);
				if (written === 1) return { restored: true };
			}
			throw new ServiceUnavailableError("The cart is changing too fast, please retry");
		}
	}
} satisfies Record<string, AppAction<CartsThis>>;

export function createCartsService(
	cfg: AppConfig
): ServiceSchema<ServiceSettingSchema, CartsMethods, DbServiceThis & CartsVars> {
	return {
		name: "carts",
		mixins: [
			DbMixin(cfg, { collection: "carts", indexes: [{ fields: { userId: 1 }, unique: true }] }),
			// The catalog changed (a price, an archive, a new product): price from products again.
			CacheCleanerMixin({ events: ["products.cache.clean"], readCaches: ["catalog"] })
		],
		actions,

		created(this: CartsThis) {
			this.catalog = new ReadCache();
			this.variantProducts = new Map();
		},

		events: {
			/** A sale was created, changed or removed: read the terms again at the next pricing. */
			"inventory.sales.changed"(this: CartsThis) {
				this.saleTerms = undefined;
			}
		},

		methods: {
			/**
			 * The cart's totals from pricing: the applied code (priced without it when it does not apply now), and the tax
			 * of TAX_DEFAULT_COUNTRY until checkout names the address. Without a code and without a pricing node (a
			 * cluster that runs none), the totals are the lines' with zeros, as before pricing existed.
			 */
			async priced(
				this: CartsThis,
				ctx: Context<unknown, AppMeta>,
				lines: LinesView,
				code?: string | null
			): Promise<Cart> {
				const plain: Cart = {
					...lines,
					discountTotal: 0,
					shippingTotal: 0,
					taxTotal: 0,
					total: lines.subtotal
				};
				if (
					!code &&
					(lines.items.length === 0 || !this.broker.registry.hasService("pricing", null as never))
				) {
					return plain;
				}
				const quote = await ctx.call<Quote, QuoteParams>("pricing.quote", {
					currency: lines.currency,
					items: lines.items.map(i => ({ productId: i.productId, lineTotal: i.lineTotal })),
					...(code ? { code, userId: this.ownerOf(ctx) } : {})
				});
				return {
					...lines,
					discountTotal: quote.discountTotal,
					shippingTotal: quote.shippingTotal,
					taxTotal: quote.taxTotal,
					total: quote.total,
					...(code
						? {
								discount: {
									code,
									amount: quote.discountTotal,
									...(quote.discountRejected ? { reason: quote.discountRejected.reason } : {})
								}
							}
						: {})
				};
			},

			/** The owner is always the verified caller, never a parameter. */
			ownerOf(ctx: Context<unknown, AppMeta>): string {
				const id = ctx.meta.user?.id;
				if (!id) throw new UnauthorizedError("NO_TOKEN", "Authentication required");
				return id;
			},

			async findCart(this: CartsThis, userId: string): Promise<CartDoc | null> {
				return (await this.adapter.findOne({ userId })) as CartDoc | null;
			},

			/** The products of an answer (unknown ids are absent): at most one catalog call, for those not cached. */
			async summaries(this: CartsThis, ctx: Context, ids: string[]): Promise<Summaries> {
				if (ids.length === 0) return {};
				const [catalog, sales] = await Promise.all([
					this.catalog.getMany<ProductSummary>(ids, cfg.catalog.cacheTtl * 1000, missing =>
						ctx.call<Summaries, { ids: string[] }>("products.summaries", { ids: missing })
					),
					this.liveSales(ctx)
				]);
				// No prototype: an id such as `valueOf` must find nothing, as the catalog's own answer does.
				const out: Summaries = Object.create(null);
				for (const [id, product] of Object.entries(catalog)) {
					const variants: Record<string, PricedVariant> = Object.create(null);
					// Sale terms are by variant (a default variant's id is its product's).
					for (const [vid, v] of Object.entries(product.variants ?? {})) {
						const sale = Object.hasOwn(sales, vid) ? sales[vid] : undefined;
						variants[vid] =
							sale?.status === "live"
								? { ...v, price: sale.salePrice, saleId: sale.saleId, listPrice: v.price }
								: v;
					}
					out[id] = { ...product, variants };
				}
				return out;
			},

			/** The product a line to add names: given, or the one its variant belongs to (404 when none). */
			async productOf(this: CartsThis, ctx: Context, params: AddParams): Promise<string> {
				if (params.productId) return params.productId;
				if (!params.variantId) {
					// Both named: a client from before variants knows only productId.
					throw new UnprocessableError("VALIDATION_ERROR", "Name a productId or a variantId", [
						{ field: "productId", type: "required", message: "productId or variantId is required" },
						{ field: "variantId", type: "required", message: "productId or variantId is required" }
					]);
				}
				// Known: no call (every add of a variant asked products before, a hop of its own).
				const known = this.variantProducts.get(params.variantId);
				if (known) return known;
				const found = await ctx.call<Record<string, ProductSummary>, { variantIds: string[] }>(
					"products.summaries",
					{ variantIds: [params.variantId] }
				);
				const product = Object.values(found).find(p =>
					Object.hasOwn(p.variants ?? {}, params.variantId!)
				);
				if (!product) throw new NotFoundError("Variant");
				if (this.variantProducts.size >= VARIANT_PRODUCTS_MAX) this.variantProducts.clear();
				this.variantProducts.set(params.variantId, product.id);
				return product.id;
			},

			/** Sale terms by product; without inventory, catalog prices (checkout charges what inventory holds at). */
			liveSales(this: CartsThis, ctx: Context): Promise<SaleTermsView> {
				const now = Date.now();
				if (!this.saleTerms || now - this.saleTerms.at > SALE_TERMS_TTL_MS) {
					const view = ctx.call<SaleTermsView, object>("inventory.saleTerms", {}).catch(err => {
						this.logger.warn("Sale terms unavailable: pricing from the catalog", err);
						this.saleTerms = undefined;
						return {};
					});
					this.saleTerms = { at: now, view };
				}
				return this.saleTerms.view;
			},

			/**
			 * Reads the cart, lets `compute` decide its new lines from the live view, and writes them conditionally on the
			 * version read (inserting a first cart; the unique userId index settles two racing inserts). A lost race reads
			 * again; products already priced are not asked for again. `code`, when given, decides the applied discount code
			 * from the new lines (and may refuse it). Answers the new cart, priced.
			 */
			async change(
				this: CartsThis,
				ctx: Context<unknown, AppMeta>,
				productIds: string[],
				compute: Change,
				code?: (lines: LinesView) => Promise<string | null>
			): Promise<Cart> {
				const userId = this.ownerOf(ctx);
				const summaries: Summaries = Object.create(null);
				const asked = new Set<string>();
				for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
					if (attempt > 1) await pause(Math.random() * 2 * attempt);
					const doc = await this.findCart(userId);
					const stored = doc?.items ?? [];
					const missing = [...new Set([...stored.map(l => l.productId), ...productIds])].filter(
						id => !asked.has(id)
					);
					if (missing.length > 0) {
						Object.assign(summaries, await this.summaries(ctx, missing));
						for (const id of missing) asked.add(id);
					}

					const next = compute(liveCart(stored, summaries), summaries);
					const lines = toCart(liveCart(next, summaries));
					const discountCode = code ? await code(lines) : (doc?.discountCode ?? null);
					const answer = () => this.priced(ctx, lines, discountCode);
					const updatedAt = new Date().toISOString();
					if (!doc) {
						if (next.length === 0 && !discountCode) return answer();
						try {
							await this.adapter.insert({
								userId,
								items: next,
								discountCode,
								version: 1,
								updatedAt
							});
							return answer();
						} catch (err) {
							if (!isDuplicateKeyError(err)) throw err;
							continue;
						}
					}
					const written = await this.adapter.updateMany(
						{ userId, version: doc.version },
						{ $set: { items: next, discountCode, version: doc.version + 1, updatedAt } }
					);
					if (written === 1) return answer();
				}
				throw new ServiceUnavailableError("The cart is changing too fast, please retry");
			}
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createCartsService(configOf(broker));

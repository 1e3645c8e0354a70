/**
 * Pricing: discount codes and their redemptions, shipping methods and tax rates, and the one computation of a cart's
 * or an order's totals from them (totals.ts). Carts and orders send their lines and get the totals back; nobody
 * else reads these collections. A code's usage limit and per-customer limit are conditional updates here
 * (redemptions.ts), so concurrent checkouts on any number of nodes never exceed them.
 * The only writer of the `discounts`, `discount_customers`, `shipping_methods` and `tax_rates` collections.
 */
import { randomUUID } from "node:crypto";
import {
	type Context,
	Errors,
	type Service,
	type ServiceBroker,
	type ServiceSchema,
	type ServiceSettingSchema
} from "moleculer";
import { type AppConfig, configOf } from "../../config";
import { compileCheck } from "../../adapters/patches/null-refusing-validator.patch";
import { isDuplicateKeyError } from "../../adapters/store";
import { ConflictError, NotFoundError, UnprocessableError } from "../../lib/errors";
import { METRIC } from "../../lib/metric-names";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../../lib/pagination";
import { ReadCache } from "../../lib/read-cache";
import { countryRule, currencyRule, enumRule, timestampRule } from "../../lib/validation";
import { CacheCleanerMixin } from "../../mixins/cache-cleaner.mixin";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import type { AppMeta } from "../../types/meta";
import type { AppAction } from "../../types/moleculer-ext";
import { DEMO_CODE, DEMO_SHIPPING, DEMO_TAX_RATES } from "./demo";
import { type CodeDoc, type CustomerDoc, releaseRedemption, takeRedemption } from "./redemptions";
import { type TotalsLine, computeTotals } from "./totals";
import type { DiscountReason, Quote, QuoteParams, ShippingTerms, TaxRate } from "./types";

// Carts and orders name these from here.
export type { DiscountReason, Quote, QuoteParams, TaxRate } from "./types";

interface DiscountDoc extends CodeDoc {
	/** Unique: the code while it exists, the id once deleted (so the code can be used again). */
	key: string;
	type: "percentage" | "fixed";
	value: number;
	currency?: string;
	minSubtotal?: number;
	startsAt?: string;
	endsAt?: string;
	productIds?: string[];
	categories?: string[];
	createdAt: string;
	updatedAt: string;
}

export type Discount = Omit<DiscountDoc, "_id" | "key" | "ops" | "deleted"> & { id: string };

interface ShippingDoc extends ShippingTerms {
	_id: string;
	createdAt: string;
	updatedAt: string;
}

export type ShippingMethod = Omit<ShippingDoc, "_id"> & { id: string };

interface RedeemParams {
	discountId: string;
	userId: string;
	orderId: string;
}

interface PricingMethods {
	findCode(code: string): Promise<DiscountDoc | null>;
	categories(ctx: Context, ids: string[]): Promise<Record<string, string>>;
	rates(): Promise<TaxRate[]>;
	refusal(
		doc: DiscountDoc | null,
		params: QuoteParams,
		lines: TotalsLine[]
	): Promise<DiscountReason | null>;
}

interface PricingVars {
	/** Product categories by id, as products last answered them (emptied on `products.cache.clean`). */
	catalog: ReadCache;
	/** Which currencies include tax, and the country a cart is taxed for (config/). */
	taxSettings: AppConfig["pricing"];
}

type PricingThis = Service & DbServiceThis & PricingMethods & PricingVars;

const ID = { type: "string", min: 1, max: 64 } as const;
const MONEY = { type: "number", integer: true, min: 0, max: 100_000_000, convert: false } as const;
/** A line's total is up to 99 units of a price: more than MONEY allows (a cart of such a line answered 422). */
const LINE_TOTAL = { ...MONEY, max: Number.MAX_SAFE_INTEGER } as const;
/** A country to look up (a list filter, a quote's address already checked): its shape only; unknown ones match nothing. */
const COUNTRY = { type: "string", trim: true, uppercase: true, pattern: /^[A-Za-z]{2}$/ } as const;
/** The currency of a quote (carts, orders): the one stored with the product, checked for shape only. */
const CURRENCY = { type: "string", uppercase: true, pattern: /^[A-Za-z]{3}$/ } as const;
const CATEGORY = { type: "string", trim: true, min: 1, max: 100 } as const;
const LIMIT = { type: "number", integer: true, min: 1, max: 100_000_000, convert: false } as const;
const optional = <T extends object>(rule: T) => ({ ...rule, optional: true }) as const;
/** Codes are case-insensitive: stored and compared upper-cased. */
const CODE = {
	type: "string",
	trim: true,
	uppercase: true,
	pattern: /^[A-Za-z0-9_-]{3,32}$/
} as const;

const DISCOUNT_FIELDS = {
	code: CODE,
	type: enumRule("discount type", ["percentage", "fixed"]),
	value: { type: "number", integer: true, min: 1, max: 100_000_000, convert: false },
	currency: optional(currencyRule()),
	minSubtotal: optional(MONEY),
	startsAt: optional(timestampRule()),
	endsAt: optional(timestampRule()),
	productIds: optional({ type: "array", items: ID, max: 500, unique: true }),
	categories: optional({ type: "array", items: CATEGORY, max: 100, unique: true }),
	usageLimit: optional(LIMIT),
	perCustomerLimit: optional(LIMIT)
} as const;

const SHIPPING_FIELDS = {
	name: { type: "string", trim: true, min: 1, max: 100 },
	price: MONEY,
	currency: { ...currencyRule(), default: "USD" },
	countries: { type: "array", items: countryRule(), min: 1, max: 250, unique: true },
	freeAbove: optional(MONEY)
} as const;

const TAX_RATE = {
	type: "object",
	strict: "remove",
	props: {
		country: countryRule(),
		category: optional(CATEGORY),
		rate: { type: "number", integer: true, min: 0, max: 10_000, convert: false }
	}
} as const;

/** The check of a table of tax rates (a PUT body, an array the action gets as numbered fields). */
const checkRates = compileCheck({
	$$strict: "remove",
	rates: { type: "array", items: TAX_RATE, max: 2000 }
});

const partial = <T extends Record<string, object>>(fields: T) =>
	Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { ...v, optional: true }])) as {
		[K in keyof T]: T[K] & { optional: true };
	};

const nowIso = () => new Date().toISOString();

export function discountInvalid(code: string, reason: DiscountReason): UnprocessableError {
	return new UnprocessableError("DISCOUNT_INVALID", `The code ${code} cannot be used: ${reason}`, {
		code,
		reason
	});
}

function invalidField(field: string, type: string, message: string): UnprocessableError {
	return new UnprocessableError("VALIDATION_ERROR", message, [{ field, type, message }]);
}

function toDiscount(doc: DiscountDoc): Discount {
	const { _id, key: _key, ops: _ops, deleted: _deleted, ...rest } = doc;
	return { id: _id, ...rest };
}

function toShipping(doc: ShippingDoc): ShippingMethod {
	const { _id, ...rest } = doc;
	return { id: _id, ...rest };
}

/** The rules between a code's fields that fastest-validator cannot say. */
function checkDiscount(d: Partial<DiscountDoc>): void {
	if (d.type === "percentage" && d.value !== undefined && d.value > 100) {
		throw invalidField("value", "numberMax", "A percentage is at most 100");
	}
	if (d.type === "fixed" && !d.currency) {
		throw invalidField("currency", "required", "A fixed amount needs its currency");
	}
	if (d.startsAt && d.endsAt && Date.parse(d.endsAt) <= Date.parse(d.startsAt)) {
		throw invalidField("endsAt", "date", "endsAt must be after startsAt");
	}
	if (d.usageLimit && d.perCustomerLimit && d.perCustomerLimit > d.usageLimit) {
		throw invalidField(
			"perCustomerLimit",
			"numberMax",
			"perCustomerLimit cannot exceed usageLimit"
		);
	}
}

const actions = {
	/** Admin: creates a discount code (409 DISCOUNT_CODE_TAKEN when the code exists). */
	createDiscount: {
		permissions: ["admin"],
		params: { $$strict: "remove", ...DISCOUNT_FIELDS },
		async handler(
			this: PricingThis,
			ctx: Context<Partial<DiscountDoc>, AppMeta>
		): Promise<Discount> {
			const input = { ...ctx.params };
			if (input.type === "fixed") input.currency ??= "USD";
			checkDiscount(input);
			const at = nowIso();
			const doc = {
				...input,
				_id: randomUUID().replace(/-/g, ""),
				key: input.code!,
				used: 0,
				createdAt: at,
				updatedAt: at
			} as DiscountDoc;
			try {
				await this.adapter.insert(doc);
			} catch (err) {
				if (!isDuplicateKeyError(err)) throw err;
				throw new ConflictError("DISCOUNT_CODE_TAKEN", "A discount with this code exists");
			}
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = `/api/discounts/${doc._id}`;
			return toDiscount(doc);
		}
	},

	/** Admin: every discount code, newest first, with its uses so far. */
	listDiscounts: {
		permissions: ["admin"],
		params: { $$strict: "remove", ...PAGE_PARAMS },
		async handler(
			this: PricingThis,
			ctx: Context<{ page: number; pageSize: number }>
		): Promise<Page<Discount>> {
			const { page, pageSize } = ctx.params;
			const query = { deleted: { $ne: true } };
			const [docs, total] = await Promise.all([
				this.adapter.find({ query, sort: ["-createdAt", "_id"], ...pageWindow(page, pageSize) }),
				this.adapter.count({ query })
			]);
			return pageOf((docs as DiscountDoc[]).map(toDiscount), total, page, pageSize);
		}
	},

	/** Admin: one discount code. */
	getDiscount: {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID },
		async handler(this: PricingThis, ctx: Context<{ id: string }>): Promise<Discount> {
			const doc = (await this.adapter.findById(ctx.params.id)) as DiscountDoc | null;
			if (!doc || doc.deleted) throw new NotFoundError("Discount");
			return toDiscount(doc);
		}
	},

	/** Admin: changes a code's terms (not its code or its uses); redemptions already taken stay. */
	updateDiscount: {
		permissions: ["admin"],
		params: (() => {
			const { code: _code, ...fields } = DISCOUNT_FIELDS;
			return { $$strict: "remove", id: ID, ...partial(fields) };
		})(),
		async handler(
			this: PricingThis,
			ctx: Context<Partial<DiscountDoc> & { id: string }>
		): Promise<Discount> {
			const { id, ...change } = ctx.params;
			const doc = (await this.adapter.findById(id)) as DiscountDoc | null;
			if (!doc || doc.deleted) throw new NotFoundError("Discount");
			checkDiscount({ ...doc, ...change });
			const updatedAt = nowIso();
			await this.adapter.updateMany(
				{ _id: id, deleted: { $ne: true } },
				{ $set: { ...change, updatedAt } }
			);
			return toDiscount({ ...doc, ...change, updatedAt });
		}
	},

	/** Admin: removes a code: it can no longer be applied; orders that redeemed it still give it back. */
	removeDiscount: {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID },
		async handler(this: PricingThis, ctx: Context<{ id: string }, AppMeta>): Promise<null> {
			const removed = await this.adapter.updateMany(
				{ _id: ctx.params.id, deleted: { $ne: true } },
				{ $set: { deleted: true, key: ctx.params.id, updatedAt: nowIso() } }
			);
			if (removed !== 1) throw new NotFoundError("Discount");
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/** Admin: adds a shipping method. */
	createShippingMethod: {
		permissions: ["admin"],
		params: { $$strict: "remove", ...SHIPPING_FIELDS },
		async handler(
			this: PricingThis,
			ctx: Context<Omit<ShippingDoc, "_id">, AppMeta>
		): Promise<ShippingMethod> {
			const at = nowIso();
			const doc: ShippingDoc = {
				...ctx.params,
				_id: randomUUID().replace(/-/g, ""),
				createdAt: at,
				updatedAt: at
			};
			await this.stores.shipping.insert(doc);
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = `/api/shipping-methods/${doc._id}`;
			return toShipping(doc);
		}
	},

	/** The shipping methods, or those an address in `country` can use; cheapest first. */
	listShippingMethods: {
		params: { $$strict: "remove", country: optional(COUNTRY) },
		async handler(
			this: PricingThis,
			ctx: Context<{ country?: string }>
		): Promise<ShippingMethod[]> {
			const { country } = ctx.params;
			const docs = (await this.stores.shipping.find({
				query: country ? { countries: country } : {},
				sort: ["price", "name"]
			})) as ShippingDoc[];
			return docs.map(toShipping);
		}
	},

	/** One shipping method. */
	getShippingMethod: {
		params: { $$strict: "remove", id: ID },
		async handler(this: PricingThis, ctx: Context<{ id: string }>): Promise<ShippingMethod> {
			const doc = (await this.stores.shipping.findById(ctx.params.id)) as ShippingDoc | null;
			if (!doc) throw new NotFoundError("Shipping method");
			return toShipping(doc);
		}
	},

	/** Admin: changes a shipping method; orders already placed keep what they were charged. */
	updateShippingMethod: {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID, ...partial(SHIPPING_FIELDS) },
		async handler(
			this: PricingThis,
			ctx: Context<Partial<ShippingDoc> & { id: string }>
		): Promise<ShippingMethod> {
			const { id, ...change } = ctx.params;
			const doc = (await this.stores.shipping.findById(id)) as ShippingDoc | null;
			if (!doc) throw new NotFoundError("Shipping method");
			const updatedAt = nowIso();
			await this.stores.shipping.updateMany({ _id: id }, { $set: { ...change, updatedAt } });
			return toShipping({ ...doc, ...change, updatedAt });
		}
	},

	/** Admin: removes a shipping method. */
	removeShippingMethod: {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID },
		async handler(this: PricingThis, ctx: Context<{ id: string }, AppMeta>): Promise<null> {
			const removed = await this.stores.shipping.removeMany({ _id: ctx.params.id });
			if (removed !== 1) throw new NotFoundError("Shipping method");
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/** Admin: the tax rates, by country then category. */
	getTaxRates: {
		permissions: ["admin"],
		params: { $$strict: "remove" },
		async handler(this: PricingThis): Promise<TaxRate[]> {
			return this.rates();
		}
	},

	/**
	 * Admin: replaces the whole table of tax rates, in one write. The body is a JSON array (API.md), which reaches
	 * the action as its elements under "0", "1", ...: they are checked here, as `rates`, and nothing else is read.
	 */
	putTaxRates: {
		permissions: ["admin"],
		params: { $$strict: false },
		async handler(this: PricingThis, ctx: Context<Record<string, unknown>>): Promise<TaxRate[]> {
			const indexes = Object.keys(ctx.params)
				.filter(k => /^\d{1,4}$/.test(k))
				.map(Number)
				.sort((a, b) => a - b);
			const input = { rates: indexes.map(i => ctx.params[String(i)]) };
			const checked = checkRates(input);
			if (checked !== true) {
				throw new Errors.ValidationError(
					"Parameters validation error!",
					"VALIDATION_ERROR",
					checked
				);
			}
			const sent = input.rates as TaxRate[];
			const seen = new Set<string>();
			sent.forEach((r, i) => {
				const key = `${r.country}:${r.category ?? ""}`;
				if (seen.has(key)) {
					throw invalidField(`rates[${i}]`, "unique", "One rate per country and category");
				}
				seen.add(key);
			});
			const rates = sent
				.map(r => ({
					country: r.country,
					...(r.category ? { category: r.category } : {}),
					rate: r.rate
				}))
				.sort(
					(a, b) =>
						a.country.localeCompare(b.country) || (a.category ?? "").localeCompare(b.category ?? "")
				);
			const written = await this.stores.tax.updateMany(
				{ _id: "rates" },
				{ $set: { rates, updatedAt: nowIso() } }
			);
			if (written === 0) {
				try {
					await this.stores.tax.insert({ _id: "rates", rates, updatedAt: nowIso() });
				} catch (err) {
					if (!isDuplicateKeyError(err)) throw err;
					await this.stores.tax.updateMany(
						{ _id: "rates" },
						{ $set: { rates, updatedAt: nowIso() } }
					);
				}
			}
			return rates;
		}
	},

	/**
	 * Internal (`npm run seed`): demo shipping methods, tax rates and a welcome code, each only where there is none
	 * yet (no methods, an empty tax table, no code of that name), so running it again changes nothing.
	 */
	seedDemo: {
		params: { $$strict: "remove" },
		async handler(
			this: PricingThis
		): Promise<{ shipping: number; taxRates: number; codes: number }> {
			const at = nowIso();
			const out = { shipping: 0, taxRates: 0, codes: 0 };
			if ((await this.stores.shipping.count()) === 0) {
				for (const method of DEMO_SHIPPING) {
					await this.stores.shipping.insert({
						...method,
						_id: randomUUID().replace(/-/g, ""),
						createdAt: at,
						updatedAt: at
					});
					out.shipping++;
				}
			}
			if ((await this.rates()).length === 0) {
				await this.stores.tax.insert({ _id: "rates", rates: DEMO_TAX_RATES, updatedAt: at });
				out.taxRates = DEMO_TAX_RATES.length;
			}
			if (!(await this.findCode(DEMO_CODE.code))) {
				await this.adapter.insert({
					...DEMO_CODE,
					_id: randomUUID().replace(/-/g, ""),
					key: DEMO_CODE.code,
					used: 0,
					createdAt: at,
					updatedAt: at
				});
				out.codes = 1;
			}
			return out;
		}
	},

	/**
	 * Internal (carts, orders): the totals of some lines in one currency, with a code, a shipping method and the tax
	 * of a country. `strict`: a code that cannot be used is 422 DISCOUNT_INVALID; otherwise it is priced without it
	 * and named in `discountRejected`. A shipping method the country or currency cannot use is 422.
	 */
	quote: {
		params: {
			$$strict: "remove",
			currency: CURRENCY,
			items: {
				type: "array",
				max: 100,
				items: {
					type: "object",
					strict: "remove",
					props: { productId: ID, lineTotal: LINE_TOTAL }
				}
			},
			// Any spelling a customer typed: one that is no code is `unknown`, not a validation error.
			code: optional({ type: "string", trim: true, uppercase: true, min: 1, max: 64 }),
			userId: optional(ID),
			shippingMethodId: optional(ID),
			country: optional(COUNTRY),
			strict: { type: "boolean", optional: true }
		},
		async handler(this: PricingThis, ctx: Context<QuoteParams>): Promise<Quote> {
			const p = ctx.params;
			const country = p.country ?? this.taxSettings.defaultCountry;
			const taxIncluded = this.taxSettings.taxInclusiveCurrencies.includes(p.currency);
			const [rates, codeDoc, method] = await Promise.all([
				this.rates().then(all => all.filter(r => r.country === country)),
				p.code ? this.findCode(p.code) : Promise.resolve(null),
				p.shippingMethodId
					? (this.stores.shipping.findById(p.shippingMethodId) as Promise<ShippingDoc | null>)
					: Promise.resolve(null)
			]);
			if (
				p.shippingMethodId &&
				(!method || method.currency !== p.currency || !method.countries.includes(country))
			) {
				throw invalidField(
					"shippingMethodId",
					"shippingMethod",
					"No such shipping method for this address's country and the cart's currency"
				);
			}
			const needsCategories =
				rates.some(r => r.category !== undefined) || (codeDoc?.categories?.length ?? 0) > 0;
			const categories = needsCategories
				? await this.categories(
						ctx,
						p.items.map(i => i.productId)
					)
				: {};
			const lines: TotalsLine[] = p.items.map(i => ({
				productId: i.productId,
				lineTotal: i.lineTotal,
				category: categories[i.productId]
			}));
			const reason = p.code ? await this.refusal(codeDoc, p, lines) : null;
			if (reason && p.strict) throw discountInvalid(p.code!, reason);
			const usable = codeDoc && !reason ? codeDoc : null;
			const countryRate = rates.find(r => r.category === undefined)?.rate ?? 0;
			const totals = computeTotals({
				lines,
				taxIncluded,
				discount: usable
					? {
							type: usable.type,
							value: usable.value,
							applies: l => appliesTo(usable, l)
						}
					: undefined,
				shipping: method ? { price: method.price, freeAbove: method.freeAbove } : undefined,
				rateOf: category =>
					(category !== null && rates.find(r => r.category === category)?.rate) || countryRate
			});
			return {
				...totals,
				taxIncluded,
				country,
				...(usable
					? {
							discount: {
								id: usable._id,
								code: usable.code,
								type: usable.type,
								value: usable.value,
								amount: totals.discountTotal
							}
						}
					: {}),
				...(reason ? { discountRejected: { code: p.code!, reason } } : {}),
				...(method
					? { shippingMethod: { id: method._id, name: method.name, price: totals.shippingTotal } }
					: {})
			};
		}
	},

	/**
	 * Internal (orders' checkout): takes one use of the code for the order, within its usage limit and the customer's
	 * limit, on any number of nodes; idempotent per order. 422 DISCOUNT_INVALID (exhausted, customer_limit) when over.
	 */
	redeem: {
		params: {
			$$strict: "remove",
			discountId: ID,
			userId: ID,
			orderId: { type: "string", min: 1, max: 255 }
		},
		async handler(this: PricingThis, ctx: Context<RedeemParams>): Promise<{ redeemed: true }> {
			const { discountId, userId, orderId } = ctx.params;
			const doc = (await this.adapter.findById(discountId)) as DiscountDoc | null;
			if (!doc || doc.deleted) throw discountInvalid(doc?.code ?? discountId, "unknown");
			const taken = await takeRedemption(
				{ codes: this.adapter, customers: this.stores.customers },
				doc,
				userId,
				orderId
			);
			if (!taken.ok) {
				this.broker.metrics.increment(METRIC.DISCOUNT_REDEMPTIONS, { outcome: taken.reason });
				throw discountInvalid(doc.code, taken.reason);
			}
			this.broker.metrics.increment(METRIC.DISCOUNT_REDEMPTIONS, { outcome: "redeemed" });
			return { redeemed: true };
		}
	},

	/** Internal (orders): gives an order's use of a code back, once (a no-op for one never taken or given back). */
	release: {
		params: {
			$$strict: "remove",
			discountId: ID,
			userId: ID,
			orderId: { type: "string", min: 1, max: 255 }
		},
		async handler(this: PricingThis, ctx: Context<RedeemParams>): Promise<{ released: boolean }> {
			const { discountId, userId, orderId } = ctx.params;
			const out = await releaseRedemption(
				{ codes: this.adapter, customers: this.stores.customers },
				discountId,
				userId,
				orderId
			);
			if (out.released)
				this.broker.metrics.increment(METRIC.DISCOUNT_REDEMPTIONS, { outcome: "released" });
			return out;
		}
	}
} satisfies Record<string, AppAction<PricingThis>>;

function appliesTo(doc: DiscountDoc, line: TotalsLine): boolean {
	const byProduct = doc.productIds?.length ? doc.productIds.includes(line.productId) : null;
	const byCategory = doc.categories?.length
		? line.category !== undefined && doc.categories.includes(line.category)
		: null;
	// Named products and categories both widen what the code applies to; naming neither means every line.
	if (byProduct === null && byCategory === null) return true;
	return Boolean(byProduct) || Boolean(byCategory);
}

export function createPricingService(
	appCfg: AppConfig
): ServiceSchema<ServiceSettingSchema, PricingMethods, DbServiceThis & PricingVars> {
	return {
		name: "pricing",
		mixins: [
			DbMixin(appCfg, {
				collection: "discounts",
				indexes: [{ fields: { key: 1 }, unique: true }, { fields: { createdAt: -1 } }],
				stores: {
					customers: { collection: "discount_customers" },
					shipping: { collection: "shipping_methods", indexes: [{ fields: { countries: 1 } }] },
					tax: { collection: "tax_rates" }
				}
			}),
			// A product's category changed: read it again at the next quote that needs it.
			CacheCleanerMixin({ events: ["products.cache.clean"], readCaches: ["catalog"] })
		],
		actions,

		created(this: PricingThis) {
			this.catalog = new ReadCache();
			this.taxSettings = appCfg.pricing;
		},

		methods: {
			async findCode(this: PricingThis, code: string): Promise<DiscountDoc | null> {
				return (await this.adapter.findOne({ key: code.toUpperCase() })) as DiscountDoc | null;
			},

			/**
			 * The categories of products (unknown ones absent), cached like the carts' catalog: those not held come
			 * in one `products.summaries` call. Products not answering leaves them absent (priced at the country's
			 * rate, not kept), as an unknown product is.
			 */
			async categories(
				this: PricingThis,
				ctx: Context,
				ids: string[]
			): Promise<Record<string, string>> {
				if (ids.length === 0) return {};
				return this.catalog.getMany<string>(ids, appCfg.catalog.cacheTtl * 1000, async missing => {
					const found = await ctx
						.call<Record<string, { category: string }>, { ids: string[] }>("products.summaries", {
							ids: missing
						})
						.catch(err => {
							this.logger.warn("Could not read product categories; priced without them", err);
							return {} as Record<string, { category: string }>;
						});
					// No prototype: a product id such as `constructor` must find nothing.
					const out: Record<string, string> = Object.create(null);
					for (const id of missing) {
						if (Object.hasOwn(found, id)) out[id] = found[id].category;
					}
					return out;
				});
			},

			async rates(this: PricingThis): Promise<TaxRate[]> {
				const doc = (await this.stores.tax.findById("rates")) as { rates: TaxRate[] } | null;
				return doc?.rates ?? [];
			},

			/** Why the code cannot be used on these lines by this customer now, or null when it can. */
			async refusal(
				this: PricingThis,
				doc: DiscountDoc | null,
				p: QuoteParams,
				lines: TotalsLine[]
			): Promise<DiscountReason | null> {
				if (!doc || doc.deleted) return "unknown";
				const now = Date.now();
				if (doc.startsAt && now < Date.parse(doc.startsAt)) return "not_started";
				if (doc.endsAt && now >= Date.parse(doc.endsAt)) return "expired";
				if (doc.usageLimit && doc.used >= doc.usageLimit) return "exhausted";
				if (doc.type === "fixed" && doc.currency !== p.currency) return "not_applicable";
				if (!lines.some(l => appliesTo(doc, l))) return "not_applicable";
				const subtotal = lines.reduce((s, l) => s + l.lineTotal, 0);
				if (doc.minSubtotal && subtotal < doc.minSubtotal) return "min_subtotal";
				if (doc.perCustomerLimit && p.userId) {
					const mine = (await this.stores.customers.findById(
						`${doc._id}:${p.userId}`
					)) as CustomerDoc | null;
					if ((mine?.count ?? 0) >= doc.perCustomerLimit) return "customer_limit";
				}
				return null;
			}
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createPricingService(configOf(broker));

/**
 * The checkout saga: an order from the caller's cart, with server-side prices and an all-or-nothing stock
 * reservation. Each step stands beside its compensation (as Medusa's `createStep(invoke, compensate)`): when a step
 * fails, it and the steps before it are undone in reverse order. Placing the order is the point of no return: from
 * there on, a failure is left to the sweeper, which can tell an abandoned attempt from a placed order.
 */
import type { Context } from "moleculer";
import type { AppConfig } from "../../config";
import { ConflictError, UnprocessableError } from "../../lib/errors";
import { METRIC } from "../../lib/metric-names";
import { isVisible } from "../../lib/order-state";
import type { AppMeta } from "../../types/meta";
import type { CheckoutView } from "../carts.service";
import type { Quote, QuoteParams } from "../pricing/pricing.service";
import type { SavedAddress } from "../users.service";
import { sweepMarker } from "./sweeper";
import {
	type Order,
	type OrderDoc,
	type OrderItem,
	type OrdersThis,
	type ShippingAddress,
	linesOf
} from "./types";

/** What the steps of one checkout share. */
interface CheckoutRun {
	svc: OrdersThis;
	ctx: Context<unknown, AppMeta>;
	orderId: string;
	cart: CheckoutView;
	shippingAddress: ShippingAddress;
	ttlMs: number;
	/** A failed or abandoned attempt stored under the same id, which this one starts over. */
	previous: OrderDoc | null;
	/** The attempt as written by `recordAttempt`. */
	doc?: OrderDoc;
	/** Inventory's answer: the lines as held (a sale line with its sale and price) and when the hold ends. */
	reserved?: Reserved;
	/** Pricing's totals of the cart, with the code and the shipping method. */
	quote: Quote | null;
	shippingMethodId?: string;
	/** The code's redemption went back to pricing in a compensation. */
	discountReleased?: boolean;
}

/** What checkout takes: an address (or a saved one's id) and optionally a shipping method. */
export interface CheckoutParams {
	shippingAddress?: ShippingAddress;
	shippingAddressId?: string;
	shippingMethodId?: string;
}

interface Reserved {
	lines: Array<{ productId: string; quantity: number; saleId?: string; unitPrice?: number }>;
	expiresAt?: string;
}

interface CheckoutStep {
	invoke(run: CheckoutRun): Promise<void>;
	/** Undoes what `invoke` did or may have done (idempotent); `err` is what made the saga fail. */
	compensate?(run: CheckoutRun, err: unknown): Promise<void>;
}

const typeOf = (err: unknown) => (err as { type?: string }).type;

/** Failures after which a checkout certainly holds no stock (and, but for OUT_OF_STOCK, no redemption). */
const CERTAINLY_NOTHING_HELD = ["OUT_OF_STOCK", "CART_CHANGED", "DISCOUNT_INVALID"];

/**
 * The order's totals and what they were priced with, from pricing's quote (none: the lines' subtotal with zeros).
 * `discount: null` clears an earlier attempt's code from an order started over under the same id.
 */
function pricedFields(
	quote: Quote | null,
	subtotal: number
): Pick<OrderDoc, "subtotal" | "total"> & Partial<OrderDoc> {
	if (!quote) {
		return {
			subtotal,
			discountTotal: 0,
			shippingTotal: 0,
			taxTotal: 0,
			total: subtotal,
			discount: null as never,
			discountReleased: false
		};
	}
	return {
		subtotal: quote.subtotal,
		discountTotal: quote.discountTotal,
		shippingTotal: quote.shippingTotal,
		taxTotal: quote.taxTotal,
		total: quote.total,
		taxIncluded: quote.taxIncluded,
		discount: quote.discount
			? { id: quote.discount.id, code: quote.discount.code, amount: quote.discount.amount }
			: (null as never),
		discountReleased: false,
		...(quote.shippingMethod ? { shippingMethod: quote.shippingMethod } : {})
	};
}

/** Pricing's totals of these lines for the order (strict: a code that cannot be used is 422), or null without pricing. */
async function quoteOf(
	svc: OrdersThis,
	ctx: Context<unknown, AppMeta>,
	p: {
		items: OrderItem[];
		currency: string;
		code?: string;
		shippingMethodId?: string;
		country: string;
	},
	strict: boolean
): Promise<Quote | null> {
	// Old clients of a cluster without pricing: no code, no method, no tax (as before pricing existed).
	if (!p.code && !p.shippingMethodId && !svc.broker.registry.hasService("pricing", null as never))
		return null;
	return ctx.call<Quote, QuoteParams>("pricing.quote", {
		currency: p.currency,
		items: p.items.map(i => ({ productId: i.productId, lineTotal: i.lineTotal })),
		...(p.code ? { code: p.code, userId: ctx.meta.user!.id } : {}),
		...(p.shippingMethodId ? { shippingMethodId: p.shippingMethodId } : {}),
		country: p.country,
		strict
	});
}

/**
 * Writes the attempt as `reserving` before any stock is held, so stock is never held for an order nobody knows
 * about ↔ rejects it once the reservation certainly took nothing. When the outcome is unknown (inventory down or
 * slow), it stays `reserving`: a reservation still in flight could land after a release, so the sweeper rejects it
 * and gives its stock back once no call can still be running.
 */
const recordAttempt: CheckoutStep = {
	async invoke(run) {
		const { svc, ctx, cart } = run;
		const now = Date.now();
		const createdAt = new Date(now).toISOString();
		const attempt = {
			userId: ctx.meta.user!.id,
			items: cart.items,
			...pricedFields(run.quote, cart.subtotal),
			currency: cart.currency,
			shippingAddress: run.shippingAddress,
			expiresAt: new Date(now + run.ttlMs).toISOString(),
			createdAt,
			history: [{ status: "reserving", at: createdAt }],
			stockReleased: false,
			stockCommitted: false
		};
		if (!run.previous) {
			const draft = {
				_id: run.orderId,
				status: "reserving" as const,
				updatedAt: createdAt,
				...attempt
			};
			const doc: OrderDoc = { ...draft, ...sweepMarker(draft, now, svc.timings).$set };
			await svc.adapter.insert(doc);
			run.doc = doc;
			return;
		}
		// A retry under the same key (same order id) starts the failed attempt over; the attempt's `createdAt` keeps
		// the sweeper's rejection of the old one from touching the new one. The sweeper may reject the old one
		// meanwhile: then the retry starts over from there.
		let previous = run.previous;
		for (let tries = 0; ; tries++) {
			try {
				run.doc = await svc.transition(ctx, previous, "reserving", attempt, {
					createdAt: previous.createdAt
				});
				return;
			} catch (err) {
				if (typeOf(err) !== "INVALID_ORDER_STATE" || tries > 0) throw err;
				previous = (await svc.adapter.findById(run.orderId)) as OrderDoc;
			}
		}
	},
	async compensate(run, err) {
		// Out of stock, the cart taken by another checkout, or the code used up: certainly nothing is held.
		if (!run.doc || !CERTAINLY_NOTHING_HELD.includes(typeOf(err) ?? "")) return;
		try {
			await run.svc.transition(run.ctx, run.doc, "rejected", {
				stockReleased: true,
				...(run.discountReleased || typeOf(err) !== "OUT_OF_STOCK"
					? { discountReleased: true }
					: {})
			});
		} catch (rejectErr) {
			if (typeOf(rejectErr) !== "INVALID_ORDER_STATE") throw rejectErr;
		}
	}
};

/**
 * Takes the cart's lines for this order, once, before any stock is held: of two checkouts of one cart content (on
 * any nodes) one wins and the other is 409 CART_CHANGED ↔ gives the lines back to the cart.
 */
const claimCart: CheckoutStep = {
	async invoke({ ctx, cart, orderId }) {
		await ctx.call("carts.claim", { version: cart.version, orderId });
	},
	async compensate(run, err) {
		if (typeOf(err) === "CART_CHANGED") return; // not taken
		await giveBackCart(run);
	}
};

/**
 * Takes one use of the order's code, within its usage and per-customer limits, before any stock is held (422
 * DISCOUNT_INVALID when used up) ↔ gives it back; a give-back the call misses is finished by the sweeper.
 */
const redeemDiscount: CheckoutStep = {
	async invoke({ ctx, doc }) {
		if (!doc!.discount) return;
		await ctx.call(
			"pricing.redeem",
			{ discountId: doc!.discount.id, userId: doc!.userId, orderId: doc!._id },
			{ retries: 0 }
		);
	},
	async compensate(run) {
		const { ctx, doc, svc } = run;
		if (!doc?.discount) return;
		await ctx
			.call("pricing.release", {
				discountId: doc.discount.id,
				userId: doc.userId,
				orderId: doc._id
			})
			.then(() => {
				run.discountReleased = true;
			})
			.catch(err => svc.logger.warn("Could not give a redemption back; the sweeper will", err));
	}
};

/** Gives a failed checkout's lines back to the cart; one the call misses is given back by the sweeper. */
async function giveBackCart({ svc, ctx, orderId }: CheckoutRun): Promise<void> {
	await ctx
		.call("carts.giveBack", { userId: ctx.meta.user!.id, orderId })
		.catch(err => svc.logger.warn("Could not give the cart back after a failed checkout", err));
}

/**
 * Reserves every line's stock, all or nothing, without retries (a retry could land after the release below) ↔ gives
 * back whatever may have been taken. Out of stock, nothing is held; down or too slow, the outcome is unknown, and a
 * failed release is finished by the sweeper.
 */
const reserveStock: CheckoutStep = {
	async invoke(run) {
		const { ctx, doc, svc } = run;
		try {
			run.reserved = await ctx.call<Reserved, object>(
				"inventory.reserve",
				{ orderId: doc!._id, lines: linesOf(doc!), userId: doc!.userId, ttlMs: run.ttlMs },
				{ retries: 0 }
			);
		} catch (err) {
			if (typeOf(err) === "OUT_OF_STOCK") svc.soldOut.learn(err);
			throw err;
		}
	},
	async compensate({ ctx, doc }) {
		await ctx
			.call("inventory.release", { orderId: doc!._id, lines: linesOf(doc!) })
			.catch(() => undefined);
	}
};

/**
 * What the reservation decided about the order: a sale line is charged the price it was held at (the cart showed
 * the sale price already, unless the sale started or ended in between), and a sale's shorter hold time is the order's.
 */
function heldTerms(doc: OrderDoc, reserved?: Reserved): Partial<OrderDoc> {
	if (!reserved) return {};
	// Inventory names held lines by their stock: the variant.
	const byVariant = new Map(reserved.lines.map(l => [l.productId, l]));
	const items = doc.items.map(item => {
		const held = byVariant.get(item.variantId ?? item.productId);
		if (!held?.saleId || held.unitPrice === undefined) {
			if (!item.saleId) return item;
			// Priced by a sale that ended before the stock was held: the catalog price the cart also read.
			const {
				saleId: _ended,
				listPrice,
				...regular
			} = item as typeof item & { listPrice?: number };
			const unitPrice = listPrice ?? item.unitPrice;
			return { ...regular, unitPrice, lineTotal: unitPrice * item.quantity };
		}
		const { listPrice: _list, ...line } = item as typeof item & { listPrice?: number };
		return {
			...line,
			saleId: held.saleId,
			unitPrice: held.unitPrice,
			lineTotal: held.unitPrice * item.quantity
		};
	});
	const subtotal = items.reduce((sum, i) => sum + i.lineTotal, 0);
	const expiresAt =
		reserved.expiresAt && Date.parse(reserved.expiresAt) < Date.parse(doc.expiresAt)
			? reserved.expiresAt
			: doc.expiresAt;
	return { items, subtotal, total: subtotal, expiresAt };
}

/** The address the order ships to: the one sent, or the caller's saved address named (422 for neither or both). */
async function addressOf(ctx: Context<CheckoutParams, AppMeta>): Promise<ShippingAddress> {
	const { shippingAddress, shippingAddressId } = ctx.params;
	const refuse = (message: string) =>
		new UnprocessableError("VALIDATION_ERROR", message, [
			{ field: "shippingAddressId", type: "shippingAddress", message }
		]);
	if (shippingAddress && shippingAddressId)
		throw refuse("Send shippingAddress or shippingAddressId, not both");
	if (shippingAddress) return shippingAddress;
	if (!shippingAddressId) {
		throw new UnprocessableError("VALIDATION_ERROR", "A shipping address is required", [
			{
				field: "shippingAddress",
				type: "required",
				message: "Send shippingAddress or shippingAddressId"
			}
		]);
	}
	const saved = await ctx.call<SavedAddress | null, { id: string }>("users.address", {
		id: shippingAddressId
	});
	if (!saved) throw refuse("No saved address of yours has this id");
	const { id: _id, label: _label, createdAt: _c, updatedAt: _u, ...address } = saved;
	return address;
}

/** Runs the steps in order; when one fails, compensates it and those before it, last first, and rethrows. */
async function runSteps(steps: CheckoutStep[], run: CheckoutRun): Promise<void> {
	const done: CheckoutStep[] = [];
	for (const step of steps) {
		try {
			await step.invoke(run);
		} catch (err) {
			// The failed step is undone too: a call that failed (a timeout) may still have done its work.
			for (const undo of [step, ...done.reverse()]) await undo.compensate?.(run, err);
			throw err;
		}
		done.push(step);
	}
}

/**
 * The point of no return: `reserving` → `pending_payment`, with `orders.created` in the same write. Null when the
 * sweeper took the attempt meanwhile (it rejected it as abandoned and gives its stock back).
 */
async function placeOrder(run: CheckoutRun): Promise<OrderDoc | null> {
	const { svc, ctx, doc, reserved } = run;
	const terms = heldTerms(doc!, reserved);
	if (terms.items && terms.items.some((item, i) => item.lineTotal !== doc!.items[i].lineTotal)) {
		// A sale started or ended between the cart and the hold: the totals follow the prices held. The code was
		// redeemed already, so it is priced without refusing it.
		const quote = await quoteOf(
			svc,
			ctx,
			{
				items: terms.items,
				currency: doc!.currency,
				code: doc!.discount?.code,
				shippingMethodId: run.shippingMethodId,
				country: doc!.shippingAddress.country
			},
			false
		);
		const {
			discount: _keep,
			discountReleased: _flag,
			...totals
		} = pricedFields(quote, terms.subtotal!);
		Object.assign(terms, totals);
	} else {
		// The prices held are the ones quoted: the attempt's totals stand.
		delete terms.subtotal;
		delete terms.total;
	}
	try {
		return await svc.transition(ctx, doc!, "pending_payment", terms);
	} catch (err) {
		if (typeOf(err) !== "INVALID_ORDER_STATE") throw err;
		return null;
	}
}

/**
 * Checkout under the id of its idempotent operation: builds the order from the caller's cart, reserves its stock,
 * places it (the cart was emptied by the claim). A retry of an operation that placed its order answers that order.
 */
export async function checkout(
	svc: OrdersThis,
	ctx: Context<CheckoutParams, AppMeta>,
	orderId: string,
	cfg: AppConfig
): Promise<Order> {
	const previous = (await svc.adapter.findById(orderId)) as OrderDoc | null;
	if (previous && isVisible(previous.status)) return svc.toOrder(previous);
	const cart = (await ctx.call("carts.checkoutView", {})) as CheckoutView;
	// An empty cart is the contract's 422 EMPTY_CART, also when another checkout just emptied it; a checkout that
	// read the lines but loses the claim to another is 409 CART_CHANGED (claimCart).
	if (cart.items.length === 0) {
		throw new UnprocessableError("EMPTY_CART", "The cart is empty", [
			{ field: "cart", type: "empty", message: "Add items before checking out" }
		]);
	}
	// Known sold out (inventory's broadcasts): 409 at once, without asking inventory or writing an attempt.
	const soldOut = svc.soldOut.shortLines(cart.items);
	if (soldOut.length > 0) {
		svc.broker.metrics.increment(METRIC.CHECKOUT_REJECTIONS, { reason: "sold_out" });
		throw new ConflictError("OUT_OF_STOCK", "Not enough stock for some lines", { lines: soldOut });
	}
	if (cart.subtotal === 0) {
		// Products stored with price 0 (before prices had to be at least 1): an order nobody could pay.
		throw new UnprocessableError("ZERO_TOTAL", "An order of these items would cost nothing", [
			...cart.items
				.filter(i => i.unitPrice === 0)
				.map(i => ({
					field: "cart",
					type: "zeroPrice",
					message: "This product has no price and cannot be bought",
					productId: i.productId
				}))
		]);
	}
	const shippingAddress = await addressOf(ctx);
	const { shippingMethodId } = ctx.params;
	const quote = await quoteOf(
		svc,
		ctx,
		{
			items: cart.items,
			currency: cart.currency,
			code: cart.discountCode,
			shippingMethodId,
			country: shippingAddress.country
		},
		true
	);
	if (quote && quote.total === 0) {
		// A code taking everything off: an order of nothing to pay, which no payment could settle.
		throw new UnprocessableError("ZERO_TOTAL", "An order of these items would cost nothing", [
			{ field: "cart", type: "zeroTotal", message: "The discount takes the whole total off" }
		]);
	}
	const run: CheckoutRun = {
		svc,
		ctx,
		orderId,
		cart,
		shippingAddress,
		ttlMs: cfg.orders.ttl * 1000,
		previous,
		quote,
		shippingMethodId
	};
	await runSteps([recordAttempt, claimCart, redeemDiscount, reserveStock], run);
	const placed = await placeOrder(run);
	if (!placed) await giveBackCart(run);
	const order = placed ?? ((await svc.adapter.findById(orderId)) as OrderDoc);
	if (!isVisible(order.status)) {
		throw new UnprocessableError("CHECKOUT_ABANDONED", "This checkout was abandoned, please retry");
	}
	return svc.toOrder(order);
}

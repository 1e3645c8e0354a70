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
import { sweepMarker } from "./sweeper";
import { type Order, type OrderDoc, type OrdersThis, type ShippingAddress, linesOf } from "./types";

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
			subtotal: cart.subtotal,
			total: cart.subtotal,
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
		// Out of stock or the cart taken by another checkout: certainly nothing is held.
		if (!run.doc || !["OUT_OF_STOCK", "CART_CHANGED"].includes(typeOf(err) ?? "")) return;
		try {
			await run.svc.transition(run.ctx, run.doc, "rejected", { stockReleased: true });
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
	const byProduct = new Map(reserved.lines.map(l => [l.productId, l]));
	const items = doc.items.map(item => {
		const held = byProduct.get(item.productId);
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
async function placeOrder({ svc, ctx, doc, reserved }: CheckoutRun): Promise<OrderDoc | null> {
	try {
		return await svc.transition(ctx, doc!, "pending_payment", heldTerms(doc!, reserved));
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
	ctx: Context<{ shippingAddress: ShippingAddress }, AppMeta>,
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
	const run: CheckoutRun = {
		svc,
		ctx,
		orderId,
		cart,
		shippingAddress: ctx.params.shippingAddress,
		ttlMs: cfg.orders.ttl * 1000,
		previous
	};
	await runSteps([recordAttempt, claimCart, reserveStock], run);
	const placed = await placeOrder(run);
	if (!placed) await giveBackCart(run);
	const order = placed ?? ((await svc.adapter.findById(orderId)) as OrderDoc);
	if (!isVisible(order.status)) {
		throw new UnprocessableError("CHECKOUT_ABANDONED", "This checkout was abandoned, please retry");
	}
	return svc.toOrder(order);
}

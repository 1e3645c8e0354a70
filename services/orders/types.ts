/**
 * What the orders service, its checkout saga and its sweeper share: the stored order, its client view, the service's
 * `this`, and two small helpers, so that neither the saga nor the sweeper imports the service file.
 */
import type { Context, Service } from "moleculer";
import type { AnyStatus, OrderStatus } from "../../lib/order-state";
import type { DbServiceThis } from "../../mixins/db.mixin";
import type { IdempotencyThis, idempotent } from "../../mixins/idempotency.mixin";
import type { AppMeta } from "../../types/meta";
import type { Payment } from "../payments.service";
import type { ShippingAddress } from "./address";
import type { SoldOut } from "./sold-out";

/** A line as sold: a snapshot of the variant (names, option values, price), so catalog changes leave it alone. */
export interface OrderItem {
	productId: string;
	/** Absent on orders placed before variants: the product's default variant, whose id is the product's. */
	variantId?: string;
	sku: string;
	name: string;
	options?: Record<string, string>;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
	/** The sale this line was bought in, at its sale price. */
	saleId?: string;
}

export type { ShippingAddress } from "./address";

export interface OrderPayment {
	id: string;
	status: string;
	amount: number;
	/**
	 * The pay operation (idempotency key) whose charge this is: a retry of that request is answered from here, so
	 * it learns it paid even while payments is down. Stored orders from before it was recorded lack it. Not public.
	 */
	operationId?: string;
}

/** The totals of an order (API.md "Totals"); orders stored before them read as zeros. */
export interface OrderTotals {
	subtotal: number;
	discountTotal: number;
	shippingTotal: number;
	taxTotal: number;
	total: number;
}

/** What the order was priced with: the code it redeemed and the shipping method, as they were then. */
export interface OrderPricing {
	discount?: { id: string; code: string; amount: number };
	shippingMethod?: { id: string; name: string; price: number };
	/** Whether `total` contains `taxTotal` (prices include tax in this currency) or adds it. */
	taxIncluded?: boolean;
}

export interface OrderDoc extends Partial<Omit<OrderTotals, "subtotal" | "total">>, OrderPricing {
	_id: string;
	userId: string;
	status: AnyStatus;
	items: OrderItem[];
	subtotal: number;
	total: number;
	currency: string;
	shippingAddress: ShippingAddress;
	/** Set once the redemption of `discount` went back to pricing (cancelled, expired, rejected, refunded). */
	discountReleased?: boolean;
	expiresAt: string;
	createdAt: string;
	updatedAt: string;
	history: Array<{ status: string; at: string }>;
	/** Set once the order's reserved stock went back (expired, cancelled, rejected): the sweeper retries until then. */
	stockReleased: boolean;
	/** Set once the order's reserved stock was sold (paid). */
	stockCommitted: boolean;
	/** Set once a refunded order's stock went back on the shelf. */
	stockReturned?: boolean;
	/** Set when a paid order's cancellation began: it can no longer ship, and the sweeper finishes the refund. */
	refundRequested?: boolean;
	/** The keyed cancel (its operation id) that cancelled or began refunding the order: its retry is answered. */
	cancelledBy?: string;
	payment?: OrderPayment;
	/**
	 * When the sweeper next has work for this order (see `workDue`); absent once nothing is left. Written in the same
	 * write as each change that makes work, and taken away by the write that finishes it, so the sweeper reads the
	 * orders that need it through a sparse index instead of scanning every order stored.
	 */
	sweepAt?: string;
}

/** An order as clients see it (API.md "Order", with the round 2 totals). */
export interface Order extends OrderTotals {
	id: string;
	userId: string;
	status: OrderStatus;
	items: OrderItem[];
	currency: string;
	shippingAddress: ShippingAddress;
	discount?: { code: string; amount: number };
	shippingMethod?: { id: string; name: string; price: number };
	expiresAt: string;
	createdAt: string;
	updatedAt: string;
	payment?: OrderPayment;
}

/** How long the sweeper waits on work a request left half done. */
export interface SweepTimings {
	/** A checkout still `reserving` after this long was abandoned (its node died): its stock goes back. */
	abandonedAfterMs: number;
	/** A paid order's refund half done after this long is finished by the sweeper. */
	refundStaleMs: number;
}

export interface OrdersMethods {
	toOrder(doc: OrderDoc): Order;
	findVisible(ctx: Context<unknown, AppMeta>, id: string): Promise<OrderDoc>;
	transition(
		ctx: Context,
		doc: OrderDoc,
		to: AnyStatus,
		set?: Partial<OrderDoc>,
		guard?: Record<string, unknown>
	): Promise<OrderDoc>;
	markPaid(ctx: Context, orderId: string, payment: Payment): Promise<OrderDoc>;
	paidBy(ctx: Context, doc: OrderDoc, operationId: string): Promise<boolean>;
	refundPaid(ctx: Context, doc: OrderDoc, reason: string, by?: string): Promise<OrderDoc>;
	settleStock(ctx: Context, doc: OrderDoc): Promise<void>;
	settleMovement(ctx: Context, doc: OrderDoc): Promise<void>;
	recordSettled(doc: OrderDoc, fields: Partial<OrderDoc>): Promise<void>;
	sweep(): Promise<void>;
	idempotent: typeof idempotent;
	relayOutbox(id?: string): Promise<number>;
}

export interface OrdersVars {
	timings: SweepTimings;
	sweepTimer?: NodeJS.Timeout;
	sweeping: boolean;
	/** Orders written before sweep markers existed were given theirs (once per process, at the first sweep). */
	legacyMarked: boolean;
	/** Products inventory announced sold out, so a checkout of them is 409 at once (sold-out.ts). */
	soldOut: SoldOut;
}

export type OrdersThis = Service & DbServiceThis & IdempotencyThis & OrdersVars & OrdersMethods;

/** Stock lines of an order, as inventory takes them. */
export const linesOf = (doc: Pick<OrderDoc, "items">) =>
	doc.items.map(i => ({
		productId: i.productId,
		variantId: i.variantId ?? i.productId,
		quantity: i.quantity
	}));

/** An order's line as answered and evented: one stored before variants names its default variant. */
export const withVariant = (
	i: OrderItem
): OrderItem & { variantId: string; options: Record<string, string> } => ({
	...i,
	variantId: i.variantId ?? i.productId,
	options: i.options ?? {}
});

export const iso = (ms: number) => new Date(ms).toISOString();

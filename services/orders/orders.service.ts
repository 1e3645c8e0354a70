/**
 * Orders: checkout from the cart with server-side prices and an all-or-nothing stock reservation, idempotent by
 * `Idempotency-Key`; payment through the payments service (same key mechanism); the state machine of
 * lib/order-state.ts through one `transition`, which writes the order's event in the same write (the outbox);
 * cancellation with refunds; fulfilment; and a sweeper, safe on any number of orders nodes, that expires unpaid
 * orders and finishes every stock movement a crash left half done (release, sell, return).
 * The only writer of the `orders` and `idempotency_keys` collections.
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../../config";
import { ConflictError, NotFoundError, UnprocessableError } from "../../lib/errors";
import {
	EVENT_OF,
	type InternalStatus,
	type OrderStatus,
	assertTransition,
	ORDER_STATES
} from "../../lib/order-state";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../../lib/pagination";
import { bindToScope } from "../../lib/request-context";
import { METRIC } from "../../lib/metric-names";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import {
	IDEMPOTENCY_STORE,
	IdempotencyMixin,
	type IdempotencyThis,
	type idempotent
} from "../../mixins/idempotency.mixin";
import {
	OUTBOX_INDEX,
	OutboxMixin,
	type OutboxEntry,
	outboxEvent,
	withEvents
} from "../../mixins/outbox.mixin";
import type { Payment } from "../payments.service";
import type { AppMeta } from "../../types/meta";
import type { AppAction, WithChannels } from "../../types/moleculer-ext";

export interface OrderItem {
	productId: string;
	sku: string;
	name: string;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
}

interface ShippingAddress {
	name: string;
	line1: string;
	line2?: string;
	city: string;
	postalCode: string;
	country: string;
}

interface OrderDoc {
	_id: string;
	userId: string;
	status: OrderStatus | InternalStatus;
	items: OrderItem[];
	subtotal: number;
	total: number;
	currency: string;
	shippingAddress: ShippingAddress;
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
	payment?: OrderPayment;
	/**
	 * When the sweeper next has work for this order (see `workDue`); absent once nothing is left. Written in the same
	 * write as each change that makes work, and taken away by the write that finishes it, so the sweeper reads the
	 * orders that need it through a sparse index instead of scanning every order stored.
	 */
	sweepAt?: string;
}

interface OrderPayment {
	id: string;
	status: string;
	amount: number;
}

export interface Order {
	id: string;
	userId: string;
	status: OrderStatus;
	items: OrderItem[];
	subtotal: number;
	total: number;
	currency: string;
	shippingAddress: ShippingAddress;
	expiresAt: string;
	createdAt: string;
	updatedAt: string;
	payment?: OrderPayment;
}

interface CheckoutView {
	items: OrderItem[];
	subtotal: number;
	currency: string;
	version: number;
}

interface CreateParams {
	shippingAddress: ShippingAddress;
}
interface IdParams {
	id: string;
}
interface PayParams {
	id: string;
	paymentToken: string;
}
interface ListParams {
	page: number;
	pageSize: number;
	userId?: string;
}

interface OrdersMethods {
	toOrder(doc: OrderDoc): Order;
	findVisible(ctx: Context<unknown, AppMeta>, id: string): Promise<OrderDoc>;
	transition(
		ctx: Context,
		doc: OrderDoc,
		to: OrderStatus,
		set?: Partial<OrderDoc>,
		guard?: Record<string, unknown>
	): Promise<OrderDoc>;
	markPaid(ctx: Context, orderId: string, payment: Payment): Promise<OrderDoc>;
	paidBy(ctx: Context, doc: OrderDoc, operationId: string): Promise<boolean>;
	refundPaid(ctx: Context, doc: OrderDoc, reason: string): Promise<OrderDoc>;
	settleStock(ctx: Context, doc: OrderDoc): Promise<void>;
	releaseStock(ctx: Context, doc: OrderDoc): Promise<void>;
	recordSettled(doc: OrderDoc, fields: Partial<OrderDoc>): Promise<void>;
	sweep(): Promise<void>;
	sweepOrder(ctx: Context, doc: OrderDoc, now: number): Promise<void>;
	sweepHolds(ctx: Context): Promise<void>;
	markLegacyOrders(): Promise<number>;
	idempotent: typeof idempotent;
	relayOutbox(id?: string): Promise<number>;
}

interface OrdersVars {
	timings: SweepTimings;
	sweepTimer?: NodeJS.Timeout;
	sweeping: boolean;
	/** Orders written before sweep markers existed were given theirs (once per process, at the first sweep). */
	legacyMarked: boolean;
	/** Where the check of inventory's holds carries on at the next sweep (it reads them a page at a time). */
	holdsCursor?: string;
}

type OrdersThis = Service & DbServiceThis & IdempotencyThis & OrdersVars & OrdersMethods;

const TEXT = (max: number) => ({ type: "string", trim: true, min: 1, max }) as const;
const ADDRESS = {
	type: "object",
	strict: "remove",
	props: {
		name: TEXT(100),
		line1: TEXT(200),
		line2: { type: "string", trim: true, max: 200, optional: true },
		city: TEXT(100),
		postalCode: { type: "string", trim: true, min: 1, max: 20, pattern: /^[A-Za-z0-9 -]+$/ },
		country: { type: "string", trim: true, uppercase: true, pattern: /^[A-Za-z]{2}$/ }
	}
} as const;
const ID = { type: "string", min: 1, max: 64 } as const;
const VISIBLE: OrderStatus[] = [...ORDER_STATES];

/** How long the sweeper waits on work a request left half done. */
interface SweepTimings {
	/** A checkout still `reserving` after this long was abandoned (its node died): its stock goes back. */
	abandonedAfterMs: number;
	/** A paid order's refund half done after this long is finished by the sweeper. */
	refundStaleMs: number;
}

function sweepTimings(cfg: AppConfig): SweepTimings {
	return {
		abandonedAfterMs: cfg.requestTimeout * 3,
		refundStaleMs: cfg.payments.providerTimeout * 2
	};
}

/** The event of an order entering `status` (API.md "Events"): ids, amounts and, on creation, the lines. */
function orderEvent(doc: OrderDoc, status: OrderStatus, from?: string): OutboxEntry {
	return outboxEvent(EVENT_OF[status], {
		orderId: doc._id,
		userId: doc.userId,
		status,
		...(from ? { from } : {}),
		total: doc.total,
		currency: doc.currency,
		...(status === "pending_payment"
			? { items: doc.items.map(i => ({ productId: i.productId, quantity: i.quantity })) }
			: {})
	});
}

/** `doc` as a conditional write that moved it to `status` at `at` left it (no read back). */
function placedAs(doc: OrderDoc, status: OrderStatus, at: string): OrderDoc {
	return { ...doc, status, updatedAt: at, history: [...doc.history, { status, at }] };
}

/** Stock lines of an order, as inventory takes them. */
const linesOf = (doc: OrderDoc) =>
	doc.items.map(i => ({ productId: i.productId, quantity: i.quantity }));

/** Due orders the sweeper reads per query, and per sweep at most (the next sweep carries on). */
const SWEEP_BATCH = 200;
const SWEEP_MAX = 5000;
/** Inventory's holds checked against this store per sweep, and per query of it. */
const HOLDS_PAGE = 500;
const HOLDS_QUERY = 100;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * When the sweeper next has something to do for this order, in ms (`now` when it is due already), or null when
 * nothing is left: an abandoned checkout to reject, an unpaid order to expire, an interrupted refund to finish, or a
 * stock movement (release, sell, put back) the request that changed the order did not get to record.
 */
function workDue(doc: OrderDoc, now: number, t: SweepTimings): number | null {
	switch (doc.status) {
		case "reserving":
			return Date.parse(doc.createdAt) + t.abandonedAfterMs;
		case "pending_payment":
			return Date.parse(doc.expiresAt);
		case "paid":
			if (doc.refundRequested) return Date.parse(doc.updatedAt) + t.refundStaleMs;
			return doc.stockCommitted ? null : now;
		case "shipped":
		case "delivered":
			return doc.stockCommitted ? null : now;
		case "refunded":
			return doc.stockReturned ? null : now;
		default: // cancelled, expired, rejected
			return doc.stockReleased ? null : now;
	}
}

/** The part of an update that puts `doc`'s sweep marker where `workDue` says (or takes it away). */
function sweepMarker(
	doc: OrderDoc,
	now: number,
	t: SweepTimings
): { $set?: { sweepAt: string }; $unset?: { sweepAt: true } } {
	const due = workDue(doc, now, t);
	return due === null
		? { $unset: { sweepAt: true } }
		: { $set: { sweepAt: iso(Math.max(due, now)) } };
}

/**
 * An admin action that moves an order to `to` (409 INVALID_ORDER_STATE from any state the table forbids, and for
 * shipping an order whose refund has begun).
 */
function adminTransition(to: OrderStatus): AppAction<OrdersThis> {
	return {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID },
		async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
			const doc = await this.findVisible(ctx, ctx.params.id);
			bindToScope({ orderId: doc._id });
			const guard = to === "shipped" ? { refundRequested: { $ne: true } } : undefined;
			return this.toOrder(await this.transition(ctx, doc, to, {}, guard));
		}
	};
}

function ordersActions(cfg: AppConfig) {
	const timings = sweepTimings(cfg);
	return {
		/** Checkout: builds an order from the caller's cart, reserves its stock, empties the cart. */
		create: {
			permissions: "authenticated",
			params: { $$strict: "remove", shippingAddress: ADDRESS },
			async handler(this: OrdersThis, ctx: Context<CreateParams, AppMeta>): Promise<Order> {
				const started = process.hrtime.bigint();
				const order = await this.idempotent(
					ctx,
					{ scope: "orders.create", body: ctx.params, status: 201 },
					async operationId => {
						bindToScope({ orderId: operationId });
						const existing = (await this.adapter.findById(operationId)) as OrderDoc | null;
						if (existing && existing.status !== "reserving" && existing.status !== "rejected") {
							return this.toOrder(existing);
						}
						const cart = (await ctx.call("carts.checkoutView", {})) as CheckoutView;
						if (cart.items.length === 0) {
							throw new UnprocessableError("EMPTY_CART", "The cart is empty", [
								{ field: "cart", type: "empty", message: "Add items before checking out" }
							]);
						}
						const now = new Date();
						const draft = {
							userId: ctx.meta.user!.id,
							status: "reserving",
							items: cart.items,
							subtotal: cart.subtotal,
							total: cart.subtotal,
							currency: cart.currency,
							shippingAddress: ctx.params.shippingAddress,
							expiresAt: new Date(now.getTime() + cfg.orders.ttl * 1000).toISOString(),
							createdAt: now.toISOString(),
							updatedAt: now.toISOString(),
							history: [{ status: "reserving", at: now.toISOString() }],
							stockReleased: false,
							stockCommitted: false,
							sweepAt: iso(now.getTime() + timings.abandonedAfterMs)
						};
						// Written before reserving, so stock is never held for an order nobody knows about. A retry of a
						// failed attempt (same key, same order id) starts that attempt over.
						let doc: OrderDoc;
						if (existing) {
							await this.adapter.updateById(operationId, { $set: draft });
							doc = (await this.adapter.findById(operationId)) as OrderDoc;
						} else {
							doc = { _id: operationId, ...draft } as OrderDoc;
							await this.adapter.insert(doc);
						}
						const lines = doc.items.map(i => ({ productId: i.productId, quantity: i.quantity }));
						try {
							await ctx.call("inventory.reserve", { orderId: doc._id, lines }, { retries: 0 });
						} catch (err) {
							// Out of stock: nothing is held. Down or too slow: the outcome is unknown, so give back
							// whatever was taken (idempotent); the sweeper finishes the job if this fails too.
							await ctx
								.call("inventory.release", { orderId: doc._id, lines })
								.catch(() => undefined);
							if ((err as { type?: string }).type === "OUT_OF_STOCK") {
								await this.adapter.updateMany(
									{ _id: doc._id, status: "reserving" },
									{
										$set: {
											status: "rejected",
											stockReleased: true,
											updatedAt: new Date().toISOString()
										},
										$unset: { sweepAt: true }
									}
								);
							}
							throw err;
						}
						const at = new Date().toISOString();
						const placed = await this.adapter.updateMany(
							{ _id: doc._id, status: "reserving" },
							withEvents(
								{
									$set: { status: "pending_payment", updatedAt: at, sweepAt: doc.expiresAt },
									$push: { history: { status: "pending_payment", at } }
								},
								[orderEvent(doc, "pending_payment")]
							)
						);
						// Placed: the order as written. Otherwise the sweeper took it meanwhile (see below).
						const fresh =
							placed === 1
								? { ...placedAs(doc, "pending_payment", at), sweepAt: doc.expiresAt }
								: ((await this.adapter.findById(doc._id)) as OrderDoc);
						if (placed === 1) {
							void this.relayOutbox(doc._id).catch(() => undefined);
							await ctx
								.call("carts.clearIfVersion", { version: cart.version })
								.catch(err => this.logger.warn("Could not empty the cart after checkout", err));
							this.broker.metrics.increment(METRIC.ORDERS, { status: "pending_payment" });
						}
						if (fresh.status === "reserving" || fresh.status === "rejected") {
							throw new UnprocessableError(
								"CHECKOUT_ABANDONED",
								"This checkout was abandoned, please retry"
							);
						}
						return this.toOrder(fresh);
					}
				);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/orders/${order.id}`;
				this.broker.metrics.observe(
					METRIC.CHECKOUT_DURATION,
					Number(process.hrtime.bigint() - started) / 1e9
				);
				return order;
			}
		},

		/** The caller's orders, newest first (admin: everyone's, or one user's with `userId`). */
		list: {
			permissions: "authenticated",
			params: { $$strict: "remove", ...PAGE_PARAMS, userId: { ...ID, optional: true } },
			async handler(this: OrdersThis, ctx: Context<ListParams, AppMeta>): Promise<Page<Order>> {
				const user = ctx.meta.user!;
				const isAdmin = user.roles.includes("admin");
				const query: Record<string, unknown> = { status: { $in: VISIBLE } };
				if (!isAdmin) query.userId = user.id;
				else if (ctx.params.userId) query.userId = ctx.params.userId;
				const { page, pageSize } = ctx.params;
				const [docs, total] = await Promise.all([
					this.adapter.find({ query, sort: ["-createdAt", "_id"], ...pageWindow(page, pageSize) }),
					this.adapter.count({ query })
				]);
				return pageOf(
					(docs as OrderDoc[]).map(d => this.toOrder(d)),
					total,
					page,
					pageSize
				);
			}
		},

		/** One order: the caller's own (someone else's is 404), or any for an admin. */
		get: {
			permissions: "authenticated",
			params: { $$strict: "remove", id: ID },
			async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
				return this.toOrder(await this.findVisible(ctx, ctx.params.id));
			}
		},

		/**
		 * Pays a pending order (API.md), with an Idempotency-Key like checkout: one charge through payments, then the
		 * order is `paid` and its stock sold. 409 INVALID_ORDER_STATE when the order is not pending_payment or its time
		 * ran out. A charge that went through for an order that meanwhile expired or was cancelled is refunded (409).
		 * A retry of the request that paid (same key, its answer lost to a timeout) answers the order.
		 */
		pay: {
			permissions: "authenticated",
			params: {
				$$strict: "remove",
				id: ID,
				paymentToken: { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_]+$/ }
			},
			timeout: cfg.payments.providerTimeout + 8000,
			async handler(this: OrdersThis, ctx: Context<PayParams, AppMeta>): Promise<Order> {
				return this.idempotent(
					ctx,
					{ scope: "orders.pay", body: ctx.params, status: 200 },
					async operationId => {
						const doc = await this.findVisible(ctx, ctx.params.id);
						bindToScope({ orderId: doc._id });
						if (doc.status !== "pending_payment") {
							// A retry of the operation that paid (its answer was lost): the order, as it is now.
							if (doc.payment && (await this.paidBy(ctx, doc, operationId)))
								return this.toOrder(doc);
							assertTransition(doc.status as OrderStatus, "paid");
						}
						if (Date.parse(doc.expiresAt) <= Date.now()) {
							throw new ConflictError("INVALID_ORDER_STATE", "The order expired before payment", {
								status: "expired"
							});
						}
						const payment = await ctx.call<Payment, object>(
							"payments.charge",
							{
								operationId,
								orderId: doc._id,
								userId: doc.userId,
								amount: doc.total,
								currency: doc.currency,
								paymentToken: ctx.params.paymentToken
							},
							{ retries: 0 }
						);
						return this.toOrder(await this.markPaid(ctx, doc._id, payment));
					}
				);
			}
		},

		/**
		 * Cancels an order: an unpaid one becomes `cancelled` (its stock goes back); a paid, unshipped one is refunded
		 * through payments and becomes `refunded` (its stock goes back on the shelf).
		 */
		cancel: {
			permissions: "authenticated",
			params: { $$strict: "remove", id: ID },
			timeout: cfg.payments.providerTimeout + 8000,
			async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
				const doc = await this.findVisible(ctx, ctx.params.id);
				bindToScope({ orderId: doc._id });
				if (doc.status === "paid") {
					return this.toOrder(await this.refundPaid(ctx, doc, "cancelled by the customer"));
				}
				const cancelled = await this.transition(ctx, doc, "cancelled");
				await this.settleStock(ctx, cancelled);
				return this.toOrder((await this.adapter.findById(doc._id)) as OrderDoc);
			}
		},

		/** Admin: a paid order leaves the warehouse. */
		ship: adminTransition("shipped"),

		/** Admin: a shipped order arrived. */
		deliver: adminTransition("delivered")
	} satisfies Record<string, AppAction<OrdersThis>>;
}

export function createOrdersService(
	cfg: AppConfig
): WithChannels<
	ServiceSchema<ServiceSettingSchema, OrdersMethods, DbServiceThis & IdempotencyThis & OrdersVars>,
	OrdersThis
> {
	return {
		name: "orders",
		mixins: [
			DbMixin(cfg, {
				collection: "orders",
				indexes: [
					{ fields: { userId: 1, createdAt: -1 } },
					{ fields: { createdAt: -1 } },
					// The sweeper's one query: only orders with work left have the field.
					{ fields: { sweepAt: 1 }, sparse: true },
					OUTBOX_INDEX
				],
				stores: { idempotency: IDEMPOTENCY_STORE }
			}),
			IdempotencyMixin(cfg),
			OutboxMixin(cfg)
		],
		actions: ordersActions(cfg),

		// Durable: a payment that succeeded while its pay request died (timeout, crash) still reaches its order.
		channels: {
			"payments.succeeded": {
				group: "orders",
				async handler(
					this: OrdersThis,
					ctx: Context<{ orderId: string; paymentId: string; amount: number }>
				) {
					const { orderId, paymentId, amount } = ctx.params;
					bindToScope({ orderId });
					try {
						await this.markPaid(ctx, orderId, { id: paymentId, amount } as Payment);
					} catch (err) {
						const type = (err as { type?: string }).type;
						// Refunded because the order had expired or was cancelled, or an order this store never had.
						if (type === "INVALID_ORDER_STATE" || type === "NOT_FOUND") return;
						throw err; // redelivered later
					}
				}
			}
		},

		methods: {
			toOrder(doc: OrderDoc): Order {
				const order: Order = {
					id: doc._id,
					userId: doc.userId,
					status: doc.status as OrderStatus,
					items: doc.items,
					subtotal: doc.subtotal,
					total: doc.total,
					currency: doc.currency,
					shippingAddress: doc.shippingAddress,
					expiresAt: doc.expiresAt,
					createdAt: doc.createdAt,
					updatedAt: doc.updatedAt
				};
				if (doc.payment) order.payment = doc.payment;
				return order;
			},

			/** The order if the caller may see it: their own, or any for an admin. Otherwise 404, never 403. */
			async findVisible(
				this: OrdersThis,
				ctx: Context<unknown, AppMeta>,
				id: string
			): Promise<OrderDoc> {
				const doc = (await this.adapter.findById(id)) as OrderDoc | null;
				const user = ctx.meta.user!;
				if (
					!doc ||
					!VISIBLE.includes(doc.status as OrderStatus) ||
					(doc.userId !== user.id && !user.roles.includes("admin"))
				) {
					throw new NotFoundError("Order");
				}
				return doc;
			},

			/**
			 * The one way an order's status changes: checked against the transitions table and written with the current
			 * status (and `guard`) in the filter, so of two racing transitions one wins and the other gets 409. The order's
			 * event is part of the same write (the outbox) and relayed right after.
			 */
			async transition(
				this: OrdersThis,
				_ctx: Context,
				doc: OrderDoc,
				to: OrderStatus,
				set: Partial<OrderDoc> = {},
				guard: Record<string, unknown> = {}
			) {
				const from = doc.status as OrderStatus;
				assertTransition(from, to);
				const atMs = Date.now();
				const at = iso(atMs);
				const after = placedAs({ ...doc, ...set }, to, at);
				const marker = sweepMarker(after, atMs, this.timings);
				const moved = await this.adapter.updateMany(
					{ _id: doc._id, status: from, ...guard },
					withEvents(
						{
							...marker,
							$set: { ...set, status: to, updatedAt: at, ...marker.$set },
							$push: { history: { status: to, at } }
						},
						[orderEvent(doc, to, from)]
					)
				);
				if (moved !== 1) {
					const now = (await this.adapter.findById(doc._id)) as OrderDoc;
					assertTransition(now.status as OrderStatus, to);
					throw new ConflictError(
						"INVALID_ORDER_STATE",
						now.status === from
							? "A refund of this order is in progress"
							: "The order changed meanwhile",
						{ status: now.status }
					);
				}
				void this.relayOutbox(doc._id).catch(() => undefined);
				this.broker.metrics.increment(METRIC.ORDERS, { status: to });
				return { ...after, sweepAt: marker.$set?.sweepAt };
			},

			/**
			 * Records a succeeded payment on its order (from pay, or from the payments.succeeded event, whichever comes
			 * first; the second changes nothing): pending_payment becomes paid and the stock is sold. If the order can no
			 * longer be paid (it expired or was cancelled while the charge ran), the charge is refunded and this is a 409.
			 */
			async markPaid(
				this: OrdersThis,
				ctx: Context,
				orderId: string,
				payment: Payment
			): Promise<OrderDoc> {
				for (let attempt = 0; attempt < 3; attempt++) {
					const doc = (await this.adapter.findById(orderId)) as OrderDoc | null;
					if (!doc) throw new NotFoundError("Order");
					if (doc.payment?.id === payment.id) return doc;
					if (doc.status !== "pending_payment") {
						this.logger.warn(
							`A payment completed for an order that is ${doc.status}: refunding it`
						);
						await ctx.call("payments.refund", {
							orderId,
							reason: `the order was ${doc.status} before the payment completed`
						});
						throw new ConflictError(
							"INVALID_ORDER_STATE",
							`The order is ${doc.status}; the payment was refunded`,
							{ status: doc.status, refunded: true }
						);
					}
					try {
						const paid = await this.transition(ctx, doc, "paid", {
							payment: { id: payment.id, status: "succeeded", amount: payment.amount }
						});
						await this.settleStock(ctx, paid).catch(err =>
							this.logger.warn("Stock not sold yet; the sweeper finishes it", err)
						);
						return paid;
					} catch (err) {
						if ((err as { type?: string }).type !== "INVALID_ORDER_STATE") throw err;
						// Lost a race (expiry, cancel, or the other path paid it): look again.
					}
				}
				throw new ConflictError("INVALID_ORDER_STATE", "The order keeps changing, please retry");
			},

			/** Whether the pay operation `operationId` made the order's charge (payments records which one claimed it). */
			async paidBy(
				this: OrdersThis,
				ctx: Context,
				doc: OrderDoc,
				operationId: string
			): Promise<boolean> {
				const payment = await ctx
					.call<Payment, object>("payments.get", { orderId: doc._id })
					.catch(() => null);
				return payment?.operationId === operationId;
			},

			/**
			 * Refunds a paid order: marks it (so it can no longer ship), refunds the charge through payments, moves it to
			 * `refunded` and puts its stock back. Every step is idempotent; the sweeper finishes a refund a crash interrupted.
			 */
			async refundPaid(
				this: OrdersThis,
				ctx: Context,
				doc: OrderDoc,
				reason: string
			): Promise<OrderDoc> {
				if (!doc.refundRequested) {
					const now = Date.now();
					await this.adapter.updateMany(
						{ _id: doc._id, status: "paid" },
						{
							$set: {
								refundRequested: true,
								updatedAt: iso(now),
								sweepAt: iso(now + this.timings.refundStaleMs)
							}
						}
					);
					const current = (await this.adapter.findById(doc._id)) as OrderDoc;
					if (current.status !== "paid" && current.status !== "refunded") {
						assertTransition(current.status as OrderStatus, "refunded"); // shipped meanwhile: 409
					}
				}
				const payment = await ctx.call<Payment, object>("payments.refund", {
					orderId: doc._id,
					reason
				});
				let current = (await this.adapter.findById(doc._id)) as OrderDoc;
				if (current.status === "paid") {
					try {
						current = await this.transition(ctx, current, "refunded", {
							payment: { id: payment.id, status: "refunded", amount: payment.amount }
						});
					} catch (err) {
						if ((err as { type?: string }).type !== "INVALID_ORDER_STATE") throw err;
						current = (await this.adapter.findById(doc._id)) as OrderDoc;
					}
				}
				await this.settleStock(ctx, current).catch(err =>
					this.logger.warn("Stock not returned yet; the sweeper finishes it", err)
				);
				return (await this.adapter.findById(doc._id)) as OrderDoc;
			},

			/**
			 * Makes the stock match the order's status (idempotent; inventory keys every movement by order id): paid and
			 * later → reserved units sold; cancelled, expired, rejected → reserved units released; refunded → sold, then
			 * back on the shelf.
			 */
			async settleStock(this: OrdersThis, ctx: Context, doc: OrderDoc): Promise<void> {
				const lines = linesOf(doc);
				switch (doc.status) {
					case "paid":
					case "shipped":
					case "delivered":
						if (doc.stockCommitted) return;
						await ctx.call("inventory.commit", { orderId: doc._id, lines });
						await this.recordSettled(doc, { stockCommitted: true });
						return;
					case "refunded":
						if (doc.stockReturned) return;
						// Sold first (a no-op if it was), so exactly what was sold comes back on the shelf.
						await ctx.call("inventory.commit", { orderId: doc._id, lines });
						await this.recordSettled(doc, { stockCommitted: true });
						await ctx.call("inventory.restock", { orderId: doc._id, lines });
						await this.recordSettled(doc, { stockCommitted: true, stockReturned: true });
						return;
					case "cancelled":
					case "expired":
					case "rejected":
						if (doc.stockReleased) return;
						await this.releaseStock(ctx, doc);
						return;
					default:
						return;
				}
			},

			/** Gives an order's reserved units back (idempotent) and records that it did. */
			async releaseStock(this: OrdersThis, ctx: Context, doc: OrderDoc): Promise<void> {
				await ctx.call("inventory.release", { orderId: doc._id, lines: linesOf(doc) });
				await this.recordSettled(doc, { stockReleased: true });
			},

			/**
			 * Records a finished stock movement of this attempt at the order (`createdAt` tells it from a retry that started
			 * over under the same id). When that leaves the sweeper nothing to do, the same write takes the order's marker
			 * away, on condition that the status and the refund flag are still the ones `doc` has: a cancellation that began
			 * meanwhile keeps its marker.
			 */
			async recordSettled(
				this: OrdersThis,
				doc: OrderDoc,
				fields: Partial<OrderDoc>
			): Promise<void> {
				const attempt = { _id: doc._id, createdAt: doc.createdAt };
				if (workDue({ ...doc, ...fields }, Date.now(), this.timings) === null) {
					const cleared = await this.adapter.updateMany(
						{
							...attempt,
							status: doc.status,
							refundRequested: doc.refundRequested ? true : { $ne: true }
						},
						{ $set: fields, $unset: { sweepAt: true } }
					);
					if (cleared === 1) return;
				}
				await this.adapter.updateMany(attempt, { $set: fields });
			},

			/**
			 * Does the work that is due (`sweepAt` passed): expires unpaid orders past `expiresAt`, rejects abandoned
			 * checkouts, finishes stock movements (release, sell, return) and refunds that a crash left half done; then
			 * checks a page of inventory's holds for orders this store does not know. It reads only orders whose marker is
			 * due, so its cost follows the work, not the orders stored. Safe on many nodes: every claim is a conditional
			 * update and every movement is idempotent.
			 */
			async sweep(this: OrdersThis): Promise<void> {
				// Nothing to do until the stock owner is there (e.g. while the cluster starts).
				if (this.sweeping || !this.broker.registry.hasService("inventory", null as never)) return;
				this.sweeping = true;
				const ctx = this.broker.ContextFactory.create(
					this.broker,
					null as never,
					{},
					{}
				) as Context;
				try {
					if (!this.legacyMarked) {
						const marked = await this.markLegacyOrders();
						if (marked > 0)
							this.logger.info(`Gave ${marked} orders stored before sweep markers theirs`);
						this.legacyMarked = true;
					}
					const now = Date.now();
					// Each order is looked at once a sweep: one the work left due again (a failed call) waits for the next.
					const seen = new Set<string>();
					let failed = 0;
					let firstError: unknown;
					for (let read = 0; read < SWEEP_MAX; read += SWEEP_BATCH) {
						const due = (
							(await this.adapter.find({
								query: { sweepAt: { $lte: iso(now) } },
								sort: ["sweepAt"],
								limit: SWEEP_BATCH + seen.size
							})) as OrderDoc[]
						).filter(d => !seen.has(d._id));
						let failedHere = 0;
						for (const doc of due) {
							seen.add(doc._id);
							try {
								await this.sweepOrder(ctx, doc, now);
							} catch (err) {
								failedHere++;
								firstError ??= err;
							}
						}
						failed += failedHere;
						// A batch that all failed (a collaborator down or too slow): the next sweep tries again.
						if (due.length < SWEEP_BATCH || failedHere === due.length) break;
						await new Promise(resolve => setImmediate(resolve)); // let requests in between batches
					}
					if (failed > 0) {
						this.logger.warn(
							`${failed} due orders not finished; the next sweep retries them`,
							firstError
						);
					}
					await this.sweepHolds(ctx);
				} catch (err) {
					this.logger.warn("Order sweep did not finish; the next one carries on", err);
				} finally {
					this.sweeping = false;
				}
			},

			/** The due work of one order (see `workDue`); a marker that is early or stale is moved or taken away. */
			async sweepOrder(this: OrdersThis, ctx: Context, doc: OrderDoc, now: number): Promise<void> {
				const due = workDue(doc, now, this.timings);
				if (due === null || due > now) {
					await this.adapter.updateMany(
						{ _id: doc._id, sweepAt: doc.sweepAt },
						sweepMarker(doc, now, this.timings)
					);
					return;
				}
				switch (doc.status) {
					case "reserving": {
						// Abandoned: the node running the checkout died. Its stock goes back.
						const at = iso(now);
						const rejected = await this.adapter.updateMany(
							{ _id: doc._id, createdAt: doc.createdAt, status: "reserving" },
							{ $set: { status: "rejected", updatedAt: at, sweepAt: at } }
						);
						if (rejected === 1) await this.releaseStock(ctx, { ...doc, status: "rejected" });
						return;
					}
					case "pending_payment": {
						let expired: OrderDoc;
						try {
							expired = await this.transition(ctx, doc, "expired");
						} catch (err) {
							if ((err as { type?: string }).type === "INVALID_ORDER_STATE") return; // paid or cancelled meanwhile
							throw err;
						}
						await this.settleStock(ctx, expired);
						return;
					}
					case "paid":
						if (doc.refundRequested) {
							// Interrupted: the order was marked, the refund or the move to refunded did not happen.
							if (!this.broker.registry.hasService("payments", null as never)) return;
							await this.refundPaid(ctx, doc, "cancelled by the customer");
							return;
						}
						await this.settleStock(ctx, doc);
						return;
					default:
						await this.settleStock(ctx, doc);
				}
			},

			/**
			 * Gives back inventory's holds of orders this store does not know (never written, or gone), a page per sweep:
			 * the check goes round all the holds over successive sweeps instead of reading every one each time.
			 */
			async sweepHolds(this: OrdersThis, ctx: Context): Promise<void> {
				const page = (await ctx.call("inventory.holders", {
					after: this.holdsCursor,
					limit: HOLDS_PAGE
				})) as {
					holders: Record<string, Array<{ productId: string; quantity: number }>>;
					next?: string;
				};
				this.holdsCursor = page.next;
				const ids = Object.keys(page.holders);
				for (let i = 0; i < ids.length; i += HOLDS_QUERY) {
					const chunk = ids.slice(i, i + HOLDS_QUERY);
					const known = new Set(
						((await this.adapter.find({ query: { _id: { $in: chunk } } })) as OrderDoc[]).map(
							d => d._id
						)
					);
					for (const orderId of chunk.filter(id => !known.has(id))) {
						await ctx.call("inventory.release", { orderId, lines: page.holders[orderId] });
					}
				}
			},

			/**
			 * Orders stored before sweep markers existed have none: those with work left get one that is due now (the
			 * sweeper then moves it to when the work really is due). One pass over the orders, once per process.
			 */
			async markLegacyOrders(this: OrdersThis): Promise<number> {
				const unmarked = { sweepAt: { $exists: false } };
				const queries = [
					{ status: { $in: ["reserving", "pending_payment"] } },
					{ status: { $in: ["expired", "cancelled", "rejected"] }, stockReleased: false },
					{ status: { $in: ["paid", "shipped", "delivered"] }, stockCommitted: false },
					{ status: "paid", refundRequested: true },
					{ status: "refunded", stockReturned: { $ne: true } }
				];
				const sweepAt = iso(Date.now());
				let marked = 0;
				for (const query of queries) {
					marked += await this.adapter.updateMany({ ...query, ...unmarked }, { $set: { sweepAt } });
				}
				return marked;
			}
		},

		created(this: OrdersThis) {
			this.timings = sweepTimings(cfg);
		},
		started(this: OrdersThis) {
			this.sweeping = false;
			this.legacyMarked = false;
			this.sweepTimer = setInterval(() => void this.sweep(), cfg.orders.sweepInterval);
			this.sweepTimer.unref();
		},

		stopped(this: OrdersThis) {
			if (this.sweepTimer) clearInterval(this.sweepTimer);
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createOrdersService(configOf(broker));

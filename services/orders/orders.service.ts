/**
 * Orders: checkout (checkout.ts), idempotent by `Idempotency-Key`; payment through the payments service (same key
 * mechanism); the state machine of lib/order-state.ts through one `transition`, which writes the order's event in the
 * same write (the outbox); cancellation with refunds; fulfilment; and the recovery sweeper (sweeper.ts) on a timer.
 * The only writer of the `orders` and `idempotency_keys` collections.
 */
import type { Context, ServiceSchema, ServiceSettingSchema, ServiceBroker } from "moleculer";
import { type AppConfig, configOf } from "../../config";
import { ConflictError, NotFoundError, ServiceUnavailableError } from "../../lib/errors";
import {
	type AnyStatus,
	EVENT_OF,
	MOVEMENT_DONE,
	type OrderStatus,
	assertTransition,
	isVisible,
	ORDER_STATES,
	discountOwed,
	stockOwed
} from "../../lib/order-state";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../../lib/pagination";
import { enumRule } from "../../lib/validation";
import { bindToScope } from "../../lib/request-context";
import { METRIC } from "../../lib/metric-names";
import { DbMixin, type DbServiceThis } from "../../mixins/db.mixin";
import {
	IDEMPOTENCY_STORE,
	IdempotencyMixin,
	type IdempotencyThis
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
import { ADDRESS } from "./address";
import { checkout } from "./checkout";
import { SoldOut } from "./sold-out";
import { sweep, sweepMarker, sweepTimings, workDue } from "./sweeper";
import {
	type Order,
	type OrderDoc,
	type OrderTotals,
	type OrdersMethods,
	type OrdersThis,
	type OrdersVars,
	type ShippingAddress,
	iso,
	linesOf,
	withVariant
} from "./types";

export type { Order, OrderItem } from "./types";

interface CreateParams {
	shippingAddress?: ShippingAddress;
	shippingAddressId?: string;
	shippingMethodId?: string;
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
	status?: OrderStatus;
}

const ID = { type: "string", min: 1, max: 64 } as const;
const VISIBLE: OrderStatus[] = [...ORDER_STATES];

/**
 * The event of an order entering `status` (API.md "Events"): ids, the totals breakdown and, on creation, the lines.
 */
function orderEvent(doc: OrderDoc, status: OrderStatus, from?: OrderStatus): OutboxEntry {
	return outboxEvent(EVENT_OF[status], {
		orderId: doc._id,
		userId: doc.userId,
		status,
		...(from ? { from } : {}),
		...totalsOf(doc),
		currency: doc.currency,
		...(doc.discount ? { discountCode: doc.discount.code } : {}),
		...(doc.shippingMethod ? { shippingMethodId: doc.shippingMethod.id } : {}),
		...(status === "pending_payment"
			? {
					items: doc.items.map(i => ({
						productId: i.productId,
						variantId: i.variantId ?? i.productId,
						quantity: i.quantity,
						...(i.saleId ? { saleId: i.saleId } : {})
					}))
				}
			: {})
	});
}

/** An order's totals; orders stored before discounts, shipping and tax read as zeros of them. */
function totalsOf(doc: OrderDoc): OrderTotals {
	return {
		subtotal: doc.subtotal,
		discountTotal: doc.discountTotal ?? 0,
		shippingTotal: doc.shippingTotal ?? 0,
		taxTotal: doc.taxTotal ?? 0,
		total: doc.total
	};
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
	return {
		/** Checkout: builds an order from the caller's cart, reserves its stock, empties the cart. */
		create: {
			permissions: "authenticated",
			params: {
				$$strict: "remove",
				shippingAddress: { ...ADDRESS, optional: true },
				shippingAddressId: { type: "string", min: 1, max: 64, optional: true },
				shippingMethodId: { type: "string", min: 1, max: 64, optional: true }
			},
			// Admission: checkouts beyond what this node takes at once wait in a short queue; past it they are refused
			// at once (QUEUE_FULL, answered 503 with Retry-After) instead of piling up towards the deadline.
			bulkhead: {
				enabled: true,
				concurrency: cfg.orders.checkoutConcurrency,
				maxQueueSize: cfg.orders.checkoutQueue
			},
			async handler(this: OrdersThis, ctx: Context<CreateParams, AppMeta>): Promise<Order> {
				const started = process.hrtime.bigint();
				const order = await this.idempotent(
					ctx,
					{ scope: "orders.create", body: ctx.params, status: 201 },
					async operationId => {
						bindToScope({ orderId: operationId });
						return checkout(this, ctx, operationId, cfg);
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

		/** The caller's orders, newest first (admin: everyone's, or one user's with `userId`), of one `status` if given. */
		list: {
			permissions: "authenticated",
			params: {
				$$strict: "remove",
				...PAGE_PARAMS,
				userId: { ...ID, optional: true },
				status: {
					...enumRule("status", VISIBLE),
					optional: true,
					description: "Only orders in this state (a customer's own, or everyone's for an admin)"
				}
			},
			async handler(this: OrdersThis, ctx: Context<ListParams, AppMeta>): Promise<Page<Order>> {
				const user = ctx.meta.user!;
				const isAdmin = user.roles.includes("admin");
				const { status } = ctx.params;
				// Internal states (reserving, rejected) are never listed: `status` only picks among the visible ones.
				const query: Record<string, unknown> = { status: status ?? { $in: VISIBLE } };
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
							assertTransition(doc.status, "paid");
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
			async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
				const cancel = async (operationId?: string) => {
					const doc = await this.findVisible(ctx, ctx.params.id);
					bindToScope({ orderId: doc._id });
					// A retry of the keyed cancel that did it (its answer lost, or its last step failed): the order.
					if (operationId && doc.cancelledBy === operationId) {
						if (doc.status === "cancelled") await this.settleStock(ctx, doc);
						if (doc.status !== "paid") return this.toOrder(doc);
					}
					if (doc.status === "paid") {
						return this.toOrder(
							await this.refundPaid(ctx, doc, "cancelled by the customer", operationId)
						);
					}
					const cancelled = await this.transition(
						ctx,
						doc,
						"cancelled",
						operationId ? { cancelledBy: operationId } : {}
					);
					await this.settleStock(ctx, cancelled);
					return this.toOrder((await this.adapter.findById(doc._id)) as OrderDoc);
				};
				// The key is optional here (API.md has none for cancel): with one, a retry learns the cancel went through.
				if (ctx.meta.idempotencyKey === undefined) return cancel();
				return this.idempotent(
					ctx,
					{ scope: "orders.cancel", body: ctx.params, status: 200 },
					cancel
				);
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

		events: {
			/** Inventory's stock broadcasts: what is sold out is answered here without asking inventory. */
			"inventory.changed"(this: OrdersThis, ctx: Context<{ levels?: Record<string, unknown> }>) {
				this.soldOut.update(ctx.params?.levels);
			}
		},

		// Durable: a payment that succeeded while its pay request died (timeout, crash) still reaches its order.
		channels: {
			"payments.succeeded": {
				group: "orders",
				async handler(
					this: OrdersThis,
					ctx: Context<{ orderId: string; paymentId: string; amount: number; operationId?: string }>
				) {
					const { orderId, paymentId, amount, operationId } = ctx.params;
					bindToScope({ orderId });
					try {
						await this.markPaid(ctx, orderId, { id: paymentId, amount, operationId } as Payment);
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
					items: doc.items.map(withVariant),
					...totalsOf(doc),
					currency: doc.currency,
					shippingAddress: doc.shippingAddress,
					...(doc.discount
						? { discount: { code: doc.discount.code, amount: doc.discount.amount } }
						: {}),
					...(doc.shippingMethod ? { shippingMethod: doc.shippingMethod } : {}),
					expiresAt: doc.expiresAt,
					createdAt: doc.createdAt,
					updatedAt: doc.updatedAt
				};
				if (doc.payment) {
					const { id, status, amount } = doc.payment;
					order.payment = { id, status, amount };
				}
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
					!isVisible(doc.status) ||
					(doc.userId !== user.id && !user.roles.includes("admin"))
				) {
					throw new NotFoundError("Order");
				}
				return doc;
			},

			/**
			 * The one way an order's status changes, internal states included: checked against the transitions table and
			 * written with the current status (and `guard`) in the filter, so of two racing transitions one wins and the
			 * other gets 409. The same write moves the sweep marker to the work the new state leaves and, for a state
			 * clients see, carries the order's event (the outbox), relayed right after. A `set` with a `history` (an
			 * attempt starting over) replaces the history instead of adding to it.
			 */
			async transition(
				this: OrdersThis,
				_ctx: Context,
				doc: OrderDoc,
				to: AnyStatus,
				set: Partial<OrderDoc> = {},
				guard: Record<string, unknown> = {}
			) {
				const from = doc.status;
				assertTransition(from, to);
				const atMs = Date.now();
				const at = iso(atMs);
				const history = set.history ?? [...doc.history, { status: to, at }];
				const after: OrderDoc = { ...doc, ...set, status: to, updatedAt: at, history };
				const marker = sweepMarker(after, atMs, this.timings);
				// Internal states are not events, and an event never names one as where the order came from.
				const events = isVisible(to)
					? [orderEvent(after, to, isVisible(from) ? from : undefined)]
					: [];
				const moved = await this.adapter.updateMany(
					{ _id: doc._id, status: from, ...guard },
					withEvents(
						{
							...marker,
							$set: { ...set, status: to, updatedAt: at, ...marker.$set },
							...(set.history ? {} : { $push: { history: { status: to, at } } })
						},
						events
					)
				);
				if (moved !== 1) {
					const now = (await this.adapter.findById(doc._id)) as OrderDoc;
					assertTransition(now.status, to);
					throw new ConflictError(
						"INVALID_ORDER_STATE",
						now.status === from
							? "A refund of this order is in progress"
							: "The order changed meanwhile",
						{ status: now.status }
					);
				}
				if (isVisible(to)) {
					void this.relayOutbox(doc._id).catch(() => undefined);
					this.broker.metrics.increment(METRIC.ORDERS, { status: to });
				}
				if (to === "paid") {
					// Only one transition to paid wins, so each order counts once.
					this.broker.metrics.increment(
						METRIC.NET_REVENUE,
						{ currency: after.currency },
						after.total - (after.taxTotal ?? 0)
					);
				}
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
							payment: {
								id: payment.id,
								status: "succeeded",
								amount: payment.amount,
								...(payment.operationId ? { operationId: payment.operationId } : {})
							}
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

			/**
			 * Whether the pay operation `operationId` made the order's charge: the order records it with the payment; an
			 * order stored before that asks payments, and when payments cannot answer this is a 503 (the retry cannot be
			 * told yet whether it paid), never a 409 for a request that may have paid.
			 */
			async paidBy(
				this: OrdersThis,
				ctx: Context,
				doc: OrderDoc,
				operationId: string
			): Promise<boolean> {
				if (doc.payment?.operationId) return doc.payment.operationId === operationId;
				const payment = await ctx
					.call<Payment, object>("payments.get", { orderId: doc._id })
					.catch((err: unknown) => {
						this.logger.warn("Cannot tell which request paid this order yet", err);
						throw new ServiceUnavailableError(
							"Cannot tell yet whether this request paid the order"
						);
					});
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
				reason: string,
				by?: string
			): Promise<OrderDoc> {
				if (!doc.refundRequested) {
					const now = Date.now();
					const marked = { ...doc, refundRequested: true, updatedAt: iso(now) };
					await this.adapter.updateMany(
						{ _id: doc._id, status: "paid" },
						{
							$set: {
								refundRequested: true,
								...(by ? { cancelledBy: by } : {}),
								updatedAt: marked.updatedAt,
								...sweepMarker(marked, now, this.timings).$set
							}
						}
					);
					const current = (await this.adapter.findById(doc._id)) as OrderDoc;
					if (current.status !== "paid" && current.status !== "refunded") {
						assertTransition(current.status, "refunded"); // shipped meanwhile: 409
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
			 * Makes the stock match the order's status: does the movement lib/order-state.ts says it still owes and
			 * records it, then gives its discount code's redemption back when its state says so. Idempotent: inventory
			 * and pricing key every movement by order id.
			 */
			async settleStock(this: OrdersThis, ctx: Context, doc: OrderDoc): Promise<void> {
				await this.settleMovement(ctx, doc);
				if (!discountOwed(doc)) return;
				const latest = ((await this.adapter.findById(doc._id)) as OrderDoc | null) ?? doc;
				if (latest.createdAt !== doc.createdAt || !discountOwed(latest)) return;
				// Pricing down or slow: the order's sweep marker stays, and the sweeper gives the redemption back later.
				try {
					await ctx.call("pricing.release", {
						discountId: latest.discount!.id,
						userId: latest.userId,
						orderId: latest._id
					});
				} catch (err) {
					this.logger.warn("Redemption not given back yet; the sweeper finishes it", err);
					return;
				}
				await this.recordSettled(latest, { discountReleased: true });
			},

			/** The stock movement lib/order-state.ts says the order still owes, done and recorded. */
			async settleMovement(this: OrdersThis, ctx: Context, doc: OrderDoc): Promise<void> {
				const orderId = doc._id;
				const lines = linesOf(doc);
				switch (stockOwed(doc)) {
					case "commit":
						await ctx.call("inventory.commit", { orderId, lines });
						await this.recordSettled(doc, { [MOVEMENT_DONE.commit]: true });
						return;
					case "return":
						// Sold first (a no-op if it was), so exactly what was sold comes back on the shelf.
						await ctx.call("inventory.commit", { orderId, lines });
						await this.recordSettled(doc, { [MOVEMENT_DONE.commit]: true });
						await ctx.call("inventory.restock", { orderId, lines });
						await this.recordSettled(doc, {
							[MOVEMENT_DONE.commit]: true,
							[MOVEMENT_DONE.return]: true
						});
						return;
					case "release":
						await ctx.call("inventory.release", { orderId, lines });
						await this.recordSettled(doc, { [MOVEMENT_DONE.release]: true });
						return;
					case "none":
						return;
				}
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

			/** One pass of the recovery sweeper (sweeper.ts). */
			sweep(this: OrdersThis): Promise<void> {
				return sweep(this);
			}
		},

		created(this: OrdersThis) {
			this.timings = sweepTimings(cfg);
			this.soldOut = new SoldOut(cfg.orders.soldOutTtl);
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

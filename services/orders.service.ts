/**
 * Orders: checkout from the cart with server-side prices and an all-or-nothing stock reservation, idempotent by
 * `Idempotency-Key`; the state machine of lib/order-state.ts through one `transition`; cancellation; and a sweeper,
 * safe on any number of orders nodes, that expires unpaid orders and gives back the stock of abandoned checkouts.
 * The only writer of the `orders` and `idempotency_keys` collections.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { config } from "../config";
import { ConflictError, NotFoundError, UnprocessableError } from "../lib/errors";
import {
	EVENT_OF,
	type InternalStatus,
	type OrderStatus,
	assertTransition,
	ORDER_STATES
} from "../lib/order-state";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../lib/pagination";
import { bindToScope } from "../lib/request-context";
import { METRIC } from "../middlewares/business-metrics.middleware";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { IDEMPOTENCY_STORE, IdempotencyMixin, type idempotent } from "../mixins/idempotency.mixin";
import type { AppMeta } from "../types/meta";
import type { AppAction } from "../types/moleculer-ext";

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
	payment?: { id: string; status: string; amount: number };
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
	payment?: { id: string; status: string; amount: number };
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
interface ListParams {
	page: number;
	pageSize: number;
	userId?: string;
}
interface TransitionParams {
	id: string;
	to: OrderStatus;
	from?: OrderStatus;
	set?: Partial<OrderDoc>;
}

interface OrdersMethods {
	toOrder(doc: OrderDoc): Order;
	findVisible(ctx: Context<unknown, AppMeta>, id: string): Promise<OrderDoc>;
	transition(
		ctx: Context,
		doc: OrderDoc,
		to: OrderStatus,
		set?: Partial<OrderDoc>
	): Promise<OrderDoc>;
	releaseStock(ctx: Context, doc: OrderDoc): Promise<void>;
	sweep(): Promise<void>;
	idempotent: typeof idempotent;
}

interface OrdersVars {
	sweepTimer?: NodeJS.Timeout;
	sweeping: boolean;
}

type OrdersThis = Service & DbServiceThis & OrdersVars & OrdersMethods;

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

const cfg = config();
/** A checkout still `reserving` after this long was abandoned (its node died): the sweeper gives its stock back. */
const ABANDONED_AFTER_MS = cfg.requestTimeout * 3;

/** An admin action that moves an order to `to` (409 INVALID_ORDER_STATE from any state the table forbids). */
function adminTransition(to: OrderStatus): AppAction<OrdersThis> {
	return {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID },
		async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
			const doc = await this.findVisible(ctx, ctx.params.id);
			return this.toOrder(await this.transition(ctx, doc, to));
		}
	};
}

const actions = {
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
						stockCommitted: false
					};
					// Written before reserving, so stock is never held for an order nobody knows about. A retry of a
					// failed attempt (same key, same order id) starts that attempt over.
					if (existing) await this.adapter.updateById(operationId, { $set: draft });
					else await this.adapter.insert({ _id: operationId, ...draft });
					const doc = (await this.adapter.findById(operationId)) as OrderDoc;
					const lines = doc.items.map(i => ({ productId: i.productId, quantity: i.quantity }));
					try {
						await ctx.call("inventory.reserve", { orderId: doc._id, lines }, { retries: 0 });
					} catch (err) {
						// Out of stock: nothing is held. Down or too slow: the outcome is unknown, so give back
						// whatever was taken (idempotent); the sweeper finishes the job if this fails too.
						await ctx.call("inventory.release", { orderId: doc._id, lines }).catch(() => undefined);
						if ((err as { type?: string }).type === "OUT_OF_STOCK") {
							await this.adapter.updateMany(
								{ _id: doc._id, status: "reserving" },
								{
									$set: {
										status: "rejected",
										stockReleased: true,
										updatedAt: new Date().toISOString()
									}
								}
							);
						}
						throw err;
					}
					const placed = await this.adapter.updateMany(
						{ _id: doc._id, status: "reserving" },
						{
							$set: { status: "pending_payment", updatedAt: new Date().toISOString() },
							$push: { history: { status: "pending_payment", at: new Date().toISOString() } }
						}
					);
					const fresh = (await this.adapter.findById(doc._id)) as OrderDoc;
					if (placed === 1) {
						await ctx
							.call("carts.clearIfVersion", { version: cart.version })
							.catch(err => this.logger.warn("Could not empty the cart after checkout", err));
						ctx.emit(EVENT_OF.pending_payment, {
							eventId: randomUUID(),
							orderId: doc._id,
							userId: doc.userId,
							total: doc.total,
							currency: doc.currency,
							occurredAt: new Date().toISOString()
						});
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

	/** Cancels an unpaid order (its stock goes back). Paid orders are refunded through payments. */
	cancel: {
		permissions: "authenticated",
		params: { $$strict: "remove", id: ID },
		async handler(this: OrdersThis, ctx: Context<IdParams, AppMeta>): Promise<Order> {
			const doc = await this.findVisible(ctx, ctx.params.id);
			bindToScope({ orderId: doc._id });
			if (doc.status === "paid") {
				// A paid, unshipped order is refunded by the payments owner, which then moves it to `refunded`.
				return (await ctx.call("payments.refund", { orderId: doc._id })) as Order;
			}
			const cancelled = await this.transition(ctx, doc, "cancelled");
			await this.releaseStock(ctx, cancelled);
			return this.toOrder((await this.adapter.findById(doc._id)) as OrderDoc);
		}
	},

	/** Admin: a paid order leaves the warehouse. */
	ship: adminTransition("shipped"),

	/** Admin: a shipped order arrived. */
	deliver: adminTransition("delivered"),

	/**
	 * Internal (payments): moves an order along the state machine, with the expected current status in the update
	 * filter, and answers the order. 409 INVALID_ORDER_STATE when the move is not allowed or lost a race.
	 */
	transition: {
		params: {
			$$strict: "remove",
			id: ID,
			to: { type: "enum", values: [...ORDER_STATES] },
			from: { type: "enum", values: [...ORDER_STATES], optional: true },
			set: { type: "object", optional: true }
		},
		async handler(this: OrdersThis, ctx: Context<TransitionParams>): Promise<Order> {
			const doc = (await this.adapter.findById(ctx.params.id)) as OrderDoc | null;
			if (!doc || !VISIBLE.includes(doc.status as OrderStatus)) throw new NotFoundError("Order");
			if (ctx.params.from && doc.status !== ctx.params.from) {
				throw new ConflictError(
					"INVALID_ORDER_STATE",
					`The order is ${doc.status}, not ${ctx.params.from}`,
					{
						status: doc.status
					}
				);
			}
			const moved = await this.transition(ctx, doc, ctx.params.to, ctx.params.set);
			if (ctx.params.to === "paid") {
				const lines = moved.items.map(i => ({ productId: i.productId, quantity: i.quantity }));
				await ctx.call("inventory.commit", { orderId: moved._id, lines });
				await this.adapter.updateMany({ _id: moved._id }, { $set: { stockCommitted: true } });
			}
			return this.toOrder(moved);
		}
	}
} satisfies Record<string, AppAction<OrdersThis>>;

const OrdersService: ServiceSchema<
	ServiceSettingSchema,
	OrdersMethods,
	DbServiceThis & OrdersVars
> = {
	name: "orders",
	mixins: [
		DbMixin({
			collection: "orders",
			indexes: [
				{ fields: { userId: 1, createdAt: -1 } },
				{ fields: { status: 1, expiresAt: 1 } },
				{ fields: { createdAt: -1 } }
			],
			stores: { idempotency: IDEMPOTENCY_STORE }
		}),
		IdempotencyMixin
	],
	actions,

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
		 * The one way an order's status changes: checked against the transitions table, written with the current status
		 * in the filter (of two racing transitions one wins, the other gets 409), then the event is emitted.
		 */
		async transition(
			this: OrdersThis,
			ctx: Context,
			doc: OrderDoc,
			to: OrderStatus,
			set: Partial<OrderDoc> = {}
		) {
			const from = doc.status as OrderStatus;
			assertTransition(from, to);
			const at = new Date().toISOString();
			const moved = await this.adapter.updateMany(
				{ _id: doc._id, status: from },
				{ $set: { ...set, status: to, updatedAt: at }, $push: { history: { status: to, at } } }
			);
			if (moved !== 1) {
				const now = (await this.adapter.findById(doc._id)) as OrderDoc;
				assertTransition(now.status as OrderStatus, to);
				throw new ConflictError("INVALID_ORDER_STATE", "The order changed meanwhile", {
					status: now.status
				});
			}
			ctx.emit(EVENT_OF[to], {
				eventId: randomUUID(),
				orderId: doc._id,
				userId: doc.userId,
				from,
				to,
				occurredAt: at
			});
			this.broker.metrics.increment(METRIC.ORDERS, { status: to });
			return (await this.adapter.findById(doc._id)) as OrderDoc;
		},

		/** Gives an order's reserved units back (idempotent) and records that it did. */
		async releaseStock(this: OrdersThis, ctx: Context, doc: OrderDoc): Promise<void> {
			const lines = doc.items.map(i => ({ productId: i.productId, quantity: i.quantity }));
			await ctx.call("inventory.release", { orderId: doc._id, lines });
			await this.adapter.updateMany({ _id: doc._id }, { $set: { stockReleased: true } });
		},

		/**
		 * Expires unpaid orders past `expiresAt`, gives back the stock of cancelled, expired and abandoned checkouts,
		 * and releases holds whose order does not exist. Safe on many nodes: every claim is a conditional update.
		 */
		async sweep(this: OrdersThis): Promise<void> {
			// Nothing to do until the stock owner is there (e.g. while the cluster starts).
			if (this.sweeping || !this.broker.registry.hasService("inventory", null as never)) return;
			this.sweeping = true;
			const ctx = this.broker.ContextFactory.create(this.broker, null as never, {}, {}) as Context;
			try {
				const now = new Date().toISOString();
				const overdue = (await this.adapter.find({
					query: { status: "pending_payment", expiresAt: { $lte: now } },
					limit: 200
				})) as OrderDoc[];
				for (const doc of overdue) {
					try {
						await this.transition(ctx, doc, "expired");
					} catch {
						continue; // paid or cancelled meanwhile, or another node won
					}
				}
				const abandonedBefore = new Date(Date.now() - ABANDONED_AFTER_MS).toISOString();
				await this.adapter.updateMany(
					{ status: "reserving", createdAt: { $lte: abandonedBefore } },
					{ $set: { status: "rejected", updatedAt: now } }
				);
				const toRelease = (await this.adapter.find({
					query: { status: { $in: ["expired", "cancelled", "rejected"] }, stockReleased: false },
					limit: 200
				})) as OrderDoc[];
				for (const doc of toRelease) await this.releaseStock(ctx, doc);

				// Holds of orders this store does not know (never written, or gone) are given back.
				const holders = (await ctx.call("inventory.holders", {})) as Record<
					string,
					Array<{ productId: string; quantity: number }>
				>;
				const ids = Object.keys(holders);
				if (ids.length > 0) {
					const known = new Set(
						((await this.adapter.find({ query: { _id: { $in: ids } } })) as OrderDoc[]).map(
							d => d._id
						)
					);
					for (const orderId of ids.filter(id => !known.has(id))) {
						await ctx.call("inventory.release", { orderId, lines: holders[orderId] });
					}
				}
			} catch (err) {
				this.logger.warn("Order sweep did not finish; the next one carries on", err);
			} finally {
				this.sweeping = false;
			}
		}
	},

	started(this: OrdersThis) {
		this.sweeping = false;
		this.sweepTimer = setInterval(() => void this.sweep(), cfg.orders.sweepInterval);
		this.sweepTimer.unref();
	},

	stopped(this: OrdersThis) {
		if (this.sweepTimer) clearInterval(this.sweepTimer);
	}
};

export default OrdersService;

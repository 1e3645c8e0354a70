/**
 * Payments: at most one successful charge per order, whatever is retried, duplicated or crashes.
 *
 * One payment document per order (unique `orderId`). A charge attempt first claims the document (one conditional
 * write: of 20 concurrent pays one charges, the others get 409), then asks the provider under the key
 * `<orderId>:<attempt>`. The attempt number only moves on after a definite decline, so every retry of an attempt
 * whose outcome is unknown (timeout, crash) reuses its key and the provider answers the charge it already made.
 * Attempts left `processing` past their lease are settled by reconciliation, which asks the provider by key.
 * Every state change writes its event (payments.succeeded / failed / refunded) in the same write (the outbox).
 * The only writer of the `payments` collection; the simulated provider's ledger is its own store.
 */
import { randomUUID } from "node:crypto";
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
	GatewayTimeoutError,
	NotFoundError,
	PaymentDeclinedError,
	ServiceUnavailableError
} from "../lib/errors";
import {
	type PaymentProvider,
	ProviderTimeoutError,
	SIMULATED_LEDGER_STORE,
	type SimulatedProvider,
	resolvePaymentProvider,
	withProviderTimeout
} from "../adapters/payment-provider";
import { bindToScope } from "../lib/request-context";
import { METRIC } from "../lib/metric-names";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { isDuplicateKeyError } from "../adapters/store";
import {
	OUTBOX_INDEX,
	OutboxMixin,
	type OutboxEntry,
	outboxEvent,
	withEvents
} from "../mixins/outbox.mixin";
import type { AppAction } from "../types/moleculer-ext";

export type PaymentStatus =
	"new" | "processing" | "succeeded" | "failed" | "refunding" | "refunded";

interface PaymentDoc {
	_id: string;
	orderId: string;
	userId: string;
	amount: number;
	currency: string;
	status: PaymentStatus;
	/** Provider key of the current attempt: `<orderId>:<attempt>`. */
	attempt: number;
	/** While `processing`/`refunding`: until when the claim holds; past it, reconciliation or a retry takes over. */
	lockedUntil: number;
	/** When the current attempt last went to the provider (ms). */
	attemptedAt?: number;
	/** The pay operation (idempotency key's operation id) that claimed the current attempt. */
	operationId?: string;
	chargeId?: string;
	declineCode?: string;
	refund?: { id: string; amount: number; at: string; reason: string };
	createdAt: string;
	updatedAt: string;
}

/** What other services see. */
export interface Payment {
	id: string;
	orderId: string;
	status: PaymentStatus;
	amount: number;
	currency: string;
	declineCode?: string;
	refund?: { id: string; amount: number; at: string };
	/** The pay operation that claimed the current attempt (orders answers its retries). */
	operationId?: string;
}

interface ChargeParams {
	/** The pay request's operation id: the same for every retry with one Idempotency-Key. */
	operationId: string;
	orderId: string;
	userId: string;
	amount: number;
	currency: string;
	paymentToken: string;
}
interface RefundParams {
	orderId: string;
	reason: string;
}
interface OrderIdParams {
	orderId: string;
}

interface PaymentsMethods {
	provider(): PaymentProvider;
	toPayment(doc: PaymentDoc): Payment;
	findPayment(orderId: string): Promise<PaymentDoc | null>;
	/** Conditional write of a state change with its events; answers whether this caller won it. */
	move(
		doc: PaymentDoc,
		from: Partial<PaymentDoc>,
		set: Partial<PaymentDoc>,
		events?: OutboxEntry[]
	): Promise<boolean>;
	/** Charges the attempt `doc` claimed and records the answer: the payment, 402, or 503/504 (outcome unknown). */
	attempt(doc: PaymentDoc, paymentToken: string): Promise<Payment>;
	/** Records a provider's answer for the attempt in `doc` (succeeded or declined). */
	settle(
		doc: PaymentDoc,
		charge: { id: string; status: string; declineCode?: string }
	): Promise<PaymentDoc>;
	reconcile(): Promise<number>;
	relayOutbox(id?: string): Promise<number>;
}

interface PaymentsVars {
	simulated: SimulatedProvider;
	reconcileTimer?: NodeJS.Timeout;
	reconciling: boolean;
}

type PaymentsThis = Service & DbServiceThis & PaymentsVars & PaymentsMethods;

const ORDER_ID = { type: "string", min: 1, max: 64 } as const;
/** How long an attempt's claim holds: the provider's timeout plus a margin for our own writes. */
const leaseMs = (cfg: AppConfig) => cfg.payments.providerTimeout + 2000;
/** The contract's answer when the provider failed us: 504 when it was silent, 503 when it was unreachable. */
const providerFailure = (err: unknown) =>
	err instanceof ProviderTimeoutError
		? new GatewayTimeoutError("The payment provider did not answer in time, please retry")
		: new ServiceUnavailableError("The payment provider is unavailable, please retry");
const keyOf = (doc: PaymentDoc) => `${doc.orderId}:${doc.attempt}`;
const eventFields = (doc: PaymentDoc) => ({
	paymentId: doc._id,
	orderId: doc.orderId,
	userId: doc.userId,
	amount: doc.amount,
	currency: doc.currency,
	// Which pay request made the charge: orders keeps it, so that request's retry is answered without asking here.
	...(doc.operationId ? { operationId: doc.operationId } : {})
});

function paymentsActions(cfg: AppConfig) {
	const LEASE_MS = leaseMs(cfg);
	return {
		/**
		 * Internal (orders.pay): charges the order's amount once. Answers the succeeded payment (also to a retry of the
		 * operation that paid: it never charges again); 402 PAYMENT_DECLINED; 504 when the provider's outcome is unknown
		 * (a retry settles it without charging twice); 409 INVALID_ORDER_STATE while another attempt runs, once another
		 * operation paid, or after a refund.
		 */
		charge: {
			params: {
				$$strict: "remove",
				operationId: ORDER_ID,
				orderId: ORDER_ID,
				userId: ORDER_ID,
				amount: { type: "number", integer: true, min: 1 },
				currency: { type: "string", length: 3 },
				paymentToken: { type: "string", min: 1, max: 128 }
			},
			timeout: cfg.payments.providerTimeout + 3000,
			async handler(this: PaymentsThis, ctx: Context<ChargeParams>): Promise<Payment> {
				const { operationId, orderId, userId, amount, currency, paymentToken } = ctx.params;
				bindToScope({ orderId });
				const now = Date.now();
				let doc = await this.findPayment(orderId);
				if (!doc) {
					// The order's first attempt: the document is inserted already claimed (of concurrent first attempts,
					// the unique orderId lets one insert in; the others read its claim below and get 409).
					const at = new Date(now).toISOString();
					const first: PaymentDoc = {
						_id: `pay_${randomUUID().replace(/-/g, "")}`,
						orderId,
						userId,
						amount,
						currency,
						status: "processing",
						attempt: 0,
						lockedUntil: now + LEASE_MS,
						attemptedAt: now,
						operationId,
						createdAt: at,
						updatedAt: at
					};
					const inserted = await this.adapter.insert(first).then(
						() => true,
						(err: unknown) => {
							if (isDuplicateKeyError(err)) return false;
							throw err;
						}
					);
					if (inserted) return this.attempt(first, paymentToken);
					doc = (await this.findPayment(orderId))!;
				}
				if (doc.status === "succeeded") {
					if (doc.operationId === operationId) return this.toPayment(doc);
					throw new ConflictError("INVALID_ORDER_STATE", "This order is paid", {
						payment: "succeeded"
					});
				}
				if (doc.status === "refunding" || doc.status === "refunded") {
					throw new ConflictError("INVALID_ORDER_STATE", "This order's payment was refunded", {
						payment: doc.status
					});
				}
				if (doc.status === "processing" && doc.lockedUntil > now) {
					// This very operation's attempt, still waiting on the provider: its outcome is not known yet, which
					// is a 503 to retry, not a 409 that would tell the client its own payment was refused.
					if (doc.operationId === operationId) {
						throw new ServiceUnavailableError("This payment is still in progress, please retry");
					}
					throw new ConflictError(
						"INVALID_ORDER_STATE",
						"A payment for this order is in progress",
						{
							payment: "processing"
						}
					);
				}
				// Claim the attempt: a new one after a decline, the same one (same provider key) after an unknown outcome.
				const attempt = doc.status === "failed" ? doc.attempt + 1 : doc.attempt;
				const claimed = await this.move(
					doc,
					{ status: doc.status, attempt: doc.attempt, lockedUntil: doc.lockedUntil },
					{
						status: "processing",
						attempt,
						lockedUntil: now + LEASE_MS,
						attemptedAt: now,
						operationId
					}
				);
				if (!claimed) {
					throw new ConflictError(
						"INVALID_ORDER_STATE",
						"A payment for this order is in progress",
						{
							payment: "processing"
						}
					);
				}
				return this.attempt(
					{ ...doc, status: "processing", attempt, lockedUntil: now + LEASE_MS, operationId },
					paymentToken
				);
			}
		},

		/**
		 * Internal (orders.cancel of a paid order, or a pay that lost its race): refunds the order's charge in full, once.
		 * Answers the refunded payment; 409 INVALID_ORDER_STATE when there is no succeeded charge to refund.
		 */
		refund: {
			params: { $$strict: "remove", orderId: ORDER_ID, reason: { type: "string", max: 200 } },
			timeout: cfg.payments.providerTimeout + 3000,
			async handler(this: PaymentsThis, ctx: Context<RefundParams>): Promise<Payment> {
				const { orderId, reason } = ctx.params;
				bindToScope({ orderId });
				const doc = await this.findPayment(orderId);
				if (doc?.status === "refunded") return this.toPayment(doc);
				if (!doc || (doc.status !== "succeeded" && doc.status !== "refunding")) {
					throw new ConflictError("INVALID_ORDER_STATE", "There is no charge to refund", {
						payment: doc?.status ?? "none"
					});
				}
				if (doc.status === "succeeded") {
					await this.move(doc, { status: "succeeded" }, { status: "refunding" });
				}
				const refund = await withProviderTimeout(
					this.provider().refund({
						key: `refund:${orderId}`,
						chargeId: doc.chargeId!,
						amount: doc.amount,
						reference: orderId
					}),
					cfg.payments.providerTimeout
				).catch(err => {
					this.logger.warn("Refund not confirmed yet; a retry or reconciliation finishes it", err);
					throw providerFailure(err);
				});
				const at = new Date().toISOString();
				const refunded: Partial<PaymentDoc> = {
					status: "refunded",
					refund: { id: refund.id, amount: refund.amount, at, reason }
				};
				const fresh = { ...doc, ...refunded } as PaymentDoc;
				if (
					await this.move(doc, { status: "refunding" }, refunded, [
						outboxEvent("payments.refunded", { ...eventFields(fresh), refundId: refund.id, reason })
					])
				) {
					this.broker.metrics.increment(METRIC.PAYMENTS, { outcome: "refunded" });
				}
				return this.toPayment((await this.findPayment(orderId))!);
			}
		},

		/** Internal: an order's payment, or 404. */
		get: {
			params: { $$strict: "remove", orderId: ORDER_ID },
			async handler(this: PaymentsThis, ctx: Context<OrderIdParams>): Promise<Payment> {
				const doc = await this.findPayment(ctx.params.orderId);
				if (!doc) throw new NotFoundError("Payment");
				return this.toPayment(doc);
			}
		},

		/** Internal (operators, tests): the simulated provider's ledger (charges and refunds), for one order or all. */
		ledger: {
			params: { $$strict: "remove", orderId: { ...ORDER_ID, optional: true } },
			async handler(this: PaymentsThis, ctx: Context<Partial<OrderIdParams>>) {
				return this.simulated.entries(ctx.params.orderId);
			}
		},

		/** Internal (operators): settle attempts whose outcome is unknown now instead of at the next interval. */
		reconcile: {
			params: { $$strict: "remove" },
			async handler(this: PaymentsThis): Promise<{ settled: number }> {
				return { settled: await this.reconcile() };
			}
		}
	} satisfies Record<string, AppAction<PaymentsThis>>;
}

export function createPaymentsService(
	cfg: AppConfig
): ServiceSchema<ServiceSettingSchema, PaymentsMethods, DbServiceThis & PaymentsVars> {
	return {
		name: "payments",
		mixins: [
			DbMixin(cfg, {
				collection: "payments",
				indexes: [
					{ fields: { orderId: 1 }, unique: true },
					{ fields: { status: 1, lockedUntil: 1 } },
					OUTBOX_INDEX
				],
				stores: { ledger: SIMULATED_LEDGER_STORE }
			}),
			OutboxMixin(cfg)
		],
		actions: paymentsActions(cfg),

		methods: {
			provider(this: PaymentsThis): PaymentProvider {
				return this.simulated;
			},

			toPayment(doc: PaymentDoc): Payment {
				const out: Payment = {
					id: doc._id,
					orderId: doc.orderId,
					status: doc.status,
					amount: doc.amount,
					currency: doc.currency
				};
				if (doc.declineCode) out.declineCode = doc.declineCode;
				if (doc.operationId) out.operationId = doc.operationId;
				if (doc.refund)
					out.refund = { id: doc.refund.id, amount: doc.refund.amount, at: doc.refund.at };
				return out;
			},

			async findPayment(this: PaymentsThis, orderId: string): Promise<PaymentDoc | null> {
				return (await this.adapter.findOne({ orderId })) as PaymentDoc | null;
			},

			async move(
				this: PaymentsThis,
				doc: PaymentDoc,
				from: Partial<PaymentDoc>,
				set: Partial<PaymentDoc>,
				events: OutboxEntry[] = []
			): Promise<boolean> {
				const won =
					(await this.adapter.updateMany(
						{ _id: doc._id, ...from },
						withEvents({ $set: { ...set, updatedAt: new Date().toISOString() } }, events)
					)) === 1;
				if (won && events.length > 0) void this.relayOutbox(doc._id).catch(() => undefined);
				return won;
			},

			async attempt(this: PaymentsThis, doc: PaymentDoc, paymentToken: string): Promise<Payment> {
				const started = process.hrtime.bigint();
				let charge;
				try {
					charge = await withProviderTimeout(
						this.provider().charge({
							key: keyOf(doc),
							amount: doc.amount,
							currency: doc.currency,
							token: paymentToken,
							reference: doc.orderId
						}),
						cfg.payments.providerTimeout
					);
				} catch (err) {
					// Outcome unknown: give the claim up so a retry (same key at the provider) or reconciliation settles it.
					await this.move(
						doc,
						{ status: "processing", attempt: doc.attempt },
						{ lockedUntil: 0 }
					).catch(() => undefined);
					const timedOut = err instanceof ProviderTimeoutError;
					this.broker.metrics.increment(METRIC.PAYMENTS, {
						outcome: timedOut ? "timeout" : "error"
					});
					this.logger.warn("Charge outcome unknown; a retry or reconciliation settles it", {
						orderId: doc.orderId,
						error: (err as Error).message
					});
					throw providerFailure(err);
				} finally {
					this.broker.metrics.observe(
						METRIC.PAYMENT_DURATION,
						Number(process.hrtime.bigint() - started) / 1e9
					);
				}
				const settled = await this.settle(doc, charge);
				if (settled.status === "failed")
					throw new PaymentDeclinedError(settled.declineCode ?? "declined");
				return this.toPayment(settled);
			},

			async settle(
				this: PaymentsThis,
				doc: PaymentDoc,
				charge: { id: string; status: string; declineCode?: string }
			): Promise<PaymentDoc> {
				const succeeded = charge.status === "succeeded";
				const set: Partial<PaymentDoc> = succeeded
					? { status: "succeeded", chargeId: charge.id, lockedUntil: 0 }
					: { status: "failed", declineCode: charge.declineCode ?? "declined", lockedUntil: 0 };
				const fresh = { ...doc, ...set } as PaymentDoc;
				const event = succeeded
					? outboxEvent("payments.succeeded", { ...eventFields(fresh), chargeId: charge.id })
					: outboxEvent("payments.failed", { ...eventFields(fresh), declineCode: set.declineCode });
				const won = await this.move(doc, { status: "processing", attempt: doc.attempt }, set, [
					event
				]);
				if (won) {
					this.broker.metrics.increment(METRIC.PAYMENTS, {
						outcome: succeeded ? "succeeded" : "declined"
					});
					if (succeeded) {
						this.broker.metrics.increment(METRIC.REVENUE, { currency: doc.currency }, doc.amount);
					}
				}
				// Lost (a concurrent retry or reconciliation may have recorded the same answer): the stored state rules.
				return won ? fresh : (await this.findPayment(doc.orderId))!;
			},

			/**
			 * Settles what a timeout or a crash left open: attempts `processing` past their lease are looked up at the
			 * provider by key (charged → succeeded, declined → failed, never made → failed, so a retry charges afresh);
			 * refunds stuck in `refunding` are retried. Safe on any number of payments nodes (every claim is conditional).
			 */
			async reconcile(this: PaymentsThis): Promise<number> {
				if (this.reconciling) return 0;
				this.reconciling = true;
				let settled = 0;
				try {
					const now = Date.now();
					const open = (await this.adapter.find({
						query: { status: { $in: ["processing", "refunding"] }, lockedUntil: { $lt: now } },
						limit: 100
					})) as PaymentDoc[];
					for (const doc of open) {
						bindToScope({ orderId: doc.orderId });
						const lease = { lockedUntil: Date.now() + leaseMs(cfg) };
						if (
							!(await this.move(doc, { status: doc.status, lockedUntil: doc.lockedUntil }, lease))
						) {
							continue; // another node took it
						}
						const claimed = { ...doc, ...lease };
						if (doc.status === "refunding") {
							await this.broker
								.call("payments.refund", {
									orderId: doc.orderId,
									reason: doc.refund?.reason ?? "retry"
								})
								.catch(err => this.logger.warn("Refund still not confirmed", err));
							continue;
						}
						const charge = await this.provider().retrieve(keyOf(doc));
						if (charge) {
							await this.settle(claimed, charge);
						} else if ((doc.attemptedAt ?? 0) < Date.now() - 2 * cfg.payments.providerTimeout) {
							// Never charged, and no request under this key can still be on its way: a retry charges afresh.
							await this.settle(claimed, {
								id: "",
								status: "declined",
								declineCode: "not_charged"
							});
						} else {
							// The provider may still be working on it: ask again next time.
							await this.move(claimed, { status: "processing", ...lease }, { lockedUntil: 0 });
							continue;
						}
						settled++;
					}
				} catch (err) {
					this.logger.warn("Payment reconciliation did not finish; the next one carries on", err);
				} finally {
					this.reconciling = false;
				}
				return settled;
			}
		},

		created(this: PaymentsThis) {
			this.reconciling = false;
		},

		started(this: PaymentsThis) {
			this.simulated = resolvePaymentProvider(cfg.payments, this.stores.ledger);
			this.reconcileTimer = setInterval(
				() => void this.reconcile(),
				cfg.payments.reconcileInterval
			);
			this.reconcileTimer.unref();
		},

		stopped(this: PaymentsThis) {
			if (this.reconcileTimer) clearInterval(this.reconcileTimer);
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createPaymentsService(configOf(broker));

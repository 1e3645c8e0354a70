/**
 * API.md "Orders" (pay, cancel, ship, deliver) and "Events" over real HTTP through a multi-process cluster on a real
 * nats-server with JetStream: exactly one charge per order whatever is retried or raced (checked in the simulated
 * provider's own ledger), refunds, fulfilment, the durable events with their ids, notifications recorded once, and
 * poison messages dead-lettered and counted.
 */
import { freePort } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import {
	ADMIN,
	type Probe,
	eventually,
	expectError,
	shop,
	startProbe,
	unique
} from "../helpers/shop";

const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];

const charges = (ledger: any[]) => ledger.filter(e => e.id.startsWith("ch_"));
const succeededCharges = (ledger: any[]) => charges(ledger).filter(e => e.status === "succeeded");
const refunds = (ledger: any[]) => ledger.filter(e => e.id.startsWith("re_"));

describe("payments, fulfilment and durable events", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;
	let probe: Probe;
	let notificationsMetrics: string;

	beforeAll(async () => {
		const metricsPort = await freePort();
		notificationsMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
		cluster = await startCluster({
			services: SERVICES,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "600",
				PAYMENT_PROVIDER_TIMEOUT: "1000",
				PAYMENT_RECONCILE_INTERVAL: "500",
				OUTBOX_RELAY_INTERVAL: "250",
				EVENT_MAX_RETRIES: "2",
				EVENT_ACK_WAIT: "2000"
			},
			envFor: { notifications: { METRICS_PORT: String(metricsPort) } }
		});
		s = shop(cluster);
		probe = await startProbe(cluster, { consume: true });
	}, 120_000);
	afterAll(async () => {
		await probe?.stop();
		await cluster?.stop();
	});

	const ledger = (orderId?: string) =>
		probe.call<any[]>("payments.ledger", orderId ? { orderId } : {});

	describe("POST /api/orders/:id/pay", () => {
		it("charges once, answers the paid order with its payment, and sells the stock", async () => {
			const { token } = await s.customer();
			const productId = await s.product(5, 1500);
			const order = await s.pendingOrder(token, productId, 2);
			const res = await s.pay(token, order.id);
			expect(res.status).toBe(200);
			expect(res.body).toMatchObject({
				id: order.id,
				status: "paid",
				total: 3000,
				payment: { id: expect.any(String), status: "succeeded", amount: 3000 }
			});
			expect(res.headers.get("x-request-id")).toBeTruthy();
			expect(await s.stock(productId)).toEqual({
				productId,
				variantId: productId,
				onHand: 3,
				reserved: 0,
				available: 3
			});
			expect((await s.order(order.id)).status).toBe("paid");
			const entries = await ledger(order.id);
			expect(succeededCharges(entries)).toHaveLength(1);
			expect(charges(entries)[0]).toMatchObject({ amount: 3000, currency: "USD" });
		});

		it("replays the same key and body (200, Idempotent-Replayed), refuses the key with another body (422)", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			const key = unique("pay");
			const first = await s.pay(token, order.id, "tok_visa", key);
			expect(first.status).toBe(200);
			const again = await s.pay(token, order.id, "tok_visa", key);
			expect(again.status).toBe(200);
			expect(again.headers.get("idempotent-replayed")).toBe("true");
			expect(again.body).toEqual(first.body);
			expectError(
				await s.pay(token, order.id, "tok_insufficientFunds", key),
				422,
				"IDEMPOTENCY_KEY_REUSED"
			);
			expect(charges(await ledger(order.id))).toHaveLength(1);
		});

		it("pays twice with a new key: 409 INVALID_ORDER_STATE, no second charge", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			expect((await s.pay(token, order.id)).status).toBe(200);
			expectError(await s.pay(token, order.id), 409, "INVALID_ORDER_STATE");
			expect(charges(await ledger(order.id))).toHaveLength(1);
		});

		it("checks the request: key required (400), token required and well-formed (422), someone else's order (404)", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			const noKey = await api(s.base, "POST", `/api/orders/${order.id}/pay`, {
				token,
				body: { paymentToken: "tok_visa" }
			});
			expectError(noKey, 400, "IDEMPOTENCY_KEY_REQUIRED");
			const noToken = await api(s.base, "POST", `/api/orders/${order.id}/pay`, {
				token,
				body: {},
				headers: { "Idempotency-Key": unique("pay") }
			});
			expectError(noToken, 422, "VALIDATION_ERROR");
			expectError(await s.pay(token, order.id, "tok visa; drop"), 422, "VALIDATION_ERROR");
			const other = await s.customer();
			expectError(await s.pay(other.token, order.id), 404, "NOT_FOUND");
			expectError(await s.pay(token, "no-such-order"), 404, "NOT_FOUND");
			const anonymous = await api(s.base, "POST", `/api/orders/${order.id}/pay`, {
				body: { paymentToken: "tok_visa" },
				headers: { "Idempotency-Key": unique("pay") }
			});
			expectError(anonymous, 401, "NO_TOKEN");
			expect((await s.order(order.id)).status).toBe("pending_payment");
			expect(await ledger(order.id)).toEqual([]);
		});

		it("declined (402 PAYMENT_DECLINED with the reason) leaves the order payable with another token", async () => {
			const { token } = await s.customer();
			const productId = await s.product(5);
			const order = await s.pendingOrder(token, productId);
			const declined = await s.pay(token, order.id, "tok_chargeDeclined");
			expectError(declined, 402, "PAYMENT_DECLINED");
			expect(declined.body.data).toEqual({ declineCode: "card_declined" });
			const poor = await s.pay(token, order.id, "tok_insufficientFunds");
			expectError(poor, 402, "PAYMENT_DECLINED");
			expect(poor.body.data).toEqual({ declineCode: "insufficient_funds" });
			expect((await s.order(order.id)).status).toBe("pending_payment");
			expect(await s.stock(productId)).toMatchObject({ onHand: 5, reserved: 1 });

			const paid = await s.pay(token, order.id, "tok_visa");
			expect(paid.status).toBe(200);
			const entries = await ledger(order.id);
			expect(charges(entries).map(c => c.status)).toEqual(["declined", "declined", "succeeded"]);
			expect(new Set(charges(entries).map(c => c.key)).size).toBe(3);
			await eventually(
				async () => probe.received("payments.failed", p => p.orderId === order.id).length === 2
			);
		});

		it("tok_timeout: 504, then a retry with the same key answers the paid order; one charge in the ledger", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			const key = unique("pay");
			const started = Date.now();
			const first = await s.pay(token, order.id, "tok_timeout", key);
			expectError(first, 504, "REQUEST_TIMEOUT");
			expect(Date.now() - started).toBeLessThan(5000);
			const retry = await s.pay(token, order.id, "tok_timeout", key);
			expect(retry.status).toBe(200);
			expect(retry.body).toMatchObject({ status: "paid", payment: { status: "succeeded" } });
			const again = await s.pay(token, order.id, "tok_timeout", key);
			expect(again.status).toBe(200);
			expect(charges(await ledger(order.id))).toHaveLength(1);
		});

		it("tok_timeout without a retry: reconciliation finds the charge and the order becomes paid", async () => {
			const { token } = await s.customer();
			const productId = await s.product(5);
			const order = await s.pendingOrder(token, productId, 2);
			const key = unique("pay");
			expectError(await s.pay(token, order.id, "tok_timeout", key), 504, "REQUEST_TIMEOUT");
			await eventually(async () => (await s.order(order.id)).status === "paid");
			await eventually(async () => (await s.stock(productId)).onHand === 3);
			expect(charges(await ledger(order.id))).toHaveLength(1);
			// The timed-out request's retry (same key) answers the order it paid; a new key is 409: the order is paid.
			const retry = await s.pay(token, order.id, "tok_timeout", key);
			expect(retry.status).toBe(200);
			expect(retry.body).toMatchObject({ id: order.id, status: "paid" });
			expectError(await s.pay(token, order.id), 409, "INVALID_ORDER_STATE");
			expect(charges(await ledger(order.id))).toHaveLength(1);
		});

		it("20 concurrent pays of one order with different keys: one 200, the rest 409, one charge", async () => {
			const { token } = await s.customer();
			const productId = await s.product(5);
			const order = await s.pendingOrder(token, productId, 3);
			const answers = await Promise.all(Array.from({ length: 20 }, () => s.pay(token, order.id)));
			const statuses = answers.map(a => a.status).sort();
			expect(statuses.filter(x => x === 200)).toHaveLength(1);
			for (const a of answers.filter(a => a.status !== 200))
				expectError(a, 409, "INVALID_ORDER_STATE");
			expect(charges(await ledger(order.id))).toHaveLength(1);
			expect(await s.stock(productId)).toEqual({
				productId,
				variantId: productId,
				onHand: 2,
				reserved: 0,
				available: 2
			});
		});

		it("10 concurrent pays with one key: one charge; the others are in use (409) or replays (200)", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			const key = unique("pay");
			const answers = await Promise.all(
				Array.from({ length: 10 }, () => s.pay(token, order.id, "tok_visa", key))
			);
			for (const a of answers) {
				if (a.status === 200) expect(a.body).toMatchObject({ id: order.id, status: "paid" });
				else expectError(a, 409, "IDEMPOTENCY_KEY_IN_USE");
			}
			expect(
				answers.some(a => a.status === 200 && a.headers.get("idempotent-replayed") !== "true")
			).toBe(true);
			expect(charges(await ledger(order.id))).toHaveLength(1);
		});

		it("pay of a cancelled order: 409, nothing charged", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			expect((await s.cancel(token, order.id)).body.status).toBe("cancelled");
			expectError(await s.pay(token, order.id), 409, "INVALID_ORDER_STATE");
			expect(await ledger(order.id)).toEqual([]);
		});

		it("pay racing cancel: one wins, and a charge that lost is refunded; stock and money agree", async () => {
			const { token } = await s.customer();
			const productId = await s.product(50);
			for (let round = 0; round < 8; round++) {
				const order = await s.pendingOrder(token, productId, 1);
				const [pay, cancel] = await Promise.all([
					s.pay(token, order.id),
					s.cancel(token, order.id)
				]);
				expect([200, 409]).toContain(pay.status);
				expect([200, 409]).toContain(cancel.status);
				const final = await eventually(async () => {
					const o = await s.order(order.id);
					return ["paid", "cancelled", "refunded"].includes(o.status) ? o : null;
				});
				const entries = await ledger(order.id);
				const charged = succeededCharges(entries).length;
				expect(charged).toBeLessThanOrEqual(1);
				if (final.status === "paid") {
					expect(pay.status).toBe(200);
					expect(refunds(entries)).toHaveLength(0);
				} else {
					// Cancelled first (a charge that raced it is refunded) or paid, then cancelled and refunded.
					expect(refunds(entries)).toHaveLength(charged);
				}
			}
			const orders = (await s.allOrders()).filter(o => o.items[0].productId === productId);
			const sold = orders.filter(o => o.status === "paid").length;
			await eventually(async () => (await s.stock(productId)).onHand === 50 - sold);
			expect(await s.stock(productId)).toEqual({
				productId,
				variantId: productId,
				onHand: 50 - sold,
				reserved: 0,
				available: 50 - sold
			});
		});
	});

	describe("cancel of a paid order, ship and deliver", () => {
		it("cancel of a paid, unshipped order refunds it and puts the stock back", async () => {
			const { token } = await s.customer();
			const productId = await s.product(4, 2500);
			const order = await s.pendingOrder(token, productId, 3);
			expect((await s.pay(token, order.id)).status).toBe(200);
			expect(await s.stock(productId)).toMatchObject({ onHand: 1, reserved: 0, available: 1 });
			const res = await s.cancel(token, order.id);
			expect(res.status).toBe(200);
			expect(res.body).toMatchObject({
				status: "refunded",
				payment: { status: "refunded", amount: 7500 }
			});
			expect(await s.stock(productId)).toEqual({
				productId,
				variantId: productId,
				onHand: 4,
				reserved: 0,
				available: 4
			});
			const entries = await ledger(order.id);
			expect(refunds(entries)).toEqual([expect.objectContaining({ amount: 7500 })]);
			expectError(await s.cancel(token, order.id), 409, "INVALID_ORDER_STATE");
			expectError(await s.fulfil("ship", order.id), 409, "INVALID_ORDER_STATE");
			expect(refunds(await ledger(order.id))).toHaveLength(1);
		});

		it("ship and deliver: admin only, paid → shipped → delivered, every other move 409", async () => {
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			expectError(
				await api(s.base, "POST", `/api/orders/${order.id}/ship`, { token }),
				403,
				"FORBIDDEN"
			);
			expectError(await s.fulfil("ship", order.id), 409, "INVALID_ORDER_STATE");
			expectError(await s.fulfil("deliver", order.id), 409, "INVALID_ORDER_STATE");
			expect((await s.pay(token, order.id)).status).toBe(200);
			expectError(await s.fulfil("deliver", order.id), 409, "INVALID_ORDER_STATE");
			const shipped = await s.fulfil("ship", order.id);
			expect(shipped.status).toBe(200);
			expect(shipped.body.status).toBe("shipped");
			expectError(await s.fulfil("ship", order.id), 409, "INVALID_ORDER_STATE");
			expectError(await s.cancel(token, order.id), 409, "INVALID_ORDER_STATE");
			const delivered = await s.fulfil("deliver", order.id);
			expect(delivered.body).toMatchObject({
				status: "delivered",
				payment: { status: "succeeded" }
			});
			expectError(await s.fulfil("deliver", order.id), 409, "INVALID_ORDER_STATE");
			expectError(await s.fulfil("ship", "no-such-order"), 404, "NOT_FOUND");
		});
	});

	describe("durable events and notifications", () => {
		it("every step writes its event once, with eventId, the entity id and occurredAt", async () => {
			const { token, id: userId } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5, 999), 2);
			expect((await s.pay(token, order.id)).status).toBe(200);
			expect((await s.fulfil("ship", order.id)).status).toBe(200);
			expect((await s.fulfil("deliver", order.id)).status).toBe(200);
			const ofOrder = (p: any) => p.orderId === order.id;
			const expected = [
				"orders.created",
				"payments.succeeded",
				"orders.paid",
				"orders.shipped",
				"orders.delivered"
			];
			await eventually(async () => expected.every(e => probe.received(e, ofOrder).length >= 1));
			for (const event of expected) {
				const payloads = probe.received(event, ofOrder);
				expect(new Set(payloads.map(p => p.eventId)).size).toBe(1);
				expect(payloads[0]).toMatchObject({
					eventId: expect.any(String),
					orderId: order.id,
					userId,
					occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/)
				});
			}
			expect(probe.received("payments.succeeded", ofOrder)[0]).toMatchObject({
				amount: 1998,
				currency: "USD"
			});
			expect(probe.received("orders.created", ofOrder)[0].items).toEqual([
				// A product without options: its default variant, whose id is the product's.
				{ productId: order.items[0].productId, variantId: order.items[0].productId, quantity: 2 }
			]);
			expect(probe.received("users.registered", p => p.userId === userId)).toHaveLength(1);
		});

		it("refunds and cancellations are events too; a low stock level writes inventory.low", async () => {
			const { token } = await s.customer();
			const productId = await s.product(6);
			const order = await s.pendingOrder(token, productId, 2); // 4 left: below the default threshold of 5
			expect((await s.pay(token, order.id)).status).toBe(200);
			expect((await s.cancel(token, order.id)).body.status).toBe("refunded");
			const cancelled = await s.pendingOrder(token, productId, 1);
			expect((await s.cancel(token, cancelled.id)).status).toBe(200);
			await eventually(
				async () =>
					probe.received("orders.refunded", p => p.orderId === order.id).length === 1 &&
					probe.received("payments.refunded", p => p.orderId === order.id).length === 1 &&
					probe.received("orders.cancelled", p => p.orderId === cancelled.id).length === 1 &&
					probe.received("inventory.low", p => p.productId === productId).length >= 1
			);
			expect(probe.received("inventory.low", p => p.productId === productId)[0]).toMatchObject({
				eventId: expect.any(String),
				available: 4,
				threshold: 5,
				occurredAt: expect.any(String)
			});
		});

		it("notifications: confirmation, receipt and shipping notice, each recorded once", async () => {
			const { token, id: userId } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			expect((await s.pay(token, order.id)).status).toBe(200);
			expect((await s.fulfil("ship", order.id)).status).toBe(200);
			const kinds = await eventually(async () => {
				const list = await probe.call<any[]>("notifications.list", { orderId: order.id });
				return list.length >= 3 ? list.map(n => n.kind).sort() : null;
			});
			expect(kinds).toEqual(["order_confirmation", "payment_receipt", "shipping_notice"]);
			const list = await probe.call<any[]>("notifications.list", { orderId: order.id });
			expect(list.every(n => n.userId === userId && n.status === "sent")).toBe(true);
		});

		it("a poison message is retried, then dead-lettered and counted; the consumer carries on", async () => {
			const send = (probe.broker as any).sendToChannel as (c: string, p: object) => Promise<void>;
			await send("orders.shipped", { eventId: unique("poison"), note: "no order id" });
			const metric = await eventually(async () => {
				const text = await (await fetch(notificationsMetrics)).text();
				const line = text
					.split("\n")
					.find(
						l =>
							l.startsWith("flashmart_events_dead_lettered_total{") && l.includes("orders.shipped")
					);
				return line && Number(line.split(" ").pop()) >= 1 ? line : null;
			}, 20000);
			expect(metric).toContain(`channel="${cluster.namespace}.orders.shipped"`);
			// Still consuming: the next good event is handled.
			const { token } = await s.customer();
			const order = await s.pendingOrder(token, await s.product(5));
			expect((await s.pay(token, order.id)).status).toBe(200);
			expect((await s.fulfil("ship", order.id)).status).toBe(200);
			await eventually(async () =>
				(await probe.call<any[]>("notifications.list", { orderId: order.id })).some(
					n => n.kind === "shipping_notice"
				)
			);
		});
	});
});

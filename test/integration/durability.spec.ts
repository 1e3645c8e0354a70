/**
 * Durable events and payments when things fail, over real HTTP through a multi-process cluster on JetStream: a
 * consumer that was down catches up (and sends nothing twice), a node killed between its state write and the
 * publish still gets the event out after restart, a NATS restart loses no event and answers no 500, and a charge
 * that loses its race with expiry is refunded.
 */
import { sleep } from "../../scripts/lib/cluster";
import { type TestCluster, startCluster } from "../helpers/flashmart-cluster";
import { ADMIN, type Probe, eventually, expectError, shop, startProbe } from "../helpers/shop";

const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];
const ORDER_TTL_S = 6;

describe("durability", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;
	let probe: Probe;

	beforeAll(async () => {
		cluster = await startCluster({
			services: SERVICES,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: String(ORDER_TTL_S),
				ORDER_SWEEP_INTERVAL: "300",
				PAYMENT_PROVIDER_TIMEOUT: "1000",
				PAYMENT_RECONCILE_INTERVAL: "300",
				OUTBOX_RELAY_INTERVAL: "250",
				EVENT_ACK_WAIT: "2000"
			}
		});
		s = shop(cluster);
		probe = await startProbe(cluster, { consume: true });
	}, 120_000);
	afterAll(async () => {
		await probe?.stop();
		await cluster?.stop();
	});

	/** Checkout and pay, as one customer's purchase; answers the statuses and the order id (if one was made). */
	async function purchase(
		token: string,
		productId: string
	): Promise<{ statuses: number[]; orderId?: string }> {
		const statuses: number[] = [];
		const add = await s.addToCartRaw(token, productId, 1);
		statuses.push(add.status);
		if (add.status !== 200) return { statuses };
		const order = await s.checkout(token);
		statuses.push(order.status);
		if (order.status !== 201) return { statuses };
		const paid = await s.pay(token, order.body.id);
		statuses.push(paid.status);
		return { statuses, orderId: order.body.id };
	}

	/** `perCustomer` purchases for each customer, customers in parallel. */
	async function purchases(
		customers: Array<{ token: string }>,
		productId: string,
		perCustomer: number
	) {
		const results = await Promise.all(
			customers.map(async c => {
				const out = [];
				for (let i = 0; i < perCustomer; i++) out.push(await purchase(c.token, productId));
				return out;
			})
		);
		return results.flat();
	}

	it("a notifications node that was down catches up: 50 purchases, 50 confirmations and receipts, none twice", async () => {
		const productId = await s.product(100);
		const customers = await s.customers(5);
		await cluster.nodes.get("notifications")!.stop();

		const results = await purchases(customers, productId, 10);
		expect(results.flatMap(r => r.statuses).every(x => x === 200 || x === 201)).toBe(true);
		const orderIds = new Set(results.map(r => r.orderId!));
		expect(orderIds.size).toBe(50);
		await sleep(500);

		await cluster.startService("notifications");
		const mine = async () =>
			(await probe.call<any[]>("notifications.list", { limit: 1000 })).filter(n =>
				orderIds.has(n.orderId)
			);
		const recorded = await eventually(async () => {
			const list = await mine();
			return list.length >= 100 ? list : null;
		}, 30_000);
		await sleep(1000); // anything redelivered would show up now
		const final = await mine();
		expect(final).toHaveLength(100);
		expect(new Set(final.map(n => n.eventId)).size).toBe(100);
		for (const kind of ["order_confirmation", "payment_receipt"]) {
			const ofKind = recorded.filter(n => n.kind === kind);
			expect(new Set(ofKind.map(n => n.orderId)).size).toBe(50);
		}
	});

	it("kill -9 of the orders node between writing `paid` and publishing it: the event arrives after restart", async () => {
		const productId = await s.product(10);
		const { token } = await s.customer();

		// This orders node dies the moment it is about to publish an orders.paid event.
		await cluster.nodes.get("orders")!.stop();
		const crashing = await cluster.startService("orders", {
			TEST_CRASH_BEFORE_PUBLISH: "orders.paid"
		});
		await s.addToCart(token, productId, 2);
		const order = (
			await eventually(async () => {
				const res = await s.checkout(token);
				return res.status === 201 ? res : null;
			})
		).body;
		const paid = await s.pay(token, order.id);
		expect([503, 504]).toContain(paid.status);
		expect(await crashing.exited).toBe("SIGKILL");
		expect(probe.received("orders.paid", p => p.orderId === order.id)).toEqual([]);

		await cluster.startService("orders");
		const events = await eventually(async () => {
			const got = probe.received("orders.paid", p => p.orderId === order.id);
			return got.length > 0 ? got : null;
		}, 20_000);
		expect(events[0]).toMatchObject({ orderId: order.id, eventId: expect.any(String) });
		await eventually(async () => (await s.order(order.id)).status === "paid");
		// The sale the crash interrupted is finished by the sweeper: 2 units sold, none reserved.
		await eventually(async () => (await s.stock(productId)).onHand === 8);
		expect(await s.stock(productId)).toEqual({
			productId,
			variantId: productId,
			onHand: 8,
			reserved: 0,
			available: 8
		});
		expect((await probe.call<any[]>("payments.ledger", { orderId: order.id })).length).toBe(1);
	});

	it("a NATS restart during purchases: no answer is a 500, and no event is lost", async () => {
		const productId = await s.product(200);
		const customers = await s.customers(4);
		const run = purchases(customers, productId, 8);
		await sleep(700);
		await cluster.nats.restart();
		const results = await run;
		const statuses = results.flatMap(r => r.statuses);
		expect(statuses.every(x => [200, 201, 409, 503, 504].includes(x))).toBe(true);
		expect(statuses).not.toContain(500);

		// Every order the store has got its events out: created for all, paid for the paid ones.
		const orders = (await s.allOrders()).filter(o => o.items[0]?.productId === productId);
		expect(orders.length).toBeGreaterThan(0);
		await eventually(
			async () =>
				orders.every(o => probe.received("orders.created", p => p.orderId === o.id).length > 0) &&
				orders
					.filter(o => o.status === "paid")
					.every(o => probe.received("orders.paid", p => p.orderId === o.id).length > 0),
			30_000
		);
	});

	it("pay after expiry: 409 and nothing charged", async () => {
		const { token } = await s.customer();
		const productId = await s.product(5);
		const order = await s.pendingOrder(token, productId, 1);
		await eventually(async () => (await s.order(order.id)).status === "expired", 20_000);
		expectError(await s.pay(token, order.id), 409, "INVALID_ORDER_STATE");
		expect(await probe.call("payments.ledger", { orderId: order.id })).toEqual([]);
		await eventually(async () => (await s.stock(productId)).reserved === 0);
	});

	it("a charge that loses its race with expiry is refunded: the order stays expired, its stock released", async () => {
		const { token } = await s.customer();
		const productId = await s.product(5);
		const order = await s.pendingOrder(token, productId, 2);
		// The provider takes the money but does not answer; meanwhile the order expires.
		await sleep(Math.max(0, Date.parse(order.expiresAt) - Date.now() - 400));
		expectError(await s.pay(token, order.id, "tok_timeout"), 504, "REQUEST_TIMEOUT");
		await eventually(async () => (await s.order(order.id)).status === "expired");
		const ledger = await eventually(async () => {
			const entries = await probe.call<any[]>("payments.ledger", { orderId: order.id });
			return entries.length === 2 ? entries : null;
		}, 20_000);
		expect(ledger.map(e => e.id.slice(0, 3)).sort()).toEqual(["ch_", "re_"]);
		expect(await probe.call("payments.get", { orderId: order.id })).toMatchObject({
			status: "refunded"
		});
		expect((await s.order(order.id)).status).toBe("expired");
		expect(await s.stock(productId)).toEqual({
			productId,
			variantId: productId,
			onHand: 5,
			reserved: 0,
			available: 5
		});
	});
});

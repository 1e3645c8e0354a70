/**
 * A shopper and an operator for integration tests, over real HTTP through a test cluster's gateway: customers,
 * products, carts, checkout, pay, cancel, fulfilment, stock levels and order listings. Also a probe: a Moleculer node
 * of the test process that joins the cluster to call internal actions (payments.ledger, notifications.list) and to
 * consume the durable events as one more consumer group.
 */
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../../config";
import { eventsMiddleware } from "../../adapters/events";
import { type TestCluster, api } from "./flashmart-cluster";

export const ADMIN = { email: "orders-admin@flashmart.test", password: "orders-admin-pw" };
export const ADDRESS = {
	name: "Ada Lovelace",
	line1: "1 Analytical St",
	city: "London",
	postalCode: "N1 9GU",
	country: "gb"
};

export type Res = { status: number; headers: Headers; body: any };

export function expectError(res: Res, status: number, type: string) {
	expect({ status: res.status, type: res.body?.type }).toEqual({ status, type });
	expect(res.body).toMatchObject({ code: status, requestId: expect.any(String) });
}

/** Polls `check` until it returns a truthy value, which it answers (or throws after `timeoutMs`). */
export async function eventually<T>(
	check: () => Promise<T>,
	timeoutMs = 15000
): Promise<NonNullable<T>> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown;
	while (Date.now() < deadline) {
		try {
			const value = await check();
			if (value) return value as NonNullable<T>;
			last = value;
		} catch (err) {
			last = err;
		}
		await new Promise(resolve => setTimeout(resolve, 100));
	}
	throw new Error(`Condition not met within ${timeoutMs} ms (last: ${String(last)})`);
}

let seq = 0;
export const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now()}-${seq++}`;

/** Helpers bound to one cluster (or an embedded node: only its base URL is used). */
export function shop(cluster: Pick<TestCluster, "base">) {
	const base = cluster.base;
	let adminToken = "";
	return {
		base,
		async admin(): Promise<string> {
			if (!adminToken)
				adminToken = (await api(base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
			return adminToken;
		},
		async customer(): Promise<{ token: string; id: string }> {
			const res = await api(base, "POST", "/api/auth/register", {
				body: { email: `${unique("buyer")}@example.com`, password: "buyer-password", name: "Buyer" }
			});
			expect(res.status).toBe(201);
			return { token: res.body.accessToken, id: res.body.user.id };
		},
		/** Registers `n` buyers, 4 at a time: each costs a deliberate ~200 ms of scrypt on the users node. */
		async customers(n: number): Promise<Array<{ token: string; id: string }>> {
			const out: Array<{ token: string; id: string }> = [];
			while (out.length < n) {
				out.push(
					...(await Promise.all(
						Array.from({ length: Math.min(4, n - out.length) }, () => this.customer())
					))
				);
			}
			return out;
		},
		async product(stock: number, price = 1000): Promise<string> {
			const res = await api(base, "POST", "/api/products", {
				token: await this.admin(),
				body: { sku: unique("ORD"), name: "Order Test Item", price, category: "testing", stock }
			});
			expect(res.status).toBe(201);
			return res.body.id;
		},
		async addToCart(token: string, productId: string, quantity: number): Promise<void> {
			expect((await this.addToCartRaw(token, productId, quantity)).status).toBe(200);
		},
		addToCartRaw(token: string, productId: string, quantity: number): Promise<Res> {
			return api(base, "POST", "/api/cart/items", { token, body: { productId, quantity } });
		},
		checkout(
			token: string,
			key = unique("key"),
			body: unknown = { shippingAddress: ADDRESS }
		): Promise<Res> {
			return api(base, "POST", "/api/orders", { token, body, headers: { "Idempotency-Key": key } });
		},
		/** A pending order of `quantity` units of `productId` for the customer with `token`. */
		async pendingOrder(token: string, productId: string, quantity = 1): Promise<any> {
			await this.addToCart(token, productId, quantity);
			const res = await this.checkout(token);
			expect(res.status).toBe(201);
			return res.body;
		},
		pay(
			token: string,
			orderId: string,
			paymentToken = "tok_visa",
			key = unique("pay")
		): Promise<Res> {
			return api(base, "POST", `/api/orders/${orderId}/pay`, {
				token,
				body: { paymentToken },
				headers: { "Idempotency-Key": key }
			});
		},
		cancel(token: string, orderId: string): Promise<Res> {
			return api(base, "POST", `/api/orders/${orderId}/cancel`, { token });
		},
		async fulfil(step: "ship" | "deliver", orderId: string): Promise<Res> {
			return api(base, "POST", `/api/orders/${orderId}/${step}`, { token: await this.admin() });
		},
		async order(orderId: string): Promise<any> {
			return (await api(base, "GET", `/api/orders/${orderId}`, { token: await this.admin() })).body;
		},
		async stock(
			productId: string
		): Promise<{ onHand: number; reserved: number; available: number }> {
			return (await api(base, "GET", `/api/inventory/${productId}`, { token: await this.admin() }))
				.body;
		},
		/** Every order (admin view). A page answered 503/504 (nodes still rejoining after a failure) is asked again. */
		async allOrders(): Promise<any[]> {
			const rows: any[] = [];
			for (let page = 1; ; page++) {
				const res = await eventually(async () => {
					const got = await api(base, "GET", `/api/orders?page=${page}&pageSize=100`, {
						token: await this.admin()
					});
					if (got.status === 503 || got.status === 504) return null;
					if (got.status !== 200)
						throw new Error(`GET /api/orders: ${got.status} ${JSON.stringify(got.body)}`);
					return got;
				}, 20_000);
				rows.push(...res.body.rows);
				if (page >= res.body.totalPages) return rows;
			}
		}
	};
}

/** Reserved units per product, by the orders that should hold them (awaiting payment). */
export function heldByOrders(orders: any[]): Map<string, number> {
	return unitsByProduct(orders.filter(o => o.status === "pending_payment"));
}

/** Units per product over `orders`. */
export function unitsByProduct(orders: any[]): Map<string, number> {
	const units = new Map<string, number>();
	for (const o of orders) {
		for (const item of o.items)
			units.set(item.productId, (units.get(item.productId) ?? 0) + item.quantity);
	}
	return units;
}

/** The durable events of API.md. */
export const API_EVENTS = [
	"orders.created",
	"orders.paid",
	"orders.cancelled",
	"orders.expired",
	"orders.refunded",
	"orders.shipped",
	"orders.delivered",
	"payments.succeeded",
	"payments.failed",
	"payments.refunded",
	"inventory.low",
	"users.registered"
] as const;

export interface Probe {
	broker: ServiceBroker;
	/** Every API event this probe's consumer group received, in arrival order (duplicates kept). */
	events: Array<{ event: string; payload: any }>;
	received(event: string, match?: (payload: any) => boolean): any[];
	call<T = any>(action: string, params?: object): Promise<T>;
	stop(): Promise<void>;
}

/**
 * Joins the cluster as a node without services: calls internal actions, and (with `consume`) reads every API event
 * as its own consumer group, from the start of each stream.
 */
export async function startProbe(
	cluster: TestCluster,
	opts: { consume?: boolean } = {}
): Promise<Probe> {
	const nodeID = unique("probe");
	const cfg = loadConfig(
		{
			TRANSPORTER: cluster.nats.url,
			NAMESPACE: cluster.namespace,
			NODE_ID: nodeID,
			EVENT_ACK_WAIT: "2000"
		},
		{ withoutServices: true }
	);
	const broker = new ServiceBroker({
		namespace: cluster.namespace,
		nodeID,
		transporter: {
			type: "NATS",
			options: { url: cluster.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 500 }
		},
		logger: false,
		requestTimeout: 15000,
		middlewares: opts.consume ? [eventsMiddleware(cfg)] : []
	});
	const events: Array<{ event: string; payload: any }> = [];
	if (opts.consume) {
		broker.createService({
			name: "probe",
			channels: Object.fromEntries(
				API_EVENTS.map(event => [
					event,
					{
						group: `probe-${nodeID}`,
						handler: async (ctx: { params: unknown }) =>
							void events.push({ event, payload: ctx.params })
					}
				])
			)
		} as never);
	}
	await broker.start();
	return {
		broker,
		events,
		received: (event, match = () => true) =>
			events.filter(e => e.event === event && match(e.payload)).map(e => e.payload),
		call: (action, params = {}) => broker.call(action, params),
		stop: () => broker.stop()
	};
}

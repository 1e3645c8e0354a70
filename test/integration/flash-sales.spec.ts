/**
 * Issue 19 over real HTTP on a cluster with two gateways on a real nats-server: sales as a resource, the sale price in
 * carts and orders, SALE_NOT_STARTED, the per-customer limit racing across gateways, the allotment never exceeded,
 * sold out answered without inventory, unpaid sale holds going back to the sale, and admission refusing at once.
 */
import { freePort } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADDRESS, ADMIN, type Res, eventually, expectError, shop, unique } from "../helpers/shop";

const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe("flash sales", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;
	let ordersMetrics: string;

	beforeAll(async () => {
		const port = await freePort();
		ordersMetrics = `http://127.0.0.1:${port}/metrics`;
		cluster = await startCluster({
			services: ["users", "inventory", "products", "carts", "orders", "payments"],
			gateways: 2,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "600",
				ORDER_SWEEP_INTERVAL: "300",
				INVENTORY_SWEEP_INTERVAL: "300",
				HOLD_GRACE: "1000",
				SOLD_OUT_TTL: "60000"
			},
			envFor: { orders: { METRICS_PORT: String(port) } }
		});
		s = shop(cluster);
	}, 120_000);
	afterAll(() => cluster?.stop());

	async function createSale(body: Record<string, unknown>): Promise<Res> {
		return api(s.base, "POST", "/api/sales", { token: await s.admin(), body });
	}
	const live = (productId: string, item: Record<string, number> = {}, extra = {}) => ({
		name: unique("sale"),
		startsAt: iso(Date.now() - 1000),
		endsAt: iso(Date.now() + 3_600_000),
		items: [{ productId, salePrice: 500, units: 5, perCustomerLimit: 2, ...item }],
		...extra
	});
	const sale = async (id: string, base = s.base) =>
		(await api(base, "GET", `/api/sales/${id}`)).body;
	/** One buyer's attempt: one unit in the cart, then checkout, through gateway `base`. */
	async function buyOne(token: string, productId: string, base: string): Promise<Res> {
		const added = await api(base, "POST", "/api/cart/items", {
			token,
			body: { productId, quantity: 1 }
		});
		expect(added.status).toBe(200);
		return api(base, "POST", "/api/orders", {
			token,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": unique("sale-buy") }
		});
	}

	it("creates, reads, lists, changes and removes a sale; refuses what does not fit (422, 404, 409)", async () => {
		const product = await s.product(20, 1000);
		const bad = await createSale({
			name: "bad",
			startsAt: iso(Date.now() + 60_000),
			endsAt: iso(Date.now() + 30_000),
			items: [
				{ productId: product, salePrice: 500, units: 5, perCustomerLimit: 9 },
				{ productId: product, salePrice: 500, units: 5, perCustomerLimit: 1 }
			]
		});
		expectError(bad, 422, "VALIDATION_ERROR");
		expect(bad.body.data.map((f: { type: string }) => f.type).sort()).toEqual([
			"duplicate",
			"limitOverUnits",
			"saleWindow"
		]);
		expectError(
			await createSale({ ...live(product), startsAt: "tomorrow" }),
			422,
			"VALIDATION_ERROR"
		);
		// Each timestamp checked on its own (one shared rule object once let the second through).
		for (const field of ["startsAt", "endsAt"]) {
			expectError(
				await createSale({ ...live(product), [field]: "a".repeat(40) }),
				422,
				"VALIDATION_ERROR"
			);
		}
		expectError(await createSale(live("no-such-product")), 404, "NOT_FOUND");
		// A product id that names a property of every JavaScript object is no product.
		const { token: someone } = await s.customer();
		expectError(await s.addToCartRaw(someone, "valueOf", 1), 404, "NOT_FOUND");

		const body = {
			...live(product),
			startsAt: iso(Date.now() + 60_000),
			endsAt: iso(Date.now() + 120_000)
		};
		const created = await createSale(body);
		expect(created.status).toBe(201);
		expect(created.headers.get("location")).toBe(`/api/sales/${created.body.id}`);
		expect(created.body).toMatchObject({
			name: body.name,
			status: "scheduled",
			holdSeconds: 120,
			items: [{ productId: product, salePrice: 500, units: 5, perCustomerLimit: 2, unitsLeft: 5 }]
		});
		expectError(await createSale({ ...body, name: "overlap" }), 409, "SALE_OVERLAP");
		// Public reads, on either gateway.
		expect(await sale(created.body.id, cluster.gateways[1])).toEqual(created.body);
		const list = await api(s.base, "GET", "/api/sales?pageSize=100");
		expect(list.body.rows.map((r: { id: string }) => r.id)).toContain(created.body.id);
		expectError(await api(s.base, "GET", "/api/sales/nope"), 404, "NOT_FOUND");
		// Admin only.
		const { token } = await s.customer();
		expect((await api(s.base, "POST", "/api/sales", { token, body })).status).toBe(403);

		const patched = await api(s.base, "PATCH", `/api/sales/${created.body.id}`, {
			token: await s.admin(),
			body: {
				name: "renamed",
				items: [{ productId: product, salePrice: 400, units: 3, perCustomerLimit: 1 }]
			}
		});
		expect(patched.status).toBe(200);
		expect(patched.body).toMatchObject({
			name: "renamed",
			items: [{ salePrice: 400, unitsLeft: 3 }]
		});
		const removed = await api(s.base, "DELETE", `/api/sales/${created.body.id}`, {
			token: await s.admin()
		});
		expect(removed.status).toBe(204);
		// Every gateway's cached answer goes with the broadcast that follows the removal, well before its 5 s lifetime.
		for (const base of cluster.gateways) {
			await eventually(
				async () =>
					(await api(base, "GET", `/api/sales/${created.body.id}`)).status === 404 ? true : null,
				2500
			);
		}
		// Gone: the product sells as before.
		const { token: buyer } = await s.customer();
		expect((await buyOne(buyer, product, s.base)).status).toBe(201);
	});

	it("keeps a product back until its sale starts (409 SALE_NOT_STARTED), then sells it at the sale price", async () => {
		const product = await s.product(20, 1000);
		const startsAt = Date.now() + 2500;
		const created = await createSale({
			...live(product),
			startsAt: iso(startsAt),
			holdSeconds: 30
		});
		expect(created.status).toBe(201);
		const { token } = await s.customer();
		const early = await buyOne(token, product, s.base);
		expectError(early, 409, "SALE_NOT_STARTED");
		expect(early.body.data).toMatchObject({ saleId: created.body.id, productId: product });
		expect(await s.stock(product)).toMatchObject({ reserved: 0, available: 20 });

		await sleep(startsAt - Date.now() + 1200); // started, and carts' terms (1 s) read again
		expectError(
			await api(s.base, "PATCH", `/api/sales/${created.body.id}`, {
				token: await s.admin(),
				body: { name: "too late" }
			}),
			409,
			"SALE_STARTED"
		);
		const cart = (await api(s.base, "GET", "/api/cart", { token })).body;
		expect(cart.items).toEqual([
			expect.objectContaining({
				productId: product,
				unitPrice: 500,
				lineTotal: 500,
				saleId: created.body.id
			})
		]);
		const before = Date.now();
		const order = await api(s.base, "POST", "/api/orders", {
			token,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": unique("sale") }
		});
		expect(order.status).toBe(201);
		expect(order.body.items).toEqual([
			expect.objectContaining({ productId: product, unitPrice: 500, saleId: created.body.id })
		]);
		expect(order.body.total).toBe(500);
		// The sale's hold time (30 s), not ORDER_TTL (600 s).
		const expires = Date.parse(order.body.expiresAt) - before;
		expect(expires).toBeGreaterThan(25_000);
		expect(expires).toBeLessThan(35_000);
		// The sale's units left, fresh on both gateways' caches.
		for (const base of cluster.gateways) {
			await eventually(async () =>
				(await sale(created.body.id, base)).items[0].unitsLeft === 4 ? true : null
			);
		}
		expect((await s.pay(token, order.body.id)).status).toBe(200);
		const stats = await api(s.base, "GET", `/api/sales/${created.body.id}`);
		expect(stats.body.items[0].unitsLeft).toBe(4);
		expect(await s.stock(product)).toMatchObject({ onHand: 19, reserved: 0, available: 19 });
	}, 30_000);

	it("holds one customer to the per-customer limit across concurrent checkouts on two gateways", async () => {
		const product = await s.product(100, 1000);
		const created = await createSale(live(product, { units: 50, perCustomerLimit: 3 }));
		const { token } = await s.customer();
		const results = await Promise.all(
			Array.from({ length: 8 }, (_, i) => buyOne(token, product, cluster.gateways[i % 2]))
		);
		const statuses = results.map(r => `${r.status} ${r.status === 201 ? "" : r.body.type}`.trim());
		for (const st of statuses) {
			expect([
				"201",
				"409 PURCHASE_LIMIT_EXCEEDED",
				"409 CART_CHANGED",
				"422 EMPTY_CART"
			]).toContain(st);
		}
		const orders = (await api(s.base, "GET", "/api/orders?pageSize=100", { token })).body.rows;
		const units = orders
			.filter((o: { status: string }) => o.status === "pending_payment")
			.flatMap((o: { items: Array<{ quantity: number }> }) => o.items)
			.reduce((n: number, i: { quantity: number }) => n + i.quantity, 0);
		expect(units).toBeLessThanOrEqual(3);
		// Whatever the race left (a cart of more units than the limit is refused whole and given back), buying on to
		// the limit and past it one unit at a time: exactly 3 units, then 409.
		await api(s.base, "DELETE", "/api/cart", { token });
		for (let held = units; held < 3; held++) {
			expect((await buyOne(token, product, cluster.gateways[held % 2])).status).toBe(201);
		}
		await api(s.base, "DELETE", "/api/cart", { token });
		const over = await buyOne(token, product, cluster.gateways[1]);
		expectError(over, 409, "PURCHASE_LIMIT_EXCEEDED");
		expect(over.body.data).toMatchObject({
			saleId: created.body.id,
			perCustomerLimit: 3,
			alreadyHeld: 3
		});
		expect(await s.stock(product)).toMatchObject({ reserved: 3 });
		expect((await sale(created.body.id)).items[0].unitsLeft).toBe(47);
	}, 30_000);

	it("never exceeds the allotment; once sold out, answers 409 OUT_OF_STOCK without asking inventory", async () => {
		const product = await s.product(100, 1000);
		const created = await createSale(live(product, { units: 5, perCustomerLimit: 1 }));
		const buyers = await s.customers(8);
		const results = await Promise.all(
			buyers.map((b, i) => buyOne(b.token, product, cluster.gateways[i % 2]))
		);
		expect(results.filter(r => r.status === 201)).toHaveLength(5);
		for (const r of results.filter(r => r.status !== 201)) expectError(r, 409, "OUT_OF_STOCK");
		expect(await s.stock(product)).toMatchObject({ onHand: 100, reserved: 5, available: 95 });
		expect((await sale(created.body.id)).items[0].unitsLeft).toBe(0);

		const counted = async () => {
			const text = await (await fetch(ordersMetrics)).text();
			const line = text
				.split("\n")
				.find(l => l.startsWith('flashmart_checkout_rejections_total{reason="sold_out"'));
			return Number(line?.split(" ").pop() ?? NaN);
		};
		const before = await counted();
		const late = await s.customer();
		const refused = await buyOne(late.token, product, cluster.gateways[1]);
		expectError(refused, 409, "OUT_OF_STOCK");
		expect(refused.body.data.lines).toEqual([
			{ productId: product, variantId: product, requested: 1, available: 0 }
		]);
		expect(await counted()).toBe(before + 1);

		// A cancel brings a unit back: the next buyer gets it.
		const won = results.findIndex(r => r.status === 201);
		expect((await s.cancel(buyers[won].token, results[won].body.id)).status).toBe(200);
		await eventually(async () =>
			(await sale(created.body.id)).items[0].unitsLeft === 1 ? true : null
		);
		await api(s.base, "DELETE", "/api/cart", { token: late.token });
		const again = await eventually(async () => {
			const r = await buyOne(late.token, product, cluster.gateways[1]);
			if (r.status === 201) return r;
			await api(s.base, "DELETE", "/api/cart", { token: late.token });
			return null;
		});
		expect(again.body.items[0].saleId).toBe(created.body.id);
	}, 60_000);

	it("lets an unpaid sale order go after the sale's hold time: its unit and the buyer's count go back", async () => {
		const product = await s.product(10, 1000);
		const created = await createSale(
			live(product, { units: 1, perCustomerLimit: 1 }, { holdSeconds: 10 })
		);
		const { token } = await s.customer();
		const first = await buyOne(token, product, s.base);
		expect(first.status).toBe(201);
		expect((await sale(created.body.id)).items[0].unitsLeft).toBe(0);
		const expired = await eventually(async () => {
			const o = await s.order(first.body.id);
			return o.status === "expired" ? o : null;
		}, 20_000);
		expect(expired.status).toBe("expired");
		await eventually(async () =>
			(await sale(created.body.id)).items[0].unitsLeft === 1 ? true : null
		);
		expect(await s.stock(product)).toMatchObject({ reserved: 0, available: 10 });
		// The same buyer may buy again: the expired order no longer counts against the limit.
		await api(s.base, "DELETE", "/api/cart", { token });
		const second = await eventually(async () => {
			const r = await buyOne(token, product, s.base);
			if (r.status === 201) return r;
			await api(s.base, "DELETE", "/api/cart", { token });
			return null;
		});
		expect(second.body.items[0].saleId).toBe(created.body.id);
	}, 40_000);

	it("sells at the normal price and from the normal stock once the sale has ended", async () => {
		const product = await s.product(10, 1000);
		const created = await createSale({
			...live(product, { units: 2, perCustomerLimit: 2 }),
			endsAt: iso(Date.now() + 2000)
		});
		await sleep(3200);
		expect((await sale(created.body.id)).status).toBe("ended");
		const { token } = await s.customer();
		await s.addToCart(token, product, 5);
		const order = await s.checkout(token);
		expect(order.status).toBe(201);
		expect(order.body.items).toEqual([expect.not.objectContaining({ saleId: expect.anything() })]);
		expect(order.body.total).toBe(5000);
	}, 20_000);
});

describe("checkout admission", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products", "carts", "orders"],
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password },
			envFor: { orders: { CHECKOUT_CONCURRENCY: "1", CHECKOUT_QUEUE: "1" } }
		});
		s = shop(cluster);
	}, 120_000);
	afterAll(() => cluster?.stop());

	it("refuses checkouts past what an orders node takes at once with 503 and Retry-After, at once", async () => {
		const product = await s.product(100, 1000);
		const buyers = await s.customers(12);
		for (const b of buyers) await s.addToCart(b.token, product, 1);
		const started = Date.now();
		const results = await Promise.all(buyers.map(b => s.checkout(b.token)));
		const elapsed = Date.now() - started;
		const refused = results.filter(r => r.status === 503);
		expect(refused.length).toBeGreaterThan(0);
		for (const r of refused) {
			expectError(r, 503, "SERVICE_UNAVAILABLE");
			expect(r.headers.get("retry-after")).toBe("1");
		}
		expect(results.every(r => r.status === 201 || r.status === 503)).toBe(true);
		expect(elapsed).toBeLessThan(10_000); // nothing waited for the request deadline
		const admitted = results.filter(r => r.status === 201).length;
		expect(await s.stock(product)).toMatchObject({ reserved: admitted });
		// A refused checkout changed nothing: its retry goes through.
		const i = results.findIndex(r => r.status === 503);
		const retry = await eventually(async () => {
			const r = await s.checkout(buyers[i].token);
			return r.status === 201 ? r : null;
		});
		expect(retry.status).toBe(201);
	}, 60_000);
});

/**
 * API.md's Orders section (checkout, idempotency, listing, cancel, state machine) and the invariants of stock under
 * concurrency, expiry and crashes, over real HTTP through a multi-process cluster on a real nats-server.
 */
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADDRESS, ADMIN, type Res, expectError, heldByOrders, shop, unique } from "../helpers/shop";
import { sleep } from "../../scripts/lib/cluster";

const SERVICES = ["users", "inventory", "products", "carts", "orders"];

describe("orders", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;

	beforeAll(async () => {
		cluster = await startCluster({
			services: SERVICES,
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ORDER_TTL: "600" }
		});
		s = shop(cluster);
	}, 90_000);
	afterAll(() => cluster?.stop());

	describe("orders.create", () => {
		it("builds an order from the cart at server prices, reserves its stock and empties the cart", async () => {
			const { token, id: userId } = await s.customer();
			const a = await s.product(5, 1250);
			const b = await s.product(3, 799);
			await s.addToCart(token, a, 2);
			await s.addToCart(token, b, 1);
			const res = await s.checkout(token);
			expect(res.status).toBe(201);
			expect(res.body).toMatchObject({
				id: expect.any(String),
				status: "pending_payment",
				subtotal: 3299,
				total: 3299,
				currency: "USD",
				expiresAt: expect.any(String),
				createdAt: expect.any(String)
			});
			expect(res.body.userId).toBe(userId);
			expect(res.body.items).toEqual(
				expect.arrayContaining([
					expect.objectContaining({ productId: a, unitPrice: 1250, quantity: 2, lineTotal: 2500 }),
					expect.objectContaining({ productId: b, unitPrice: 799, quantity: 1, lineTotal: 799 })
				])
			);
			expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
			expect(await s.stock(a)).toMatchObject({ onHand: 5, reserved: 2, available: 3 });
			expect(await s.stock(b)).toMatchObject({ onHand: 3, reserved: 1, available: 2 });
			expect((await api(s.base, "GET", "/api/cart", { token })).body.items).toEqual([]);
		});

		it("needs an Idempotency-Key of 1-255 visible characters (400 IDEMPOTENCY_KEY_REQUIRED)", async () => {
			const { token } = await s.customer();
			await s.addToCart(token, await s.product(5), 1);
			const none = await api(s.base, "POST", "/api/orders", {
				token,
				body: { shippingAddress: ADDRESS }
			});
			expectError(none, 400, "IDEMPOTENCY_KEY_REQUIRED");
			expectError(await s.checkout(token, "x".repeat(256)), 400, "IDEMPOTENCY_KEY_REQUIRED");
			expectError(await s.checkout(token, "has space"), 400, "IDEMPOTENCY_KEY_REQUIRED");
		});

		it("answers a replay with the same order and Idempotent-Replayed: true, and creates one order", async () => {
			const { token } = await s.customer();
			await s.addToCart(token, await s.product(5), 1);
			const key = unique("replay");
			const first = await s.checkout(token, key);
			expect(first.status).toBe(201);
			const again = await s.checkout(token, key);
			expect(again.status).toBe(201);
			expect(again.headers.get("idempotent-replayed")).toBe("true");
			expect(again.body).toEqual(first.body);
			const mine = await api(s.base, "GET", "/api/orders", { token });
			expect(mine.body.total).toBe(1);
		});

		it("refuses the same key with another body (422 IDEMPOTENCY_KEY_REUSED)", async () => {
			const { token } = await s.customer();
			await s.addToCart(token, await s.product(5), 1);
			const key = unique("reuse");
			expect((await s.checkout(token, key)).status).toBe(201);
			const other = await s.checkout(token, key, {
				shippingAddress: { ...ADDRESS, city: "Paris" }
			});
			expectError(other, 422, "IDEMPOTENCY_KEY_REUSED");
		});

		it("scopes keys per user", async () => {
			const one = await s.customer();
			const two = await s.customer();
			const product = await s.product(5);
			await s.addToCart(one.token, product, 1);
			await s.addToCart(two.token, product, 1);
			const key = unique("shared");
			const a = await s.checkout(one.token, key);
			const b = await s.checkout(two.token, key);
			expect([a.status, b.status]).toEqual([201, 201]);
			expect(a.body.id).not.toBe(b.body.id);
			expect(b.headers.get("idempotent-replayed")).toBeNull();
		});

		it("refuses an empty cart (422 EMPTY_CART) and a bad address (422 naming the fields)", async () => {
			const { token } = await s.customer();
			expectError(await s.checkout(token), 422, "EMPTY_CART");
			await s.addToCart(token, await s.product(5), 1);
			const bad = await s.checkout(token, unique("k"), {
				shippingAddress: { name: "", city: "X" }
			});
			expectError(bad, 422, "VALIDATION_ERROR");
			const fields = bad.body.data.map((d: { field: string }) => d.field);
			expect(fields).toEqual(
				expect.arrayContaining(["shippingAddress.name", "shippingAddress.line1"])
			);
		});

		it("answers 409 OUT_OF_STOCK naming the short lines, holding nothing and keeping the cart", async () => {
			const { token } = await s.customer();
			const plenty = await s.product(10);
			const scarce = await s.product(1);
			await s.addToCart(token, plenty, 2);
			await s.addToCart(token, scarce, 3);
			const res = await s.checkout(token);
			expectError(res, 409, "OUT_OF_STOCK");
			expect(res.body.data.lines).toEqual([
				{ productId: scarce, variantId: scarce, requested: 3, available: 1 }
			]);
			expect(await s.stock(plenty)).toMatchObject({ reserved: 0, available: 10 });
			expect(await s.stock(scarce)).toMatchObject({ reserved: 0, available: 1 });
			expect((await api(s.base, "GET", "/api/cart", { token })).body.items).toHaveLength(2);
		});

		it("never creates two orders for 10 simultaneous requests with one key", async () => {
			const { token } = await s.customer();
			await s.addToCart(token, await s.product(50), 1);
			const key = unique("race");
			const answers = await Promise.all(Array.from({ length: 10 }, () => s.checkout(token, key)));
			for (const a of answers) expect([201, 409]).toContain(a.status);
			const created = answers.filter(a => a.status === 201);
			expect(created.length).toBeGreaterThanOrEqual(1);
			expect(new Set(created.map(a => a.body.id)).size).toBe(1);
			for (const a of answers.filter(a => a.status === 409))
				expect(a.body.type).toBe("IDEMPOTENCY_KEY_IN_USE");
			expect((await api(s.base, "GET", "/api/orders", { token })).body.total).toBe(1);
		});
	});

	describe("concurrency", () => {
		it("sells exactly N units to 2.5N buyers of one unit each, and refuses the rest with 409", async () => {
			const N = 10;
			const product = await s.product(N);
			// Registered a few at a time (scrypt is deliberately slow); the race under test is the checkouts below.
			const buyers = await s.customers(Math.ceil(N * 2.5));
			await Promise.all(buyers.map(b => s.addToCart(b.token, product, 1)));
			const answers = await Promise.all(buyers.map(b => s.checkout(b.token)));
			expect(answers.filter(a => a.status === 201)).toHaveLength(N);
			const refused = answers.filter(a => a.status !== 201);
			expect(refused.every(a => a.status === 409 && a.body.type === "OUT_OF_STOCK")).toBe(true);
			expect(await s.stock(product)).toEqual({
				productId: product,
				variantId: product,
				onHand: N,
				reserved: N,
				available: 0
			});
		}, 60_000);

		it("leaves no partial reservation when multi-line carts compete for overlapping products", async () => {
			const a = await s.product(6);
			const b = await s.product(6);
			const buyers = await s.customers(12);
			await Promise.all(
				buyers.map(async (buyer, i) => {
					await s.addToCart(buyer.token, a, 1 + (i % 2));
					await s.addToCart(buyer.token, b, 2 - (i % 2));
				})
			);
			const answers = await Promise.all(buyers.map(buyer => s.checkout(buyer.token)));
			for (const ans of answers) expect([201, 409]).toContain(ans.status);
			const orders = answers.filter(x => x.status === 201).map(x => x.body);
			const held = heldByOrders(orders);
			for (const p of [a, b]) {
				const stock = await s.stock(p);
				expect(stock.reserved).toBe(held.get(p) ?? 0);
				expect(stock.available).toBe(6 - stock.reserved);
				expect(stock.available).toBeGreaterThanOrEqual(0);
			}
		}, 60_000);
	});

	describe("orders.list and orders.get", () => {
		it("shows customers their own orders only (someone else's is 404); admins see all and filter by user", async () => {
			const one = await s.customer();
			const two = await s.customer();
			await s.addToCart(one.token, await s.product(5), 1);
			const order = (await s.checkout(one.token)).body;
			expect(
				(await api(s.base, "GET", `/api/orders/${order.id}`, { token: one.token })).body.id
			).toBe(order.id);
			expectError(
				await api(s.base, "GET", `/api/orders/${order.id}`, { token: two.token }),
				404,
				"NOT_FOUND"
			);
			expect((await api(s.base, "GET", "/api/orders", { token: two.token })).body.total).toBe(0);
			const page = (
				await api(s.base, "GET", `/api/orders?userId=${one.id}`, { token: await s.admin() })
			).body;
			expect(page).toMatchObject({ total: 1, page: 1, pageSize: 20, totalPages: 1 });
			expect(page.rows[0].id).toBe(order.id);
			expect(
				(await api(s.base, "GET", `/api/orders/${order.id}`, { token: await s.admin() })).status
			).toBe(200);
			expectError(await api(s.base, "GET", "/api/orders"), 401, "NO_TOKEN");
		});
	});

	describe("orders.cancel and the state machine", () => {
		it("cancels an unpaid order and gives its stock back; a second cancel is 409 INVALID_ORDER_STATE", async () => {
			const { token } = await s.customer();
			const product = await s.product(4);
			await s.addToCart(token, product, 3);
			const order = (await s.checkout(token)).body;
			expect(await s.stock(product)).toMatchObject({ reserved: 3, available: 1 });
			const res = await api(s.base, "POST", `/api/orders/${order.id}/cancel`, { token });
			expect(res.status).toBe(200);
			expect(res.body.status).toBe("cancelled");
			expect(await s.stock(product)).toMatchObject({ onHand: 4, reserved: 0, available: 4 });
			expectError(
				await api(s.base, "POST", `/api/orders/${order.id}/cancel`, { token }),
				409,
				"INVALID_ORDER_STATE"
			);
		});

		it("keeps onHand from dropping below the units reserved (409 STOCK_BELOW_RESERVED)", async () => {
			const { token } = await s.customer();
			const product = await s.product(4);
			await s.addToCart(token, product, 3);
			expect((await s.checkout(token)).status).toBe(201);
			const admin = await s.admin();
			const below = await api(s.base, "PUT", `/api/inventory/${product}`, {
				token: admin,
				body: { onHand: 2 }
			});
			expectError(below, 409, "STOCK_BELOW_RESERVED");
			expect(await s.stock(product)).toMatchObject({ onHand: 4, reserved: 3, available: 1 });
			const atReserved = await api(s.base, "PUT", `/api/inventory/${product}`, {
				token: admin,
				body: { onHand: 3 }
			});
			expect(atReserved.body).toEqual({
				productId: product,
				variantId: product,
				onHand: 3,
				reserved: 3,
				available: 0
			});
		});

		it("refuses transitions that do not exist, and admin routes to customers", async () => {
			const { token } = await s.customer();
			await s.addToCart(token, await s.product(4), 1);
			const order = (await s.checkout(token)).body;
			const admin = await s.admin();
			expectError(
				await api(s.base, "POST", `/api/orders/${order.id}/ship`, { token: admin }),
				409,
				"INVALID_ORDER_STATE"
			);
			expectError(
				await api(s.base, "POST", `/api/orders/${order.id}/deliver`, { token: admin }),
				409,
				"INVALID_ORDER_STATE"
			);
			expectError(
				await api(s.base, "POST", `/api/orders/${order.id}/ship`, { token }),
				403,
				"FORBIDDEN"
			);
			expectError(
				await api(s.base, "POST", "/api/orders/nope/ship", { token: admin }),
				404,
				"NOT_FOUND"
			);
		});
	});
});

describe("orders expiry", () => {
	let cluster: TestCluster;
	beforeAll(async () => {
		cluster = await startCluster({
			services: SERVICES,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "2",
				ORDER_SWEEP_INTERVAL: "200"
			}
		});
	}, 90_000);
	afterAll(() => cluster?.stop());

	it("expires an unpaid order at expiresAt and gives its stock back", async () => {
		const s = shop(cluster);
		const { token } = await s.customer();
		const product = await s.product(3);
		await s.addToCart(token, product, 2);
		const order = (await s.checkout(token)).body;
		expect(await s.stock(product)).toMatchObject({ reserved: 2, available: 1 });
		let status = order.status;
		for (let i = 0; i < 50 && status !== "expired"; i++) {
			await sleep(200);
			status = (await api(s.base, "GET", `/api/orders/${order.id}`, { token })).body.status;
		}
		expect(status).toBe("expired");
		let stock = await s.stock(product);
		for (let i = 0; i < 20 && stock.reserved !== 0; i++) {
			await sleep(100);
			stock = await s.stock(product);
		}
		expect(stock).toMatchObject({ onHand: 3, reserved: 0, available: 3 });
		expectError(
			await api(s.base, "POST", `/api/orders/${order.id}/cancel`, { token }),
			409,
			"INVALID_ORDER_STATE"
		);
	}, 30_000);
});

describe.each(["inventory", "orders"])("a crash of the %s node during 200 checkouts", victim => {
	let cluster: TestCluster;
	beforeAll(async () => {
		cluster = await startCluster({
			services: SERVICES,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "600",
				ORDER_SWEEP_INTERVAL: "300",
				REQUEST_TIMEOUT: "2000"
			}
		});
	}, 90_000);
	afterAll(() => cluster?.stop());

	it("keeps every unit available, held by a live order, or sold, and answers every client in bounds", async () => {
		const s = shop(cluster);
		const products = [await s.product(60), await s.product(60), await s.product(60)];
		const buyers = await s.customers(200);
		await Promise.all(buyers.map((b, i) => s.addToCart(b.token, products[i % 3], 1 + (i % 2))));

		const inFlight = buyers.map(b =>
			s
				.checkout(b.token)
				.catch(err => ({ status: 0, headers: new Headers(), body: String(err) }) as Res)
		);
		await sleep(150);
		await cluster.nodes.get(victim)!.kill9();
		await sleep(500);
		await cluster.startService(victim);
		const answers = await Promise.all(inFlight);
		for (const a of answers) expect([201, 409, 503, 504]).toContain(a.status);
		const counts: Record<number, number> = {};
		for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
		process.stdout.write(`answers while the ${victim} node crashed: ${JSON.stringify(counts)}\n`);
		// The crash really hit requests in flight (else this test would prove nothing).
		expect((counts[503] ?? 0) + (counts[504] ?? 0)).toBeGreaterThan(0);

		// Let the sweeper give back what abandoned checkouts held (it runs every 300 ms; abandoned = 3 x timeout).
		const deadline = Date.now() + 20_000;
		let consistent = false;
		let detail = "";
		while (!consistent && Date.now() < deadline) {
			await sleep(500);
			try {
				const held = heldByOrders(await s.allOrders());
				const stocks = await Promise.all(products.map(p => s.stock(p)));
				detail = JSON.stringify({ stocks, held: [...held.entries()] });
				consistent = stocks.every(
					(st, i) =>
						st.onHand === 60 &&
						st.available >= 0 &&
						st.available === st.onHand - st.reserved &&
						st.reserved === (held.get(products[i]) ?? 0)
				);
			} catch (err) {
				detail = String(err);
			}
		}
		expect(detail && consistent ? "consistent" : detail).toBe("consistent");
	}, 120_000);
});

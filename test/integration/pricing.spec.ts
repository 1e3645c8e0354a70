/**
 * Issue 21 over real HTTP on a cluster with two gateways on a real nats-server: discount codes (admin CRUD, applied to
 * carts, redeemed atomically at checkout, given back once), shipping methods, tax rates, saved addresses, and totals
 * that always add up; old clients' checkouts unchanged.
 */
import http from "node:http";
import { freePort } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import {
	ADDRESS,
	ADMIN,
	type Probe,
	type Res,
	eventually,
	expectError,
	shop,
	startProbe,
	unique
} from "../helpers/shop";

const code = () =>
	unique("C")
		.replace(/[^A-Za-z0-9]/g, "")
		.slice(-24)
		.toUpperCase();
const iso = (ms: number) => new Date(ms).toISOString();

/** The contract's identity (API.md "Totals"). */
function expectAddsUp(t: any, taxIncluded: boolean) {
	expect(t.total).toBe(
		t.subtotal - t.discountTotal + t.shippingTotal + (taxIncluded ? 0 : t.taxTotal)
	);
}

describe("pricing: discount codes, shipping, tax, addresses", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;
	let probe: Probe;
	const metricsPorts = { pricing: 0, orders: 0 };

	/** A counter's value on a node's /metrics (its series with the label `label`), or NaN while absent. */
	async function counter(
		node: keyof typeof metricsPorts,
		name: string,
		label: string
	): Promise<number> {
		// http.get, not fetch: fetch refuses some ports ("bad port") that freePort may hand out.
		const text = await new Promise<string>((resolve, reject) => {
			http
				.get(`http://127.0.0.1:${metricsPorts[node]}/metrics`, res => {
					let body = "";
					res.on("data", chunk => (body += chunk));
					res.on("end", () => resolve(body));
				})
				.on("error", reject);
		});
		const line = text.split("\n").find(l => l.startsWith(`${name}{`) && l.includes(label));
		return Number(line?.split(" ").pop() ?? NaN);
	}

	beforeAll(async () => {
		metricsPorts.pricing = await freePort();
		metricsPorts.orders = await freePort();
		cluster = await startCluster({
			services: ["users", "products", "inventory", "carts", "orders", "payments", "pricing"],
			gateways: 2,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "600",
				ORDER_SWEEP_INTERVAL: "300",
				CHECKOUT_CONCURRENCY: "64",
				CHECKOUT_QUEUE: "128"
			},
			envFor: {
				pricing: { METRICS_PORT: String(metricsPorts.pricing) },
				orders: { METRICS_PORT: String(metricsPorts.orders) }
			}
		});
		s = shop(cluster);
		probe = await startProbe(cluster, { consume: true });
	}, 120_000);
	afterAll(async () => {
		await probe?.stop();
		await cluster?.stop();
	});

	const admin = async (method: string, path: string, body?: unknown, base = s.base) =>
		api(base, method, path, { token: await s.admin(), body });
	async function createCode(fields: Record<string, unknown>): Promise<any> {
		const res = await admin("POST", "/api/discounts", {
			code: code(),
			type: "percentage",
			value: 10,
			...fields
		});
		expect(res.status).toBe(201);
		return res.body;
	}
	const discount = async (id: string) => (await admin("GET", `/api/discounts/${id}`)).body;
	async function product(price: number, extra: Record<string, unknown> = {}): Promise<string> {
		const res = await admin("POST", "/api/products", {
			sku: unique("PRC"),
			name: "Pricing Item",
			price,
			category: "testing",
			stock: 10_000,
			...extra
		});
		expect(res.status).toBe(201);
		return res.body.id;
	}
	const apply = (token: string, c: string, base = s.base) =>
		api(base, "POST", "/api/cart/discount", { token, body: { code: c } });
	const checkout = (
		token: string,
		body: unknown = { shippingAddress: ADDRESS },
		base = s.base
	): Promise<Res> =>
		api(base, "POST", "/api/orders", { token, body, headers: { "Idempotency-Key": unique("k") } });

	it("manages discount codes, shipping methods and tax rates (admin only) and lists methods by country", async () => {
		const customer = await s.customer();
		const c = code();
		const created = await admin("POST", "/api/discounts", {
			code: c.toLowerCase(),
			type: "fixed",
			value: 500,
			minSubtotal: 1000,
			usageLimit: 5,
			perCustomerLimit: 1
		});
		expect(created.status).toBe(201);
		expect(created.headers.get("location")).toBe(`/api/discounts/${created.body.id}`);
		expect(created.body).toMatchObject({
			code: c,
			type: "fixed",
			value: 500,
			currency: "USD",
			used: 0
		});
		expectError(
			await admin("POST", "/api/discounts", { code: c, type: "percentage", value: 5 }),
			409,
			"DISCOUNT_CODE_TAKEN"
		);
		expectError(
			await admin("POST", "/api/discounts", { code: code(), type: "percentage", value: 101 }),
			422,
			"VALIDATION_ERROR"
		);
		const badType = await admin("POST", "/api/discounts", { code: code(), type: "bogo", value: 1 });
		expectError(badType, 422, "VALIDATION_ERROR");
		expect(badType.body.data[0].message).toBe(
			"'bogo' is not a valid discount type; allowed values: percentage, fixed"
		);
		// Three letters are not a currency: a fixed amount off in "QQQ" is a typo, refused before it is stored.
		const madeUp = await admin("POST", "/api/discounts", {
			code: code(),
			type: "fixed",
			value: 100,
			currency: "QQQ"
		});
		expectError(madeUp, 422, "VALIDATION_ERROR");
		expect(madeUp.body.data).toEqual([
			expect.objectContaining({ field: "currency", type: "currency" })
		]);
		expectError(
			await api(s.base, "POST", "/api/discounts", {
				token: customer.token,
				body: { code: code(), type: "percentage", value: 5 }
			}),
			403,
			"FORBIDDEN"
		);
		const changed = await admin("PATCH", `/api/discounts/${created.body.id}`, { value: 700 });
		expect(changed.body).toMatchObject({ value: 700, code: c, currency: "USD" });
		// A change of one field keeps the others: the validity window survives a new value.
		const windowed = await admin("POST", "/api/discounts", {
			code: code(),
			type: "percentage",
			value: 10,
			startsAt: "2026-01-01T00:00:00Z",
			endsAt: "2099-01-01T00:00:00Z"
		});
		const window = { startsAt: "2026-01-01T00:00:00.000Z", endsAt: "2099-01-01T00:00:00.000Z" };
		expect(windowed.body).toMatchObject(window);
		expect(
			(await admin("PATCH", `/api/discounts/${windowed.body.id}`, { value: 20 })).body
		).toMatchObject({ value: 20, ...window });
		expect((await admin("GET", `/api/discounts/${windowed.body.id}`)).body).toMatchObject({
			value: 20,
			...window
		});
		const list = await admin("GET", "/api/discounts?pageSize=100");
		expect(list.body.rows.some((d: any) => d.id === created.body.id)).toBe(true);
		expect((await admin("DELETE", `/api/discounts/${created.body.id}`)).status).toBe(204);
		expectError(await admin("GET", `/api/discounts/${created.body.id}`), 404, "NOT_FOUND");
		// The code's name is free again once deleted.
		expect(
			(await admin("POST", "/api/discounts", { code: c, type: "percentage", value: 5 })).status
		).toBe(201);

		const method = await admin("POST", "/api/shipping-methods", {
			name: "Island post",
			price: 900,
			currency: "USD",
			countries: ["is", "FO"]
		});
		expect(method.status).toBe(201);
		expect(method.headers.get("location")).toBe(`/api/shipping-methods/${method.body.id}`);
		expect(method.body.countries).toEqual(["IS", "FO"]);
		expect(method.body.currency).toBe("USD");
		const unknownCurrency = await admin("POST", "/api/shipping-methods", {
			name: "Nowhere post",
			price: 900,
			currency: "ABC",
			countries: ["IS"]
		});
		expectError(unknownCurrency, 422, "VALIDATION_ERROR");
		expect(unknownCurrency.body.data[0]).toMatchObject({ field: "currency", type: "currency" });
		const nowhere = await admin("POST", "/api/shipping-methods", {
			name: "Nowhere post",
			price: 900,
			countries: ["IS", "XX"]
		});
		expectError(nowhere, 422, "VALIDATION_ERROR");
		expect(nowhere.body.data[0]).toMatchObject({ field: "countries", type: "country" });
		// A country that is no country's code lists no method; it is not an error to ask.
		expect((await api(s.base, "GET", "/api/shipping-methods?country=XX")).body).toEqual([]);
		const forIceland = await api(cluster.gateways[1], "GET", "/api/shipping-methods?country=IS");
		expect(forIceland.status).toBe(200);
		expect(forIceland.body.map((m: any) => m.id)).toContain(method.body.id);
		expect(
			(await api(s.base, "GET", "/api/shipping-methods?country=NO")).body.map((m: any) => m.id)
		).not.toContain(method.body.id);
		expect(
			(await admin("PATCH", `/api/shipping-methods/${method.body.id}`, { price: 950 })).body.price
		).toBe(950);
		expect((await admin("DELETE", `/api/shipping-methods/${method.body.id}`)).status).toBe(204);
		expectError(
			await api(s.base, "GET", `/api/shipping-methods/${method.body.id}`),
			404,
			"NOT_FOUND"
		);

		const before = (await admin("GET", "/api/tax-rates")).body;
		expectError(
			await admin("PUT", "/api/tax-rates", [{ country: "XX1", rate: 5 }]),
			422,
			"VALIDATION_ERROR"
		);
		expectError(
			await admin("PUT", "/api/tax-rates", [
				{ country: "FR", rate: 2000 },
				{ country: "fr", rate: 100 }
			]),
			422,
			"VALIDATION_ERROR"
		);
		// Two letters are not a country ("UK" is GB), and a null category is refused, not read as none.
		for (const [rates, field, type] of [
			[[{ country: "UK", rate: 2000 }], "rates[0].country", "country"],
			[[{ country: "FR", category: null, rate: 550 }], "rates[0].category", "nullNotAllowed"]
		] as const) {
			const res = await admin("PUT", "/api/tax-rates", rates);
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual([expect.objectContaining({ field, type })]);
		}
		expectError(
			await api(s.base, "PUT", "/api/tax-rates", { token: customer.token, body: [] }),
			403,
			"FORBIDDEN"
		);
		expect(before).toEqual((await admin("GET", "/api/tax-rates")).body);
	});

	it("keeps a customer's saved addresses, each usable at checkout by id; someone else's is not", async () => {
		const [a, b] = await s.customers(2);
		const saved = await api(s.base, "POST", "/api/users/me/addresses", {
			token: a.token,
			body: { ...ADDRESS, label: "Home" }
		});
		expect(saved.status).toBe(201);
		expect(saved.body).toMatchObject({ label: "Home", country: "GB", id: expect.any(String) });
		const patched = await api(
			cluster.gateways[1],
			"PATCH",
			`/api/users/me/addresses/${saved.body.id}`,
			{
				token: a.token,
				body: { city: "Cambridge" }
			}
		);
		expect(patched.body).toMatchObject({ city: "Cambridge", label: "Home" });
		expect(
			(await api(s.base, "GET", "/api/users/me/addresses", { token: a.token })).body
		).toHaveLength(1);
		expect((await api(s.base, "GET", "/api/users/me/addresses", { token: b.token })).body).toEqual(
			[]
		);
		expectError(
			await api(s.base, "PATCH", `/api/users/me/addresses/${saved.body.id}`, {
				token: b.token,
				body: { city: "X" }
			}),
			404,
			"NOT_FOUND"
		);
		expectError(
			await api(s.base, "POST", "/api/users/me/addresses", { token: a.token, body: { name: "x" } }),
			422,
			"VALIDATION_ERROR"
		);
		const nowhere = await api(s.base, "POST", "/api/users/me/addresses", {
			token: a.token,
			body: { ...ADDRESS, country: "ZZ" }
		});
		expectError(nowhere, 422, "VALIDATION_ERROR");
		expect(nowhere.body.data).toEqual([
			expect.objectContaining({ field: "country", type: "country" })
		]);

		const p = await product(1000);
		await s.addToCart(b.token, p, 1);
		expectError(
			await checkout(b.token, { shippingAddressId: saved.body.id }),
			422,
			"VALIDATION_ERROR"
		);
		await s.addToCart(a.token, p, 1);
		expectError(await checkout(a.token, {}), 422, "VALIDATION_ERROR");
		expectError(
			await checkout(a.token, { shippingAddress: { ...ADDRESS, country: "XX" } }),
			422,
			"VALIDATION_ERROR"
		);
		const order = await checkout(a.token, { shippingAddressId: saved.body.id });
		expect(order.status).toBe(201);
		expect(order.body.shippingAddress).toMatchObject({
			city: "Cambridge",
			line1: ADDRESS.line1,
			country: "GB"
		});
		expect(
			(await api(s.base, "DELETE", `/api/users/me/addresses/${saved.body.id}`, { token: a.token }))
				.status
		).toBe(204);
		expect((await s.order(order.body.id)).shippingAddress.city).toBe("Cambridge");
	});

	it("checks out without a code or a shipping method as before: totals with zeros", async () => {
		const { token } = await s.customer();
		const p = await product(1299);
		await s.addToCart(token, p, 2);
		const cart = await api(s.base, "GET", "/api/cart", { token });
		expect(cart.body).toMatchObject({
			subtotal: 2598,
			discountTotal: 0,
			shippingTotal: 0,
			taxTotal: 0,
			total: 2598
		});
		const order = await checkout(token);
		expect(order.status).toBe(201);
		expect(order.body).toMatchObject({
			status: "pending_payment",
			subtotal: 2598,
			discountTotal: 0,
			shippingTotal: 0,
			taxTotal: 0,
			total: 2598
		});
		expect(order.body.discount).toBeUndefined();
		const paid = await s.pay(token, order.body.id);
		expect(paid.body.payment.amount).toBe(2598);
	});

	it("refuses unusable codes with their reason (422 DISCOUNT_INVALID) and drops the discount when the cart no longer qualifies", async () => {
		const { token } = await s.customer();
		const p = await product(1000);
		await s.addToCart(token, p, 1);
		const reason = async (c: string) => {
			const res = await apply(token, c);
			expectError(res, 422, "DISCOUNT_INVALID");
			return res.body.data.reason;
		};
		expect(await reason("NO-SUCH-CODE")).toBe("unknown");
		expect(
			await reason(
				(await createCode({ endsAt: iso(Date.now() - 1000), startsAt: iso(Date.now() - 5000) }))
					.code
			)
		).toBe("expired");
		expect(await reason((await createCode({ startsAt: iso(Date.now() + 3_600_000) })).code)).toBe(
			"not_started"
		);
		expect(await reason((await createCode({ minSubtotal: 1001 })).code)).toBe("min_subtotal");
		expect(await reason((await createCode({ productIds: ["some-other-product"] })).code)).toBe(
			"not_applicable"
		);
		expect(
			await reason((await createCode({ type: "fixed", value: 100, currency: "EUR" })).code)
		).toBe("not_applicable");

		const min = await createCode({ minSubtotal: 2000, value: 10 });
		await s.addToCart(token, p, 1);
		const applied = await apply(token, min.code.toLowerCase(), cluster.gateways[1]);
		expect(applied.status).toBe(200);
		expect(applied.body).toMatchObject({
			subtotal: 2000,
			discountTotal: 200,
			total: 1800,
			discount: { code: min.code, amount: 200 }
		});
		const lowered = await api(s.base, "PATCH", `/api/cart/items/${p}`, {
			token,
			body: { quantity: 1 }
		});
		expect(lowered.body).toMatchObject({
			subtotal: 1000,
			discountTotal: 0,
			total: 1000,
			discount: { code: min.code, amount: 0, reason: "min_subtotal" }
		});
		expectError(await checkout(token), 422, "DISCOUNT_INVALID");
		// The refused checkout took nothing: the cart is as it was.
		expect((await api(s.base, "GET", "/api/cart", { token })).body.items).toHaveLength(1);
		const removed = await api(s.base, "DELETE", "/api/cart/discount", { token });
		expect(removed.status).toBe(200);
		expect(removed.body.discount).toBeUndefined();
		expect((await checkout(token)).status).toBe(201);
	});

	it("redeems a code with 10 uses left exactly 10 times among 50 concurrent checkouts on two gateways", async () => {
		const p = await product(1000);
		const limited = await createCode({ usageLimit: 10, value: 25 });
		const buyers = await s.customers(50);
		const redemptions = "flashmart_discount_redemptions_total";
		const redeemed = 'outcome="redeemed"';
		const exhausted = 'outcome="exhausted"';
		const before = [
			await counter("pricing", redemptions, redeemed),
			await counter("pricing", redemptions, exhausted)
		];
		for (const [i, b] of buyers.entries()) {
			await s.addToCart(b.token, p, 1);
			expect((await apply(b.token, limited.code, cluster.gateways[i % 2])).status).toBe(200);
		}
		const results = await Promise.all(
			buyers.map((b, i) => checkout(b.token, { shippingAddress: ADDRESS }, cluster.gateways[i % 2]))
		);
		const placed = results.filter(r => r.status === 201);
		const refused = results.filter(r => r.status !== 201);
		expect(placed).toHaveLength(10);
		for (const r of refused) {
			expectError(r, 422, "DISCOUNT_INVALID");
			expect(r.body.data.reason).toBe("exhausted");
		}
		for (const r of placed)
			expect(r.body).toMatchObject({
				subtotal: 1000,
				discountTotal: 250,
				total: 750,
				discount: { code: limited.code }
			});
		expect((await discount(limited.id)).used).toBe(10);
		expect(await counter("pricing", redemptions, redeemed)).toBe(before[0] + 10);
		// Refusals counted at the take: those the checkout's own check saw first are 422 before any take.
		const refusedAtTake = (await counter("pricing", redemptions, exhausted)) - before[1];
		expect(refusedAtTake).toBeGreaterThanOrEqual(0);
		expect(refusedAtTake).toBeLessThanOrEqual(40);
		// A refused buyer keeps the cart's lines, and the code shows why it no longer applies.
		const cart = await api(s.base, "GET", "/api/cart", {
			token: buyers[results.indexOf(refused[0])].token
		});
		expect(cart.body).toMatchObject({
			subtotal: 1000,
			total: 1000,
			discount: { reason: "exhausted" }
		});
	}, 120_000);

	it("holds one customer to the per-customer limit, racing from two gateways and at the store", async () => {
		const p = await product(500);
		const once = await createCode({ perCustomerLimit: 1, usageLimit: 100 });
		const { token, id: userId } = await s.customer();
		await s.addToCart(token, p, 1);
		expect((await apply(token, once.code)).status).toBe(200);
		const racing = await Promise.all(
			Array.from({ length: 6 }, (_, i) =>
				checkout(token, { shippingAddress: ADDRESS }, cluster.gateways[i % 2])
			)
		);
		expect(racing.filter(r => r.status === 201)).toHaveLength(1);
		for (const r of racing.filter(x => x.status !== 201)) expect([409, 422]).toContain(r.status);
		await s.addToCart(token, p, 1);
		const again = await apply(token, once.code, cluster.gateways[1]);
		expectError(again, 422, "DISCOUNT_INVALID");
		expect(again.body.data.reason).toBe("customer_limit");
		expect((await discount(once.id)).used).toBe(1);

		// The limit holds at pricing itself when redemptions for one customer race (other orders of theirs).
		const twice = await createCode({ perCustomerLimit: 2, usageLimit: 100 });
		const redeems = await Promise.allSettled(
			Array.from({ length: 20 }, (_, i) =>
				probe.call("pricing.redeem", { discountId: twice.id, userId, orderId: unique(`race${i}`) })
			)
		);
		expect(redeems.filter(r => r.status === "fulfilled")).toHaveLength(2);
		for (const r of redeems.filter(x => x.status === "rejected")) {
			expect((r as PromiseRejectedResult).reason).toMatchObject({
				type: "DISCOUNT_INVALID",
				data: { reason: "customer_limit" }
			});
		}
		expect((await discount(twice.id)).used).toBe(2);
	}, 60_000);

	it("gives a cancelled order's redemption back once, so another customer can use it", async () => {
		const p = await product(800);
		const single = await createCode({ usageLimit: 1, value: 50 });
		const [a, b] = await s.customers(2);
		await s.addToCart(a.token, p, 1);
		await apply(a.token, single.code);
		const order = await checkout(a.token);
		expect(order.status).toBe(201);
		expect(order.body).toMatchObject({ discountTotal: 400, total: 400 });
		expect((await discount(single.id)).used).toBe(1);
		await s.addToCart(b.token, p, 1);
		expectError(await apply(b.token, single.code), 422, "DISCOUNT_INVALID");

		expect((await s.cancel(a.token, order.body.id)).body.status).toBe("cancelled");
		expectError(await s.cancel(a.token, order.body.id), 409, "INVALID_ORDER_STATE");
		await eventually(async () => (await discount(single.id)).used === 0);
		// Giving back again (a retry, the sweeper) changes nothing.
		await probe.call("pricing.release", {
			discountId: single.id,
			userId: a.id,
			orderId: order.body.id
		});
		expect((await discount(single.id)).used).toBe(0);

		expect((await apply(b.token, single.code)).status).toBe(200);
		expect((await checkout(b.token)).status).toBe(201);
		expect((await discount(single.id)).used).toBe(1);
		const cancelled = await eventually(
			async () => probe.received("orders.cancelled", e => e.orderId === order.body.id)[0]
		);
		expect(cancelled).toMatchObject({
			subtotal: 800,
			discountTotal: 400,
			total: 400,
			discountCode: single.code
		});
	}, 60_000);

	it("finishes the give-back of an order cancelled while pricing was down (the sweeper)", async () => {
		const p = await product(600);
		const single = await createCode({ usageLimit: 1 });
		const { token } = await s.customer();
		await s.addToCart(token, p, 1);
		await apply(token, single.code);
		const order = await checkout(token);
		expect(order.status).toBe(201);
		await cluster.nodes.get("pricing")!.stop();
		try {
			const cancelled = await s.cancel(token, order.body.id);
			expect(cancelled.status).toBe(200);
			expect(cancelled.body.status).toBe("cancelled");
		} finally {
			await cluster.startService("pricing");
		}
		await eventually(async () => (await discount(single.id))?.used === 0, 30_000);
	}, 60_000);

	it("adds up a tax-inclusive cart with a percentage code and shipping at rounding edges, in cart, order, payment and event", async () => {
		const rates = await admin("PUT", "/api/tax-rates", [
			{ country: "DE", rate: 1900 },
			{ country: "DE", category: "books", rate: 700 }
		]);
		expect(rates.status).toBe(200);
		expect((await admin("GET", "/api/tax-rates")).body).toEqual([
			{ country: "DE", rate: 1900 },
			{ country: "DE", category: "books", rate: 700 }
		]);
		const book = await product(1005, { currency: "EUR", category: "books" });
		const toy = await product(333, { currency: "EUR" });
		const pin = await product(5, { currency: "EUR" });
		const method = await admin("POST", "/api/shipping-methods", {
			name: "DHL",
			price: 499,
			currency: "EUR",
			countries: ["DE"]
		});
		const off = await createCode({ value: 15 });
		const { token } = await s.customer();
		await s.addToCart(token, book, 1);
		await s.addToCart(token, toy, 1);
		await s.addToCart(token, pin, 2);
		expect((await apply(token, off.code)).status).toBe(200);
		expectError(
			await checkout(token, { shippingAddress: ADDRESS, shippingMethodId: method.body.id }),
			422,
			"VALIDATION_ERROR"
		);
		const de = { ...ADDRESS, country: "de", city: "Berlin", postalCode: "10115" };
		const order = await checkout(
			token,
			{ shippingAddress: de, shippingMethodId: method.body.id },
			cluster.gateways[1]
		);
		expect(order.status).toBe(201);
		// Lines 1005 (books 7%), 333 and 10 (19%); 15% off per line, half up: 150.75→151, 49.95→50, 1.5→2.
		// Tax contained, per line: 854×700/10700 = 55.87→56; 283×1900/11900 = 45.18→45; 8×1900/11900 = 1.28→1;
		// shipping 499×1900/11900 = 79.67→80.
		expect(order.body).toMatchObject({
			currency: "EUR",
			subtotal: 1348,
			discountTotal: 203,
			shippingTotal: 499,
			taxTotal: 182,
			total: 1644,
			discount: { code: off.code, amount: 203 },
			shippingMethod: { id: method.body.id, name: "DHL", price: 499 }
		});
		expectAddsUp(order.body, true);
		const net = "flashmart_revenue_net_minor_units_total";
		const netBefore = (await counter("orders", net, 'currency="EUR"')) || 0;
		const paid = await s.pay(token, order.body.id);
		expect(paid.body.payment.amount).toBe(1644);
		// Revenue net of discounts and tax: what was charged less the tax it contains.
		expect(await counter("orders", net, 'currency="EUR"')).toBe(netBefore + 1644 - 182);
		const created = await eventually(
			async () => probe.received("orders.created", e => e.orderId === order.body.id)[0]
		);
		expect(created).toMatchObject({
			subtotal: 1348,
			discountTotal: 203,
			shippingTotal: 499,
			taxTotal: 182,
			total: 1644
		});
	}, 60_000);
	it("adds tax on top where prices exclude it (the cart at TAX_DEFAULT_COUNTRY), and refuses an order a code makes free", async () => {
		expect((await admin("PUT", "/api/tax-rates", [{ country: "US", rate: 825 }])).status).toBe(200);
		try {
			const p = await product(1999);
			const method = await admin("POST", "/api/shipping-methods", {
				name: "Ground",
				price: 799,
				currency: "USD",
				countries: ["US"],
				freeAbove: 5000
			});
			const fixed = await createCode({ type: "fixed", value: 1000, currency: "USD" });
			const { token } = await s.customer();
			await s.addToCart(token, p, 3);
			const cart = await apply(token, fixed.code);
			// 5997 - 1000 = 4997 (under freeAbove), at 8.25% on top: 412.25 → 412.
			expect(cart.body).toMatchObject({
				subtotal: 5997,
				discountTotal: 1000,
				shippingTotal: 0,
				taxTotal: 412,
				total: 5409
			});
			expectAddsUp(cart.body, false);
			const us = { ...ADDRESS, country: "US", city: "Boston", postalCode: "02108" };
			const order = await checkout(token, {
				shippingAddress: us,
				shippingMethodId: method.body.id
			});
			// Shipping 799 taxed at the country's rate: 65.9175 → 66.
			expect(order.body).toMatchObject({
				subtotal: 5997,
				discountTotal: 1000,
				shippingTotal: 799,
				taxTotal: 478,
				total: 6274
			});
			expectAddsUp(order.body, false);

			const all = await createCode({ value: 100 });
			const other = await s.customer();
			await s.addToCart(other.token, p, 1);
			expect((await apply(other.token, all.code)).body.total).toBe(0);
			expectError(await checkout(other.token), 422, "ZERO_TOTAL");
			expect((await discount(all.id)).used).toBe(0);
			expect(
				(await api(s.base, "GET", "/api/cart", { token: other.token })).body.items
			).toHaveLength(1);
		} finally {
			await admin("PUT", "/api/tax-rates", []);
		}
	}, 60_000);
});

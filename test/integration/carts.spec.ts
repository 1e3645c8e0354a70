/**
 * API.md's Cart section over real HTTP: a gateway, a users, an inventory, a products and a carts node on a real
 * nats-server. Products are made by the admin for each test (the products node does not seed in cluster mode).
 */
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";

const ADMIN = { email: "carts-admin@flashmart.test", password: "carts-admin-pw" };

type CartItem = {
	productId: string;
	name: string;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
};
type Cart = {
	items: CartItem[];
	subtotal: number;
	currency: string;
	discountTotal: number;
	shippingTotal: number;
	taxTotal: number;
	total: number;
};
type Product = { id: string; sku: string; name: string; price: number; currency: string };
type Res = { status: number; body: any };

function expectError(res: Res, status: number, type: string) {
	expect(res.status).toBe(status);
	expect(res.body).toMatchObject({ code: status, type, requestId: expect.any(String) });
	expect(JSON.stringify(res.body)).not.toMatch(/stack|node_modules/);
}

function expectCart(res: Res): Cart {
	expect(res.status).toBe(200);
	const cart = res.body as Cart;
	// Round 2 totals (API.md "Totals"): a cluster without a pricing node answers them as zeros.
	expect(Object.keys(cart).sort()).toEqual([
		"currency",
		"discountTotal",
		"items",
		"shippingTotal",
		"subtotal",
		"taxTotal",
		"total"
	]);
	expect(cart).toMatchObject({
		discountTotal: 0,
		shippingTotal: 0,
		taxTotal: 0,
		total: cart.subtotal
	});
	for (const item of cart.items) {
		// Round 2 variants: each line names its variant; these products have no options, so it is the default one.
		expect(Object.keys(item).sort()).toEqual([
			"lineTotal",
			"name",
			"options",
			"productId",
			"quantity",
			"sku",
			"unitPrice",
			"variantId"
		]);
		expect(item).toMatchObject({ variantId: item.productId, options: {} });
		expect(item.lineTotal).toBe(item.unitPrice * item.quantity);
	}
	expect(cart.subtotal).toBe(cart.items.reduce((sum, i) => sum + i.lineTotal, 0));
	return cart;
}

describe("carts over a cluster", () => {
	let cluster: TestCluster;
	let gw: string;
	let admin: string;

	let seq = 0;
	const newProduct = async (fields: Record<string, unknown> = {}): Promise<Product> => {
		const res = await api(gw, "POST", "/api/products", {
			token: admin,
			body: {
				sku: `CART-${Date.now()}-${seq++}`,
				name: `Cart Kettle ${seq}`,
				price: 2500,
				category: "testing",
				stock: 10,
				...fields
			}
		});
		expect(res.status).toBe(201);
		return res.body as Product;
	};
	const newCustomer = async (): Promise<string> => {
		const res = await api(gw, "POST", "/api/auth/register", {
			body: {
				email: `cart-shopper-${Date.now()}-${seq++}@example.com`,
				password: "shopper-password",
				name: "Cart Shopper"
			}
		});
		expect(res.status).toBe(201);
		return res.body.accessToken as string;
	};

	const getCart = (token: string) => api(gw, "GET", "/api/cart", { token });
	const add = (token: string, body: Record<string, unknown>) =>
		api(gw, "POST", "/api/cart/items", { token, body });
	const setQuantity = (token: string, productId: string, body: Record<string, unknown>) =>
		api(gw, "PATCH", `/api/cart/items/${encodeURIComponent(productId)}`, { token, body });
	const removeLine = (token: string, productId: string) =>
		api(gw, "DELETE", `/api/cart/items/${encodeURIComponent(productId)}`, { token });

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products", "carts"],
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }
		});
		gw = cluster.base;
		admin = (await api(gw, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		expect(admin).toEqual(expect.any(String));
	}, 90_000);

	afterAll(() => cluster?.stop());

	describe("carts.get", () => {
		it("answers an empty cart as { items: [], subtotal: 0, currency: USD }", async () => {
			const customer = await newCustomer();
			expect(expectCart(await getCart(customer))).toMatchObject({
				items: [],
				subtotal: 0,
				currency: "USD"
			});
		});

		it("answers 401 NO_TOKEN to every cart operation without a token", async () => {
			expectError(await api(gw, "GET", "/api/cart"), 401, "NO_TOKEN");
			expectError(
				await api(gw, "POST", "/api/cart/items", { body: { productId: "x", quantity: 1 } }),
				401,
				"NO_TOKEN"
			);
			expectError(
				await api(gw, "PATCH", "/api/cart/items/x", { body: { quantity: 1 } }),
				401,
				"NO_TOKEN"
			);
			expectError(await api(gw, "DELETE", "/api/cart/items/x"), 401, "NO_TOKEN");
			expectError(await api(gw, "DELETE", "/api/cart"), 401, "NO_TOKEN");
		});

		it("answers 401 INVALID_TOKEN to a forged token", async () => {
			expectError(await getCart("not.a.token"), 401, "INVALID_TOKEN");
		});

		it("shows a price change by the admin in the next read", async () => {
			const customer = await newCustomer();
			const p = await newProduct({ price: 1000 });
			expect(expectCart(await add(customer, { productId: p.id, quantity: 3 })).subtotal).toBe(3000);
			const patched = await api(gw, "PATCH", `/api/products/${p.id}`, {
				token: admin,
				body: { price: 1250, name: "Renamed Kettle" }
			});
			expect(patched.status).toBe(200);
			const cart = expectCart(await getCart(customer));
			expect(cart.items).toEqual([
				{
					productId: p.id,
					variantId: p.id,
					sku: p.sku,
					options: {},
					name: "Renamed Kettle",
					unitPrice: 1250,
					quantity: 3,
					lineTotal: 3750
				}
			]);
			expect(cart.subtotal).toBe(3750);
		});
	});

	describe("carts.add", () => {
		it("answers 200 with the cart at the server's prices, ignoring a client-sent price", async () => {
			const customer = await newCustomer();
			const p = await newProduct({ price: 4200 });
			const res = await add(customer, {
				productId: p.id,
				quantity: 2,
				price: 1,
				unitPrice: 1,
				lineTotal: 2,
				subtotal: 2,
				name: "Free stuff",
				currency: "EUR"
			});
			expect(expectCart(res)).toMatchObject({
				items: [
					{
						productId: p.id,
						name: p.name,
						unitPrice: 4200,
						quantity: 2,
						lineTotal: 8400
					}
				],
				subtotal: 8400,
				currency: "USD"
			});
			expect(expectCart(await getCart(customer))).toMatchObject(res.body);
		});

		it("adds to the existing line of the same product, and keeps lines in the order added", async () => {
			const customer = await newCustomer();
			const a = await newProduct({ price: 100 });
			const b = await newProduct({ price: 300 });
			await add(customer, { productId: a.id, quantity: 2 });
			await add(customer, { productId: b.id, quantity: 1 });
			const cart = expectCart(await add(customer, { productId: a.id, quantity: 5 }));
			expect(cart.items.map(i => [i.productId, i.quantity])).toEqual([
				[a.id, 7],
				[b.id, 1]
			]);
			expect(cart.subtotal).toBe(7 * 100 + 300);
		});

		it("holds 99 units in a line and refuses 100 with 422 VALIDATION_ERROR on quantity", async () => {
			const customer = await newCustomer();
			const p = await newProduct();
			const res100 = await add(customer, { productId: p.id, quantity: 100 });
			expectError(res100, 422, "VALIDATION_ERROR");
			expect(res100.body.data).toEqual([expect.objectContaining({ field: "quantity" })]);
			expect(
				expectCart(await add(customer, { productId: p.id, quantity: 99 })).items[0]
			).toMatchObject({
				quantity: 99
			});
		});

		it("refuses a sum over 99 (60 + 60) with 422 VALIDATION_ERROR and keeps the line as it was", async () => {
			const customer = await newCustomer();
			const p = await newProduct();
			expectCart(await add(customer, { productId: p.id, quantity: 60 }));
			const res = await add(customer, { productId: p.id, quantity: 60 });
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual([expect.objectContaining({ field: "quantity" })]);
			expect(expectCart(await getCart(customer)).items[0].quantity).toBe(60);
			expect(
				expectCart(await add(customer, { productId: p.id, quantity: 39 })).items[0].quantity
			).toBe(99);
		});

		it.each([
			["0", 0],
			["-1", -1],
			["1.5", 1.5],
			['"2"', "2"],
			["null", null],
			["an object", { $gt: 0 }],
			["missing", undefined]
		])("refuses quantity %s with 422 VALIDATION_ERROR", async (_label, quantity) => {
			const customer = await newCustomer();
			const p = await newProduct();
			const body: Record<string, unknown> = { productId: p.id };
			if (quantity !== undefined) body.quantity = quantity;
			const res = await add(customer, body);
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual(
				expect.arrayContaining([expect.objectContaining({ field: "quantity" })])
			);
			expect(expectCart(await getCart(customer)).items).toEqual([]);
		});

		it.each([
			["missing", undefined],
			["empty", ""],
			["operator-shaped", { $ne: "" }],
			["too long", "x".repeat(65)]
		])("refuses a %s productId with 422 VALIDATION_ERROR", async (_label, productId) => {
			const customer = await newCustomer();
			const body: Record<string, unknown> = { quantity: 1 };
			if (productId !== undefined) body.productId = productId;
			const res = await add(customer, body);
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual(
				expect.arrayContaining([expect.objectContaining({ field: "productId" })])
			);
		});

		it("answers 404 NOT_FOUND for an unknown product", async () => {
			const customer = await newCustomer();
			expectError(
				await add(customer, { productId: "no-such-product", quantity: 1 }),
				404,
				"NOT_FOUND"
			);
			expect(expectCart(await getCart(customer)).items).toEqual([]);
		});

		it("answers 404 for an archived product, and drops its line from a cart that had it", async () => {
			const customer = await newCustomer();
			const kept = await newProduct({ price: 700 });
			const archived = await newProduct({ price: 900 });
			await add(customer, { productId: kept.id, quantity: 1 });
			expect(
				expectCart(await add(customer, { productId: archived.id, quantity: 2 })).items
			).toHaveLength(2);

			const del = await api(gw, "DELETE", `/api/products/${archived.id}`, { token: admin });
			expect(del.status).toBe(204);

			expect(expectCart(await getCart(customer))).toMatchObject({
				items: [
					{
						productId: kept.id,
						name: kept.name,
						unitPrice: 700,
						quantity: 1,
						lineTotal: 700
					}
				],
				subtotal: 700,
				currency: "USD"
			});
			expectError(await add(customer, { productId: archived.id, quantity: 1 }), 404, "NOT_FOUND");
			expectError(await setQuantity(customer, archived.id, { quantity: 3 }), 404, "NOT_FOUND");
			expectError(await removeLine(customer, archived.id), 404, "NOT_FOUND");
			// A later write stores the cart without the archived line; reads stay the same.
			expect(expectCart(await add(customer, { productId: kept.id, quantity: 1 })).items).toEqual([
				expect.objectContaining({ productId: kept.id, quantity: 2 })
			]);
		});

		it("answers 422 CURRENCY_MISMATCH for a product in another currency than the cart's", async () => {
			const customer = await newCustomer();
			const usd = await newProduct({ price: 1000 });
			const eur = await newProduct({ price: 2000, currency: "EUR" });
			await add(customer, { productId: usd.id, quantity: 1 });
			const res = await add(customer, { productId: eur.id, quantity: 1 });
			expectError(res, 422, "CURRENCY_MISMATCH");
			expect(res.body.data).toEqual([expect.objectContaining({ field: "productId" })]);
			expect(expectCart(await getCart(customer)).items.map(i => i.productId)).toMatchObject([
				usd.id
			]);

			// An empty cart takes the currency of its first line.
			const other = await newCustomer();
			expect(expectCart(await add(other, { productId: eur.id, quantity: 2 }))).toMatchObject({
				subtotal: 4000,
				currency: "EUR"
			});
			expectError(await add(other, { productId: usd.id, quantity: 1 }), 422, "CURRENCY_MISMATCH");
		});

		it("loses no units when many adds to one line race", async () => {
			const customer = await newCustomer();
			const p = await newProduct();
			const results = await Promise.all(
				Array.from({ length: 12 }, () => add(customer, { productId: p.id, quantity: 2 }))
			);
			expect(results.map(r => r.status)).toEqual(Array(12).fill(200));
			expect(expectCart(await getCart(customer)).items).toEqual([
				expect.objectContaining({ productId: p.id, quantity: 24 })
			]);
		});

		it("loses no line when adds of different products race on a new cart", async () => {
			const customer = await newCustomer();
			const products = await Promise.all(Array.from({ length: 6 }, () => newProduct()));
			const results = await Promise.all(
				products.map(p => add(customer, { productId: p.id, quantity: 1 }))
			);
			expect(results.map(r => r.status)).toEqual(Array(6).fill(200));
			expect(
				expectCart(await getCart(customer))
					.items.map(i => i.productId)
					.sort()
			).toEqual(products.map(p => p.id).sort());
		});
	});

	describe("carts.update", () => {
		it("sets the quantity of a line", async () => {
			const customer = await newCustomer();
			const p = await newProduct({ price: 500 });
			await add(customer, { productId: p.id, quantity: 10 });
			const cart = expectCart(await setQuantity(customer, p.id, { quantity: 3, price: 1 }));
			expect(cart.items).toEqual([expect.objectContaining({ productId: p.id, quantity: 3 })]);
			expect(cart.subtotal).toBe(1500);
			expect(expectCart(await getCart(customer))).toMatchObject(cart);
		});

		it("answers 404 NOT_FOUND when the product is not in the cart", async () => {
			const customer = await newCustomer();
			const inCart = await newProduct();
			const notInCart = await newProduct();
			expectError(await setQuantity(customer, inCart.id, { quantity: 1 }), 404, "NOT_FOUND");
			await add(customer, { productId: inCart.id, quantity: 1 });
			expectError(await setQuantity(customer, notInCart.id, { quantity: 1 }), 404, "NOT_FOUND");
			expectError(
				await setQuantity(customer, "no-such-product", { quantity: 1 }),
				404,
				"NOT_FOUND"
			);
		});

		it.each([
			["0", 0],
			["100", 100],
			["1.5", 1.5],
			['"2"', "2"],
			["missing", undefined]
		])("refuses quantity %s with 422 VALIDATION_ERROR", async (_label, quantity) => {
			const customer = await newCustomer();
			const p = await newProduct();
			await add(customer, { productId: p.id, quantity: 4 });
			const body: Record<string, unknown> = {};
			if (quantity !== undefined) body.quantity = quantity;
			const res = await setQuantity(customer, p.id, body);
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual([expect.objectContaining({ field: "quantity" })]);
			expect(expectCart(await getCart(customer)).items[0].quantity).toBe(4);
		});

		it("takes the product from the path, never from the body", async () => {
			const customer = await newCustomer();
			const a = await newProduct();
			const b = await newProduct();
			await add(customer, { productId: a.id, quantity: 1 });
			await add(customer, { productId: b.id, quantity: 1 });
			const cart = expectCart(await setQuantity(customer, a.id, { productId: b.id, quantity: 7 }));
			expect(cart.items.map(i => [i.productId, i.quantity])).toEqual([
				[a.id, 7],
				[b.id, 1]
			]);
		});
	});

	describe("carts.remove", () => {
		it("removes a line and answers the cart", async () => {
			const customer = await newCustomer();
			const a = await newProduct({ price: 100 });
			const b = await newProduct({ price: 200 });
			await add(customer, { productId: a.id, quantity: 1 });
			await add(customer, { productId: b.id, quantity: 2 });
			const cart = expectCart(await removeLine(customer, a.id));
			expect(cart.items.map(i => i.productId)).toEqual([b.id]);
			expect(cart.subtotal).toBe(400);
			expect(expectCart(await getCart(customer))).toMatchObject(cart);
			expect(expectCart(await removeLine(customer, b.id))).toMatchObject({
				items: [],
				subtotal: 0,
				currency: "USD"
			});
		});

		it("answers 404 NOT_FOUND when the product is not in the cart", async () => {
			const customer = await newCustomer();
			const p = await newProduct();
			expectError(await removeLine(customer, p.id), 404, "NOT_FOUND");
			await add(customer, { productId: p.id, quantity: 1 });
			expectCart(await removeLine(customer, p.id));
			expectError(await removeLine(customer, p.id), 404, "NOT_FOUND");
		});
	});

	describe("carts.clear", () => {
		it("answers 204 with an empty body, then the cart is empty", async () => {
			const customer = await newCustomer();
			const p = await newProduct();
			await add(customer, { productId: p.id, quantity: 2 });
			const res = await api(gw, "DELETE", "/api/cart", { token: customer });
			expect(res.status).toBe(204);
			expect(res.body).toBeNull();
			expect(expectCart(await getCart(customer))).toMatchObject({
				items: [],
				subtotal: 0,
				currency: "USD"
			});
			// Clearing an empty (or never used) cart is the same 204.
			expect((await api(gw, "DELETE", "/api/cart", { token: customer })).status).toBe(204);
			expect((await api(gw, "DELETE", "/api/cart", { token: await newCustomer() })).status).toBe(
				204
			);
			// The cart works again after a clear.
			expect(expectCart(await add(customer, { productId: p.id, quantity: 1 })).items).toHaveLength(
				1
			);
		});
	});

	describe("isolation", () => {
		it("keeps one user's cart invisible and untouchable to another", async () => {
			const alice = await newCustomer();
			const bob = await newCustomer();
			const p = await newProduct();
			const alicesCart = expectCart(await add(alice, { productId: p.id, quantity: 5 }));

			expect(expectCart(await getCart(bob)).items).toEqual([]);
			expectError(await setQuantity(bob, p.id, { quantity: 1 }), 404, "NOT_FOUND");
			expectError(await removeLine(bob, p.id), 404, "NOT_FOUND");
			expect((await api(gw, "DELETE", "/api/cart", { token: bob })).status).toBe(204);
			// A client-sent owner is never read.
			const bobs = expectCart(
				await add(bob, { productId: p.id, quantity: 1, userId: "someone-else" })
			);
			expect(bobs.items).toEqual([expect.objectContaining({ quantity: 1 })]);
			const viaQuery = await api(gw, "GET", "/api/cart?userId=someone-else", { token: bob });
			expect(expectCart(viaQuery)).toMatchObject(bobs);

			expect(expectCart(await getCart(alice))).toMatchObject(alicesCart);
		});

		it("does not publish the internal checkout actions", async () => {
			const customer = await newCustomer();
			for (const path of [
				"/api/carts.checkoutView",
				"/api/carts.clearIfVersion",
				"/api/carts/checkoutView"
			]) {
				const res = await api(gw, "POST", path, { token: customer, body: { version: 0 } });
				expectError(res, 404, "NOT_FOUND");
			}
		});
	});
});

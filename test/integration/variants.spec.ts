/**
 * Issue 20 over real HTTP on a cluster on a real nats-server: products with options and variants, each variant with
 * its own sku, price and stock; listings and reads with price ranges and availability; carts and orders naming the
 * variant with a snapshot of what was sold; old clients naming only products keep working.
 */
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADMIN, type Res, expectError, shop, unique } from "../helpers/shop";

describe("variants", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products", "carts", "orders", "payments"],
			gateways: 2,
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ORDER_TTL: "600" }
		});
		s = shop(cluster);
	}, 120_000);
	afterAll(() => cluster?.stop());

	const admin = async (method: string, path: string, body?: unknown): Promise<Res> =>
		api(s.base, method, path, { token: await s.admin(), body });

	/** A T-shirt in sizes S, M, L and colours red and blue, with the variants and stock given. */
	async function tee(
		variants: Array<{ size: string; colour: string; stock: number; price?: number }>
	): Promise<any> {
		const sku = unique("TEE");
		const res = await admin("POST", "/api/products", {
			sku,
			name: `Tee ${sku}`,
			price: 2000,
			category: "variant tests",
			options: [
				{ name: "size", values: ["S", "M", "L"] },
				{ name: "colour", values: ["red", "blue"] }
			],
			variants: variants.map(v => ({
				sku: `${sku}-${v.size}-${v.colour}`,
				options: { size: v.size, colour: v.colour },
				stock: v.stock,
				...(v.price ? { price: v.price } : {})
			}))
		});
		expect(res.status).toBe(201);
		return res.body;
	}
	const variantOf = (product: any, size: string, colour: string) =>
		product.variants.find((v: any) => v.options.size === size && v.options.colour === colour);
	const addLine = (token: string, body: Record<string, unknown>) =>
		api(s.base, "POST", "/api/cart/items", { token, body });

	it("creates a product with options and variants; reads show each variant, the price range and availability", async () => {
		const created = await tee([
			{ size: "S", colour: "red", stock: 3 },
			{ size: "M", colour: "red", stock: 0, price: 2500 }
		]);
		expect(created.options).toEqual([
			{ name: "size", values: ["S", "M", "L"] },
			{ name: "colour", values: ["red", "blue"] }
		]);
		expect(created.priceRange).toEqual({ min: 2000, max: 2500 });
		expect(created.price).toBe(2000);
		expect(created.available).toBe(3);

		const read = (await api(s.base, "GET", `/api/products/${created.slug}`)).body;
		expect(read.variants).toHaveLength(2);
		expect(variantOf(read, "S", "red")).toMatchObject({
			price: 2000,
			available: 3,
			currency: "USD"
		});
		expect(variantOf(read, "M", "red")).toMatchObject({ price: 2500, available: 0 });
		expect(read.available).toBe(3);
		// A product with options has no default variant: its id names no stock of its own.
		expectError(await admin("GET", `/api/inventory/${created.id}`), 409, "VARIANT_REQUIRED");
		const level = await admin("GET", `/api/inventory/variants/${variantOf(read, "S", "red").id}`);
		expect(level.status).toBe(200);
		expect(level.body).toMatchObject({
			productId: created.id,
			variantId: variantOf(read, "S", "red").id,
			onHand: 3,
			reserved: 0,
			available: 3
		});
	});

	it("refuses a duplicate combination or sku (409), a value the product lacks (422), and keeps options in use", async () => {
		const product = await tee([{ size: "S", colour: "red", stock: 1 }]);
		const s_red = variantOf(product, "S", "red");
		expectError(
			await admin("POST", `/api/products/${product.id}/variants`, {
				sku: unique("X"),
				options: { size: "S", colour: "red" }
			}),
			409,
			"VARIANT_EXISTS"
		);
		expectError(
			await admin("POST", `/api/products/${product.id}/variants`, {
				sku: s_red.sku,
				options: { size: "M", colour: "red" }
			}),
			409,
			"SKU_TAKEN"
		);
		const other = await s.product(1);
		const otherSku = (await api(s.base, "GET", `/api/products/${other}`)).body.sku;
		expectError(
			await admin("POST", `/api/products/${product.id}/variants`, {
				sku: otherSku,
				options: { size: "M", colour: "red" }
			}),
			409,
			"SKU_TAKEN"
		);
		expectError(
			await admin("POST", "/api/products", {
				sku: s_red.sku,
				name: "Same sku as a variant",
				price: 100,
				category: "variant tests"
			}),
			409,
			"SKU_TAKEN"
		);
		const bad = await admin("POST", `/api/products/${product.id}/variants`, {
			sku: unique("X"),
			options: { size: "XL", colour: "red" }
		});
		expectError(bad, 422, "VALIDATION_ERROR");
		expect(bad.body.data[0].field).toBe("options.size");
		expectError(
			await admin("POST", `/api/products/${product.id}/variants`, {
				sku: unique("X"),
				options: { size: "M" }
			}),
			422,
			"VALIDATION_ERROR"
		);
		expectError(
			await admin("PATCH", `/api/products/${product.id}`, {
				options: [{ name: "size", values: ["M", "L"] }]
			}),
			409,
			"OPTION_IN_USE"
		);
		expectError(
			await admin("PATCH", `/api/products/${product.id}`, { price: 999 }),
			409,
			"VARIANT_REQUIRED"
		);
		// Two admins adding the same combination at once: one variant, one 409.
		const racing = await Promise.all(
			[1, 2].map(() =>
				admin("POST", `/api/products/${product.id}/variants`, {
					sku: unique("RACE"),
					options: { size: "L", colour: "blue" },
					stock: 1
				})
			)
		);
		expect(racing.map(r => r.status).sort()).toEqual([201, 409]);
		const after = (await api(s.base, "GET", `/api/products/${product.id}`)).body;
		expect(after.variants.filter((v: any) => v.options.size === "L")).toHaveLength(1);
	});

	it("adds, changes and archives a variant: archived ones leave the product and new carts", async () => {
		const product = await tee([{ size: "S", colour: "red", stock: 5 }]);
		const added = await admin("POST", `/api/products/${product.id}/variants`, {
			sku: unique("TEE-L"),
			options: { size: "L", colour: "blue" },
			price: 3100,
			stock: 4
		});
		expect(added.status).toBe(201);
		expect(added.body).toMatchObject({
			options: { size: "L", colour: "blue" },
			price: 3100,
			available: 4
		});
		const changed = await admin("PATCH", `/api/products/${product.id}/variants/${added.body.id}`, {
			price: 3300
		});
		expect(changed.status).toBe(200);
		expect(changed.body.price).toBe(3300);
		expect((await api(s.base, "GET", `/api/products/${product.id}`)).body.priceRange).toEqual({
			min: 2000,
			max: 3300
		});

		const gone = await admin("DELETE", `/api/products/${product.id}/variants/${added.body.id}`);
		expect(gone.status).toBe(204);
		const read = (await api(s.base, "GET", `/api/products/${product.id}`)).body;
		expect(read.variants.map((v: any) => v.id)).not.toContain(added.body.id);
		expect(read.priceRange).toEqual({ min: 2000, max: 2000 });
		const { token } = await s.customer();
		expectError(await addLine(token, { variantId: added.body.id, quantity: 1 }), 404, "NOT_FOUND");

		// The default variant of a product without options stays: the product is what gets archived.
		const plain = await s.product(2);
		expectError(
			await admin("DELETE", `/api/products/${plain}/variants/${plain}`),
			409,
			"DEFAULT_VARIANT"
		);
	});

	it("filters listings by variant prices and availability", async () => {
		const category = unique("filters").toLowerCase();
		const make = (sku: string, variants: Array<{ size: string; price: number; stock: number }>) =>
			admin("POST", "/api/products", {
				sku,
				name: `Filter ${sku}`,
				price: 1000,
				category,
				options: [{ name: "size", values: ["S", "M"] }],
				variants: variants.map(v => ({ sku: `${sku}-${v.size}`, options: { size: v.size }, ...v }))
			});
		const cheapSoldOut = unique("F1");
		const pricey = unique("F2");
		expect(
			(
				await make(cheapSoldOut, [
					{ size: "S", price: 500, stock: 0 },
					{ size: "M", price: 900, stock: 0 }
				])
			).status
		).toBe(201);
		expect(
			(
				await make(pricey, [
					{ size: "S", price: 700, stock: 0 },
					{ size: "M", price: 5000, stock: 2 }
				])
			).status
		).toBe(201);
		const list = async (query: string) =>
			(
				await api(s.base, "GET", `/api/products?category=${encodeURIComponent(category)}&${query}`)
			).body.rows
				.map((p: any) => p.sku)
				.sort();
		// A product matches when one of its variants on sale has a price in the range.
		expect(await list("minPrice=4000")).toEqual([pricey]);
		expect(await list("maxPrice=600")).toEqual([cheapSoldOut]);
		expect(await list("minPrice=650&maxPrice=800")).toEqual([pricey]);
		expect(await list("inStock=true")).toEqual([pricey]);
		expect(await list("inStock=false")).toEqual([cheapSoldOut]);
		expect(await list("sort=price")).toEqual([cheapSoldOut, pricey].sort());
	});

	it("puts variants in carts: a product id alone is its default variant, or 409 VARIANT_REQUIRED", async () => {
		const product = await tee([
			{ size: "S", colour: "red", stock: 5 },
			{ size: "M", colour: "blue", stock: 5, price: 2600 }
		]);
		const small = variantOf(product, "S", "red");
		const medium = variantOf(product, "M", "blue");
		const { token } = await s.customer();
		expectError(
			await addLine(token, { productId: product.id, quantity: 1 }),
			409,
			"VARIANT_REQUIRED"
		);
		expectError(await addLine(token, { quantity: 1 }), 422, "VALIDATION_ERROR");
		const other = await s.product(3);
		expectError(
			await addLine(token, { productId: other, variantId: small.id, quantity: 1 }),
			404,
			"NOT_FOUND"
		);

		expect((await addLine(token, { variantId: small.id, quantity: 1 })).status).toBe(200);
		expect(
			(await addLine(token, { productId: product.id, variantId: medium.id, quantity: 2 })).status
		).toBe(200);
		expect((await addLine(token, { productId: other, quantity: 1 })).status).toBe(200);
		let cart = (await api(s.base, "GET", "/api/cart", { token })).body;
		expect(cart.items).toHaveLength(3);
		expect(cart.items.find((i: any) => i.variantId === medium.id)).toMatchObject({
			productId: product.id,
			sku: medium.sku,
			options: { size: "M", colour: "blue" },
			unitPrice: 2600,
			quantity: 2,
			lineTotal: 5200
		});
		expect(cart.items.find((i: any) => i.productId === other)).toMatchObject({
			variantId: other,
			options: {}
		});

		// A product id with two of its variants in the cart names no one line.
		expectError(
			await api(s.base, "PATCH", `/api/cart/items/${product.id}`, { token, body: { quantity: 4 } }),
			409,
			"VARIANT_REQUIRED"
		);
		cart = (
			await api(s.base, "PATCH", `/api/cart/items/${medium.id}`, { token, body: { quantity: 4 } })
		).body;
		expect(cart.items.find((i: any) => i.variantId === medium.id).quantity).toBe(4);
		cart = (await api(s.base, "DELETE", `/api/cart/items/${small.id}`, { token })).body;
		expect(cart.items.map((i: any) => i.variantId).sort()).toEqual([medium.id, other].sort());
		// With one line of the product left, its product id names that line.
		cart = (
			await api(s.base, "PATCH", `/api/cart/items/${product.id}`, { token, body: { quantity: 1 } })
		).body;
		expect(cart.items.find((i: any) => i.variantId === medium.id).quantity).toBe(1);
		cart = (await api(s.base, "DELETE", `/api/cart/items/${other}`, { token })).body;
		expect(cart.items.map((i: any) => i.variantId)).toEqual([medium.id]);
	});

	it("sells a variant out while its siblings stay buyable, and keeps what was sold in the order", async () => {
		const product = await tee([
			{ size: "S", colour: "red", stock: 1 },
			{ size: "M", colour: "red", stock: 5 }
		]);
		const last = variantOf(product, "S", "red");
		const sibling = variantOf(product, "M", "red");
		const first = await s.customer();
		expect((await addLine(first.token, { variantId: last.id, quantity: 1 })).status).toBe(200);
		const order = await s.checkout(first.token);
		expect(order.status).toBe(201);
		expect(order.body.items).toEqual([
			expect.objectContaining({
				productId: product.id,
				variantId: last.id,
				sku: last.sku,
				options: { size: "S", colour: "red" },
				unitPrice: 2000,
				quantity: 1
			})
		]);

		const second = await s.customer();
		expect((await addLine(second.token, { variantId: last.id, quantity: 1 })).status).toBe(200);
		const refused = await s.checkout(second.token);
		expectError(refused, 409, "OUT_OF_STOCK");
		await api(s.base, "DELETE", `/api/cart/items/${last.id}`, { token: second.token });
		expect((await addLine(second.token, { variantId: sibling.id, quantity: 2 })).status).toBe(200);
		expect((await s.checkout(second.token)).status).toBe(201);
		const read = (await api(s.base, "GET", `/api/products/${product.id}`)).body;
		expect(variantOf(read, "S", "red").available).toBe(0);
		expect(variantOf(read, "M", "red").available).toBe(3);

		// A later catalog change does not rewrite what was sold.
		await admin("PATCH", `/api/products/${product.id}/variants/${last.id}`, { price: 9999 });
		await admin("PATCH", `/api/products/${product.id}`, { name: "Renamed tee" });
		const kept = await api(s.base, "GET", `/api/orders/${order.body.id}`, { token: first.token });
		expect(kept.body.items[0]).toMatchObject({
			name: product.name,
			unitPrice: 2000,
			options: { size: "S", colour: "red" }
		});
		const paid = await s.pay(first.token, order.body.id);
		expect(paid.status).toBe(200);
		expect(paid.body.total).toBe(order.body.total);
	});

	it("sells exactly the last units of one variant to concurrent checkouts on two gateways, siblings untouched", async () => {
		const product = await tee([
			{ size: "L", colour: "blue", stock: 3 },
			{ size: "L", colour: "red", stock: 7 }
		]);
		const scarce = variantOf(product, "L", "blue");
		const sibling = variantOf(product, "L", "red");
		const buyers = await s.customers(10);
		for (const b of buyers) {
			expect((await addLine(b.token, { variantId: scarce.id, quantity: 1 })).status).toBe(200);
		}
		const results = await Promise.all(
			buyers.map((b, i) =>
				api(cluster.gateways[i % cluster.gateways.length], "POST", "/api/orders", {
					token: b.token,
					body: {
						shippingAddress: {
							name: "A",
							line1: "1 Road",
							city: "X",
							postalCode: "1",
							country: "GB"
						}
					},
					headers: { "Idempotency-Key": unique("last-units") }
				})
			)
		);
		const statuses = results.map(r => r.status);
		expect(statuses.filter(st => st === 201)).toHaveLength(3);
		expect(statuses.filter(st => st === 409)).toHaveLength(7);
		for (const r of results.filter(res => res.status === 409))
			expect(r.body.type).toBe("OUT_OF_STOCK");
		expect((await admin("GET", `/api/inventory/variants/${scarce.id}`)).body).toMatchObject({
			onHand: 3,
			reserved: 3,
			available: 0
		});
		expect((await admin("GET", `/api/inventory/variants/${sibling.id}`)).body).toMatchObject({
			onHand: 7,
			reserved: 0,
			available: 7
		});
	});

	it("keeps an old client's flow unchanged: product ids only, default variants", async () => {
		const productId = await s.product(4, 1500);
		const read = (await api(s.base, "GET", `/api/products/${productId}`)).body;
		expect(read).toMatchObject({
			price: 1500,
			available: 4,
			options: [],
			priceRange: { min: 1500, max: 1500 },
			variants: [{ id: productId, sku: read.sku, options: {}, price: 1500, available: 4 }]
		});
		const { token } = await s.customer();
		await s.addToCart(token, productId, 2);
		const order = await s.checkout(token);
		expect(order.status).toBe(201);
		expect(order.body.items[0]).toMatchObject({ productId, variantId: productId, quantity: 2 });
		expect((await s.pay(token, order.body.id)).status).toBe(200);
		expect(await s.stock(productId)).toMatchObject({ onHand: 2, reserved: 0, available: 2 });
		const put = await admin("PUT", `/api/inventory/${productId}`, { onHand: 10 });
		expect(put.status).toBe(200);
		expect(put.body).toMatchObject({ productId, onHand: 10, available: 10 });
	});
});

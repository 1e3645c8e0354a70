/**
 * API.md's Catalog and Inventory (admin) sections over real HTTP: two gateways, a users, a products and an
 * inventory node on a real nats-server, the products node seeding the demo catalog.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";

const ADMIN = { email: "catalog-admin@flashmart.test", password: "catalog-admin-pw" };

type Product = {
	id: string;
	sku: string;
	slug: string;
	name: string;
	price: number;
	currency: string;
	category: string;
	available: number;
	images: unknown[];
	createdAt: string;
};
type Page = { rows: Product[]; total: number; page: number; pageSize: number; totalPages: number };

function expectError(res: { status: number; body: any }, status: number, type: string) {
	expect(res.status).toBe(status);
	expect(res.body).toMatchObject({ code: status, type, requestId: expect.any(String) });
	expect(JSON.stringify(res.body)).not.toMatch(/stack|node_modules/);
}

describe("catalog over a cluster", () => {
	let cluster: TestCluster;
	let admin: string;
	let customer: string;
	let gw0: string;
	let gw1: string;

	const list = async (query: string, base = gw0) => {
		const res = await api(base, "GET", `/api/products?${query}`);
		expect(res.status).toBe(200);
		return res.body as Page;
	};
	let sku = 0;
	const newProduct = async (fields: Record<string, unknown> = {}) => {
		const res = await api(gw0, "POST", "/api/products", {
			token: admin,
			body: {
				sku: `IT-${Date.now()}-${sku++}`,
				name: "Integration Lamp",
				price: 4200,
				category: "testing",
				stock: 5,
				...fields
			}
		});
		expect(res.status).toBe(201);
		return res.body as Product;
	};

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products"],
			gateways: 2,
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password },
			envFor: { products: { SEED_DEMO: "true" } }
		});
		[gw0, gw1] = cluster.gateways;
		admin = (await api(gw0, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		customer = (
			await api(gw0, "POST", "/api/auth/register", {
				body: {
					email: `shopper-${Date.now()}@example.com`,
					password: "shopper-password",
					name: "Shopper"
				}
			})
		).body.accessToken;
		expect(admin).toEqual(expect.any(String));
		expect(customer).toEqual(expect.any(String));
	}, 90_000);

	afterAll(() => cluster?.stop());

	describe("products.seed", () => {
		it("starts with a demo catalog of at least 200 products over at least 8 categories", async () => {
			const categories = (await api(gw0, "GET", "/api/categories")).body as Array<{
				name: string;
				count: number;
			}>;
			expect(categories.length).toBeGreaterThanOrEqual(8);
			expect(categories.reduce((n, c) => n + c.count, 0)).toBeGreaterThanOrEqual(200);
			expect(categories.map(c => c.name)).toEqual([...categories.map(c => c.name)].sort());
			const inStock = await list("inStock=true&pageSize=1");
			expect(inStock.total).toBeGreaterThan(100);
		});

		it("is idempotent: npm run seed against the running cluster creates nothing more", async () => {
			const before = (await list("pageSize=1")).total;
			const { stdout } = await promisify(execFile)(
				process.execPath,
				[path.join(__dirname, "..", "..", "dist", "scripts", "seed.js")],
				{
					env: {
						...process.env,
						TRANSPORTER: cluster.nats.url,
						NAMESPACE: cluster.namespace,
						LOG_LEVEL: "warn",
						SERVICES: "",
						JWT_PUBLIC_KEY: cluster.keys.publicKey
					}
				}
			);
			expect(stdout).toMatch(/Done: 0 products created, \d+ already there/);
			expect((await list("pageSize=1")).total).toBe(before);
		}, 60_000);
	});

	describe("products.list", () => {
		it("answers a page with rows, total, page, pageSize and totalPages", async () => {
			const page = await list("");
			expect(page.page).toBe(1);
			expect(page.pageSize).toBe(20);
			expect(page.rows).toHaveLength(20);
			expect(page.totalPages).toBe(Math.ceil(page.total / 20));
			const second = await list("page=2&pageSize=20");
			expect(second.rows.map(r => r.id)).not.toContain(page.rows[0].id);
			const far = await list(`page=${page.totalPages + 1}`);
			expect(far.rows).toEqual([]);
			expect(far.total).toBe(page.total);
		});

		it.each([
			"pageSize=101",
			"pageSize=0",
			"page=0",
			"page=-1",
			"pageSize=abc",
			"sort=random",
			"minPrice=-1",
			"minPrice=1.5"
		])("rejects %s with 422 VALIDATION_ERROR", async query => {
			expectError(await api(gw0, "GET", `/api/products?${query}`), 422, "VALIDATION_ERROR");
		});

		it("accepts pageSize=100", async () => {
			expect((await list("pageSize=100")).rows).toHaveLength(100);
		});

		it("filters by category, price range and stock", async () => {
			const books = await list("category=books&pageSize=100");
			expect(books.total).toBeGreaterThan(0);
			expect(books.rows.every(r => r.category === "books")).toBe(true);
			const ranged = await list("minPrice=1000&maxPrice=3000&pageSize=100");
			expect(ranged.total).toBeGreaterThan(0);
			expect(ranged.rows.every(r => r.price >= 1000 && r.price <= 3000)).toBe(true);
			const inStock = await list("inStock=true&pageSize=100");
			expect(inStock.rows.every(r => r.available > 0)).toBe(true);
			const all = await list("pageSize=1");
			expect(inStock.total).toBeLessThan(all.total);
		});

		it("searches name, description and sku as plain text, case-insensitively", async () => {
			const hits = await list("q=LIP%20balm&pageSize=100");
			expect(hits.total).toBeGreaterThan(0);
			expect(hits.rows.every(r => /lip balm/i.test(r.name))).toBe(true);
			expect((await list("q=.*")).total).toBe(0);
		});

		it("answers a catastrophic-backtracking pattern in q as plain text, without timing out", async () => {
			const bomb = encodeURIComponent("(a+)+$" + "a".repeat(60) + "!");
			const res = await api(gw0, "GET", `/api/products?q=${bomb}`);
			expect(res.status).toBe(200);
			expect(res.body.total).toBe(0);
		});

		it("sorts by price, -price, name and -createdAt", async () => {
			const byPrice = (await list("sort=price&pageSize=50")).rows.map(r => r.price);
			expect(byPrice).toEqual([...byPrice].sort((a, b) => a - b));
			const byPriceDesc = (await list("sort=-price&pageSize=50")).rows.map(r => r.price);
			expect(byPriceDesc).toEqual([...byPriceDesc].sort((a, b) => b - a));
			const byName = (await list("sort=name&pageSize=50")).rows.map(r => r.name);
			expect(byName).toEqual([...byName].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
			const newest = (await list("sort=-createdAt&pageSize=50")).rows.map(r => r.createdAt);
			expect(newest).toEqual([...newest].sort().reverse());
		});

		it("never passes operator-shaped or unknown parameters to the store", async () => {
			const all = await list("pageSize=1");
			const archived = await newProduct();
			await api(gw0, "DELETE", `/api/products/${archived.id}`, { token: admin });
			// Unknown parameters are ignored: the same listing, never an archived product.
			const withOperators = await list(
				`pageSize=1&price[$gt]=0&query=${encodeURIComponent('{"archived":true}')}&archived=true&$where=1`
			);
			expect(withOperators.total).toBe(all.total);
			const search = await list(
				`q=${archived.sku}&query=${encodeURIComponent('{"archived":true}')}`
			);
			expect(search.total).toBe(0);
			// A known parameter given an operator is not a string: 422.
			expectError(
				await api(gw0, "GET", "/api/products?category[$ne]=books"),
				422,
				"VALIDATION_ERROR"
			);
			expectError(await api(gw0, "GET", "/api/products?minPrice[$gt]=0"), 422, "VALIDATION_ERROR");
		});
	});

	describe("products.get", () => {
		it("finds a product by id and by slug, with every contract field", async () => {
			const created = await newProduct({
				name: "Slug Lookup Lamp",
				description: "Bright",
				stock: 9
			});
			const byId = await api(gw1, "GET", `/api/products/${created.id}`);
			expect(byId.status).toBe(200);
			expect(byId.body).toEqual({
				id: created.id,
				sku: created.sku,
				slug: "slug-lookup-lamp",
				name: "Slug Lookup Lamp",
				description: "Bright",
				price: 4200,
				currency: "USD",
				category: "testing",
				images: [],
				available: 9,
				// A product without options: its one default variant, whose id is the product's.
				options: [],
				variants: [
					{
						id: created.id,
						sku: created.sku,
						options: {},
						price: 4200,
						currency: "USD",
						images: [],
						available: 9
					}
				],
				priceRange: { min: 4200, max: 4200 },
				createdAt: expect.any(String),
				updatedAt: expect.any(String)
			});
			const bySlug = await api(gw1, "GET", "/api/products/slug-lookup-lamp");
			expect(bySlug.body.id).toBe(created.id);
			const twin = await newProduct({ name: "Slug Lookup Lamp" });
			expect(twin.slug).not.toBe("slug-lookup-lamp");
		});

		it("answers an unknown product with 404 NOT_FOUND", async () => {
			expectError(await api(gw0, "GET", "/api/products/no-such-product"), 404, "NOT_FOUND");
		});

		it("answers repeated reads from the gateway's cache, and asks products again after a stock change", async () => {
			const p = await newProduct({ stock: 3 });
			/** The calls this gateway made to products.get over NATS, from its own /metrics. */
			const remoteGets = async () => {
				const text = await (await fetch(`${gw1}/metrics`)).text();
				return text
					.split("\n")
					.filter(l => /^moleculer_request_total\{.*action="products\.get".*type="remote"/.test(l))
					.reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
			};
			await new Promise(r => setTimeout(r, 100)); // the creation's stock changes announced
			const before = await remoteGets();
			for (let i = 0; i < 10; i++) {
				expect((await api(gw1, "GET", `/api/products/${p.id}`)).body.available).toBe(3);
			}
			expect((await remoteGets()) - before).toBe(1);
			expect((await api(gw1, "GET", `/api/products/${p.slug}`)).body.available).toBe(3);
			expect((await remoteGets()) - before).toBe(2);
			// A change after a quiet moment is announced at once (under load, changes go out together every 50 ms).
			await new Promise(r => setTimeout(r, 100));
			const set = await api(gw0, "PUT", `/api/inventory/${p.id}`, {
				token: admin,
				body: { onHand: 8 }
			});
			expect(set.status).toBe(200);
			// The inventory.changed broadcast reaches gw1 (and products) before the client's next request does.
			expect((await api(gw1, "GET", `/api/products/${p.id}`)).body.available).toBe(8);
			expect((await remoteGets()) - before).toBe(3);
			expect((await api(gw1, "GET", `/api/products/${p.slug}`)).body.available).toBe(8);
		});
	});

	describe("products.create", () => {
		it("stores a currency upper-cased, and refuses a change to one no one uses without changing anything", async () => {
			const p = await newProduct({ currency: "gbp" });
			expect(p.currency).toBe("GBP");
			const res = await api(gw0, "PATCH", `/api/products/${p.id}`, {
				token: admin,
				body: { currency: "GBX", price: 999 }
			});
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data).toEqual([
				expect.objectContaining({ field: "currency", type: "currency" })
			]);
			expect((await api(gw0, "GET", `/api/products/${p.id}`)).body).toMatchObject({
				currency: "GBP",
				price: p.price
			});
		});

		it("creates a product with its stock (201)", async () => {
			const p = await newProduct({ stock: 12, currency: "EUR" });
			expect(p).toMatchObject({
				price: 4200,
				currency: "EUR",
				category: "testing",
				available: 12,
				images: []
			});
			const stock = await api(gw0, "GET", `/api/inventory/${p.id}`, { token: admin });
			expect(stock.body).toEqual({
				productId: p.id,
				variantId: p.id,
				onHand: 12,
				reserved: 0,
				available: 12
			});
		});

		it("refuses a duplicate sku with 409", async () => {
			const p = await newProduct();
			const res = await api(gw0, "POST", "/api/products", {
				token: admin,
				body: { sku: p.sku, name: "Other", price: 100, category: "testing" }
			});
			expectError(res, 409, "SKU_TAKEN");
		});

		it.each([
			["a float price", { price: 12.5 }, "price"],
			["a negative price", { price: -1 }, "price"],
			["a string price", { price: "100" }, "price"],
			["no category", { category: undefined }, "category"],
			["a bad currency", { currency: "dollars" }, "currency"],
			["a currency no one uses", { currency: "XYZ" }, "currency"],
			["a test currency", { currency: "XTS" }, "currency"],
			["a bad sku", { sku: "has spaces" }, "sku"]
		])("refuses %s with 422 naming the field", async (_what, fields, field) => {
			const res = await api(gw0, "POST", "/api/products", {
				token: admin,
				body: { sku: `BAD-${Date.now()}`, name: "Bad", price: 100, category: "testing", ...fields }
			});
			expectError(res, 422, "VALIDATION_ERROR");
			expect(res.body.data.map((d: { field: string }) => d.field)).toContain(field);
		});

		it("is for admins only", async () => {
			const body = { sku: `NOPE-${Date.now()}`, name: "Nope", price: 100, category: "testing" };
			expectError(
				await api(gw0, "POST", "/api/products", { token: customer, body }),
				403,
				"FORBIDDEN"
			);
			expectError(await api(gw0, "POST", "/api/products", { body }), 401, "NO_TOKEN");
		});
	});

	describe("products.update", () => {
		it("shows a new price on the next read, through another gateway, despite the cache", async () => {
			const p = await newProduct({ price: 1000 });
			// Warm the caches through both gateways.
			expect((await api(gw1, "GET", `/api/products/${p.id}`)).body.price).toBe(1000);
			expect((await api(gw1, "GET", `/api/products/${p.slug}`)).body.price).toBe(1000);
			expect((await list(`q=${p.sku}`, gw1)).rows[0].price).toBe(1000);
			const patched = await api(gw0, "PATCH", `/api/products/${p.id}`, {
				token: admin,
				body: { price: 1500 }
			});
			expect(patched.status).toBe(200);
			expect(patched.body.price).toBe(1500);
			expect(patched.body.currency).toBe(p.currency);
			expect((await api(gw1, "GET", `/api/products/${p.id}`)).body.price).toBe(1500);
			expect((await api(gw1, "GET", `/api/products/${p.slug}`)).body.price).toBe(1500);
			expect((await list(`q=${p.sku}`, gw1)).rows[0].price).toBe(1500);
		});

		it("answers 404 for an unknown product, 409 for a taken sku, 422 for a float price", async () => {
			const a = await newProduct();
			const b = await newProduct();
			expectError(
				await api(gw0, "PATCH", "/api/products/nope", { token: admin, body: { price: 1 } }),
				404,
				"NOT_FOUND"
			);
			expectError(
				await api(gw0, "PATCH", `/api/products/${a.id}`, { token: admin, body: { sku: b.sku } }),
				409,
				"SKU_TAKEN"
			);
			expectError(
				await api(gw0, "PATCH", `/api/products/${a.id}`, { token: admin, body: { price: 9.99 } }),
				422,
				"VALIDATION_ERROR"
			);
			expectError(
				await api(gw0, "PATCH", `/api/products/${a.id}`, { token: customer, body: { price: 1 } }),
				403,
				"FORBIDDEN"
			);
		});
	});

	describe("products.archive", () => {
		it("takes a product out of listings and reads (204), and a second time answers 404", async () => {
			const p = await newProduct({ category: "archivable" });
			const before = (await api(gw0, "GET", "/api/categories")).body as Array<{
				name: string;
				count: number;
			}>;
			expect(before.find(c => c.name === "archivable")?.count).toBe(1);
			const res = await api(gw0, "DELETE", `/api/products/${p.id}`, { token: admin });
			expect(res.status).toBe(204);
			expect(res.body).toBeNull();
			expectError(await api(gw1, "GET", `/api/products/${p.id}`), 404, "NOT_FOUND");
			expect((await list(`q=${p.sku}`, gw1)).total).toBe(0);
			const after = (await api(gw1, "GET", "/api/categories")).body as Array<{ name: string }>;
			expect(after.find(c => c.name === "archivable")).toBeUndefined();
			expectError(
				await api(gw0, "DELETE", `/api/products/${p.id}`, { token: admin }),
				404,
				"NOT_FOUND"
			);
			expectError(
				await api(gw0, "DELETE", `/api/products/${p.id}`, { token: customer }),
				403,
				"FORBIDDEN"
			);
		});
	});

	describe("inventory (admin)", () => {
		it("reads and sets the units on hand; the product's available follows", async () => {
			const p = await newProduct({ stock: 4 });
			const set = await api(gw0, "PUT", `/api/inventory/${p.id}`, {
				token: admin,
				body: { onHand: 11 }
			});
			expect(set.status).toBe(200);
			expect(set.body).toEqual({
				productId: p.id,
				variantId: p.id,
				onHand: 11,
				reserved: 0,
				available: 11
			});
			expect(
				(await api(gw0, "GET", `/api/inventory/${p.id}`, { token: admin })).body.available
			).toBe(11);
			// The catalog's cached read is dropped by the inventory.changed broadcast.
			let available = 0;
			for (let i = 0; i < 50 && available !== 11; i++) {
				available = (await api(gw1, "GET", `/api/products/${p.id}`)).body.available;
				if (available !== 11) await new Promise(r => setTimeout(r, 50));
			}
			expect(available).toBe(11);
		});

		it("refuses bad input, unknown products and non-admins", async () => {
			const p = await newProduct();
			for (const onHand of [-1, 1.5, "3", null]) {
				expectError(
					await api(gw0, "PUT", `/api/inventory/${p.id}`, { token: admin, body: { onHand } }),
					422,
					"VALIDATION_ERROR"
				);
			}
			expectError(
				await api(gw0, "GET", "/api/inventory/unknown-product", { token: admin }),
				404,
				"NOT_FOUND"
			);
			expectError(
				await api(gw0, "PUT", "/api/inventory/unknown-product", {
					token: admin,
					body: { onHand: 1 }
				}),
				404,
				"NOT_FOUND"
			);
			expectError(
				await api(gw0, "GET", `/api/inventory/${p.id}`, { token: customer }),
				403,
				"FORBIDDEN"
			);
			expectError(
				await api(gw0, "PUT", `/api/inventory/${p.id}`, { body: { onHand: 1 } }),
				401,
				"NO_TOKEN"
			);
		});
	});
});

describe("catalog with the shared Redis cache (CACHER=redis://)", () => {
	let cluster: TestCluster;
	let admin: string;

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products"],
			gateways: 2,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				CACHER: "redis://127.0.0.1:6379"
			}
		});
		admin = (await api(cluster.base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
	}, 90_000);
	afterAll(() => cluster?.stop());

	it("caches reads in Redis and shows a price change on the next read through another gateway", async () => {
		const [gw0, gw1] = cluster.gateways;
		const created = await api(gw0, "POST", "/api/products", {
			token: admin,
			body: {
				sku: `REDIS-${Date.now()}`,
				name: "Redis Lamp",
				price: 700,
				category: "testing",
				stock: 2
			}
		});
		expect(created.status).toBe(201);
		const id = created.body.id as string;
		expect((await api(gw1, "GET", `/api/products/${id}`)).body.price).toBe(700);
		// The read went through the shared cache: its key is in Redis under this run's namespace.
		const { redisKeys } = await import("../helpers/redis-keys");
		const keys = await redisKeys(`${cluster.namespace}-cache*products.get*`);
		expect(keys.length).toBeGreaterThan(0);
		expect(
			(await api(gw0, "PATCH", `/api/products/${id}`, { token: admin, body: { price: 900 } }))
				.status
		).toBe(200);
		expect((await api(gw1, "GET", `/api/products/${id}`)).body.price).toBe(900);
	});
});

/**
 * Products and inventory no longer call each other: a product's stock comes to inventory as the durable
 * `products.created` event, so each runs without the other, and stock created while inventory was down arrives when
 * it starts (the event waits in JetStream).
 */
describe("products and inventory, each without the other", () => {
	let cluster: TestCluster;
	let admin: string;
	let base: string;
	const create = (sku: string, stock: number) =>
		api(base, "POST", "/api/products", {
			token: admin,
			body: { sku, name: `Lonely ${sku}`, price: 990, category: "testing", stock }
		});

	beforeAll(async () => {
		// No inventory node at first: the cluster needs only users and products to be ready.
		cluster = await startCluster({
			services: ["users", "products"],
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }
		});
		base = cluster.base;
		admin = (await api(base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
	}, 90_000);
	afterAll(() => cluster?.stop());

	let early: Product;
	it("creates a product with its stock while no inventory node runs (201, at once)", async () => {
		const started = Date.now();
		const res = await create(`ALONE-${Date.now()}`, 7);
		expect(res.status).toBe(201);
		expect(res.body).toMatchObject({ available: 7 });
		expect(Date.now() - started).toBeLessThan(1500);
		early = res.body as Product;
	});

	it("gives inventory that stock from the event once an inventory node starts", async () => {
		await cluster.startService("inventory");
		let stock = { status: 0, body: null as any };
		for (let i = 0; i < 100 && stock.status !== 200; i++) {
			stock = await api(base, "GET", `/api/inventory/${early.id}`, { token: admin });
			if (stock.status !== 200) await new Promise(r => setTimeout(r, 200));
		}
		expect(stock.status).toBe(200);
		expect(stock.body).toEqual({
			productId: early.id,
			variantId: early.id,
			onHand: 7,
			reserved: 0,
			available: 7
		});
		// The catalog's reads show it too (the stock's announcement dropped any cached read).
		let available = 0;
		for (let i = 0; i < 50 && available !== 7; i++) {
			available = (await api(base, "GET", `/api/products/${early.id}`)).body.available;
			if (available !== 7) await new Promise(r => setTimeout(r, 100));
		}
		expect(available).toBe(7);
	}, 60_000);

	it("with inventory up, a read right after the create shows the stock", async () => {
		// Inventory's node must have discovered the gateway and products (it announces the stocks it makes).
		await new Promise(r => setTimeout(r, 1500));
		const res = await create(`BOTH-${Date.now()}`, 4);
		expect(res.status).toBe(201);
		const id = res.body.id as string;
		expect((await api(base, "GET", `/api/products/${id}`)).body.available).toBe(4);
		expect((await api(base, "GET", `/api/inventory/${id}`, { token: admin })).body).toEqual({
			productId: id,
			variantId: id,
			onHand: 4,
			reserved: 0,
			available: 4
		});
	});

	it("serves and sets stock with no products node, and still answers 404 for an unknown product", async () => {
		await cluster.nodes.get("products")!.kill9();
		const set = await api(base, "PUT", `/api/inventory/${early.id}`, {
			token: admin,
			body: { onHand: 12 }
		});
		expect(set.status).toBe(200);
		expect(set.body).toEqual({
			productId: early.id,
			variantId: early.id,
			onHand: 12,
			reserved: 0,
			available: 12
		});
		expectError(
			await api(base, "PUT", "/api/inventory/never-created", { token: admin, body: { onHand: 1 } }),
			404,
			"NOT_FOUND"
		);
	});
});

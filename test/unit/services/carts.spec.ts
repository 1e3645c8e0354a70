import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import type { DbAdapter } from "../../../adapters/store";
import PermissionsMiddleware from "../../../middlewares/permissions.middleware";
import { createCartsService } from "../../../services/carts.service";
import type { ProductSummary } from "../../../types/catalog";
import { productSummary } from "../../helpers/catalog-stub";
import { testConfig } from "../../helpers/config";

describe("carts service (in-process, NeDB, a stub catalog)", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-carts-"))
	});

	const catalog = new Map<string, ProductSummary>();
	const summaryCalls: string[][] = [];
	/** The variant lookups (`variantIds`) the service made. */
	const variantCalls: string[][] = [];
	/** Adds or changes a product and announces it, as the products service does on every change. */
	const product = (id: string, fields: Partial<ProductSummary> = {}) => {
		catalog.set(id, productSummary(id, fields));
		void broker.broadcast("products.cache.clean", {});
	};

	const broker: Broker = new ServiceBroker({ logger: false, middlewares: [PermissionsMiddleware] });
	broker.createService({
		name: "products",
		actions: {
			summaries: {
				async handler(ctx: { params: { ids?: string[]; variantIds?: string[] } }) {
					// Answer asynchronously, as a remote node would, so racing requests interleave.
					if (ctx.params.variantIds) {
						variantCalls.push(ctx.params.variantIds);
						await new Promise(resolve => setImmediate(resolve));
						const wanted = ctx.params.variantIds;
						return Object.fromEntries(
							[...catalog.values()]
								.filter(p => wanted.some(v => Object.hasOwn(p.variants, v)))
								.map(p => [p.id, p])
						);
					}
					const ids = ctx.params.ids ?? [];
					summaryCalls.push(ids);
					await new Promise(resolve => setImmediate(resolve));
					return Object.fromEntries(
						ids.filter(id => catalog.has(id)).map(id => [id, catalog.get(id)])
					);
				}
			}
		}
	});
	const carts = broker.createService(createCartsService(cfg)) as unknown as { adapter: DbAdapter };

	let users = 0;
	const asUser = () => ({
		meta: { user: { id: `u${++users}`, email: "c@x.example", roles: ["customer"] } }
	});
	const call = (action: string, params: object, opts: object) =>
		broker.call(`carts.${action}`, params, opts) as Promise<any>;

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());
	beforeEach(() => {
		summaryCalls.length = 0;
		jest.restoreAllMocks();
	});

	describe("carts.add", () => {
		it("prices an answer with at most one catalog call, and reads and writes the store once", async () => {
			product("a", { price: 250 });
			product("b", { price: 100 });
			const user = asUser();
			await call("add", { productId: "a", quantity: 2 }, user);
			summaryCalls.length = 0;
			const findOne = jest.spyOn(carts.adapter, "findOne");
			const updateMany = jest.spyOn(carts.adapter, "updateMany");
			const cart = await call("add", { productId: "b", quantity: 3 }, user);
			expect(cart).toEqual({
				items: [
					{
						productId: "a",
						variantId: "a",
						sku: "SKU-a",
						options: {},
						name: "Product a",
						unitPrice: 250,
						quantity: 2,
						lineTotal: 500
					},
					{
						productId: "b",
						variantId: "b",
						sku: "SKU-b",
						options: {},
						name: "Product b",
						unitPrice: 100,
						quantity: 3,
						lineTotal: 300
					}
				],
				subtotal: 800,
				discountTotal: 0,
				shippingTotal: 0,
				taxTotal: 0,
				total: 800,
				currency: "USD"
			});
			// "a" was priced by the first add and the catalog has not changed since: only "b" is asked for.
			expect(summaryCalls).toEqual([["b"]]);
			expect(findOne).toHaveBeenCalledTimes(1);
			expect(updateMany).toHaveBeenCalledTimes(1);
		});

		it("asks products for a variant's product once, and still refuses a variant archived since", async () => {
			product("vx", { price: 300 });
			const user = asUser();
			variantCalls.length = 0;
			await call("add", { variantId: "vx", quantity: 1 }, user);
			const cart = await call("add", { variantId: "vx", quantity: 1 }, user);
			expect(cart.items).toMatchObject([{ productId: "vx", variantId: "vx", quantity: 2 }]);
			expect(variantCalls).toEqual([["vx"]]);
			// The product now answers the variant archived: known or not, the add is refused by the summary.
			product("vx", { price: 300, archived: true });
			await expect(call("add", { variantId: "vx", quantity: 1 }, user)).rejects.toMatchObject({
				code: 404
			});
			expect(variantCalls).toEqual([["vx"]]);
		});

		it("prices from the catalog again once a change is announced", async () => {
			product("p1", { price: 500 });
			const user = asUser();
			await call("add", { productId: "p1", quantity: 1 }, user);
			expect((await call("get", {}, user)).subtotal).toBe(500);
			const known = catalog.get("p1")!;
			// Not announced yet: still the known price.
			catalog.set("p1", {
				...known,
				price: 700,
				variants: { p1: { ...known.variants.p1, price: 700 } }
			});
			expect((await call("get", {}, user)).subtotal).toBe(500);
			await broker.broadcast("products.cache.clean", {});
			expect((await call("get", {}, user)).subtotal).toBe(700);
			expect(summaryCalls).toEqual([["p1"], ["p1"]]);
		});

		it("loses no units when 20 adds race on one cart (the version guard retries the losers)", async () => {
			product("race");
			const user = asUser();
			const updateMany = jest.spyOn(carts.adapter, "updateMany");
			const insert = jest.spyOn(carts.adapter, "insert");
			await Promise.all(
				Array.from({ length: 20 }, () => call("add", { productId: "race", quantity: 1 }, user))
			);
			const cart = await call("get", {}, user);
			expect(cart.items).toEqual([expect.objectContaining({ productId: "race", quantity: 20 })]);
			// Some writes lost the race and were retried: more attempts than the 19 updates that won.
			expect(insert.mock.calls.length + updateMany.mock.calls.length).toBeGreaterThan(20);
			// A retry does not ask the catalog again for products it already priced.
			expect(summaryCalls.filter(ids => ids.length > 0).length).toBeLessThanOrEqual(21);
		});

		it("gives up with a retryable 503 SERVICE_UNAVAILABLE after 10 lost races", async () => {
			product("busy");
			const user = asUser();
			await call("add", { productId: "busy", quantity: 1 }, user);
			const updateMany = jest.spyOn(carts.adapter, "updateMany").mockResolvedValue(0);
			await expect(call("add", { productId: "busy", quantity: 1 }, user)).rejects.toMatchObject({
				code: 503,
				type: "SERVICE_UNAVAILABLE",
				retryable: true
			});
			expect(updateMany).toHaveBeenCalledTimes(10);
		});

		it("drops archived and unknown lines from the stored cart at the next write", async () => {
			product("keep");
			product("gone");
			const user = asUser();
			await call("add", { productId: "keep", quantity: 1 }, user);
			await call("add", { productId: "gone", quantity: 1 }, user);
			product("gone", { archived: true });
			await call("add", { productId: "keep", quantity: 1 }, user);
			const stored = (await carts.adapter.findOne({ userId: user.meta.user.id })) as {
				items: unknown[];
				version: number;
			};
			expect(stored.items).toEqual([{ productId: "keep", quantity: 2 }]);
			expect(stored.version).toBe(3);
		});

		it("hides a line whose product an admin moved to another currency", async () => {
			product("usd1");
			product("usd2");
			const user = asUser();
			await call("add", { productId: "usd1", quantity: 1 }, user);
			await call("add", { productId: "usd2", quantity: 1 }, user);
			product("usd2", { currency: "EUR" });
			const cart = await call("get", {}, user);
			expect(cart.items.map((i: { productId: string }) => i.productId)).toEqual(["usd1"]);
			expect(cart).toMatchObject({ subtotal: 1000, currency: "USD" });
		});

		it("refuses a 101st different product with 422 VALIDATION_ERROR", async () => {
			const user = asUser();
			for (let i = 0; i < 100; i++) product(`many${i}`);
			for (let i = 0; i < 100; i++) await call("add", { productId: `many${i}`, quantity: 1 }, user);
			product("many100");
			await expect(call("add", { productId: "many100", quantity: 1 }, user)).rejects.toMatchObject({
				code: 422,
				type: "VALIDATION_ERROR",
				data: [expect.objectContaining({ field: "productId" })]
			});
		});
	});

	describe("carts.checkoutView and carts.clearIfVersion", () => {
		it("answers the lines with skus and the version, and clears only at that version", async () => {
			product("co1", { price: 300 });
			product("co2", { price: 50 });
			const user = asUser();
			await call("add", { productId: "co1", quantity: 2 }, user);
			const view = await call("checkoutView", {}, user);
			expect(view).toEqual({
				items: [
					{
						productId: "co1",
						variantId: "co1",
						options: {},
						name: "Product co1",
						sku: "SKU-co1",
						unitPrice: 300,
						quantity: 2,
						lineTotal: 600
					}
				],
				subtotal: 600,
				currency: "USD",
				version: 1
			});
			// An item added after the checkout read survives the checkout's clear.
			await call("add", { productId: "co2", quantity: 1 }, user);
			await expect(call("clearIfVersion", { version: view.version }, user)).resolves.toEqual({
				cleared: false
			});
			expect((await call("get", {}, user)).items).toHaveLength(2);

			const again = await call("checkoutView", {}, user);
			await expect(call("clearIfVersion", { version: again.version }, user)).resolves.toEqual({
				cleared: true
			});
			expect((await call("get", {}, user)).items).toEqual([]);
			// A replayed clear at the same version does nothing more.
			await expect(call("clearIfVersion", { version: again.version }, user)).resolves.toEqual({
				cleared: false
			});
		});

		it("answers an empty view at version 0 for a user who never had a cart", async () => {
			await expect(call("checkoutView", {}, asUser())).resolves.toEqual({
				items: [],
				subtotal: 0,
				currency: "USD",
				version: 0
			});
		});

		it("refuses a caller without a user with 401 NO_TOKEN", async () => {
			for (const [action, params] of [
				["get", {}],
				["checkoutView", {}],
				["clearIfVersion", { version: 1 }]
			] as const) {
				await expect(call(action, params, {})).rejects.toMatchObject({
					code: 401,
					type: "NO_TOKEN"
				});
			}
		});
	});
});
